"""The evaluation of a trained Bayesian classifier on MNIST, as ``models/bnn_mnist.py`` reports it.

Scores on the test set, out-of-distribution detection, the shift test (the clean and seven
corrupted copies of the test set, :func:`pyro_logits.datasets.corrupt`) and the printed
summary; :mod:`pyro_logits.plots` draws them.
"""

from __future__ import annotations

import math
import statistics
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

from pyro_logits import datasets, metrics
from pyro_logits.bnn.classifier import BNNClassifier
from pyro_logits.datasets import CORRUPTIONS, corrupt

__all__ = [
    "EARLIER_RUNS_USED",
    "Predict",
    "complete_config",
    "evaluate",
    "samples_curve",
    "scores",
    "shift_test",
    "summary_lines",
]

# Training flags of models/bnn_mnist.py added after its first runs, with the value those runs
# used: a run's config without one of them ran with that value.
EARLIER_RUNS_USED: dict[str, Any] = {
    "kl_warmup": 0,
    "average_from": 0,
    "init_from": None,
    "init_scale_fraction": 0.1,
    "elastic": 0.0,
    "validation": 0,
}


def complete_config(config: dict[str, Any]) -> dict[str, Any]:
    """A run's config with the flags added after it was written, at the values it ran with.

    Examples
    --------
    >>> complete_config({"seed": 3})["elastic"]
    0.0
    """
    return {**EARLIER_RUNS_USED, **config}


# Log class probabilities of a batch of network inputs, on the CPU.
Predict = Callable[[torch.Tensor], torch.Tensor]


def scores(log_probs: torch.Tensor, labels: torch.Tensor) -> dict[str, float]:
    """Accuracy, NLL and ECE (15 equal-width and 15 equal-mass bins) of log probabilities."""
    return {
        "accuracy": metrics.accuracy(log_probs, labels),
        "nll": metrics.nll(log_probs, labels),
        "ece": metrics.expected_calibration_error(log_probs, labels, n_bins=15),
        "ece_adaptive": metrics.adaptive_calibration_error(log_probs, labels, n_bins=15),
    }


def shift_test(
    networks: dict[str, Predict],
    x_test: torch.Tensor,
    y_test: torch.Tensor,
    as_input: Callable[[torch.Tensor], torch.Tensor],
) -> tuple[dict[str, dict[str, dict[str, float]]], dict[str, dict[str, float]]]:
    """Scores on the clean and each corrupted test set, and the paired NLL differences.

    ``x_test`` holds flat images in [0, 1]; ``as_input`` shapes them for the networks. Returns
    ``{corruption: {network: scores}}`` and, when ``networks`` holds ``"bnn"`` and ``"plain"``,
    ``{corruption: {"mean", "low", "high"}}``: the Bayesian net's NLL minus the plain net's and
    its 95% bootstrap interval over the test images (:func:`pyro_logits.metrics.nll_difference`);
    else an empty dict.
    """
    results, differences = {}, {}
    for name in ("clean", *CORRUPTIONS):
        images = as_input(x_test if name == "clean" else corrupt(x_test, name, seed=0))
        log_probs = {net: predict(images) for net, predict in networks.items()}
        results[name] = {net: scores(lp, y_test) for net, lp in log_probs.items()}
        if {"bnn", "plain"} <= log_probs.keys():
            diff = metrics.nll_difference(log_probs["bnn"], log_probs["plain"], y_test)
            differences[name] = diff._asdict()
    return results, differences


def evaluate(
    clf: BNNClassifier,
    plain: Predict | None,
    x_test: torch.Tensor,
    y_test: torch.Tensor,
    as_input: Callable[[torch.Tensor], torch.Tensor],
    *,
    num_samples: int,
    shift_test_samples: int,
    seed: int,
) -> tuple[dict[str, Any], torch.Tensor, dict[str, torch.Tensor]]:
    """Score the posterior predictive (averaged in probability space) and the plain network.

    Returns the scores for ``metrics.json``, the clean test set's log probabilities and the
    predictive entropies of the test set and the out-of-distribution inputs: the test digits
    turned by a random angle between 45 and 315 degrees (drawn from ``seed + 1``), and uniform
    noise. The corrupted sets and the out-of-distribution inputs get ``shift_test_samples``
    posterior samples, the clean test set ``num_samples``.
    """
    device = x_test.device
    generator = torch.Generator().manual_seed(seed + 1)
    angles = 45.0 + 270.0 * torch.rand(x_test.shape[0], generator=generator, dtype=torch.float64)
    ood_inputs = {
        "rotated": datasets.rotate_images(x_test.cpu(), angles).to(device),
        "noise": datasets.noise_images(x_test.shape[0], generator=generator).to(device),
    }
    labels = y_test.cpu()
    log_probs = clf.predict_log_probs(as_input(x_test), num_samples=num_samples).cpu()
    entropies = {"test": metrics.predictive_entropy(log_probs)}
    detection = {}
    for name, images in ood_inputs.items():
        ood = clf.predict_log_probs(as_input(images), num_samples=shift_test_samples).cpu()
        entropies[name] = metrics.predictive_entropy(ood)
        detection[name] = metrics.ood_scores(log_probs, ood)

    def bnn(images: torch.Tensor) -> torch.Tensor:
        return clf.predict_log_probs(images, num_samples=shift_test_samples).cpu()

    networks: dict[str, Predict] = {"bnn": bnn}
    if plain is not None:
        networks["plain"] = plain
    # OOD detection by predictive entropy (what metrics.ood_auroc computes), reusing it.
    ood_auroc = {k: metrics.auroc(entropies["test"], entropies[k]) for k in ood_inputs}
    ood_auroc["mean"] = statistics.fmean(ood_auroc.values())
    shift_scores, shift_differences = shift_test(networks, x_test, labels, as_input)
    results = {
        "test_accuracy": metrics.accuracy(log_probs, labels),
        "test_nll": metrics.nll(log_probs, labels),
        "test_ece": metrics.expected_calibration_error(log_probs, labels, n_bins=15),
        "test_ece_adaptive": metrics.adaptive_calibration_error(log_probs, labels, n_bins=15),
        "test_brier": metrics.brier_score(log_probs, labels),
        "ood_auroc": ood_auroc,
        "ood_detection": detection,
        "mean_entropy": {k: float(h.mean()) for k, h in entropies.items()},
        "shift_test": shift_scores,
        "shift_test_nll_difference": shift_differences,
        "shift_test_samples": shift_test_samples,
        "posterior_layers": clf.guide.layer_summary(),
    }
    return results, log_probs, entropies


def samples_curve(
    clf: BNNClassifier,
    x_test: torch.Tensor,
    y_test: torch.Tensor,
    *,
    max_samples: int = 64,
    seed: int = 0,
) -> list[dict[str, float]]:
    """How the predictive improves with the number of posterior samples, and what each costs.

    For ``S`` = 1, 2, 4, ... up to ``max_samples`` (and ``max_samples`` itself), the
    posterior predictive of ``S`` weight samples on ``x_test`` (network inputs) is scored, and
    the seconds its prediction took are recorded. Each ``S`` draws its own samples, from
    ``seed``, without touching the global random stream.

    Returns
    -------
    list of dict
        One row per ``S``: ``samples``, ``seconds``, and :func:`scores`' ``accuracy``,
        ``nll`` and ``ece``.
    """
    if max_samples < 1:
        raise ValueError(f"Expected max_samples >= 1 but got {max_samples}.")
    counts = sorted({*(2**k for k in range(max_samples.bit_length())), max_samples})
    labels, rows = y_test.cpu(), []
    devices = [x_test.device] if x_test.device.type == "cuda" else []
    for count in counts:
        with torch.random.fork_rng(devices=devices):
            torch.manual_seed(seed)
            start = time.perf_counter()
            log_probs = clf.predict_log_probs(x_test, num_samples=count).cpu()
            seconds = time.perf_counter() - start
        rows.append({"samples": count, "seconds": seconds, **scores(log_probs, labels)})
    return rows


def summary_lines(results: dict[str, Any], arch: str, out: Path) -> list[str]:
    """The lines printed at the end of a run: the scores, times, shift test and posterior."""
    ratio = results["seconds_per_epoch_ratio_to_baseline"]
    epoch = statistics.median(results["seconds_per_epoch"] or [math.nan])
    plain = statistics.median(results["baseline_seconds_per_epoch"] or [math.nan])
    rows = [
        ("test accuracy", f"{100 * results['test_accuracy']:.2f}%"),
        ("test NLL", f"{results['test_nll']:.4f}"),
        ("test ECE (15 bins)", f"{100 * results['test_ece']:.2f}%"),
        ("test Brier", f"{results['test_brier']:.4f}"),
        ("test ECE (15 equal-mass bins)", f"{100 * results['test_ece_adaptive']:.2f}%"),
        *((f"OOD AUROC ({k})", f"{v:.4f}") for k, v in results["ood_auroc"].items()),
        *(
            (
                f"OOD AUPR in / out, FPR@95 ({k})",
                f"{v['aupr_in']:.4f} / {v['aupr_out']:.4f}, {100 * v['fpr_at_95_tpr']:.2f}%",
            )
            for k, v in results["ood_detection"].items()
        ),
        ("epochs", str(results["epochs"])),
        ("s/epoch (median)", "-" if math.isnan(epoch) else f"{epoch:.2f}"),
        (f"plain {arch} s/epoch (median)", "-" if math.isnan(plain) else f"{plain:.2f}"),
        (f"ratio to plain {arch}", f"{ratio:.2f}x" if ratio else "-"),
        ("wall time", f"{results['wall_minutes']:.1f} min"),
        ("outputs", str(out)),
    ]
    evaluated_on = results.get("evaluated_on", "test")
    if evaluated_on != "test":  # held-out training images stand in for the test set
        rows = [(k.replace("test ", "held-out "), v) for k, v in rows]
        rows.insert(0, ("scored on", evaluated_on))
    width = max(len(k) for k, _ in rows)
    lines = [f"{k:<{width}}  {v}" for k, v in rows]
    samples = results["shift_test_samples"]
    lines.append(f"\nshift test (accuracy / NLL / ECE, {samples} posterior samples):")
    for name, row in results["shift_test"].items():
        cells = [
            f"{net} {100 * v['accuracy']:6.2f}% {v['nll']:7.4f} {100 * v['ece']:5.2f}%"
            for net, v in row.items()
        ]
        diff = results.get("shift_test_nll_difference", {}).get(name)
        if diff is not None:
            cells.append(
                f"NLL bnn - plain {diff['mean']:+.4f} [{diff['low']:+.4f}, {diff['high']:+.4f}]"
            )
        lines.append(f"  {name:14} " + "   ".join(cells))
    lines.append("\nposterior by layer (weights with |loc| < scale: left at the prior):")
    for layer in results["posterior_layers"]:
        lines.append(
            f"  {layer['site']:9} {layer['weights']:7d} weights  |loc| rms {layer['loc_rms']:.4f}"
            f"  scale median {layer['scale_median']:.4f} (prior {layer['prior_scale']:.4f})"
            f"  KL {layer['kl']:9.1f} nats  |loc| < scale {100 * layer['snr_below_1']:5.1f}%"
        )
    return lines
