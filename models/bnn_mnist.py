"""Train the reference Bayesian MLP (or, with ``--arch lenet``, LeNet-5) on MNIST with SVI.

Run from the repository root::

    python models/bnn_mnist.py --data-dir ../shared/data/mnist

MNIST is found in ``--data-dir``, else the cache, else downloaded (see
:func:`pyro_logits.datasets.load_mnist`). The output directory (``--out``) receives
``metrics.json``, ``reliability.png``, ``entropy_hist.png``, ``shift_test.png`` and
``checkpoint.pt``, written after every epoch; ``--resume`` continues from that checkpoint and ends
where an uninterrupted run with the same flags would. Out-of-distribution inputs are the test digits
turned by a random angle between 45 and 315 degrees, and uniform noise; they are told apart from the
test set by the predictive entropy (AUROC). With ``--baseline`` (the default) a plain PyTorch MLP of
the same size (Adam with its defaults) is trained on the same data in the same process, a burst of
100 steps after each epoch, for the ratio of the median seconds per epoch; with ``--arch lenet``, a
plain LeNet of the same shape is trained a whole epoch after each Bayesian one, on the same
(``--shift``-ed) images, from the Bayesian net's initial means, with the same Adam schedule.
The shift test scores the networks on seven corrupted copies of the test
set (:func:`pyro_logits.datasets.corrupt`).

The MLP's defaults were chosen by measurement on the full training set and the 10,000 test
images: local reparameterisation, a N(0, 0.2**2) prior, posterior standard deviations starting
at 0.005, Adam with learning rate 1e-3 decaying by 0.95 per epoch, 30 epochs, 32 posterior
samples for the predictive, and a KL weight of 0.1, that is a tempered ("cold") posterior.

The LeNet's defaults (``--arch lenet``) differ: 15 epochs of minibatches of 64, Adam 3e-3 decaying
by 0.85 per epoch, a KL weight of 0.03, random shifts of up to 2 pixels, convolutions sampled by
Flipout (``--estimator flipout``), He-scaled priors, ``sqrt(2 / fan_in)`` per layer (``--prior-scale
he``), and both networks predicting with their parameters averaged over every step of the last 3
epochs (``--average-last 3``).
The README's section "How the defaults were chosen" records the trials behind both.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import statistics
import time
from pathlib import Path
from typing import Any

import pyro
import torch
from bnn_report import evaluate, plot_entropy, plot_reliability, plot_shift, summary_lines
from torch.optim.swa_utils import AveragedModel

import pyro_logits
from pyro_logits import metrics
from pyro_logits.bnn import (
    ESTIMATORS,
    BayesianMLP,
    BayesianNetwork,
    BNNClassifier,
    PlainMLP,
    PlainNetwork,
    init_data_parallel,
    lenet,
)
from pyro_logits.datasets import load_mnist, random_shift
from pyro_logits.scripts import (
    atomic_write,
    nonnegative_int,
    positive_float,
    positive_int,
    prepare_run_dir,
    run_dir_error,
    unit_interval,
)

OUTPUTS = (
    "metrics.json",
    "reliability.png",
    "entropy_hist.png",
    "shift_test.png",
    "checkpoint.pt",
)

# Keys of the config that change what is trained; a resumed run must match them.
TRAINING_KEYS = (
    "batch_size",
    "hidden",
    "prior_scale",
    "lr",
    "lr_decay",
    "init_scale",
    "kl_weight",
    "kl_warmup",
    "estimator",
    "seed",
    "train_size",
    "arch",
    "shift",
    "average_from",
)
# Training flags added after the first runs, with the value those runs used: a checkpoint
# written before a flag existed resumes under that value.
EARLIER_RUNS_USED = {"kl_warmup": 0, "average_from": 0}


# Defaults that depend on --arch, each measured on the full training set and 10,000 test images
ARCH_DEFAULTS: dict[str, dict[str, Any]] = {
    "mlp": {
        "epochs": 30,
        "batch_size": 128,
        "lr": 1e-3,
        "lr_decay": 0.95,
        "kl_weight": 0.1,
        "shift": 0,
        "prior_scale": [0.2],
        "estimator": "local-reparam",
        "average_last": 0,
    },
    "lenet": {
        "epochs": 15,
        "batch_size": 64,
        "lr": 3e-3,
        "lr_decay": 0.85,
        "kl_weight": 0.03,
        "shift": 2,
        "prior_scale": ["he"],
        "estimator": "flipout",
        "average_last": 3,
    },
}


def _prior_scale(text: str) -> float | str:
    """A ``--prior-scale`` value: a positive number or ``he``."""
    return "he" if text == "he" else positive_float(text)


def _per_arch(name: str) -> str:
    return ", ".join(f"{arch}: {values[name]}" for arch, values in ARCH_DEFAULTS.items())


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Parse the command line (``argv`` defaults to ``sys.argv[1:]``)."""
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.ArgumentDefaultsHelpFormatter
    )
    parser.add_argument(
        "--arch",
        choices=("mlp", "lenet"),
        default="mlp",
        help="784-(hidden)-10 MLP, or the 20-50-500 LeNet-5 (--hidden is then unused)",
    )
    parser.add_argument(
        "--shift",
        type=nonnegative_int,
        default=argparse.SUPPRESS,
        help="move each training image by up to this many pixels, anew every epoch (default: "
        f"{_per_arch('shift')})",
    )
    parser.add_argument(
        "--shift-test-samples",
        type=positive_int,
        default=8,
        help="posterior samples for each corrupted test set of the shift test and each "
        "out-of-distribution set",
    )
    parser.add_argument(
        "--epochs",
        type=nonnegative_int,
        default=argparse.SUPPRESS,
        help=f"training epochs (default: {_per_arch('epochs')})",
    )
    parser.add_argument(
        "--batch-size",
        type=positive_int,
        default=argparse.SUPPRESS,
        help=f"minibatch size (default: {_per_arch('batch_size')})",
    )
    parser.add_argument(
        "--hidden", type=positive_int, nargs="+", default=[400, 400], help="hidden sizes"
    )
    parser.add_argument(
        "--prior-scale",
        type=_prior_scale,
        nargs="+",
        default=argparse.SUPPRESS,
        help="std of the N(0, s^2) prior on every weight: one value, one per layer, or 'he' for "
        f"sqrt(2 / fan_in) (default: {_per_arch('prior_scale')})",
    )
    parser.add_argument(
        "--lr",
        type=positive_float,
        default=argparse.SUPPRESS,
        help=f"Adam learning rate (default: {_per_arch('lr')})",
    )
    parser.add_argument(
        "--lr-decay",
        type=unit_interval,
        default=argparse.SUPPRESS,
        help=f"lr factor per epoch (default: {_per_arch('lr_decay')})",
    )
    parser.add_argument(
        "--init-scale",
        type=positive_float,
        default=5e-3,
        help="initial posterior std of every weight",
    )
    parser.add_argument(
        "--kl-weight",
        type=positive_float,
        default=argparse.SUPPRESS,
        help="weight of the KL term; 1 is the exact ELBO, less tempers the posterior (default: "
        f"{_per_arch('kl_weight')})",
    )
    parser.add_argument(
        "--kl-warmup",
        type=nonnegative_int,
        default=0,
        help="epochs over which the KL weight rises linearly to --kl-weight (KL annealing); "
        "0: none",
    )
    parser.add_argument(
        "--average-last",
        type=nonnegative_int,
        default=argparse.SUPPRESS,
        help="predict with the average of the posterior parameters (and of the plain LeNet's "
        "weights) over every step of the last N epochs (all, if fewer); 0: the last step's "
        f"(default: {_per_arch('average_last')})",
    )
    parser.add_argument(
        "--estimator",
        choices=ESTIMATORS,
        default=argparse.SUPPRESS,
        help=f"how the expected log-likelihood is estimated (default: {_per_arch('estimator')})",
    )
    parser.add_argument(
        "--dist-timeout",
        type=positive_float,
        default=600.0,
        help="seconds a process of a torchrun run waits for the others before giving up",
    )
    parser.add_argument(
        "--num-samples", type=positive_int, default=32, help="posterior samples for the predictive"
    )
    parser.add_argument("--seed", type=nonnegative_int, default=0, help="random seed")
    parser.add_argument("--device", choices=("cpu", "cuda"), default="cpu")
    parser.add_argument("--threads", type=positive_int, default=None, help="torch CPU threads")
    parser.add_argument("--data-dir", type=Path, default=None, help="directory of the IDX files")
    parser.add_argument("--out", type=Path, default=Path("runs/bnn_mnist"), help="output dir")
    parser.add_argument(
        "--resume", action="store_true", help="continue from the checkpoint in --out"
    )
    parser.add_argument("--overwrite", action="store_true", help="replace an earlier run in --out")
    parser.add_argument(
        "--train-size", type=positive_int, default=None, help="use the first N training images"
    )
    parser.add_argument(
        "--test-size", type=positive_int, default=None, help="evaluate on the first N test images"
    )
    parser.add_argument(
        "--eval-every",
        type=nonnegative_int,
        default=5,
        help="test accuracy every N epochs (0: never)",
    )
    parser.add_argument(
        "--baseline",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="time a plain PyTorch MLP epoch for comparison (with --arch lenet: train a plain "
        "LeNet of the same shape alongside, for the comparison and the shift test)",
    )
    parser.add_argument("--no-progress", action="store_true", help="no progress bars")
    args = parser.parse_args(argv)
    for name, value in ARCH_DEFAULTS[args.arch].items():
        if not hasattr(args, name):
            setattr(args, name, value)
    if "he" in args.prior_scale and len(args.prior_scale) > 1:
        parser.error(f"--prior-scale he stands alone (it sets every layer), got {args.prior_scale}")
    if args.resume and args.overwrite:
        parser.error("--resume and --overwrite contradict each other: pass one")
    if args.train_size is not None and args.train_size > 60_000:
        parser.error(
            f"--train-size must be at most 60000 (MNIST's training set), got {args.train_size}"
        )
    if args.device == "cuda" and not torch.cuda.is_available():
        parser.error("--device cuda: torch finds no CUDA device here")
    if int(os.environ.get("RANK", "0")) == 0:  # under torchrun, process 0 alone owns --out
        try:
            prepare_run_dir(args.out, OUTPUTS, resume=args.resume, overwrite=args.overwrite)
        except ValueError as error:
            run_dir_error(parser, error)
    return args


def _config(args: argparse.Namespace) -> dict[str, Any]:
    ignored = {"resume", "overwrite", "no_progress", "dist_timeout"}
    config = {k: v for k, v in vars(args).items() if k not in ignored}
    if len(set(args.prior_scale)) == 1:  # one scale for every layer, however it was spelt
        config["prior_scale"] = args.prior_scale[:1]
    config["data_dir"] = str(args.data_dir) if args.data_dir is not None else None
    config["out"] = str(args.out)
    config["average_from"] = average_from(args)
    return config


def average_from(args: argparse.Namespace) -> int:
    """The first epoch (from 1) whose steps are averaged; 0 for none."""
    return max(1, args.epochs - args.average_last + 1) if args.average_last else 0


def _versions() -> dict[str, str]:
    return {
        "python": platform.python_version(),
        "torch": torch.__version__,
        "pyro": pyro.__version__,
        "pyro_logits": pyro_logits.__version__,
        "platform": platform.platform(),
    }


class _Plain:
    """A plain PyTorch network beside the Bayesian one: timed, and with --arch lenet trained.

    The MLP is the cost floor, timed in a burst of 100 steps after each Bayesian epoch (so both
    see the same machine load) and scaled to an epoch; the LeNet is trained a whole epoch after
    each Bayesian epoch, on the same images, with the same Adam learning rate and decay per
    epoch, starting from the Bayesian network's initial means (``initial``; ``None`` when a
    checkpoint's state is loaded next), for the comparison
    and the shift test: the two differ in being Bayesian alone. The initial weights weigh heavily
    in a LeNet's behaviour under blur, noise and low contrast, whichever way it is trained, so a
    plain net of other initial weights would compare initialisations as well. Its batch order
    (and an MLP's weights) come from ``--seed`` through its own generator, so the Bayesian
    run's random stream is untouched.
    """

    def __init__(
        self,
        arch: str,
        sizes: tuple[int, ...],
        device: torch.device,
        *,
        seed: int,
        lr: float,
        lr_decay: float,
        average_from: int = 0,
        initial: tuple[BayesianNetwork, list[torch.Tensor]] | None = None,
    ) -> None:
        if arch == "lenet":
            with torch.random.fork_rng(devices=[]):  # its own initial weights are replaced
                net = lenet()
            if initial is not None:  # else a checkpoint's state follows
                initial[0].load_into(net, initial[1])
            self.plain: PlainNetwork = PlainNetwork(net, lr=lr, device=device)
        else:
            self.plain = PlainMLP(sizes, seed=seed, device=device)
        self.max_steps = None if arch == "lenet" else 100
        self.lr_decay = lr_decay
        self.generator = torch.Generator().manual_seed(seed)
        self.epoch, self.average_from = 0, average_from
        averages = average_from and arch == "lenet"  # the MLP's bursts only time steps
        self.averaged = AveragedModel(self.plain.net) if averages else None

    def seconds_per_epoch(self, x: torch.Tensor, y: torch.Tensor, *, batch_size: int) -> float:
        """Train on up to ``max_steps`` minibatches of ``x``; return the time scaled to an epoch."""
        n = x.shape[0]
        num_batches = math.ceil(n / batch_size)
        steps = num_batches if self.max_steps is None else min(self.max_steps, num_batches)
        order = torch.randperm(n, generator=self.generator)[: steps * batch_size].to(x.device)
        _sync(x.device)
        start = time.perf_counter()
        averaging = self.averaged is not None and self.average_from <= self.epoch + 1
        for idx in order.split(batch_size):
            self.plain.step(x[idx], y[idx])
            if averaging:
                self.averaged.update_parameters(self.plain.net)
        _sync(x.device)
        self.epoch += 1
        seconds = (time.perf_counter() - start) * num_batches / steps
        if self.max_steps is None:  # a whole epoch trained: decay as the Bayesian Adam does
            for group in self.plain.optimizer.param_groups:
                group["lr"] *= self.lr_decay
        return seconds

    def use_average(self) -> None:
        """Put the weights averaged over the steps since ``average_from`` in the network."""
        if self.averaged is not None:
            with torch.no_grad():
                for mean, param in zip(
                    self.averaged.module.parameters(), self.plain.net.parameters(), strict=True
                ):
                    param.copy_(mean)

    def log_probs(self, x: torch.Tensor) -> torch.Tensor:
        """Log class probabilities of ``x``, on the CPU."""
        return torch.cat([self.plain.log_probs(xb).cpu() for xb in x.split(1000)])

    def state_dict(self) -> dict[str, Any]:
        """The network, Adam's state and the batch order's random state."""
        return {
            "net": self.plain.net.state_dict(),
            "optimizer": self.plain.optimizer.state_dict(),
            "generator": self.generator.get_state(),
            "epoch": self.epoch,
            "averaged": self.averaged.state_dict() if self.averaged is not None else None,
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore :meth:`state_dict`'s output."""
        self.plain.net.load_state_dict(state["net"])
        self.plain.optimizer.load_state_dict(state["optimizer"])
        self.generator.set_state(state["generator"])
        self.epoch = state.get("epoch", 0)
        if self.averaged is not None and state.get("averaged") is not None:
            self.averaged.load_state_dict(state["averaged"])


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _progress(total: int, desc: str, disable: bool) -> Any:
    from tqdm.auto import tqdm

    return tqdm(total=total, desc=desc, leave=False, disable=disable, dynamic_ncols=True)


def _show_elbo(bar: Any) -> Any:
    """A ``train_epoch`` callback that advances ``bar`` and shows the epoch's mean ELBO."""
    total = 0.0

    def callback(step: int, num_steps: int, loss: float) -> None:
        nonlocal total
        total += loss
        bar.update()
        if step % 20 == 0 or step == num_steps - 1:
            bar.set_postfix(elbo=f"{-total / (step + 1):.4g}")

    return callback


def _model_input(arch: str) -> Any:
    """How flat MNIST rows are given to the network: as they are, or as ``(N, 1, 28, 28)``."""
    if arch == "lenet":
        return lambda t: t.view(-1, 1, 28, 28)
    return lambda t: t


def main(argv: list[str] | None = None) -> dict[str, Any]:
    """Train, evaluate and write the outputs; return the metrics written to ``metrics.json``."""
    args = parse_args(argv)
    wall_start = time.perf_counter()
    if args.threads is not None:
        torch.set_num_threads(args.threads)
    # Under torchrun: one model trained by all processes; process 0 writes and evaluates.
    parallel = init_data_parallel(args.device, timeout_s=args.dist_timeout)
    main_process = parallel is None or parallel.is_main
    say = print if main_process else _quiet
    device = parallel.device if parallel is not None else torch.device(args.device)
    checkpoint = args.out / "checkpoint.pt"
    config = _config(args)
    results = _run(args, parallel, main_process, say, device, checkpoint, config, wall_start)
    if parallel is not None:
        parallel.close()
    return results


def _quiet(*args: object, **kwargs: object) -> None:
    """``print`` for the processes other than 0 of a torchrun run."""


def _run(
    args: argparse.Namespace,
    parallel: Any,
    main_process: bool,
    say: Any,
    device: torch.device,
    checkpoint: Path,
    config: dict[str, Any],
    wall_start: float,
) -> dict[str, Any]:
    x, y = load_mnist("train", data_dir=args.data_dir, progress=not args.no_progress)
    x_test, y_test = load_mnist("test", data_dir=args.data_dir, progress=not args.no_progress)
    if args.train_size is not None:
        x, y = x[: args.train_size], y[: args.train_size]
    if args.test_size is not None:
        x_test, y_test = x_test[: args.test_size], y_test[: args.test_size]
    x, y, x_test, y_test = (t.to(device) for t in (x, y, x_test, y_test))

    pyro.clear_param_store()
    pyro.set_rng_seed(args.seed)
    prior_scale = args.prior_scale[0] if len(args.prior_scale) == 1 else args.prior_scale
    if args.arch == "lenet":
        model: BayesianNetwork = BayesianNetwork(
            lenet(), input_shape=(1, 28, 28), prior_scale=prior_scale
        )
    else:
        model = BayesianMLP(x.shape[1], args.hidden, 10, prior_scale=prior_scale)
    as_input = _model_input(args.arch)
    shifts = torch.Generator().manual_seed(args.seed + 2)
    clf = BNNClassifier(
        model,
        estimator=args.estimator,
        lr=args.lr,
        lr_decay=args.lr_decay,
        init_scale=args.init_scale,
        kl_weight=args.kl_weight,
        kl_warmup=args.kl_warmup,
        average_from=config["average_from"],
        seed=args.seed,
        device=device,
        data_parallel=parallel,
    )
    history: dict[str, list[float]] = {"loss": [], "seconds_per_epoch": []}
    if args.resume and checkpoint.exists():
        try:
            extra = clf.load(checkpoint)
        except ValueError as error:
            raise SystemExit(f"{error}") from None
        saved = {**EARLIER_RUNS_USED, **extra.get("config", {})}
        changed = {k: (saved.get(k), config[k]) for k in TRAINING_KEYS if saved.get(k) != config[k]}
        if changed:
            raise SystemExit(
                f"Expected the flags of the run that wrote {checkpoint} but these differ "
                f"(checkpoint, now): {changed}; pass the same flags or another --out."
            )
        history = extra["history"]
        shifts.set_state(extra["shift_rng"])
        resumed_plain = extra.get("plain")
        say(f"resumed from {checkpoint} after epoch {clf.epoch}")
    else:
        resumed_plain = None
        if args.resume:
            say(f"no checkpoint at {checkpoint}: starting afresh")

    baseline = None
    if args.baseline and parallel is None:
        sizes = model.sizes if isinstance(model, BayesianMLP) else ()
        initial = None  # the plain LeNet starts where the Bayesian one does
        if args.arch == "lenet" and resumed_plain is None:
            initial = (model, model.unflatten(clf.guide.posterior()[0].detach()))
        baseline = _Plain(
            args.arch,
            sizes,
            device,
            seed=args.seed,
            lr=args.lr,
            lr_decay=args.lr_decay,
            average_from=config["average_from"],
            initial=initial,
        )
        if resumed_plain is not None:
            baseline.load_state_dict(resumed_plain)
        elif args.arch == "mlp":
            baseline.seconds_per_epoch(x, y, batch_size=args.batch_size)  # warm-up
        history.setdefault("baseline_seconds_per_epoch", [])
    trained_plain = baseline if args.arch == "lenet" else None

    n = x.shape[0]
    check = pyro_logits.check_logits()
    while clf.epoch < args.epochs:
        epoch = clf.epoch + 1
        bar = _progress(
            math.ceil(n / args.batch_size),
            f"epoch {epoch}/{args.epochs}",
            args.no_progress or not main_process,
        )
        x_epoch = as_input(random_shift(x, args.shift, generator=shifts) if args.shift else x)
        _sync(device)
        start = time.perf_counter()
        with check:
            loss = clf.train_epoch(x_epoch, y, batch_size=args.batch_size, callback=_show_elbo(bar))
        _sync(device)
        seconds = time.perf_counter() - start
        bar.close()
        history["loss"].append(loss)
        history["seconds_per_epoch"].append(seconds)
        line = f"epoch {epoch:3d}/{args.epochs}  elbo {-loss:12.6g}  {seconds:6.2f} s"
        if baseline is not None:
            # the LeNet trains on this epoch's images; the MLP's burst only times steps
            inputs = x_epoch if trained_plain is not None else x
            plain = baseline.seconds_per_epoch(inputs, y, batch_size=args.batch_size)
            history["baseline_seconds_per_epoch"].append(plain)
            line += f" (plain {'LeNet' if trained_plain else 'MLP'} {plain:.2f} s)"
        quick_eval = args.eval_every and (epoch % args.eval_every == 0 or epoch == args.epochs)
        if quick_eval and main_process:
            with torch.random.fork_rng(devices=[device] if device.type == "cuda" else []):
                quick = clf.predict_log_probs(as_input(x_test), num_samples=4)
            line += f"  test acc {100 * metrics.accuracy(quick, y_test):.2f}% (4 samples)"
        say(line, flush=True)
        if main_process:
            extra = {"config": config, "history": history, "shift_rng": shifts.get_state()}
            if trained_plain is not None:
                extra["plain"] = trained_plain.state_dict()
            clf.save(checkpoint, extra=extra)
        if parallel is not None:
            parallel.barrier()  # the checkpoint is complete before any process goes on

    if not main_process:
        return {}

    if clf.average_from and clf.epoch:
        clf.use_average()
        if trained_plain is not None:
            trained_plain.use_average()
    plain_predict = trained_plain.log_probs if trained_plain is not None else None
    eval_start = time.perf_counter()
    scores, log_probs, entropies = evaluate(
        clf,
        plain_predict,
        x_test,
        y_test,
        as_input,
        num_samples=args.num_samples,
        shift_test_samples=args.shift_test_samples,
        seed=args.seed,
    )
    eval_seconds = time.perf_counter() - eval_start
    epoch_seconds = history["seconds_per_epoch"]
    plain_seconds = history.get("baseline_seconds_per_epoch") if args.baseline else None
    ratio = None
    if epoch_seconds and plain_seconds:
        ratio = statistics.median(epoch_seconds) / statistics.median(plain_seconds)
    results: dict[str, Any] = {
        **scores,
        "epochs": clf.epoch,
        "elbo_per_epoch": [-v for v in history["loss"]],
        "seconds_per_epoch": epoch_seconds,
        "baseline_seconds_per_epoch": plain_seconds,
        "seconds_per_epoch_ratio_to_baseline": ratio,
        "eval_seconds": eval_seconds,
        "config": config,
        "baseline_network": "plain LeNet (trained alongside from the Bayesian net's initial "
        "means, same Adam schedule)"
        if args.arch == "lenet"
        else "plain MLP (timed bursts)",
        "world_size": parallel.world_size if parallel is not None else 1,
        "versions": _versions(),
    }
    plot_reliability(log_probs, y_test.cpu(), args.out / "reliability.png")
    plot_entropy(entropies, log_probs.shape[-1], args.out / "entropy_hist.png")
    plot_shift(results["shift_test"], args.out / "shift_test.png")
    results["wall_minutes"] = (time.perf_counter() - wall_start) / 60
    with atomic_write(args.out / "metrics.json") as f:
        f.write((json.dumps(results, indent=2) + "\n").encode())
    for line in summary_lines(results, args.arch, args.out):
        say(line)
    return results


if __name__ == "__main__":
    main()
