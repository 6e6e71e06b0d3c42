"""How fast ``pyro-logits lint`` is: start-up on one small file, and throughput on real trees.

Prints a table and writes JSON. The trees are the installed ``torch`` and ``pyro`` sources (found
without importing either); each throughput is measured in a fresh process, after start-up, which
also reports its peak memory (resident set size).

Run: ``python benchmarks/lint_speed.py [--max-files N] [--out runs/benchmarks]``.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import multiprocessing
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pyro_logits_lint as lint

SMALL_FILE = """\
import torch.nn as nn
import torch.nn.functional as F


def step(net, x, y):
    return F.cross_entropy(F.softmax(net(x), dim=-1), y)
"""


def package_dir(name: str) -> Path:
    spec = importlib.util.find_spec(name)
    if spec is None or not spec.submodule_search_locations:
        raise SystemExit(f"{name} is not installed here")
    return Path(next(iter(spec.submodule_search_locations)))


def one_small_file(repeat: int) -> dict[str, float]:
    """Wall time of ``pyro-logits lint small.py`` in a fresh interpreter (start-up included)."""
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "small.py"
        path.write_text(SMALL_FILE)
        script = "import sys; from pyro_logits_lint import cli; sys.exit(cli(sys.argv[1:]))"
        times = []
        for _ in range(repeat):
            start = time.perf_counter()
            subprocess.run([sys.executable, "-c", script, "lint", str(path)], capture_output=True)
            times.append(time.perf_counter() - start)
        start = time.perf_counter()
        subprocess.run([sys.executable, "-c", "pass"], capture_output=True)
        bare = time.perf_counter() - start
    return {"median_seconds": statistics.median(times), "python_startup_seconds": bare}


def in_fresh_process(root: Path, max_files: int, follow_imports: bool) -> dict[str, object]:
    """:func:`throughput` in a new interpreter, with that process's peak memory."""
    context = multiprocessing.get_context("spawn")
    with context.Pool(1) as pool:
        return pool.apply(throughput, (root, max_files), {"follow_imports": follow_imports})


def throughput(root: Path, max_files: int, *, follow_imports: bool) -> dict[str, object]:
    """Files and lines per second over ``root``, as one project or file by file."""
    from tqdm.auto import tqdm

    files = [p for p in lint.iter_source_files([root]) if p.suffix == ".py"][:max_files]
    lines = sum(p.read_bytes().count(b"\n") for p in files)
    project = lint.Project(files, [root]) if follow_imports else None
    findings = 0
    start = time.perf_counter()
    for path in tqdm(files, desc=root.name, leave=False):
        findings += len(lint.lint_file(path, project=project))
    seconds = time.perf_counter() - start
    return {
        "tree": str(root),
        "follow_imports": follow_imports,
        "files": len(files),
        "lines": lines,
        "seconds": seconds,
        "files_per_second": len(files) / seconds,
        "lines_per_second": lines / seconds,
        "findings": findings,
        # ru_maxrss is in KiB on Linux
        "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    }


def main(argv: list[str] | None = None) -> dict[str, object]:
    """Run the benchmark, print the table and write ``lint_speed.json``."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--max-files", type=int, default=1000, help="files per tree")
    parser.add_argument("--repeat", type=int, default=5, help="runs of the one-file check")
    parser.add_argument("--out", default="runs/benchmarks", help="output directory for JSON")
    args = parser.parse_args(argv)

    small = one_small_file(args.repeat)
    trees = [
        in_fresh_process(package_dir(name), args.max_files, follow)
        for name in ("torch", "pyro")
        for follow in (True, False)
    ]
    print(
        f"one small file, fresh interpreter: {small['median_seconds']:.3f} s "
        f"(python -c pass: {small['python_startup_seconds']:.3f} s)"
    )
    header = ("tree", "imports", "files", "lines", "s", "files/s", "lines/s", "findings", "MiB")
    print("\n{:8} {:>9} {:>6} {:>9} {:>7} {:>8} {:>9} {:>8} {:>6}".format(*header))
    for t in trees:
        print(
            f"{Path(str(t['tree'])).name:8} {'followed' if t['follow_imports'] else 'not':>9} "
            f"{t['files']:6d} {t['lines']:9d} {t['seconds']:7.2f} {t['files_per_second']:8.0f} "
            f"{t['lines_per_second']:9.0f} {t['findings']:8d} {t['peak_rss_mib']:6.0f}"
        )
    result = {"one_small_file": small, "trees": trees, "python": sys.version.split()[0]}
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "lint_speed.json").write_text(json.dumps(result, indent=2))
    return result


if __name__ == "__main__":
    main()
