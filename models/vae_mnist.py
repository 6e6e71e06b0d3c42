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

``--out`` receives ``metrics.json`` and ``samples.png`` (test images, their reconstructions and
images decoded from prior samples). An ``--out`` that holds an earlier run is refused unless
``--overwrite`` is given.
"""

from __future__ import annotations

import argparse
import itertools
import json
import platform
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
from pyro_logits.scripts import (
    atomic_write,
    nonnegative_int,
    positive_float,
    positive_int,
    prepare_run_dir,
    run_dir_error,
)

OUTPUTS = ("metrics.json", "samples.png")


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


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Parse the command line (``argv`` defaults to ``sys.argv[1:]``)."""
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.ArgumentDefaultsHelpFormatter
    )
    parser.add_argument("--epochs", type=nonnegative_int, default=40, help="training epochs")
    parser.add_argument("--batch-size", type=positive_int, default=128, help="minibatch size")
    parser.add_argument("--z-dim", type=positive_int, default=20, help="latent dimension")
    parser.add_argument(
        "--hidden", type=positive_int, nargs="+", default=[400, 400], help="hidden sizes"
    )
    parser.add_argument("--lr", type=positive_float, default=1e-3, help="Adam learning rate")
    parser.add_argument("--seed", type=nonnegative_int, default=0, help="random seed")
    parser.add_argument("--threads", type=positive_int, default=None, help="torch CPU threads")
    parser.add_argument("--data-dir", type=Path, default=None, help="directory of the IDX files")
    parser.add_argument("--out", type=Path, default=Path("runs/vae_mnist"), help="output dir")
    parser.add_argument("--overwrite", action="store_true", help="replace a run in --out")
    parser.add_argument(
        "--train-size", type=positive_int, default=None, help="use the first N training images"
    )
    parser.add_argument("--no-progress", action="store_true", help="no progress bars")
    args = parser.parse_args(argv)
    try:
        prepare_run_dir(args.out, OUTPUTS, overwrite=args.overwrite, can_resume=False)
    except ValueError as error:
        run_dir_error(parser, error)
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
    from tqdm.auto import tqdm

    args = parse_args(argv)
    wall_start = time.perf_counter()
    if args.threads is not None:
        torch.set_num_threads(args.threads)
    args.out.mkdir(parents=True, exist_ok=True)
    x, _ = load_mnist("train", data_dir=args.data_dir, progress=not args.no_progress)
    x_test, _ = load_mnist("test", data_dir=args.data_dir, progress=not args.no_progress)
    if args.train_size is not None:
        x = x[: args.train_size]
    binarise = torch.Generator().manual_seed(args.seed)
    x_test = torch.bernoulli(x_test, generator=binarise)

    pyro.clear_param_store()
    pyro.set_rng_seed(args.seed)
    vae = VAE(args.z_dim, tuple(args.hidden))
    svi = SVI(vae.model, vae.guide, pyro.optim.Adam({"lr": args.lr}), TraceMeanField_ELBO())
    n = len(x)
    check = pyro_logits.check_logits()
    history: dict[str, list[float]] = {"train_elbo": [], "test_elbo": [], "seconds": []}
    for epoch in range(1, args.epochs + 1):
        start = time.perf_counter()
        total = 0.0
        batches = torch.randperm(n).split(args.batch_size)
        with (
            check,
            tqdm(batches, desc=f"epoch {epoch}", leave=False, disable=args.no_progress) as bar,
        ):
            for idx in bar:
                # Dynamic binarisation: each use of an image draws its pixels anew.
                total += svi.step(torch.bernoulli(x[idx]), idx, n) * len(idx) / n
        seconds = time.perf_counter() - start
        history["train_elbo"].append(-total / n)
        history["test_elbo"].append(test_elbo(vae, x_test))
        history["seconds"].append(seconds)
        print(
            f"epoch {epoch:3d}/{args.epochs}  train ELBO {history['train_elbo'][-1]:8.2f}  "
            f"test ELBO {history['test_elbo'][-1]:8.2f} nats/image  {seconds:5.1f} s",
            flush=True,
        )
    results: dict[str, Any] = {
        "test_elbo_nats_per_image": test_elbo(vae, x_test) if args.epochs else None,
        "binarisation": "dynamic (Bernoulli of the intensities) for training; the test set "
        "binarised once the same way, seeded",
        "epochs": args.epochs,
        **history,
        "train_seconds": sum(history["seconds"]),
        "config": {**vars(args), "data_dir": str(args.data_dir), "out": str(args.out)},
        "versions": {
            "python": platform.python_version(),
            "torch": torch.__version__,
            "pyro": pyro.__version__,
            "pyro_logits": pyro_logits.__version__,
        },
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
