"""Evaluation metrics for classifiers that output log-probabilities.

Every metric takes ``log_probs`` of shape ``(N, C)``: normalised log-probabilities, typically
the log posterior-predictive probabilities from
:func:`pyro_logits.convert.predictive_log_probs` (pass ``torch.log_softmax(logits, -1)`` for
a single network's logits), and integer ``labels`` of shape ``(N,)``. Rows are checked to
be normalised, so logits passed by mistake are caught rather than silently scored. Metrics are
computed in float64 and returned as Python floats.

Out-of-distribution (OOD) detection is scored with :func:`auroc` on the predictive entropy,
OOD inputs being the positive class; :func:`pyro_logits.datasets.rotate_images` and
:func:`pyro_logits.datasets.noise_images` make such inputs from the test set.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import torch
import torch.nn.functional as F

from pyro_logits.labels import check_class_labels

__all__ = [
    "CalibrationBins",
    "NLLDifference",
    "accuracy",
    "auroc",
    "brier_score",
    "calibration_bins",
    "expected_calibration_error",
    "nll",
    "nll_difference",
    "ood_auroc",
    "predictive_entropy",
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


def _check_log_probs(log_probs: torch.Tensor, name: str = "log_probs") -> torch.Tensor:
    """Validate ``(N, C)`` normalised log-probabilities and return them in float64."""
    if not isinstance(log_probs, torch.Tensor) or log_probs.dim() != 2:
        shape = tuple(log_probs.shape) if isinstance(log_probs, torch.Tensor) else type(log_probs)
        raise ValueError(f"Expected {name} of shape (N, C) but got {shape}.")
    if log_probs.shape[0] == 0 or log_probs.shape[1] == 0:
        raise ValueError(f"Expected {name} with N > 0 and C > 0 but got {tuple(log_probs.shape)}.")
    if not log_probs.is_floating_point():
        raise ValueError(f"Expected floating-point {name} but got {log_probs.dtype}.")
    if torch.isnan(log_probs).any() or (log_probs == math.inf).any():
        raise ValueError(f"Expected {name} without NaN or +inf but found some.")
    tol = max(1e-3, torch.finfo(log_probs.dtype).eps ** 0.5)
    checked = log_probs.detach().to(torch.float64)
    totals = torch.logsumexp(checked, dim=-1)
    worst = int(totals.abs().argmax())
    if abs(float(totals[worst])) > tol:
        raise ValueError(
            f"Expected normalised {name} (logsumexp over classes = 0) but row {worst} has "
            f"logsumexp {float(totals[worst]):.4g}. If these are logits, pass "
            "torch.log_softmax(logits, dim=-1); if probabilities, pass their log."
        )
    return checked


class NLLDifference(NamedTuple):
    """Mean per-example NLL difference of two predictions and its confidence interval."""

    mean: float
    """``nll(log_probs_a) - nll(log_probs_b)`` over the same examples, in nats."""
    low: float
    """Lower end of the bootstrap confidence interval of ``mean``."""
    high: float
    """Upper end of the bootstrap confidence interval of ``mean``."""


def _check(log_probs: torch.Tensor, labels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    log_probs = _check_log_probs(log_probs)
    n, c = log_probs.shape
    if not isinstance(labels, torch.Tensor) or labels.shape != (n,):
        shape = tuple(labels.shape) if isinstance(labels, torch.Tensor) else type(labels)
        raise ValueError(f"Expected labels of shape ({n},) to match log_probs but got {shape}.")
    check_class_labels(labels, c, where="labels")
    return log_probs, labels.to(log_probs.device, torch.int64)


def _label_nlls(log_probs: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Checked per-example negative log-likelihoods of the labels, float64 ``(N,)``."""
    log_probs, labels = _check(log_probs, labels)
    return -log_probs.gather(-1, labels[:, None]).squeeze(-1)


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
    log_probs, labels = _check(log_probs, labels)
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
    return _label_nlls(log_probs, labels).mean().item()


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
    log_probs, labels = _check(log_probs, labels)
    one_hot = F.one_hot(labels, log_probs.shape[-1]).to(torch.float64)
    return (log_probs.exp() - one_hot).square().sum(dim=-1).mean().item()


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
    log_probs, labels = _check(log_probs, labels)
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


def predictive_entropy(log_probs: torch.Tensor) -> torch.Tensor:
    """Entropy of each predictive distribution, in nats.

    Parameters
    ----------
    log_probs : torch.Tensor
        Normalised log-probabilities of shape ``(N, C)``.

    Returns
    -------
    torch.Tensor
        ``-sum_c p log p`` per example, shape ``(N,)``, in the dtype of ``log_probs``; between
        0 and ``log C``. Classes with probability 0 contribute 0.

    Raises
    ------
    ValueError
        If ``log_probs`` is not ``(N, C)`` or its rows are not normalised.

    Examples
    --------
    >>> import torch
    >>> predictive_entropy(torch.tensor([[0.5, 0.5], [1.0, 0.0]]).log())
    tensor([0.6931, 0.0000])
    """
    checked = _check_log_probs(log_probs)
    terms = torch.where(checked > -math.inf, -checked.exp() * checked, 0.0)
    return (terms.sum(dim=-1) + 0.0).to(log_probs.dtype)  # + 0.0 turns -0.0 into 0.0


def auroc(scores_in: torch.Tensor, scores_out: torch.Tensor) -> float:
    """Area under the ROC curve for telling OOD inputs (positives) from in-distribution ones.

    Higher scores should mean "more likely OOD". Computed from ranks, as the Mann-Whitney
    statistic: the probability that a random OOD score exceeds a random in-distribution score,
    ties counting one half. 1 is perfect separation, 0.5 chance.

    Parameters
    ----------
    scores_in : torch.Tensor
        Scores of the in-distribution inputs (negatives), shape ``(N_in,)``.
    scores_out : torch.Tensor
        Scores of the OOD inputs (positives), shape ``(N_out,)``.

    Returns
    -------
    float
        The AUROC in ``[0, 1]``.

    Raises
    ------
    ValueError
        If either input is empty, not one-dimensional, or holds NaN.

    Examples
    --------
    >>> import torch
    >>> auroc(torch.tensor([0.1, 0.4, 0.5]), torch.tensor([0.5, 0.9]))  # (3 + 2.5) / 6
    0.9166666666666666
    """
    for name, scores in (("scores_in", scores_in), ("scores_out", scores_out)):
        if not isinstance(scores, torch.Tensor) or scores.dim() != 1 or scores.numel() == 0:
            shape = tuple(scores.shape) if isinstance(scores, torch.Tensor) else type(scores)
            raise ValueError(f"Expected {name} of shape (N,) with N > 0 but got {shape}.")
        if scores.is_floating_point() and torch.isnan(scores).any():
            raise ValueError(f"Expected {name} without NaN but found some.")
    scores = torch.cat([scores_in.detach(), scores_out.detach()]).to(torch.float64)
    # Mid-ranks (1-based): a group of tied values shares the mean of the ranks it spans.
    _, inverse, counts = torch.unique(scores, sorted=True, return_inverse=True, return_counts=True)
    ends = counts.cumsum(0).to(torch.float64)
    ranks = (ends - (counts.to(torch.float64) - 1) / 2)[inverse]
    n_in, n_out = scores_in.numel(), scores_out.numel()
    u = ranks[n_in:].sum().item() - n_out * (n_out + 1) / 2
    return u / (n_in * n_out)


def ood_auroc(log_probs_in: torch.Tensor, log_probs_out: torch.Tensor) -> float:
    """AUROC of predictive entropy at telling OOD inputs from in-distribution ones.

    Parameters
    ----------
    log_probs_in : torch.Tensor
        Log-probabilities ``(N_in, C)`` on in-distribution inputs (e.g. the test set).
    log_probs_out : torch.Tensor
        Log-probabilities ``(N_out, C)`` on OOD inputs (e.g. rotated digits or noise).

    Returns
    -------
    float
        ``auroc(predictive_entropy(log_probs_in), predictive_entropy(log_probs_out))``.

    Examples
    --------
    >>> import torch
    >>> confident = torch.tensor([[0.99, 0.01], [0.01, 0.99]]).log()
    >>> unsure = torch.tensor([[0.6, 0.4], [0.5, 0.5]]).log()
    >>> ood_auroc(confident, unsure)
    1.0
    """
    return auroc(predictive_entropy(log_probs_in), predictive_entropy(log_probs_out))


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
    nlls_a, nlls_b = _label_nlls(log_probs_a, labels), _label_nlls(log_probs_b, labels)
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
