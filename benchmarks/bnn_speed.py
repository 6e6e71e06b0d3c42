"""BNN training speed on MNIST against the plain-PyTorch floor and idiomatic Pyro, in one run.

Every MLP system trains the same 784-400-400-10 network on the same data, batch 128, Adam lr 1e-3,
and the systems take turns epoch by epoch, so machine noise hits them alike. Reported per
system: seconds per epoch (median), the ratio to each floor, test accuracy and NLL after the
same epochs, the training time to 98% test accuracy, and the peak RSS of a child process that
runs only that system.

Systems:

- ``mlp``: a plain deterministic ``nn.Sequential`` MLP with ``torch.optim.Adam`` defaults, the
  cost floor as users write it; ``mlp-fused``: the same with ``Adam(fused=True)``.
- ``bnn-local-reparam`` and ``bnn-sample-weights``: :class:`pyro_logits.bnn.BNNClassifier`.
- ``lenet``, ``bnn-lenet`` and ``bnn-lenet-flipout``: the 20-50-500 LeNet-5
  (:func:`pyro_logits.bnn.lenet`), plain and as a :class:`pyro_logits.bnn.BayesianNetwork`
  (local reparameterisation, or with the convolutions by Flipout); the Bayesian ones are also
  compared with the plain one of the same shape.
- ``pyro-idiomatic``: ``PyroModule[nn.Linear]`` layers with ``PyroSample`` Normal priors,
  ``AutoNormal``, ``Trace_ELBO`` and ``pyro.plate`` subsampling, as the Pyro tutorials write it.

Run: ``python benchmarks/bnn_speed.py --data-dir DIR [--quick] [--epochs N] [--out DIR]``, and
``--systems lenet bnn-lenet bnn-lenet-flipout`` for the convolutional rows (not in the default
run).
"""

from __future__ import annotations

import argparse
import itertools
import json
import math
import platform
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import pyro
import pyro.distributions as dist
import torch
from pyro.infer import SVI, Predictive, Trace_ELBO
from pyro.infer.autoguide import AutoNormal
from pyro.nn import PyroModule, PyroSample
from torch import nn

from pyro_logits.bnn import (
    BayesianMLP,
    BayesianNetwork,
    BNNClassifier,
)
from pyro_logits.bnn.baseline import PlainNetwork, lenet, plain_mlp
from pyro_logits.convert import predictive_log_probs
from pyro_logits.datasets import load_mnist
from pyro_logits.runs import atomic_write

SIZES = (784, 400, 400, 10)
BATCH = 128  # the default; --batch-size 64 is the LeNet script's
LR = 1e-3
EVAL_SAMPLES = 16
# The reference script's tempered posterior (see models/bnn_mnist.py); lr stays constant.
KL_WEIGHT = 0.1
SYSTEMS = ("mlp", "mlp-fused", "bnn-local-reparam", "bnn-sample-weights", "pyro-idiomatic")
LENET_SYSTEMS = ("lenet", "bnn-lenet", "bnn-lenet-flipout")  # not in the default run


@dataclass
class System:
    """One way of training the network: an epoch (or its first ``steps`` steps), an evaluation."""

    name: str
    train: Callable[[torch.Tensor, torch.Tensor, int | None], None]
    log_probs: Callable[[torch.Tensor], torch.Tensor]
    epoch_seconds: list[float] = field(default_factory=list)
    train_seconds: float = 0.0
    seconds_to_98: float | None = None
    accuracy: list[float] = field(default_factory=list)
    nll: list[float] = field(default_factory=list)


def batches(
    n: int, steps: int | None, generator: torch.Generator, batch_size: int
) -> list[torch.Tensor]:
    order = torch.randperm(n, generator=generator).split(batch_size)
    return list(order if steps is None else order[:steps])


def images(x: torch.Tensor) -> torch.Tensor:
    """Flat MNIST rows as ``(N, 1, 28, 28)`` images (a view)."""
    return x.view(-1, 1, 28, 28)


def make_plain(name: str, batch_size: int) -> System:
    if name == "lenet":
        with torch.random.fork_rng():
            torch.manual_seed(0)
            plain: PlainNetwork = PlainNetwork(lenet(), lr=LR)
        shape = images
    else:
        plain, shape = (
            PlainNetwork(plain_mlp(SIZES), lr=LR, fused=name == "mlp-fused"),
            (lambda x: x),
        )
    generator = torch.Generator().manual_seed(0)

    def train(x: torch.Tensor, y: torch.Tensor, steps: int | None) -> None:
        for idx in batches(len(x), steps, generator, batch_size):
            plain.step(shape(x[idx]), y[idx])

    return System(name, train, lambda x: plain.log_probs(shape(x)))


class ParamScope:
    """Gives each system its own Pyro param store: swapped in around every call."""

    def __init__(self) -> None:
        pyro.clear_param_store()
        self.state = pyro.get_param_store().get_state()

    def __call__(self, fn: Callable[[], object]) -> object:
        pyro.clear_param_store()
        pyro.get_param_store().set_state(self.state)
        try:
            return fn()
        finally:
            self.state = pyro.get_param_store().get_state()


def make_bnn(estimator: str, n: int, batch_size: int, *, arch: str = "mlp") -> System:
    scope = ParamScope()
    if arch == "lenet":
        model: BayesianNetwork = BayesianNetwork(lenet(), input_shape=(1, 28, 28))
        shape = images
    else:
        model, shape = BayesianMLP(784, (400, 400), 10), (lambda x: x)
    clf = scope(lambda: BNNClassifier(model, estimator=estimator, lr=LR, kl_weight=KL_WEIGHT))
    assert isinstance(clf, BNNClassifier)

    def train(x: torch.Tensor, y: torch.Tensor, steps: int | None) -> None:
        def run() -> None:
            if steps is None:
                clf.train_epoch(shape(x), y, batch_size=batch_size)
                return
            for idx in batches(len(x), steps, clf.generator, batch_size):
                clf.svi.step(shape(x[idx]), y[idx], dataset_size=n, validate=False)

        scope(run)

    def log_probs(x: torch.Tensor) -> torch.Tensor:
        out = scope(lambda: clf.predict_log_probs(shape(x), num_samples=EVAL_SAMPLES))
        assert isinstance(out, torch.Tensor)
        return out

    if arch == "lenet":
        name = "bnn-lenet-flipout" if estimator == "flipout" else "bnn-lenet"
    else:
        name = f"bnn-{estimator}"
    return System(name, train, log_probs)


class IdiomaticPyroMLP(PyroModule):
    """The Pyro-tutorial Bayesian MLP: PyroSample priors on ``nn.Linear`` layers."""

    def __init__(self, prior_scale: float = 1.0) -> None:
        super().__init__()
        layers = []
        for a, b in itertools.pairwise(SIZES):
            layer = PyroModule[nn.Linear](a, b)
            layer.weight = PyroSample(dist.Normal(0.0, prior_scale).expand([b, a]).to_event(2))
            layer.bias = PyroSample(dist.Normal(0.0, prior_scale).expand([b]).to_event(1))
            layers.append(layer)
        self.layers = PyroModule[nn.ModuleList](layers)

    def forward(
        self, x: torch.Tensor, y: torch.Tensor | None = None, n: int | None = None
    ) -> torch.Tensor:
        h = x
        for layer in self.layers[:-1]:
            h = torch.relu(layer(h))
        logits = self.layers[-1](h)
        # The minibatch stands for n examples: the plate scales its log-likelihood by n / len(x).
        with pyro.plate("data", size=n or len(x), subsample_size=len(x)):
            pyro.sample("obs", dist.Categorical(logits=logits), obs=y)
        return logits


def make_idiomatic_pyro(batch_size: int) -> System:
    scope = ParamScope()
    model = IdiomaticPyroMLP()
    guide = AutoNormal(model, init_scale=0.01)
    svi = SVI(model, guide, pyro.optim.Adam({"lr": LR}), Trace_ELBO())

    generator = torch.Generator().manual_seed(0)

    def train(x: torch.Tensor, y: torch.Tensor, steps: int | None) -> None:
        def run() -> None:
            for idx in batches(len(x), steps, generator, batch_size):
                svi.step(x[idx], y[idx], len(x))

        scope(run)

    def log_probs(x: torch.Tensor) -> torch.Tensor:
        def run() -> torch.Tensor:
            predictive = Predictive(
                model, guide=guide, num_samples=EVAL_SAMPLES, return_sites=["_RETURN"]
            )
            chunks = []
            with torch.no_grad():
                for xb in x.split(1000):
                    chunks.append(predictive_log_probs(predictive(xb)["_RETURN"]))
            return torch.cat(chunks)

        out = scope(run)
        assert isinstance(out, torch.Tensor)
        return out

    return System("pyro-idiomatic", train, log_probs)


def make_system(name: str, n: int, batch_size: int = BATCH) -> System:
    if name in ("mlp", "mlp-fused", "lenet"):
        return make_plain(name, batch_size)
    if name.startswith("bnn-lenet"):
        estimator = "flipout" if name.endswith("flipout") else "local-reparam"
        return make_bnn(estimator, n, batch_size, arch="lenet")
    if name.startswith("bnn-"):
        return make_bnn(name.removeprefix("bnn-"), n, batch_size)
    return make_idiomatic_pyro(batch_size)


def peak_rss_mb(
    name: str, data_dir: str | None, steps: int, threads: int, batch_size: int
) -> float:
    """Peak RSS of a child process that loads the data and trains only ``name``."""
    cmd = [sys.executable, __file__, "--memory-probe", name, "--steps", str(steps)]
    cmd += ["--threads", str(threads), "--batch-size", str(batch_size)] + (
        ["--data-dir", data_dir] if data_dir else []
    )
    out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
    return float(out.strip().splitlines()[-1])


def memory_probe(name: str, data_dir: str | None, steps: int, batch_size: int) -> None:
    x, y = load_mnist("train", data_dir=data_dir, progress=False)
    system = make_system(name, len(x), batch_size)
    # Reset the peak-RSS mark after loading (decoding MNIST peaks higher than any training), so
    # VmHWM is the peak while training: the data, the model, its optimizer and their work.
    Path("/proc/self/clear_refs").write_text("5")
    system.train(x, y, steps)
    status = Path("/proc/self/status").read_text()
    hwm_kib = next(int(line.split()[1]) for line in status.splitlines() if line.startswith("VmHWM"))
    print(hwm_kib / 1024)


def main(argv: list[str] | None = None) -> dict[str, object]:
    """Run the benchmark, print the table and write ``bnn_speed.json``."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", default=None, help="directory with the MNIST IDX files")
    parser.add_argument("--out", default="runs/benchmarks", help="output directory for JSON")
    parser.add_argument(
        "--quick", action="store_true", help="a burst of steps per system (< 2 min): a smoke test"
    )
    parser.add_argument("--epochs", type=int, default=None, help="epochs (default 10, quick: 1)")
    parser.add_argument("--steps", type=int, default=None, help="steps per epoch (quick: 40)")
    parser.add_argument(
        "--systems", nargs="+", default=list(SYSTEMS), choices=SYSTEMS + LENET_SYSTEMS
    )
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument(
        "--batch-size", type=int, default=BATCH, help="minibatch size of every system"
    )
    parser.add_argument("--memory-probe", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    pyro.set_rng_seed(0)
    if args.memory_probe:
        memory_probe(args.memory_probe, args.data_dir, args.steps or 40, args.batch_size)
        return {}

    epochs = args.epochs or (1 if args.quick else 10)
    steps = args.steps or (40 if args.quick else None)
    x, y = load_mnist("train", data_dir=args.data_dir)
    xt, yt = load_mnist("test", data_dir=args.data_dir)
    steps_per_epoch = math.ceil(len(x) / args.batch_size)
    scale = 1.0 if steps is None else steps_per_epoch / steps
    systems = [make_system(name, len(x), args.batch_size) for name in args.systems]

    from tqdm import tqdm

    for epoch in tqdm(range(epochs), desc="epochs (all systems)"):
        for system in systems:  # alternate: each epoch every system in turn
            start = time.perf_counter()
            system.train(x, y, steps)
            seconds = (time.perf_counter() - start) * scale
            system.epoch_seconds.append(seconds)
            system.train_seconds += seconds
            log_probs = system.log_probs(xt)
            acc = (log_probs.argmax(-1) == yt).double().mean().item()
            system.accuracy.append(acc)
            system.nll.append(-log_probs.gather(-1, yt[:, None]).double().mean().item())
            if system.seconds_to_98 is None and acc >= 0.98:
                system.seconds_to_98 = system.train_seconds
            tqdm.write(f"epoch {epoch + 1} {system.name:20} {seconds:6.2f} s  acc {acc:.4f}")

    mem_steps = 40 if args.quick else 200
    memory = {
        s.name: peak_rss_mb(s.name, args.data_dir, mem_steps, args.threads, args.batch_size)
        for s in systems
    }
    by_name = {s.name: s for s in systems}
    floor = statistics.median(by_name["mlp"].epoch_seconds) if "mlp" in by_name else math.nan
    fused = (
        statistics.median(by_name["mlp-fused"].epoch_seconds)
        if "mlp-fused" in by_name
        else math.nan
    )
    rows = []
    for s in systems:
        median = statistics.median(s.epoch_seconds)
        rows.append(
            {
                "system": s.name,
                "seconds_per_epoch": median,
                "epoch_seconds": s.epoch_seconds,
                "ratio_to_mlp": median / floor,
                "ratio_to_mlp_fused": median / fused,
                "test_accuracy": s.accuracy[-1],
                "test_nll": s.nll[-1],
                "accuracy_per_epoch": s.accuracy,
                "seconds_to_98": s.seconds_to_98,
                "peak_rss_mb": memory[s.name],
                "rss_ratio_to_mlp": memory[s.name] / memory.get("mlp", math.nan),
            }
        )

    mode = (
        f"quick: one burst of {steps} steps scaled to {steps_per_epoch}, a smoke test "
        "(ratios vary by 20% between runs; quote the full mode)"
        if steps
        else "full epochs"
    )
    networks = [
        shape
        for shape, names in (("784-400-400-10 MLP", SYSTEMS), ("20-50-500 LeNet-5", LENET_SYSTEMS))
        if by_name.keys() & set(names)
    ]
    print(
        f"\nMNIST {' and '.join(networks)}, batch {args.batch_size}, Adam lr {LR}, "
        f"{args.threads} threads, {epochs} epoch(s), {mode}"
    )
    header = (
        f"{'system':20} {'s/epoch':>8} {'x mlp':>6} {'x fused':>7} {'test acc':>8} {'NLL':>6} "
        f"{'s to 98%':>9} {'RSS MB':>7} {'x mlp':>6}"
    )
    print(header)
    print("-" * len(header))
    for r in rows:
        to98 = "-" if r["seconds_to_98"] is None else f"{r['seconds_to_98']:.0f}"
        print(
            f"{r['system']:20} {r['seconds_per_epoch']:8.2f} {r['ratio_to_mlp']:6.2f} "
            f"{r['ratio_to_mlp_fused']:7.2f} {r['test_accuracy']:8.4f} {r['test_nll']:6.3f} "
            f"{to98:>9} {r['peak_rss_mb']:7.0f} {r['rss_ratio_to_mlp']:6.2f}"
        )
    for bayesian in ("bnn-lenet", "bnn-lenet-flipout"):
        if {"lenet", bayesian} <= by_name.keys():
            ratio = statistics.median(by_name[bayesian].epoch_seconds) / statistics.median(
                by_name["lenet"].epoch_seconds
            )
            print(f"{bayesian} / lenet (same shape, deterministic): {ratio:.2f}x s/epoch")
            next(r for r in rows if r["system"] == bayesian)["ratio_to_lenet"] = ratio
    result = {
        "rows": rows,
        "epochs": epochs,
        "steps_per_epoch": steps or steps_per_epoch,
        "quick": bool(steps),
        "threads": args.threads,
        "batch_size": args.batch_size,
        "machine": {
            "platform": platform.platform(),
            "processor": platform.processor(),
            "cpus": torch.get_num_threads(),
        },
        "versions": {
            "torch": torch.__version__,
            "pyro": pyro.__version__,
            "python": platform.python_version(),
        },
    }
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    with atomic_write(out / "bnn_speed.json") as f:
        f.write((json.dumps(result, indent=2) + "\n").encode())
    return result


if __name__ == "__main__":
    main()
