"""Plots of a classifier's results: reliability, entropy, the shift test, the samples curve.

matplotlib is imported when a plot is drawn (``pip install 'pyro-logits[examples]'``), with
the Agg backend; each PNG is written atomically.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import torch

from pyro_logits import metrics
from pyro_logits._atomic import atomic_write

__all__ = ["plot_entropy", "plot_reliability", "plot_samples_curve", "plot_shift"]


def _pyplot() -> Any:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _save(fig: Any, path: Path) -> None:
    with atomic_write(path) as f:
        fig.savefig(f, format="png", dpi=120)
    _pyplot().close(fig)


def plot_reliability(log_probs: torch.Tensor, labels: torch.Tensor, path: Path) -> None:
    """Reliability diagram (15 bins) of the test set, with its ECE in the title."""
    plt = _pyplot()
    bins = metrics.calibration_bins(log_probs, labels, n_bins=15)
    edges = bins.edges.numpy()
    centres, width = (edges[:-1] + edges[1:]) / 2, edges[1] - edges[0]
    filled = bins.counts.numpy() > 0
    fig, ax = plt.subplots(figsize=(4.5, 4.5))
    ax.bar(
        centres[filled],
        bins.accuracy.numpy()[filled],
        width=width,
        edgecolor="black",
        label="accuracy",
    )
    ax.plot([0, 1], [0, 1], "--", color="gray", label="perfect calibration")
    ax.set_xlabel("confidence (max predictive probability)")
    ax.set_ylabel("accuracy")
    ece = metrics.expected_calibration_error(log_probs, labels)
    ax.set_title(f"Reliability, MNIST test (ECE {100 * ece:.2f}%)")
    ax.legend(loc="upper left")
    fig.tight_layout()
    _save(fig, path)


def plot_entropy(entropies: dict[str, torch.Tensor], num_classes: int, path: Path) -> None:
    """Histograms of the predictive entropy of the test set and each out-of-distribution set."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(6, 4))
    for name, h in entropies.items():
        ax.hist(
            h.numpy(),
            bins=50,
            range=(0, math.log(num_classes)),
            alpha=0.5,
            density=True,
            label=name,
        )
    ax.set_yscale("log")
    ax.set_xlabel("predictive entropy (nats)")
    ax.set_ylabel("density")
    ax.set_title("Predictive entropy: test set vs out-of-distribution")
    ax.legend()
    fig.tight_layout()
    _save(fig, path)


def plot_shift(
    shift_test: dict[str, dict[str, dict[str, Any]]],
    path: Path,
    title: str = "Shift test",
) -> None:
    """Bar plots of each network's NLL (log scale) and accuracy on each corruption.

    ``shift_test[corruption][net][key]`` is a number, or (as ``models/shift_summary.py`` gives)
    a ``{"mean", "min", "max"}`` dict drawn as the mean with a min-max error bar.
    """
    plt = _pyplot()
    names = list(shift_test)
    nets = [net for net in ("bnn", "plain") if net in shift_test[names[0]]]
    labels = {"bnn": "Bayesian (posterior predictive)", "plain": "plain, same shape"}
    fig, axes = plt.subplots(1, 2, figsize=(10, 4))
    width = 0.8 / len(nets)
    for ax, key, what in zip(axes, ("nll", "accuracy"), ("NLL", "accuracy"), strict=True):
        for i, net in enumerate(nets):
            cells = [shift_test[name][net][key] for name in names]
            positions = [j + (i - (len(nets) - 1) / 2) * width for j in range(len(names))]
            if isinstance(cells[0], dict):
                means = [c["mean"] for c in cells]
                spread = [
                    [c["mean"] - c["min"] for c in cells],
                    [c["max"] - c["mean"] for c in cells],
                ]
                ax.bar(positions, means, width=width, yerr=spread, capsize=3, label=labels[net])
            else:
                ax.bar(positions, cells, width=width, label=labels[net])
        ax.set_xticks(
            range(len(names)), [n.replace("_", " ") for n in names], fontsize=8, rotation=35
        )
        ax.tick_params(axis="x", pad=1)
        plt.setp(ax.get_xticklabels(), ha="right", rotation_mode="anchor")
        ax.set_title(f"{title}: {what}", fontsize=9)
        if key == "nll":
            ax.set_yscale("log")
    axes[0].legend(fontsize=8)
    fig.tight_layout()
    _save(fig, path)


def plot_samples_curve(rows: list[dict[str, float]], path: Path) -> None:
    """NLL, ECE and accuracy against the number of posterior samples, with the seconds each took.

    ``rows`` as :func:`pyro_logits.bnn.evaluation.samples_curve` gives them.
    """
    plt = _pyplot()
    samples = [row["samples"] for row in rows]
    fig, axes = plt.subplots(1, 4, figsize=(13, 3.2))
    panels = (("nll", "NLL"), ("ece", "ECE"), ("accuracy", "accuracy"), ("seconds", "seconds"))
    for ax, (key, title) in zip(axes, panels, strict=True):
        ax.plot(samples, [row[key] for row in rows], "o-")
        ax.set_xscale("log", base=2)
        ax.set_xlabel("posterior samples")
        ax.set_title(title, fontsize=9)
    fig.suptitle("The posterior predictive against the number of samples", fontsize=10)
    fig.tight_layout()
    _save(fig, path)
