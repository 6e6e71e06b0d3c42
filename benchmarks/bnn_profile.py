"""Where a BNN training step's time goes, against the plain network's step: a profile by category.

Each operator's own CPU time (``torch.profiler``, children excluded) is put in one category:
inside the variance-and-KL function (forward or backward) or the optimizer step, by that
enclosing call; otherwise by the operator's name (matrix products, convolutions, pooling,
noise, the bias column's ``cat``, other elementwise work). What the operators do not account
for, the step's wall time minus their time, is the Python, Pyro and dispatch overhead.

Run: ``python benchmarks/bnn_profile.py [--arch mlp|lenet] [--estimator NAME] [--steps N]
[--out DIR]`` (random inputs of MNIST's shape: the cost of a step does not depend on the pixel
values). The estimator defaults to the one ``models/bnn_mnist.py`` trains that architecture
with: local reparameterisation for the MLP, Flipout for the LeNet.
"""

from __future__ import annotations

import argparse
import json
import time
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path

import pyro
import torch
from torch.profiler import ProfilerActivity, profile

from pyro_logits.bnn import (
    ESTIMATORS,
    BayesianMLP,
    BayesianNetwork,
    BNNClassifier,
)
from pyro_logits.bnn.baseline import PlainNetwork, lenet, plain_mlp
from pyro_logits.runs import atomic_write

BATCH = 128
CATEGORIES = (
    "matrix products",
    "convolutions",
    "variance-and-KL pass",
    "optimizer",
    "noise",
    "pooling",
    "bias column cat",
    "other operators",
    "Python, Pyro and dispatch",
)
_BY_NAME = {
    "aten::mm": "matrix products",
    "aten::addmm": "matrix products",
    "aten::bmm": "matrix products",
    "aten::mkldnn_convolution": "convolutions",
    "aten::convolution_backward": "convolutions",
    "aten::normal_": "noise",
    "aten::random_": "noise",  # Flipout's signs
    "aten::max_pool2d_with_indices": "pooling",
    "aten::max_pool2d_with_indices_backward": "pooling",
    "aten::cat": "bias column cat",
}


def _category(event: object) -> str:
    node = event
    while node is not None:
        name = node.name  # type: ignore[attr-defined]
        if "VariancesAndKL" in name or "VarianceAndKL" in name:
            return "variance-and-KL pass"
        if name.startswith("Optimizer.step") or "fused_adam" in name:
            return "optimizer"
        node = node.cpu_parent  # type: ignore[attr-defined]
    return _BY_NAME.get(event.name, "other operators")  # type: ignore[attr-defined]


def profile_step(step: Callable[[], object], steps: int) -> dict[str, float]:
    """Milliseconds per step by category, after a warm-up of 10 steps."""
    for _ in range(10):
        step()
    with profile(activities=[ProfilerActivity.CPU]) as prof:
        start = time.perf_counter()
        for _ in range(steps):
            step()
        wall = time.perf_counter() - start
    ms: dict[str, float] = defaultdict(float)
    for event in prof.events():
        if event.name.startswith("aten::") or event.name.startswith("Optimizer.step"):
            ms[_category(event)] += event.self_cpu_time_total / 1e3 / steps
    ms["Python, Pyro and dispatch"] = max(0.0, wall * 1e3 / steps - sum(ms.values()))
    return {c: ms.get(c, 0.0) for c in CATEGORIES}


DEFAULT_ESTIMATOR = {"mlp": "local-reparam", "lenet": "flipout"}


def _steps(arch: str, estimator: str) -> dict[str, Callable[[], object]]:
    x = torch.rand(BATCH, 784) if arch == "mlp" else torch.rand(BATCH, 1, 28, 28)
    y = torch.randint(10, (BATCH,))
    pyro.clear_param_store()
    if arch == "mlp":
        model: BayesianNetwork = BayesianMLP()
        plain: PlainNetwork = PlainNetwork(plain_mlp(model.sizes))
    else:
        model = BayesianNetwork(lenet(), input_shape=(1, 28, 28))
        plain = PlainNetwork(lenet())
    clf = BNNClassifier(model, estimator=estimator, kl_weight=0.1)

    def bnn() -> object:
        return clf.svi.step(x, y, dataset_size=60_000, validate=False)

    name = f"bnn-{arch}" if estimator == "local-reparam" else f"bnn-{arch}-{estimator}"
    return {name: bnn, arch: lambda: plain.step(x, y)}


def main(argv: list[str] | None = None) -> dict[str, object]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--arch", choices=("mlp", "lenet"), default="mlp")
    parser.add_argument(
        "--estimator",
        choices=ESTIMATORS,
        help="how the BNN's noise is drawn (default: flipout for the LeNet, else local-reparam)",
    )
    parser.add_argument("--steps", type=int, default=50, help="profiled steps per network")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--out", default="runs/benchmarks", help="output directory for JSON")
    args = parser.parse_args(argv)
    estimator = args.estimator or DEFAULT_ESTIMATOR[args.arch]
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    steps = _steps(args.arch, estimator)
    results = {name: profile_step(step, args.steps) for name, step in steps.items()}
    names = list(results)
    print(f"ms per step ({args.steps} steps, batch {BATCH}, {args.threads} threads)")
    width = max(12, *(len(n) for n in names))
    print(f"{'category':28}" + "".join(f"{n:>{width}} {'share':>6}" for n in names))
    totals = {n: sum(results[n].values()) for n in names}
    for category in (*CATEGORIES, "total"):
        row = f"{category:28}"
        for n in names:
            v = totals[n] if category == "total" else results[n][category]
            row += f"{v:{width}.2f} {100 * v / totals[n]:5.0f}%"
        print(row)
    print(f"step ratio {names[0]} / {names[1]}: {totals[names[0]] / totals[names[1]]:.2f}x")
    record = {
        "arch": args.arch,
        "estimator": estimator,
        "steps": args.steps,
        "threads": args.threads,
        "ms": results,
    }
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    with atomic_write(out / f"bnn_profile_{args.arch}.json") as f:
        f.write((json.dumps(record, indent=2) + "\n").encode())
    return record


if __name__ == "__main__":
    main()
