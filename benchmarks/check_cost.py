"""What the logits checks cost: one check on a tensor, and ``check_logits()`` on a BNN SVI step.

Prints a table and writes JSON. Every ratio compares timings taken side by side in this run.

Run: ``python benchmarks/check_cost.py [--data-dir DIR] [--quick] [--out runs/benchmarks]``.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
import warnings
from collections.abc import Callable
from pathlib import Path

import pyro
import torch

import pyro_logits as pl
from pyro_logits.bnn import BayesianMLP, BNNClassifier
from pyro_logits.datasets import load_mnist


def median_seconds(fn: Callable[[], object], *, repeat: int, number: int) -> float:
    """Median over ``repeat`` rounds of the mean time of ``number`` calls."""
    fn()  # warm-up
    rounds = []
    for _ in range(repeat):
        start = time.perf_counter()
        for _ in range(number):
            fn()
        rounds.append((time.perf_counter() - start) / number)
    return statistics.median(rounds)


def tensor_rows(repeat: int) -> list[dict[str, object]]:
    """One check on genuine logits of two sizes, with and without an autograd graph."""
    rows = []
    for shape, number in (((128, 10), 2000), ((4096, 1000), 20)):
        z = torch.randn(shape) * 3
        log_probs = z.log_softmax(-1)
        graph = (torch.randn(shape, requires_grad=True) * 3).log_softmax(-1)
        cases = {
            "values (no_grad), genuine logits": lambda z=z: pl.diagnose(z, "categorical"),
            "values (no_grad), log_softmax output": lambda lp=log_probs: pl.diagnose(
                lp, "categorical"
            ),
            "provenance (grad), log_softmax output": lambda g=graph: pl.diagnose(g, "categorical"),
        }
        logsumexp = median_seconds(lambda z=z: torch.logsumexp(z, -1), repeat=repeat, number=number)
        build = median_seconds(
            lambda z=z: pyro.distributions.Categorical(logits=z), repeat=repeat, number=number
        )
        for name, fn in cases.items():
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                t = median_seconds(fn, repeat=repeat, number=number)
            rows.append(
                {
                    "shape": list(shape),
                    "case": name,
                    "seconds": t,
                    "ratio_to_logsumexp": t / logsumexp,
                    "ratio_to_building_categorical": t / build,
                    "logsumexp_seconds": logsumexp,
                    "build_seconds": build,
                }
            )
    return rows


def svi_rows(data_dir: str | None, steps: int, rounds: int) -> list[dict[str, object]]:
    """BNN SVI steps on real MNIST with and without ``check_logits()``, alternating."""
    x, y = load_mnist("train", data_dir=data_dir)
    batches = [(x[i : i + 128], y[i : i + 128]) for i in range(0, 128 * steps, 128)]
    pyro.clear_param_store()
    clf = BNNClassifier(BayesianMLP(784, (400, 400), 10))
    # One messenger for the whole run, as in training: it caches per site across steps.
    checker = pl.check_logits()
    times: dict[str, list[float]] = {"without check_logits()": [], "with check_logits()": []}
    for _ in range(rounds):
        for name in times:
            start = time.perf_counter()
            for xb, yb in batches:
                if name == "with check_logits()":
                    with checker:
                        clf.svi.step(xb, yb, dataset_size=len(x), validate=False)
                else:
                    clf.svi.step(xb, yb, dataset_size=len(x), validate=False)
            times[name].append((time.perf_counter() - start) / len(batches))
    base = statistics.median(times["without check_logits()"])
    return [
        {
            "case": name,
            "seconds_per_step": statistics.median(ts),
            "ratio": statistics.median(ts) / base,
        }
        for name, ts in times.items()
    ]


def main(argv: list[str] | None = None) -> dict[str, object]:
    """Run the benchmark, print the tables and write ``check_cost.json``."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", default=None, help="directory with the MNIST IDX files")
    parser.add_argument("--out", default="runs/benchmarks", help="output directory for JSON")
    parser.add_argument("--quick", action="store_true", help="fewer repetitions")
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)

    tensors = tensor_rows(repeat=3 if args.quick else 7)
    print(f"{'shape':>12}  {'case':40} {'time':>10}  {'/logsumexp':>10}  {'/Categorical()':>14}")
    for r in tensors:
        print(
            f"{'x'.join(map(str, r['shape'])):>12}  {r['case']:40} {r['seconds'] * 1e6:8.1f}us  "
            f"{r['ratio_to_logsumexp']:10.2f}  {r['ratio_to_building_categorical']:14.2f}"
        )
    svi = svi_rows(args.data_dir, steps=50 if args.quick else 200, rounds=3 if args.quick else 5)
    print(f"\n{'BNN SVI step (784-400-400-10, batch 128)':40} {'ms/step':>8}  {'ratio':>6}")
    for r in svi:
        print(f"{r['case']:40} {r['seconds_per_step'] * 1e3:8.2f}  {r['ratio']:6.3f}")

    result = {
        "tensor_checks": tensors,
        "svi_step": svi,
        "threads": args.threads,
        "torch": torch.__version__,
        "pyro": pyro.__version__,
    }
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "check_cost.json").write_text(json.dumps(result, indent=2))
    return result


if __name__ == "__main__":
    main()
