"""Recall and false alarms of ``pyro-logits lint`` on a corpus of real code, linted as projects.

The corpus is not part of the repository (it is other people's code): a directory with a
``manifest.json`` listing the cases, each a sub-directory linted as one project::

    [{"case": "gan-disc", "dir": "cases/gan-disc", "kind": "multi-file",
      "source": "owner/repo@commit",
      "expected": [{"file": "train.py", "line": 88, "code": "PL003", "note": "..."}]},
     {"case": "mnist", "dir": "correct/mnist", "kind": "correct", "source": "...",
      "expected": []}]

``dir`` defaults to ``case``. ``kind`` is ``multi-file``, ``single-file`` or ``correct``. An
expected item may list ``also_ok`` places (``{"file": ..., "line": ...}``: a report at the
caller's line of a user's own loss class, say). A finding matches an expected one on
the same file and line; with another code it counts as the right line, another code. Every other
finding is listed for a verdict (``"extra_verdicts": {"file:line:code": "false alarm"}``, or a
list of ``{"where": ..., "verdict": ...}``, in the manifest records one).

Run: ``python benchmarks/lint_corpus.py CORPUS [--out runs/benchmarks]``.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import pyro_logits_lint as lint

KINDS = ("multi-file", "single-file", "correct")


def lines_of(root: Path) -> tuple[int, int]:
    files = [p for p in lint.iter_source_files([root])]
    return len(files), sum(p.read_bytes().count(b"\n") for p in files)


def measure_case(corpus: Path, case: dict[str, object]) -> dict[str, object]:
    """Lint one case as a project and match its findings against the expected ones."""
    root = corpus / str(case.get("dir", case["case"]))
    start = time.perf_counter()
    findings = lint.lint_paths([root])
    seconds = time.perf_counter() - start
    got = {
        (Path(f.path).relative_to(root).as_posix(), f.line): (f.code, f.message) for f in findings
    }
    expected = case.get("expected", [])
    if not isinstance(expected, list):
        raise ValueError(f"case {case['case']!r}: expected must be a list")
    matched = other_code = 0
    for item in expected:
        places = [(item["file"], item["line"])]
        places += [(other["file"], other["line"]) for other in item.get("also_ok", [])]
        found = next((got.pop(place) for place in places if place in got), None)
        if found is not None and found[0] == item["code"]:
            matched += 1
        elif found is not None:
            other_code += 1
    verdicts = case.get("extra_verdicts", {})
    if isinstance(verdicts, list):  # [{"where": "file:line:code", "verdict": "..."}]
        verdicts = {v["where"]: v["verdict"] for v in verdicts}
    if not isinstance(verdicts, dict):
        raise ValueError(f"case {case['case']!r}: extra_verdicts must be a dict or a list")
    extra = [
        {
            "where": f"{file}:{line}:{code}",
            "message": message,
            "verdict": verdicts.get(f"{file}:{line}:{code}", "not judged"),
        }
        for (file, line), (code, message) in sorted(got.items())
    ]
    files, lines = lines_of(root)
    return {
        "case": case["case"],
        "kind": case["kind"],
        "source": case.get("source", ""),
        "files": files,
        "lines": lines,
        "expected": len(expected),
        "matched": matched,
        "right_line_other_code": other_code,
        "extra": extra,
        "seconds": seconds,
    }


def summarise(results: list[dict[str, object]]) -> dict[str, dict[str, float | None]]:
    """Recall per kind (``None`` without expected findings), and the findings by verdict."""
    out: dict[str, dict[str, float | None]] = {}
    for kind in KINDS:
        rows = [r for r in results if r["kind"] == kind]
        expected = sum(int(r["expected"]) for r in rows)  # type: ignore[call-overload]
        matched = sum(int(r["matched"]) for r in rows)  # type: ignore[call-overload]
        extra = [e for r in rows for e in r["extra"]]  # type: ignore[attr-defined]
        out[kind] = {
            "cases": len(rows),
            "expected": expected,
            "matched": matched,
            "recall": matched / expected if expected else None,
            "extra_findings": len(extra),
            "false_alarms": sum(e["verdict"] == "false alarm" for e in extra),
            "lines": sum(int(r["lines"]) for r in rows),  # type: ignore[call-overload]
        }
    return out


def main(argv: list[str] | None = None) -> dict[str, object]:
    """Measure the corpus, print the table and write ``lint_corpus.json``."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("corpus", type=Path, help="directory holding manifest.json")
    parser.add_argument("--out", default="runs/benchmarks", help="output directory for JSON")
    args = parser.parse_args(argv)
    manifest = args.corpus / "manifest.json"
    if not manifest.is_file():
        parser.error(f"expected {manifest} (the list of cases), but it does not exist")
    cases = json.loads(manifest.read_text())
    results = [measure_case(args.corpus, case) for case in cases]
    header = ("case", "kind", "lines", "expected", "matched", "extra")
    print("{:40} {:12} {:>7} {:>8} {:>7} {:>5}".format(*header))
    for r in results:
        print(
            f"{str(r['case'])[:40]:40} {r['kind']:12} {r['lines']:7d} {r['expected']:8d} "
            f"{r['matched']:7d} {len(r['extra']):5d}"  # type: ignore[arg-type]
        )
        for e in r["extra"]:  # type: ignore[attr-defined]
            print(f"    extra {e['where']} ({e['verdict']}): {e['message'][:90]}")
    summary = summarise(results)
    print()
    for kind, s in summary.items():
        print(
            f"{kind:12} cases {s['cases']}  lines {s['lines']}  found {s['matched']} of "
            f"{s['expected']}  extra findings {s['extra_findings']} "
            f"(false alarms {s['false_alarms']})"
        )
    result = {"cases": results, "summary": summary}
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "lint_corpus.json").write_text(json.dumps(result, indent=2, allow_nan=False))
    return result


if __name__ == "__main__":
    main()
