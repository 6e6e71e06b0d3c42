"""Scores of a classifier's predictions: accuracy, NLL, Brier, and the paired NLL difference."""

from __future__ import annotations

import math
from typing import NamedTuple

import torch
import torch.nn.functional as F

from pyro_logits.metrics._inputs import check_inputs, label_nlls

__all__ = ["NLLDifference", "accuracy", "brier_score", "nll", "nll_difference"]


class NLLDifference(NamedTuple):
    """Mean per-example NLL difference of two predictions and its confidence interval."""

    mean: float
    """``nll(log_probs_a) - nll(log_probs_b)`` over the same examples, in nats."""
    low: float
    """Lower end of the bootstrap confidence interval of ``mean``."""
    high: float
    """Upper end of the bootstrap confidence interval of ``mean``."""


def accuracy(log_probs: torch.Tensor, labels: torch.Tensor) -> float:
    """Fraction of examples whose most probable class is the label.

    Parameters
    ----------
    log_probs : torch.Tensor
        Normalised log-probabilities of shape ``(N, C)``.
    labels : torch.Tensor
        ``int64`` labels of shape ``(N,)``.

    Returns
    -------
    float
        Accuracy in ``[0, 1]``.

    Raises
    ------
    ValueError
        If shapes or dtypes are wrong, labels are out of range, or rows are not normalised.

    Examples
    --------
    >>> import torch
    >>> log_probs = torch.tensor([[0.9, 0.1], [0.2, 0.8], [0.6, 0.4]]).log()
    >>> accuracy(log_probs, torch.tensor([0, 1, 1]))
    0.6666666666666666
    """
    log_probs, labels = check_inputs(log_probs, labels)
    return (log_probs.argmax(dim=-1) == labels).double().mean().item()


def nll(log_probs: torch.Tensor, labels: torch.Tensor) -> float:
    """Mean negative log-likelihood of the labels, in nats.

    Parameters
    ----------
    log_probs : torch.Tensor
        Normalised log-probabilities of shape ``(N, C)``.
    labels : torch.Tensor
        ``int64`` labels of shape ``(N,)``.

    Returns
    -------
    float
        ``-mean_n log_probs[n, labels[n]]``; ``inf`` if a label has probability 0.

    Raises
    ------
    ValueError
        If shapes or dtypes are wrong, labels are out of range, or rows are not normalised.

    Examples
    --------
    >>> import torch
    >>> log_probs = torch.tensor([[0.5, 0.5], [0.25, 0.75]]).log()
    >>> round(nll(log_probs, torch.tensor([0, 1])), 6)  # (log 2 + log 4/3) / 2
    0.490415
    """
    return label_nlls(log_probs, labels).mean().item()


def brier_score(log_probs: torch.Tensor, labels: torch.Tensor) -> float:
    """Brier score: squared error of the probability vector, summed over classes, mean over N.

    This is the original (Brier, 1950) multi-class convention, ranging over ``[0, 2]``;
    divide by ``C`` for the per-class mean that some libraries report.

    Parameters
    ----------
    log_probs : torch.Tensor
        Normalised log-probabilities of shape ``(N, C)``.
    labels : torch.Tensor
        ``int64`` labels of shape ``(N,)``.

    Returns
    -------
    float
        ``mean_n sum_c (p[n, c] - [c == labels[n]])**2``.

    Raises
    ------
    ValueError
        If shapes or dtypes are wrong, labels are out of range, or rows are not normalised.

    Examples
    --------
    >>> import torch
    >>> log_probs = torch.tensor([[1.0, 0.0], [0.5, 0.5]]).log()
    >>> round(brier_score(log_probs, torch.tensor([0, 1])), 6)  # (0 + 0.25 + 0.25) / 2
    0.25
    """
    log_probs, labels = check_inputs(log_probs, labels)
    one_hot = F.one_hot(labels, log_probs.shape[-1]).to(torch.float64)
    return (log_probs.exp() - one_hot).square().sum(dim=-1).mean().item()


def nll_difference(
    log_probs_a: torch.Tensor,
    log_probs_b: torch.Tensor,
    labels: torch.Tensor,
    *,
    level: float = 0.95,
    num_resamples: int = 2000,
    seed: int = 0,
) -> NLLDifference:
    """NLL of prediction ``a`` minus that of ``b`` on the same examples, with a paired interval.

    Two models scored on one test set share its hard examples, so the per-example differences
    ``d_n = -log a[n, y_n] + log b[n, y_n]`` vary far less than either NLL: the percentile
    bootstrap of their mean (resampling examples, both predictions together) says whether one
    test set separates the two models. An interval below 0 means ``a`` has the lower NLL beyond
    the test set's sampling noise; one that contains 0, that this test set cannot tell.

    Parameters
    ----------
    log_probs_a, log_probs_b : torch.Tensor
        Normalised log-probabilities ``(N, C)`` of the two predictions, for the same inputs.
    labels : torch.Tensor
        ``int64`` labels of shape ``(N,)``, with ``N >= 2``: one example has no spread to
        resample, and its interval would be ``(mean, mean)``.
    level : float
        Coverage of the interval, in ``(0, 1)``.
    num_resamples : int
        Bootstrap resamples of the ``N`` examples, at least 100: the ends of the interval are
        quantiles of the resampled means, and a handful of them need not even hold ``mean``.
    seed : int
        Seed of the resampling, so that the interval is reproducible.

    Returns
    -------
    NLLDifference
        ``mean`` (exactly ``nll(a) - nll(b)`` up to rounding), ``low`` and ``high``. If a label
        has probability 0 under either prediction, the difference is not finite and the
        interval is ``(mean, mean)``.

    Raises
    ------
    ValueError
        On inputs :func:`nll` refuses, predictions of different shapes, fewer than 2
        examples, ``level`` outside ``(0, 1)`` or ``num_resamples`` below 100.

    Examples
    --------
    >>> import torch
    >>> a = torch.tensor([[0.9, 0.1], [0.2, 0.8], [0.7, 0.3]]).log()
    >>> b = torch.tensor([[0.6, 0.4], [0.5, 0.5], [0.5, 0.5]]).log()
    >>> diff = nll_difference(a, b, torch.tensor([0, 1, 0]))
    >>> round(diff.mean, 4), diff.low <= diff.mean <= diff.high
    (-0.404, True)
    """
    nlls_a, nlls_b = label_nlls(log_probs_a, labels), label_nlls(log_probs_b, labels)
    if log_probs_a.shape != log_probs_b.shape:
        raise ValueError(
            f"Expected two predictions of one shape but got {tuple(log_probs_a.shape)} and "
            f"{tuple(log_probs_b.shape)}; score both on the same inputs."
        )
    if nlls_a.numel() < 2:
        raise ValueError(
            f"Expected at least 2 examples but got {nlls_a.numel()}; one example has no spread "
            "to resample, so its interval would read as exact: score more test examples."
        )
    if not 0 < level < 1:
        raise ValueError(f"Expected level in (0, 1) but got {level}.")
    if isinstance(num_resamples, bool) or not isinstance(num_resamples, int) or num_resamples < 100:
        raise ValueError(
            f"Expected num_resamples to be an int >= 100 but got {num_resamples!r}; fewer "
            "resampled means give interval ends that need not even hold the mean (the default "
            "is 2000)."
        )
    differences = nlls_a.cpu() - nlls_b.cpu()
    mean = differences.mean().item()
    if not math.isfinite(mean):
        return NLLDifference(mean, mean, mean)
    n = differences.numel()
    generator = torch.Generator().manual_seed(seed)
    means = torch.empty(num_resamples, dtype=torch.float64)
    chunk = max(1, 2**22 // n)  # resamples per pass: index tensors of about 32 MB
    for start in range(0, num_resamples, chunk):
        stop = min(start + chunk, num_resamples)
        rows = torch.randint(n, (stop - start, n), generator=generator)
        means[start:stop] = differences[rows].mean(dim=-1)
    tail = (1 - level) / 2
    low, high = torch.quantile(means, torch.tensor([tail, 1 - tail], dtype=torch.float64))
    return NLLDifference(mean, low.item(), high.item())
