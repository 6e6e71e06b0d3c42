"""What the logits checks cost: one check on a tensor, and ``check_logits()`` on training steps.

The training steps are a plain PyTorch MLP step with ``nn.CrossEntropyLoss`` (the loss check)
and a BNN SVI step (the sample-site check), each inside and outside ``check_logits()``.

Prints a table and writes JSON. Every ratio compares timings taken side by side in this run.

Run: ``python benchmarks/check_cost.py [--data-dir DIR] [--quick] [--out runs/benchmarks]``.
"""

from __future__ import annotations

import argparse
import itertools
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


def svi_rows(data_dir: str | None, steps: int, rounds: int) -> list[dict]:
    """BNN SVI steps on real MNIST with and without ``check_logits()``."""
    x, y = load_mnist("train", data_dir=data_dir)
    batches = itertools.cycle([(x[i : i + 128], y[i : i + 128]) for i in range(0, 128 * 50, 128)])
    pyro.clear_param_store()
    clf = BNNClassifier(BayesianMLP(784, (400, 400), 10))
    # One messenger for the whole run, as in training: it caches per site across steps.
    checker = pl.check_logits()

    def step() -> None:
        xb, yb = next(batches)
        clf.svi.step(xb, yb, dataset_size=len(x), validate=False)

    def checked_step() -> None:
        with checker:
            step()

    return alternate(
        {"without check_logits()": step, "with check_logits()": checked_step}, steps, rounds
    )


def alternate(cases: dict[str, Callable[[], None]], steps: int, rounds: int) -> list[dict]:
    """Time ``steps`` calls of each case per round, the order flipping every round.

    The ratio of a case is the median over rounds of its time over the first case's time in
    the same round, so slow drifts of the machine cancel out.
    """
    times: dict[str, list[float]] = {name: [] for name in cases}
    for fn in cases.values():
        fn()  # warm-up
    for r in range(rounds):
        for name in list(cases) if r % 2 == 0 else list(cases)[::-1]:
            fn = cases[name]
            start = time.perf_counter()
            for _ in range(steps):
                fn()
            times[name].append((time.perf_counter() - start) / steps)
    base = next(iter(times.values()))
    return [
        {
            "case": name,
            "seconds_per_step": statistics.median(ts),
            "ratio": statistics.median(t / b for t, b in zip(ts, base, strict=True)),
            "rounds": rounds,
            "steps_per_round": steps,
        }
        for name, ts in times.items()
    ]


def mlp_rows(steps: int, rounds: int) -> list[dict]:
    """A plain 784-400-400-10 MLP step, batch 128, ``nn.CrossEntropyLoss``, Adam."""
    torch.manual_seed(0)
    net = torch.nn.Sequential(
        torch.nn.Linear(784, 400),
        torch.nn.ReLU(),
        torch.nn.Linear(400, 400),
        torch.nn.ReLU(),
        torch.nn.Linear(400, 10),
    )
    optimizer = torch.optim.Adam(net.parameters(), lr=1e-3)
    criterion = torch.nn.CrossEntropyLoss()
    x, y = torch.rand(128, 784), torch.randint(0, 10, (128,))

    def step() -> None:
        optimizer.zero_grad()
        criterion(net(x), y).backward()
        optimizer.step()

    checker = pl.check_logits()

    def checked_step() -> None:
        with checker:
            step()

    return alternate(
        {"without check_logits()": step, "with check_logits()": checked_step}, steps, rounds
    )


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
    mlp = mlp_rows(steps=25, rounds=10 if args.quick else 60)
    print(f"\n{'plain MLP step (784-400-400-10, batch 128)':40} {'ms/step':>8}  {'ratio':>6}")
    for r in mlp:
        print(f"{r['case']:40} {r['seconds_per_step'] * 1e3:8.2f}  {r['ratio']:6.3f}")
    svi = svi_rows(args.data_dir, steps=10, rounds=10 if args.quick else 60)
    print(f"\n{'BNN SVI step (784-400-400-10, batch 128)':40} {'ms/step':>8}  {'ratio':>6}")
    for r in svi:
        print(f"{r['case']:40} {r['seconds_per_step'] * 1e3:8.2f}  {r['ratio']:6.3f}")

    result = {
        "tensor_checks": tensors,
        "mlp_step": mlp,
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
