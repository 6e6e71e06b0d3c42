"""Out-of-distribution detection by a score (the predictive entropy): AUROC, AUPR, FPR at 95% TPR.

OOD inputs are the positive class, and a higher score means "more likely OOD";
:func:`pyro_logits.datasets.rotate_images` and :func:`pyro_logits.datasets.noise_images` make
such inputs from a test set.
"""

from __future__ import annotations

import math

import torch

from pyro_logits.metrics._inputs import check_log_probs

__all__ = ["aupr", "auroc", "fpr_at_tpr", "ood_auroc", "ood_scores", "predictive_entropy"]


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
    checked = check_log_probs(log_probs)
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
    _check_scores(scores_in, scores_out)
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


def _check_scores(scores_in: torch.Tensor, scores_out: torch.Tensor) -> None:
    for name, scores in (("scores_in", scores_in), ("scores_out", scores_out)):
        if not isinstance(scores, torch.Tensor) or scores.dim() != 1 or scores.numel() == 0:
            shape = tuple(scores.shape) if isinstance(scores, torch.Tensor) else type(scores)
            raise ValueError(f"Expected {name} of shape (N,) with N > 0 but got {shape}.")
        if scores.is_floating_point() and torch.isnan(scores).any():
            raise ValueError(f"Expected {name} without NaN but found some.")


def aupr(scores_in: torch.Tensor, scores_out: torch.Tensor) -> float:
    """Area under the precision-recall curve for finding the OOD inputs (the positives).

    Computed as the average precision: ``sum_k (R_k - R_{k-1}) P_k`` over the thresholds at
    the distinct scores, from the highest down, where ``P_k`` and ``R_k`` are the precision
    and recall of "score >= threshold". Swap the arguments and negate both to find the
    in-distribution inputs instead ("AUPR-In"). Chance is the share of positives.

    Parameters
    ----------
    scores_in : torch.Tensor
        Scores of the in-distribution inputs (negatives), shape ``(N_in,)``.
    scores_out : torch.Tensor
        Scores of the OOD inputs (positives), shape ``(N_out,)``.

    Returns
    -------
    float
        The AUPR in ``[0, 1]``.

    Raises
    ------
    ValueError
        If either input is empty, not one-dimensional, or holds NaN.

    Examples
    --------
    >>> import torch
    >>> aupr(torch.tensor([0.1, 0.4, 0.5]), torch.tensor([0.5, 0.9]))  # (1/2)(1) + (1/2)(2/3)
    0.8333333333333333
    """
    _check_scores(scores_in, scores_out)
    scores = torch.cat([scores_in.detach(), scores_out.detach()]).to(torch.float64)
    positive = torch.cat([torch.zeros(scores_in.numel()), torch.ones(scores_out.numel())])
    order = scores.argsort(descending=True, stable=True)
    scores, positive = scores[order], positive[order].to(torch.float64)
    true_positives = positive.cumsum(0)
    # one threshold per distinct score: the last position of each group of ties
    last = torch.cat([scores[1:] != scores[:-1], torch.tensor([True])])
    tp = true_positives[last]
    predicted = torch.arange(1, scores.numel() + 1, dtype=torch.float64)[last]
    precision, recall = tp / predicted, tp / scores_out.numel()
    steps = torch.diff(recall, prepend=torch.zeros(1, dtype=torch.float64))
    return (steps * precision).sum().item()


def fpr_at_tpr(scores_in: torch.Tensor, scores_out: torch.Tensor, *, tpr: float = 0.95) -> float:
    """The share of in-distribution inputs flagged when ``tpr`` of the OOD inputs are found.

    The threshold is the highest one that flags at least a ``tpr`` share of the OOD inputs
    (score >= threshold); the result is the share of in-distribution inputs at or above it.
    "FPR at 95% TPR" is the usual report: lower is better, 0 is perfect.

    Parameters
    ----------
    scores_in : torch.Tensor
        Scores of the in-distribution inputs (negatives), shape ``(N_in,)``.
    scores_out : torch.Tensor
        Scores of the OOD inputs (positives), shape ``(N_out,)``.
    tpr : float
        The share of OOD inputs to find, in ``(0, 1]``.

    Returns
    -------
    float
        The false positive rate in ``[0, 1]``.

    Raises
    ------
    ValueError
        If either input is empty, not one-dimensional, or holds NaN, or ``tpr`` is outside
        ``(0, 1]``.

    Examples
    --------
    >>> import torch
    >>> fpr_at_tpr(torch.tensor([0.1, 0.4, 0.5, 0.6]), torch.tensor([0.5, 0.9]), tpr=1.0)
    0.5
    """
    _check_scores(scores_in, scores_out)
    if not 0 < tpr <= 1:
        raise ValueError(f"Expected tpr in (0, 1] but got {tpr}.")
    out = scores_out.detach().to(torch.float64).sort(descending=True).values
    needed = math.ceil(tpr * out.numel() - 1e-9)  # positives to flag, guarding 0.95 * 20
    threshold = out[needed - 1]
    return (scores_in.detach().to(torch.float64) >= threshold).double().mean().item()


def ood_scores(log_probs_in: torch.Tensor, log_probs_out: torch.Tensor) -> dict[str, float]:
    """OOD detection by predictive entropy, as the literature reports it.

    Returns
    -------
    dict of str to float
        ``auroc``; ``aupr_out`` (OOD inputs as positives, high entropy first) and ``aupr_in``
        (in-distribution inputs as positives, low entropy first); ``fpr_at_95_tpr``.

    Examples
    --------
    >>> import torch
    >>> confident = torch.tensor([[0.99, 0.01], [0.01, 0.99]]).log()
    >>> unsure = torch.tensor([[0.6, 0.4], [0.5, 0.5]]).log()
    >>> ood_scores(confident, unsure)
    {'auroc': 1.0, 'aupr_out': 1.0, 'aupr_in': 1.0, 'fpr_at_95_tpr': 0.0}
    """
    h_in, h_out = predictive_entropy(log_probs_in), predictive_entropy(log_probs_out)
    return {
        "auroc": auroc(h_in, h_out),
        "aupr_out": aupr(h_in, h_out),
        "aupr_in": aupr(-h_out, -h_in),
        "fpr_at_95_tpr": fpr_at_tpr(h_in, h_out, tpr=0.95),
    }
