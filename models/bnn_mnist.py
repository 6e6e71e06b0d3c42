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
by 0.85 per epoch, a KL weight of 0.01, random shifts of up to 2 pixels, convolutions sampled by
Flipout (``--estimator flipout``), He-scaled priors, ``sqrt(2 / fan_in)`` per layer (``--prior-scale
he``), and both networks predicting with their parameters averaged over every step of the last 3
epochs (``--average-last 3``); its KL weight was chosen on held-out training images
(``--validation 5000``). The documentation's LeNet trials page records the trials behind both.

The output directory is locked for the run (a second run into it is refused at once) and
checked, as are the modules and data the run needs, before any training starts.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pyro
import torch
from torch import nn

import pyro_logits
from pyro_logits import metrics, plots
from pyro_logits.bnn import (
    ESTIMATORS,
    BayesianMLP,
    BayesianNetwork,
    BNNClassifier,
    DataParallel,
    MeanFieldGuide,
    init_data_parallel,
)
from pyro_logits.bnn.baseline import PlainNetwork, lenet, plain_mlp
from pyro_logits.bnn.evaluation import complete_config, evaluate, samples_curve, summary_lines
from pyro_logits.datasets import load_mnist, random_elastic, random_shift
from pyro_logits.runs import (
    RunLock,
    atomic_write,
    claim_run_dir,
    exit_in_one_line,
    nonnegative_float,
    nonnegative_int,
    positive_float,
    positive_int,
    progress_bar,
    read_checkpoint,
    require_modules,
    run_dir_error,
    synchronize,
    unit_interval,
    versions,
)
from pyro_logits.runs.state import StateError, expect_keys, expect_tensor

OUTPUTS = (
    "metrics.json",
    "reliability.png",
    "entropy_hist.png",
    "shift_test.png",
    "checkpoint.pt",
    "samples_curve.png",
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
    "init_from",
    "init_scale_fraction",
    "elastic",
    "validation",
)


# Defaults that depend on --arch; the documentation's LeNet trials page says how each was chosen
ARCH_DEFAULTS: dict[str, dict[str, Any]] = {
    "mlp": {
        "epochs": 30,
        "batch_size": 128,
        "lr": 1e-3,
        "lr_decay": 0.95,
        "kl_weight": 0.1,
        "shift": 0,
        "elastic": 0.0,
        "prior_scale": [0.2],
        "estimator": "local-reparam",
        "average_last": 0,
    },
    "lenet": {
        "epochs": 15,
        "batch_size": 64,
        "lr": 3e-3,
        "lr_decay": 0.85,
        "kl_weight": 0.01,
        "shift": 2,
        "elastic": 0.0,
        "prior_scale": ["he"],
        "estimator": "flipout",
        "average_last": 3,
    },
}


def _prior_scale(text: str) -> float | str:
    """A ``--prior-scale`` value: a positive number or ``he``."""
    return "he" if text == "he" else positive_float(text)


def _per_arch(name: str) -> str:
    return f"(default: {', '.join(f'{a}: {v[name]}' for a, v in ARCH_DEFAULTS.items())})"


SUPPRESS = argparse.SUPPRESS
# The command line: flags and their argparse options; "default: per arch" flags take their
# value from ARCH_DEFAULTS when not given.
FLAGS: list[tuple[tuple[str, ...], dict[str, Any]]] = [
    (("--arch",), {"choices": ("mlp", "lenet"), "default": "mlp",
        "help": "784-(hidden)-10 MLP, or the 20-50-500 LeNet-5 (--hidden is then unused)"}),
    (("--shift",), {"type": nonnegative_int, "default": SUPPRESS,
        "help": "move each training image by up to this many pixels, anew every epoch "
        + _per_arch("shift")}),
    (("--elastic",), {"type": nonnegative_float, "default": SUPPRESS,
        "help": "distort each training image by a random smooth field of this strength "
        "(Simard et al.'s alpha; sigma 4 pixels), anew every epoch, after the shift; 0: none "
        + _per_arch("elastic")}),
    (("--shift-test-samples",), {"type": positive_int, "default": 8,
        "help": "posterior samples for each corrupted test set of the shift test and each "
        "out-of-distribution set"}),
    (("--epochs",), {"type": nonnegative_int, "default": SUPPRESS,
        "help": "training epochs " + _per_arch("epochs")}),
    (("--batch-size",), {"type": positive_int, "default": SUPPRESS,
        "help": "minibatch size " + _per_arch("batch_size")}),
    (("--hidden",), {"type": positive_int, "nargs": "+", "default": [400, 400],
        "help": "hidden sizes"}),
    (("--prior-scale",), {"type": _prior_scale, "nargs": "+", "default": SUPPRESS,
        "help": "std of the N(0, s^2) prior on every weight: one value, one per layer, or 'he' "
        "for sqrt(2 / fan_in) " + _per_arch("prior_scale")}),
    (("--lr",), {"type": positive_float, "default": SUPPRESS,
        "help": "Adam learning rate " + _per_arch("lr")}),
    (("--lr-decay",), {"type": unit_interval, "default": SUPPRESS,
        "help": "lr factor per epoch " + _per_arch("lr_decay")}),
    (("--init-scale",), {"type": positive_float, "default": 5e-3,
        "help": "initial posterior std of every weight"}),
    (("--init-from",), {"type": Path, "default": None,
        "help": "start the posterior from a trained plain network of the same shape: the "
        "checkpoint of an --arch lenet run (its plain LeNet) or a file of the network's "
        "state_dict (torch.save)"}),
    (("--init-scale-fraction",), {"type": positive_float, "default": 0.1,
        "help": "with --init-from: initial posterior std relative to each weight's magnitude"}),
    (("--kl-weight",), {"type": positive_float, "default": SUPPRESS,
        "help": "weight of the KL term; 1 is the exact ELBO, less tempers the posterior "
        + _per_arch("kl_weight")}),
    (("--kl-warmup",), {"type": nonnegative_int, "default": 0,
        "help": "epochs over which the KL weight rises linearly to --kl-weight (KL annealing); "
        "0: none"}),
    (("--average-last",), {"type": nonnegative_int, "default": SUPPRESS,
        "help": "predict with the average of the posterior parameters (and of the plain "
        "LeNet's weights) over every step of the last N epochs (all, if fewer); 0: the last "
        "step's " + _per_arch("average_last")}),
    (("--estimator",), {"choices": ESTIMATORS, "default": SUPPRESS,
        "help": "how the expected log-likelihood is estimated " + _per_arch("estimator")}),
    (("--dist-timeout",), {"type": positive_float, "default": 600.0,
        "help": "seconds a process of a torchrun run waits for the others during training"}),
    (("--num-samples",), {"type": positive_int, "default": 32,
        "help": "posterior samples for the predictive"}),
    (("--samples-curve",), {"type": nonnegative_int, "default": 0,
        "help": "also score the predictive with 1, 2, 4, ... up to N posterior samples on the "
        "test set, and time each (samples_curve.png, metrics.json); 0: not"}),
    (("--seed",), {"type": nonnegative_int, "default": 0, "help": "random seed"}),
    (("--device",), {"choices": ("cpu", "cuda"), "default": "cpu"}),
    (("--threads",), {"type": positive_int, "default": None, "help": "torch CPU threads"}),
    (("--data-dir",), {"type": Path, "default": None, "help": "directory of the IDX files"}),
    (("--out",), {"type": Path, "default": Path("runs/bnn_mnist"), "help": "output dir"}),
    (("--resume",), {"action": "store_true", "help": "continue from the checkpoint in --out"}),
    (("--overwrite",), {"action": "store_true", "help": "replace an earlier run in --out"}),
    (("--train-size",), {"type": positive_int, "default": None,
        "help": "use the first N training images"}),
    (("--validation",), {"type": nonnegative_int, "default": 0,
        "help": "hold out the last N training images and evaluate on them instead of the "
        "test set (the shift and out-of-distribution tests too), to choose flags without "
        "looking at the test set; 0: evaluate on the test set"}),
    (("--test-size",), {"type": positive_int, "default": None,
        "help": "evaluate on the first N test (or --validation) images"}),
    (("--eval-every",), {"type": nonnegative_int, "default": 5,
        "help": "test (or --validation) accuracy every N epochs (0: never)"}),
    (("--baseline",), {"action": argparse.BooleanOptionalAction, "default": True,
        "help": "time a plain PyTorch MLP epoch for comparison (with --arch lenet: train a "
        "plain LeNet of the same shape alongside, for the comparison and the shift test)"}),
    (("--no-progress",), {"action": "store_true", "help": "no progress bars"}),
]  # fmt: skip


def build_parser() -> argparse.ArgumentParser:
    """The command line's parser (see ``FLAGS``)."""
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.ArgumentDefaultsHelpFormatter
    )
    for names, options in FLAGS:
        parser.add_argument(*names, **options)
    return parser


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Parse and check the command line (``argv`` defaults to ``sys.argv[1:]``); no side effects."""
    parser = build_parser()
    args = parser.parse_args(argv)
    for name, value in ARCH_DEFAULTS[args.arch].items():
        if not hasattr(args, name):
            setattr(args, name, value)
    if "he" in args.prior_scale and len(args.prior_scale) > 1:
        parser.error(f"--prior-scale he stands alone (it sets every layer), got {args.prior_scale}")
    if args.resume and args.overwrite:
        parser.error("--resume and --overwrite contradict each other: pass one")
    if args.train_size is not None and args.train_size > 60_000 - args.validation:
        parser.error(
            f"--train-size must be at most {60_000 - args.validation} (MNIST's 60000 training "
            f"images less --validation's {args.validation}), got {args.train_size}"
        )
    if args.validation >= 60_000:
        parser.error(f"--validation must leave training images: below 60000, got {args.validation}")
    if args.init_from is not None and not args.init_from.is_file():
        parser.error(f"--init-from {args.init_from} is not a file")
    if args.data_dir is not None and not args.data_dir.is_dir():
        parser.error(f"--data-dir {args.data_dir} is not a directory; give the MNIST files' one")
    return args


def _config(args: argparse.Namespace) -> dict[str, Any]:
    ignored = {"resume", "overwrite", "no_progress", "dist_timeout"}
    config = {k: v for k, v in vars(args).items() if k not in ignored}
    if len(set(args.prior_scale)) == 1:  # one scale for every layer, however it was spelt
        config["prior_scale"] = args.prior_scale[:1]
    config["data_dir"] = str(args.data_dir) if args.data_dir is not None else None
    config["init_from"] = str(args.init_from) if args.init_from is not None else None
    config["out"] = str(args.out)
    config["average_from"] = average_from(args)
    return config


def average_from(args: argparse.Namespace) -> int:
    """The first epoch (from 1) whose steps are averaged; 0 for none."""
    return max(1, args.epochs - args.average_last + 1) if args.average_last else 0


@dataclass
class Run:
    """What the steps of a run share: its flags, where it runs, and what it has trained."""

    args: argparse.Namespace
    config: dict[str, Any]
    device: torch.device
    parallel: DataParallel | None
    history: dict[str, Any] = field(default_factory=lambda: {"loss": [], "seconds_per_epoch": []})
    shifts: torch.Generator = field(default_factory=torch.Generator)

    @property
    def main_process(self) -> bool:
        """Process 0 of a torchrun run, or the only one: it writes and evaluates."""
        return self.parallel is None or self.parallel.is_main

    @property
    def checkpoint(self) -> Path:
        """Where the checkpoint of every finished epoch goes."""
        return self.args.out / "checkpoint.pt"

    def say(self, *lines: object, flush: bool = False) -> None:
        """``print`` on the main process alone."""
        if self.main_process:
            print(*lines, flush=flush)


def main(argv: list[str] | None = None) -> dict[str, Any]:
    """Train, evaluate and write the outputs; return the metrics written to ``metrics.json``."""
    args = parse_args(argv)
    wall_start = time.perf_counter()
    lock = _start(args)
    try:
        with exit_in_one_line(args.out / "checkpoint.pt"):
            parallel = init_data_parallel(args.device, timeout_s=args.dist_timeout)
            run = Run(args, _config(args), _device(args, parallel), parallel)
            results = _train_and_report(run, wall_start)
            if parallel is not None:
                parallel.close()
            return results
    finally:
        if lock is not None:
            lock.release()


def _start(args: argparse.Namespace) -> RunLock | None:
    """Check what the run needs before it starts; on process 0, claim ``--out``."""
    try:
        require_modules("matplotlib", "tqdm", why="for the plots and progress bars of the run")
    except ModuleNotFoundError as error:
        raise SystemExit(str(error)) from None
    if args.device == "cuda" and not torch.cuda.is_available():
        build_parser().error("--device cuda: torch finds no CUDA device here")
    if int(os.environ.get("RANK", "0")) != 0:  # under torchrun, process 0 alone owns --out
        return None
    try:
        return claim_run_dir(args.out, OUTPUTS, resume=args.resume, overwrite=args.overwrite)
    except ValueError as error:
        run_dir_error(build_parser(), error)


def _device(args: argparse.Namespace, parallel: DataParallel | None) -> torch.device:
    if args.threads is not None:
        torch.set_num_threads(args.threads)
    return parallel.device if parallel is not None else torch.device(args.device)


def _train_and_report(run: Run, wall_start: float) -> dict[str, Any]:
    args = run.args
    clf = _classifier(run)
    plain_state = _resume(run, clf) if args.resume else None
    x, y, x_test, y_test = _load_data(args, run.device)
    plain = _plain_network(run, clf, x, y, plain_state)
    _train(run, clf, plain, x, y, x_test, y_test)
    if not run.main_process:
        return {}
    return _evaluate_and_write(run, clf, plain, x_test, y_test, wall_start)


def _classifier(run: Run) -> BNNClassifier:
    """The Bayesian network and its trainer, seeded."""
    args = run.args
    pyro.clear_param_store()
    pyro.set_rng_seed(args.seed)
    run.shifts.manual_seed(args.seed + 2)
    prior_scale = args.prior_scale[0] if len(args.prior_scale) == 1 else args.prior_scale
    if args.arch == "lenet":
        model: BayesianNetwork = BayesianNetwork(
            lenet(), input_shape=(1, 28, 28), prior_scale=prior_scale
        )
    else:
        model = BayesianMLP(784, args.hidden, 10, prior_scale=prior_scale)
    guide = None
    if args.init_from is not None:
        guide = MeanFieldGuide.from_trained(
            model,
            _trained_network(args, model),
            scale_fraction=args.init_scale_fraction,
            device=run.device,
        )
    return BNNClassifier(
        model,
        guide=guide,
        estimator=args.estimator,
        lr=args.lr,
        lr_decay=args.lr_decay,
        init_scale=args.init_scale,
        kl_weight=args.kl_weight,
        kl_warmup=args.kl_warmup,
        average_from=run.config["average_from"],
        seed=args.seed,
        device=run.device,
        data_parallel=run.parallel,
    )


def _trained_network(args: argparse.Namespace, model: BayesianNetwork) -> nn.Module:
    """The plain network of ``--init-from``: a run's plain LeNet, or a saved state_dict."""
    path = args.init_from
    try:
        state = read_checkpoint(path, ("extra",))["extra"].get("plain", {}).get("net")
        if state is None:
            raise SystemExit(f"--init-from {path} is a checkpoint without a plain network")
    except ValueError:  # not a pyro-logits checkpoint: a torch.save'd state_dict
        try:
            state = torch.load(path, map_location="cpu", weights_only=True)
        except Exception as error:  # torch raises many kinds on a file that is not its own
            raise SystemExit(f"--init-from {path} cannot be read: {error}") from None
    net = lenet() if args.arch == "lenet" else plain_mlp((784, *args.hidden, 10))
    try:
        net.load_state_dict(state)
    except (RuntimeError, TypeError, AttributeError) as error:
        raise SystemExit(
            f"--init-from {path} is not a network of this shape ({args.arch}): "
            f"{str(error).splitlines()[0]}"
        ) from None
    return net


def _resume(run: Run, clf: BNNClassifier) -> dict[str, Any] | None:
    """Load the checkpoint (before any data: a refused one costs nothing); the plain net's state."""
    if not run.checkpoint.exists():
        run.say(f"no checkpoint at {run.checkpoint}: starting afresh")
        return None
    try:
        extra = clf.load(run.checkpoint)
        _check_extra(run, extra, clf.epoch)
    except ValueError as error:
        raise SystemExit(f"{error}") from None
    saved = complete_config(extra["config"])
    config = run.config
    changed = {k: (saved.get(k), config[k]) for k in TRAINING_KEYS if saved.get(k) != config[k]}
    if changed:
        raise SystemExit(
            f"Expected the flags of the run that wrote {run.checkpoint} but these differ "
            f"(checkpoint, now): {changed}; pass the same flags or another --out."
        )
    run.history = extra["history"]
    run.shifts.set_state(extra["shift_rng"])
    run.say(f"resumed from {run.checkpoint} after epoch {clf.epoch}")
    return extra.get("plain")


def _check_extra(run: Run, extra: object, epochs: int) -> None:
    """Check what the script keeps beside the classifier's state in its checkpoint."""
    where = f"in {run.checkpoint}"
    extra = expect_keys(f"the run's record {where}", extra, ("config", "history", "shift_rng"))
    expect_keys(f"config {where}", extra["config"], ())
    history = expect_keys(f"history {where}", extra["history"], ("loss", "seconds_per_epoch"))
    for key in ("loss", "seconds_per_epoch"):
        if not isinstance(history[key], list) or len(history[key]) != epochs:
            raise StateError(f"history[{key!r}] {where}", f"{epochs} values", repr(history[key]))
    expect_tensor(f"shift_rng {where}", extra["shift_rng"], run.shifts.get_state())
    lenet_alongside = run.args.arch == "lenet" and run.args.baseline and run.parallel is None
    if lenet_alongside and extra.get("plain") is None:
        raise StateError(
            f"the checkpoint {run.checkpoint}",
            "the state of the plain LeNet trained alongside",
            "none; resume with --no-baseline, or start afresh",
        )


def _load_data(args: argparse.Namespace, device: torch.device) -> tuple[torch.Tensor, ...]:
    """MNIST's training and test images (flat, in [0, 1]) and labels, cut to the sizes asked.

    With ``--validation N`` the last N training images take the test images' place.
    """
    try:
        x, y = load_mnist("train", data_dir=args.data_dir, progress=not args.no_progress)
        if args.validation:
            split = x.shape[0] - args.validation
            x, y, x_test, y_test = x[:split], y[:split], x[split:], y[split:]
        else:
            x_test, y_test = load_mnist(
                "test", data_dir=args.data_dir, progress=not args.no_progress
            )
    except (FileNotFoundError, ValueError, RuntimeError) as error:
        raise SystemExit(f"MNIST could not be loaded: {error}") from None
    x, y = x[: args.train_size], y[: args.train_size]
    x_test, y_test = x_test[: args.test_size], y_test[: args.test_size]
    return tuple(t.to(device) for t in (x, y, x_test, y_test))


def _plain_network(
    run: Run,
    clf: BNNClassifier,
    x: torch.Tensor,
    y: torch.Tensor,
    state: dict[str, Any] | None,
) -> PlainNetwork | None:
    """A plain network beside the Bayesian one: the MLP timed, the LeNet trained alongside.

    The MLP is the cost floor, timed in a burst of 100 steps after each Bayesian epoch (so both
    see the same machine load) and scaled to an epoch. The LeNet is trained a whole epoch after
    each Bayesian epoch, on the same images, with the same Adam schedule and averaging, from the
    Bayesian network's initial means: the initial weights weigh heavily in a LeNet's behaviour
    under blur, noise and low contrast, so a plain net of other initial weights would compare
    initialisations as well. Its batch order (and the MLP's weights) come from ``--seed``
    through its own generator, so the Bayesian run's random stream is untouched.
    """
    args = run.args
    if not args.baseline or run.parallel is not None:
        return None
    run.history.setdefault("baseline_seconds_per_epoch", [])
    if args.arch == "mlp":
        net = plain_mlp(clf.model.sizes, seed=args.seed)
        plain = PlainNetwork(net, seed=args.seed, device=run.device)
        if state is None:
            plain.train_epoch(x, y, batch_size=args.batch_size, max_steps=100)  # warm-up
        else:
            plain.load_state_dict(state)
        return plain
    with torch.random.fork_rng(devices=[]):  # its own initial weights are replaced
        net = lenet()
    if state is None:
        model = clf.model
        model.load_into(net, model.unflatten(clf.guide.posterior()[0].detach()))
    plain = PlainNetwork(
        net,
        lr=args.lr,
        lr_decay=args.lr_decay,
        average_from=run.config["average_from"],
        seed=args.seed,
        device=run.device,
    )
    if state is not None:
        plain.load_state_dict(state)
    return plain


def _train(
    run: Run,
    clf: BNNClassifier,
    plain: PlainNetwork | None,
    x: torch.Tensor,
    y: torch.Tensor,
    x_test: torch.Tensor,
    y_test: torch.Tensor,
) -> None:
    """Train until ``--epochs``, the plain net alongside; a checkpoint after every epoch."""
    args = run.args
    check = pyro_logits.check_logits()
    as_input = _model_input(args.arch)
    while clf.epoch < args.epochs:
        epoch = clf.epoch + 1
        x_epoch = as_input(_augment(args, x, run.shifts))
        with check:
            line = _bayesian_epoch(run, clf, x_epoch, y)
        if plain is not None:
            line += _plain_epoch(run, plain, x_epoch if args.arch == "lenet" else x, y)
        quick_eval = args.eval_every and (epoch % args.eval_every == 0 or epoch == args.epochs)
        if quick_eval and run.main_process:
            with torch.random.fork_rng(devices=[run.device] if run.device.type == "cuda" else []):
                quick = clf.predict_log_probs(as_input(x_test), num_samples=4)
            held_out = "validation" if args.validation else "test"
            line += f"  {held_out} acc {100 * metrics.accuracy(quick, y_test):.2f}% (4 samples)"
        if run.main_process:
            extra = {"config": run.config, "history": run.history}
            extra["shift_rng"] = run.shifts.get_state()
            if plain is not None and args.arch == "lenet":
                extra["plain"] = plain.state_dict()
            clf.save(run.checkpoint, extra=extra)
        run.say(line, flush=True)
        if run.parallel is not None:
            run.parallel.barrier()  # the checkpoint is complete before any process goes on


def _augment(args: argparse.Namespace, x: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """An epoch's training images: shifted, then elastically distorted, as the flags ask."""
    if args.shift:
        x = random_shift(x, args.shift, generator=generator)
    if args.elastic:
        x = random_elastic(x, args.elastic, generator=generator)
    return x


def _bayesian_epoch(run: Run, clf: BNNClassifier, x: torch.Tensor, y: torch.Tensor) -> str:
    """One epoch of SVI with a progress bar; the line that reports it."""
    args = run.args
    epoch = clf.epoch + 1
    bar = progress_bar(
        math.ceil(x.shape[0] / args.batch_size),
        f"epoch {epoch}/{args.epochs}",
        disable=args.no_progress or not run.main_process,
    )
    synchronize(run.device)
    start = time.perf_counter()
    loss = clf.train_epoch(x, y, batch_size=args.batch_size, callback=_show_elbo(bar))
    synchronize(run.device)
    seconds = time.perf_counter() - start
    bar.close()
    run.history["loss"].append(loss)
    run.history["seconds_per_epoch"].append(seconds)
    return f"epoch {epoch:3d}/{args.epochs}  elbo {-loss:12.6g}  {seconds:6.2f} s"


def _plain_epoch(run: Run, plain: PlainNetwork, x: torch.Tensor, y: torch.Tensor) -> str:
    """The plain LeNet's epoch on the same images, or the plain MLP's timed burst."""
    lenet_run = run.args.arch == "lenet"
    synchronize(run.device)
    start = time.perf_counter()
    fraction = plain.train_epoch(
        x, y, batch_size=run.args.batch_size, max_steps=None if lenet_run else 100
    )
    synchronize(run.device)
    seconds = (time.perf_counter() - start) / fraction
    run.history["baseline_seconds_per_epoch"].append(seconds)
    return f" (plain {'LeNet' if lenet_run else 'MLP'} {seconds:.2f} s)"


def _show_elbo(bar: Any) -> Callable[[int, int, float], None]:
    """A ``train_epoch`` callback that advances ``bar`` and shows the epoch's mean ELBO."""
    total = 0.0

    def callback(step: int, num_steps: int, loss: float) -> None:
        nonlocal total
        total += loss
        bar.update()
        if step % 20 == 0 or step == num_steps - 1:
            bar.set_postfix(elbo=f"{-total / (step + 1):.4g}")

    return callback


def _model_input(arch: str) -> Callable[[torch.Tensor], torch.Tensor]:
    """How flat MNIST rows are given to the network: as they are, or as ``(N, 1, 28, 28)``."""
    if arch == "lenet":
        return lambda t: t.view(-1, 1, 28, 28)
    return lambda t: t


def _evaluate_and_write(
    run: Run,
    clf: BNNClassifier,
    plain: PlainNetwork | None,
    x_test: torch.Tensor,
    y_test: torch.Tensor,
    wall_start: float,
) -> dict[str, Any]:
    """Score both networks, write ``metrics.json`` and the plots, print the summary."""
    args = run.args
    trained_plain = plain if args.arch == "lenet" else None
    if clf.average_from and clf.epoch:
        clf.use_average()
        if trained_plain is not None:
            trained_plain.use_average()
    eval_start = time.perf_counter()
    scores, log_probs, entropies = evaluate(
        clf,
        (lambda images: trained_plain.log_probs(images).cpu()) if trained_plain else None,
        x_test,
        y_test,
        _model_input(args.arch),
        num_samples=args.num_samples,
        shift_test_samples=args.shift_test_samples,
        seed=args.seed,
    )
    results = {
        "evaluated_on": f"validation: the last {args.validation} training images"
        if args.validation
        else "test",
        **scores,
        **_training_record(run, clf),
        "eval_seconds": time.perf_counter() - eval_start,
    }
    if args.samples_curve:
        curve = samples_curve(
            clf, _model_input(args.arch)(x_test), y_test, max_samples=args.samples_curve
        )
        results["samples_curve"] = curve
        plots.plot_samples_curve(curve, args.out / "samples_curve.png")
    plots.plot_reliability(log_probs, y_test.cpu(), args.out / "reliability.png")
    plots.plot_entropy(entropies, log_probs.shape[-1], args.out / "entropy_hist.png")
    plots.plot_shift(results["shift_test"], args.out / "shift_test.png")
    results["wall_minutes"] = (time.perf_counter() - wall_start) / 60
    with atomic_write(args.out / "metrics.json") as f:
        f.write((json.dumps(results, indent=2) + "\n").encode())
    for line in summary_lines(results, args.arch, args.out):
        run.say(line)
    return results


def _training_record(run: Run, clf: BNNClassifier) -> dict[str, Any]:
    """What ``metrics.json`` records of the training: losses, times, config, versions."""
    args, history = run.args, run.history
    epoch_seconds = history["seconds_per_epoch"]
    plain_seconds = history.get("baseline_seconds_per_epoch") if args.baseline else None
    ratio = None
    if epoch_seconds and plain_seconds:
        ratio = statistics.median(epoch_seconds) / statistics.median(plain_seconds)
    return {
        "epochs": clf.epoch,
        "elbo_per_epoch": [-v for v in history["loss"]],
        "seconds_per_epoch": epoch_seconds,
        "baseline_seconds_per_epoch": plain_seconds,
        "seconds_per_epoch_ratio_to_baseline": ratio,
        "config": run.config,
        "baseline_network": "plain LeNet (trained alongside from the Bayesian net's initial "
        "means, same Adam schedule)"
        if args.arch == "lenet"
        else "plain MLP (timed bursts)",
        "world_size": run.parallel.world_size if run.parallel is not None else 1,
        "versions": versions(),
    }


if __name__ == "__main__":
    main()
