"""Train a variational autoencoder on binarised MNIST with SVI, the way Pyro's VAE example does.

Run from the repository root::

    python models/vae_mnist.py --data-dir ../shared/data/mnist

The model is Pyro's VAE pattern: a per-image latent ``z ~ N(0, I)`` and the pixel likelihood
inside one subsampled data plate, with the decoder's raw output handed to
:func:`pyro_logits.observe_bernoulli` as logits (``event_dim=1``: the 784 pixels of an image are
one event). The plate is the model's own, so the helper opens none and the site is exactly
``pyro.sample("x", dist.Bernoulli(logits=...).to_event(1), obs=...)``, scaled by the plate's
subsampling.

Binarisation: training images are binarised anew each time they are used (each pixel is 1 with
probability its intensity, "dynamic" binarisation), the test set once, the same way, with a fixed
seed. The test ELBO is the mean over the 10,000 test images, in nats per image, of the one-sample
ELBO with the KL in closed form (``TraceMeanField_ELBO``); higher is better.

``--out`` receives ``metrics.json``, ``samples.png`` (test images, their reconstructions and
images decoded from prior samples) and ``checkpoint.pt``, written after every epoch;
``--resume`` continues from it and ends where an uninterrupted run would. An ``--out`` that
holds an earlier run is refused unless ``--overwrite`` or ``--resume`` is given, and a run
locks it (a second run into it is refused at once).
"""

from __future__ import annotations

import argparse
import itertools
import json
import time
from pathlib import Path
from typing import Any

import pyro
import pyro.distributions as dist
import torch
import torch.nn.functional as F
from pyro.infer import SVI, TraceMeanField_ELBO

import pyro_logits
from pyro_logits.datasets import load_mnist
from pyro_logits.runs import (
    atomic_write,
    claim_run_dir,
    exit_in_one_line,
    nonnegative_int,
    positive_float,
    positive_int,
    progress_bar,
    read_checkpoint,
    require_modules,
    run_dir_error,
    versions,
    write_checkpoint,
)

OUTPUTS = ("metrics.json", "samples.png", "checkpoint.pt")
CHECKPOINT_FORMAT = 1
# Flags that change what is trained; a resumed run must match them.
TRAINING_KEYS = ("batch_size", "z_dim", "hidden", "lr", "seed", "train_size")


class VAE(torch.nn.Module):
    """Encoder and decoder MLPs with ``len(hidden)`` softplus layers each, and Pyro's model/guide.

    Parameters
    ----------
    z_dim : int
        Size of the latent code.
    hidden : tuple of int
        Hidden layer sizes of the encoder (the decoder mirrors them).
    """

    def __init__(self, z_dim: int, hidden: tuple[int, ...], pixels: int = 784) -> None:
        super().__init__()
        self.z_dim = z_dim
        self.encoder = _mlp([pixels, *hidden, 2 * z_dim])
        self.decoder = _mlp([z_dim, *reversed(hidden), pixels])

    def model(self, x: torch.Tensor, idx: torch.Tensor, dataset_size: int) -> None:
        """``z ~ N(0, I)``, pixels ``x ~ Bernoulli(logits=decoder(z))``, per image in the plate."""
        pyro.module("decoder", self.decoder)
        with pyro.plate("data", dataset_size, subsample=idx):
            z = pyro.sample("z", dist.Normal(x.new_zeros(self.z_dim), 1.0).to_event(1))
            pyro_logits.observe_bernoulli("x", self.decoder(z), x, event_dim=1)

    def guide(self, x: torch.Tensor, idx: torch.Tensor, dataset_size: int) -> None:
        """``q(z | x) = N(loc(x), scale(x)**2)``, diagonal."""
        pyro.module("encoder", self.encoder)
        with pyro.plate("data", dataset_size, subsample=idx):
            loc, scale = self.encode(x)
            pyro.sample("z", dist.Normal(loc, scale).to_event(1))

    def encode(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Mean and standard deviation of ``q(z | x)``."""
        loc, raw_scale = self.encoder(x).chunk(2, dim=-1)
        return loc, F.softplus(raw_scale) + 1e-4


def _mlp(sizes: list[int]) -> torch.nn.Sequential:
    layers: list[torch.nn.Module] = []
    for n_in, n_out in itertools.pairwise(sizes):
        layers += [torch.nn.Linear(n_in, n_out), torch.nn.Softplus()]
    return torch.nn.Sequential(*layers[:-1])


def build_parser() -> argparse.ArgumentParser:
    """The command line's parser."""
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.ArgumentDefaultsHelpFormatter
    )
    add = parser.add_argument
    add("--epochs", type=nonnegative_int, default=40, help="training epochs")
    add("--batch-size", type=positive_int, default=128, help="minibatch size")
    add("--z-dim", type=positive_int, default=20, help="latent dimension")
    add("--hidden", type=positive_int, nargs="+", default=[400, 400], help="hidden sizes")
    add("--lr", type=positive_float, default=1e-3, help="Adam learning rate")
    add("--seed", type=nonnegative_int, default=0, help="random seed")
    add("--threads", type=positive_int, default=None, help="torch CPU threads")
    add("--data-dir", type=Path, default=None, help="directory of the IDX files")
    add("--out", type=Path, default=Path("runs/vae_mnist"), help="output dir")
    add("--resume", action="store_true", help="continue from the checkpoint in --out")
    add("--overwrite", action="store_true", help="replace a run in --out")
    add("--train-size", type=positive_int, default=None, help="use the first N training images")
    add("--no-progress", action="store_true", help="no progress bars")
    return parser


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Parse and check the command line (``argv`` defaults to ``sys.argv[1:]``); no side effects."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.resume and args.overwrite:
        parser.error("--resume and --overwrite contradict each other: pass one")
    if args.data_dir is not None and not args.data_dir.is_dir():
        parser.error(f"--data-dir {args.data_dir} is not a directory; give the MNIST files' one")
    return args


def test_elbo(vae: VAE, x: torch.Tensor, *, batch_size: int = 1000) -> float:
    """Mean one-sample ELBO per image (nats), KL in closed form, over the rows of ``x``."""
    elbo = TraceMeanField_ELBO()
    total = 0.0
    with torch.no_grad():
        for idx in torch.arange(len(x)).split(batch_size):
            # The plate's size is the batch itself: no scaling, the sum over these images.
            total += elbo.loss(vae.model, vae.guide, x[idx], torch.arange(len(idx)), len(idx))
    return -total / len(x)


def _plot(vae: VAE, x_test: torch.Tensor, path: Path, *, generator: torch.Generator) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    with torch.no_grad():
        images = x_test[:10]
        reconstructions = torch.sigmoid(vae.decoder(vae.encode(images)[0]))
        z = torch.randn(20, vae.z_dim, generator=generator)
        samples = torch.sigmoid(vae.decoder(z))
    rows = [images, reconstructions, samples[:10], samples[10:]]
    titles = ["test images", "reconstructions", "samples", "samples"]
    fig, axes = plt.subplots(4, 10, figsize=(10, 4.6))
    for r, (row, title) in enumerate(zip(rows, titles, strict=True)):
        for c in range(10):
            ax = axes[r, c]
            ax.imshow(row[c].reshape(28, 28).numpy(), cmap="gray_r", vmin=0, vmax=1)
            ax.set_xticks([])
            ax.set_yticks([])
        axes[r, 0].set_ylabel(title, fontsize=8)
    fig.suptitle("VAE on binarised MNIST: pixel probabilities sigmoid(decoder logits)")
    fig.tight_layout()
    with atomic_write(path) as f:
        fig.savefig(f, format="png", dpi=100)
    plt.close(fig)


def main(argv: list[str] | None = None) -> dict[str, Any]:
    """Train, evaluate and write the outputs; return the metrics written to ``metrics.json``."""
    args = parse_args(argv)
    wall_start = time.perf_counter()
    try:
        require_modules("matplotlib", "tqdm", why="for the plot and progress bars of the run")
        lock = claim_run_dir(args.out, OUTPUTS, resume=args.resume, overwrite=args.overwrite)
    except ModuleNotFoundError as error:
        raise SystemExit(str(error)) from None
    except ValueError as error:
        run_dir_error(build_parser(), error)
    try:
        with exit_in_one_line(args.out / "checkpoint.pt"):
            return _run(args, wall_start)
    finally:
        lock.release()


def _run(args: argparse.Namespace, wall_start: float) -> dict[str, Any]:
    if args.threads is not None:
        torch.set_num_threads(args.threads)
    pyro.clear_param_store()
    pyro.set_rng_seed(args.seed)
    vae = VAE(args.z_dim, tuple(args.hidden))
    svi = SVI(vae.model, vae.guide, pyro.optim.Adam({"lr": args.lr}), TraceMeanField_ELBO())
    config = {**vars(args), "data_dir": str(args.data_dir), "out": str(args.out)}
    history: dict[str, list[float]] = {"train_elbo": [], "test_elbo": [], "seconds": []}
    if args.resume:
        history = _resume(args, vae, svi, config) or history
    x, x_test = _load_data(args)
    while len(history["seconds"]) < args.epochs:
        _train_epoch(args, vae, svi, x, x_test, history)
        state = {
            "format": CHECKPOINT_FORMAT,
            "vae": vae.state_dict(),
            "optimizer": svi.optim.get_state(),
            "rng": torch.get_rng_state(),
            "history": history,
            "config": config,
        }
        write_checkpoint(args.out / "checkpoint.pt", state)
    return _evaluate_and_write(args, vae, x_test, history, config, wall_start)


def _resume(
    args: argparse.Namespace, vae: VAE, svi: SVI, config: dict[str, Any]
) -> dict[str, list[float]] | None:
    """Load the checkpoint in ``--out``, if any, checked against the flags; its history."""
    path = args.out / "checkpoint.pt"
    if not path.exists():
        print(f"no checkpoint at {path}: starting afresh")
        return None
    try:
        state = read_checkpoint(path, ("format", "vae", "optimizer", "rng", "history", "config"))
        if state["format"] != CHECKPOINT_FORMAT:
            raise ValueError(f"{path} is of format {state['format']!r}, not {CHECKPOINT_FORMAT}")
        vae.load_state_dict(state["vae"])
    except (ValueError, RuntimeError, KeyError, TypeError) as error:
        raise SystemExit(f"cannot resume from {path}: {str(error).splitlines()[0]}") from None
    changed = {
        k: (state["config"].get(k), config[k])
        for k in TRAINING_KEYS
        if state["config"].get(k) != config[k]
    }
    if changed:
        raise SystemExit(
            f"Expected the flags of the run that wrote {path} but these differ "
            f"(checkpoint, now): {changed}; pass the same flags or another --out."
        )
    svi.optim.set_state(state["optimizer"])
    torch.set_rng_state(state["rng"])
    print(f"resumed from {path} after epoch {len(state['history']['seconds'])}")
    return state["history"]


def _load_data(args: argparse.Namespace) -> tuple[torch.Tensor, torch.Tensor]:
    """Training images (intensities) and the test images, binarised once from ``--seed``."""
    try:
        x, _ = load_mnist("train", data_dir=args.data_dir, progress=not args.no_progress)
        x_test, _ = load_mnist("test", data_dir=args.data_dir, progress=not args.no_progress)
    except (FileNotFoundError, ValueError, RuntimeError) as error:
        raise SystemExit(f"MNIST could not be loaded: {error}") from None
    binarise = torch.Generator().manual_seed(args.seed)
    return x[: args.train_size], torch.bernoulli(x_test, generator=binarise)


def _train_epoch(
    args: argparse.Namespace,
    vae: VAE,
    svi: SVI,
    x: torch.Tensor,
    x_test: torch.Tensor,
    history: dict[str, list[float]],
) -> None:
    """One epoch of SVI, then the test ELBO; append both and the time to ``history``."""
    epoch, n = len(history["seconds"]) + 1, len(x)
    start = time.perf_counter()
    total = 0.0
    batches = torch.randperm(n).split(args.batch_size)
    bar = progress_bar(len(batches), f"epoch {epoch}", disable=args.no_progress)
    with pyro_logits.check_logits():
        for idx in batches:
            # Dynamic binarisation: each use of an image draws its pixels anew.
            total += svi.step(torch.bernoulli(x[idx]), idx, n) * len(idx) / n
            bar.update()
    bar.close()
    seconds = time.perf_counter() - start
    history["train_elbo"].append(-total / n)
    history["test_elbo"].append(test_elbo(vae, x_test))
    history["seconds"].append(seconds)
    print(
        f"epoch {epoch:3d}/{args.epochs}  train ELBO {history['train_elbo'][-1]:8.2f}  "
        f"test ELBO {history['test_elbo'][-1]:8.2f} nats/image  {seconds:5.1f} s",
        flush=True,
    )


def _evaluate_and_write(
    args: argparse.Namespace,
    vae: VAE,
    x_test: torch.Tensor,
    history: dict[str, list[float]],
    config: dict[str, Any],
    wall_start: float,
) -> dict[str, Any]:
    """The final test ELBO, ``samples.png`` and ``metrics.json``."""
    results: dict[str, Any] = {
        "test_elbo_nats_per_image": test_elbo(vae, x_test) if args.epochs else None,
        "binarisation": "dynamic (Bernoulli of the intensities) for training; the test set "
        "binarised once the same way, seeded",
        "epochs": args.epochs,
        **history,
        "train_seconds": sum(history["seconds"]),
        "config": config,
        "versions": versions(),
    }
    _plot(vae, x_test, args.out / "samples.png", generator=torch.Generator().manual_seed(1))
    results["wall_minutes"] = (time.perf_counter() - wall_start) / 60
    with atomic_write(args.out / "metrics.json") as f:
        f.write((json.dumps(results, indent=2) + "\n").encode())
    print(
        f"test ELBO {results['test_elbo_nats_per_image']} nats/image, "
        f"wall {results['wall_minutes']:.1f} min, outputs in {args.out}"
    )
    return results


if __name__ == "__main__":
    main()
