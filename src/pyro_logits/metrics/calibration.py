"""Calibration: reliability bins and the expected calibration error, equal-width and equal-mass."""

from __future__ import annotations

import math
from typing import NamedTuple

import torch

from pyro_logits.metrics._inputs import check_inputs

__all__ = [
    "CalibrationBins",
    "adaptive_calibration_error",
    "calibration_bins",
    "expected_calibration_error",
]


class CalibrationBins(NamedTuple):
    """Per-bin statistics for a reliability diagram (see :func:`calibration_bins`)."""

    edges: torch.Tensor
    """Bin edges, float64 of shape ``(n_bins + 1,)``, from 0 to 1."""
    confidence: torch.Tensor
    """Mean confidence (max probability) per bin, float64 ``(n_bins,)``; NaN for empty bins."""
    accuracy: torch.Tensor
    """Fraction correct per bin, float64 ``(n_bins,)``; NaN for empty bins."""
    counts: torch.Tensor
    """Number of examples per bin, int64 ``(n_bins,)``."""


def calibration_bins(
    log_probs: torch.Tensor, labels: torch.Tensor, *, n_bins: int = 15
) -> CalibrationBins:
    """Confidence, accuracy and count per confidence bin, for a reliability diagram.

    Confidence is the largest predicted probability of each example and the prediction its
    class. Bins have equal width on ``[0, 1]``; bin ``b`` holds confidences in
    ``(b / n_bins, (b + 1) / n_bins]`` (the first bin also holds 0).

    Parameters
    ----------
    log_probs : torch.Tensor
        Normalised log-probabilities of shape ``(N, C)``.
    labels : torch.Tensor
        ``int64`` labels of shape ``(N,)``.
    n_bins : int
        Number of bins. Default 15.

    Returns
    -------
    CalibrationBins
        ``edges``, and per bin the mean ``confidence``, the ``accuracy`` (both NaN where
        the bin is empty) and the ``count``.

    Raises
    ------
    ValueError
        If ``n_bins < 1``, or the inputs are invalid as for :func:`accuracy`.

    Examples
    --------
    >>> import torch
    >>> log_probs = torch.tensor([[0.9, 0.1], [0.8, 0.2], [0.3, 0.7]]).log()
    >>> bins = calibration_bins(log_probs, torch.tensor([0, 1, 1]), n_bins=2)
    >>> bins.counts
    tensor([0, 3])
    >>> bins.accuracy
    tensor([   nan, 0.6667], dtype=torch.float64)
    """
    if not isinstance(n_bins, int) or n_bins < 1:
        raise ValueError(f"Expected n_bins to be a positive int but got {n_bins!r}.")
    log_probs, labels = check_inputs(log_probs, labels)
    max_log_prob, predicted = log_probs.max(dim=-1)
    confidence = max_log_prob.exp()
    correct = (predicted == labels).to(torch.float64)
    # Bin b holds (b / n_bins, (b + 1) / n_bins]: ceil(conf * n_bins) - 1, with 0 in bin 0.
    index = (torch.ceil(confidence * n_bins).long() - 1).clamp(0, n_bins - 1)
    count = torch.bincount(index, minlength=n_bins)
    conf_sum = torch.bincount(index, weights=confidence, minlength=n_bins)
    correct_sum = torch.bincount(index, weights=correct, minlength=n_bins)
    safe = count.clamp_min(1).to(torch.float64)
    empty = count == 0
    nan = torch.tensor(math.nan, dtype=torch.float64, device=count.device)
    return CalibrationBins(
        edges=torch.linspace(0.0, 1.0, n_bins + 1, dtype=torch.float64),
        confidence=torch.where(empty, nan, conf_sum / safe).cpu(),
        accuracy=torch.where(empty, nan, correct_sum / safe).cpu(),
        counts=count.cpu(),
    )


def expected_calibration_error(
    log_probs: torch.Tensor, labels: torch.Tensor, *, n_bins: int = 15
) -> float:
    """Compute the expected calibration error with equal-width confidence bins.

    ``ECE = sum_b (n_b / N) * |accuracy_b - confidence_b|`` over the bins of
    :func:`calibration_bins` (Naeini et al., 2015; Guo et al., 2017), with confidence the
    largest predicted probability.

    Parameters
    ----------
    log_probs : torch.Tensor
        Normalised log-probabilities of shape ``(N, C)``.
    labels : torch.Tensor
        ``int64`` labels of shape ``(N,)``.
    n_bins : int
        Number of bins. Default 15.

    Returns
    -------
    float
        The ECE, in ``[0, 1]``.

    Raises
    ------
    ValueError
        If ``n_bins < 1``, or the inputs are invalid as for :func:`accuracy`.

    Examples
    --------
    >>> import torch
    >>> log_probs = torch.tensor([[0.9, 0.1], [0.8, 0.2], [0.3, 0.7]]).log()
    >>> round(expected_calibration_error(log_probs, torch.tensor([0, 1, 1]), n_bins=2), 6)
    0.133333
    """
    bins = calibration_bins(log_probs, labels, n_bins=n_bins)
    full = bins.counts > 0
    gaps = (bins.accuracy[full] - bins.confidence[full]).abs()
    return (gaps * bins.counts[full]).sum().item() / bins.counts.sum().item()


def adaptive_calibration_error(
    log_probs: torch.Tensor, labels: torch.Tensor, *, n_bins: int = 15
) -> float:
    """Compute the expected calibration error with equal-mass (adaptive) confidence bins.

    The examples, sorted by confidence (the largest predicted probability), are split into
    ``n_bins`` bins of equal size (sizes differing by at most one), and
    ``sum_b (n_b / N) * |accuracy_b - confidence_b|`` is taken over them. Equal-width bins
    (:func:`expected_calibration_error`) leave most bins of an accurate classifier nearly empty
    and put almost every example in the top bin; equal-mass bins resolve the confident end.

    Parameters
    ----------
    log_probs : torch.Tensor
        Normalised log-probabilities of shape ``(N, C)``.
    labels : torch.Tensor
        ``int64`` labels of shape ``(N,)``.
    n_bins : int
        Number of bins; fewer when there are fewer examples. Default 15.

    Returns
    -------
    float
        The adaptive ECE, in ``[0, 1]``.

    Raises
    ------
    ValueError
        If ``n_bins < 1``, or the inputs are invalid as for :func:`~pyro_logits.metrics.accuracy`.

    Examples
    --------
    >>> import torch
    >>> log_probs = torch.tensor([[0.9, 0.1], [0.8, 0.2], [0.3, 0.7], [0.6, 0.4]]).log()
    >>> round(adaptive_calibration_error(log_probs, torch.tensor([0, 1, 1, 0]), n_bins=2), 6)
    0.35
    """
    if not isinstance(n_bins, int) or n_bins < 1:
        raise ValueError(f"Expected n_bins to be a positive int but got {n_bins!r}.")
    log_probs, labels = check_inputs(log_probs, labels)
    max_log_prob, predicted = log_probs.max(dim=-1)
    confidence, order = max_log_prob.exp().sort()
    correct = (predicted == labels).to(torch.float64)[order]
    total = 0.0
    for conf, hit in zip(
        confidence.tensor_split(n_bins), correct.tensor_split(n_bins), strict=True
    ):
        if conf.numel():
            total += conf.numel() * abs(hit.mean().item() - conf.mean().item())
    return total / confidence.numel()
