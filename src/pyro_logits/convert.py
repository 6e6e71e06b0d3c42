"""Conversions between probabilities and logits that stay accurate where the maths is finite.

Conventions follow :mod:`torch.distributions`: a *binary* logit ``z`` is the log-odds
``log(p) - log(1 - p)`` of the event ``x = 1``; *categorical* logits are unnormalised
log-probabilities over the last dim, defined up to an additive constant per row.

Every function works in the input's dtype, so float32 inputs give float32 outputs, and is
accurate to a few units in the last place against a float64 reference (see the tests).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

__all__ = [
    "binary_to_categorical_logits",
    "categorical_to_binary_logits",
    "log_mean_exp",
    "logit",
    "logits_to_probs",
    "predictive_log_probs",
    "probs_to_logits",
]


def logit(p: torch.Tensor, eps: float | None = None) -> torch.Tensor:
    """Log-odds ``log(p) - log1p(-p)`` of probabilities ``p``.

    Unlike ``log(p / (1 - p))`` evaluated naively, this keeps full relative accuracy near
    ``p = 1/2`` (where the logit is close to 0) and in both tails. Note that ``log10(p)`` (that
    is ``log(p) / ln(10)``) is *not* a logit: it is a base-10 log-probability.

    Parameters
    ----------
    p : torch.Tensor
        Probabilities in ``[0, 1]``. Integer and bool tensors are read as probabilities 0 and 1
        in the default float dtype, as :func:`torch.logit` does.
    eps : float, optional
        When given, ``p`` is first clamped to ``[eps, 1 - eps]`` exactly as :func:`torch.logit`
        does, so ``logit(0)`` and ``logit(1)`` are finite; it must lie in ``[0, 0.5]``. When
        ``None`` (the default), ``p = 0`` and ``p = 1`` give ``-inf`` and ``+inf``.

    Returns
    -------
    torch.Tensor
        The log-odds, same shape as ``p`` (and dtype, for floating ``p``).

    Raises
    ------
    TypeError
        If ``p`` is not a tensor.
    ValueError
        If ``eps`` is outside ``[0, 0.5]``.

    Examples
    --------
    >>> import torch
    >>> logit(torch.tensor([0.5, 0.9, 0.0]))
    tensor([0.0000, 2.1972,   -inf])
    >>> logit(torch.tensor([0.0, 1.0]), eps=1e-6)
    tensor([-13.8155,  13.8023])
    """
    if not isinstance(p, torch.Tensor):
        raise TypeError(
            f"Expected p to be a torch.Tensor of probabilities but got {type(p).__name__}; "
            f"wrap it with torch.as_tensor(p, dtype=torch.float32)."
        )
    if not p.is_floating_point():
        p = p.to(torch.get_default_dtype())
    if eps is not None:
        if isinstance(eps, bool) or not isinstance(eps, (int, float)) or not 0 <= eps <= 0.5:
            raise ValueError(
                f"Expected eps in [0, 0.5] (p is clamped to [eps, 1 - eps]) but got {eps!r}."
            )
        # The same bounds torch.logit uses: eps and 1 - eps, both rounded to p's dtype.
        lo = torch.tensor(eps, dtype=p.dtype, device=p.device)
        p = p.clamp(lo, 1 - lo)
    # Near 1/2 the two logs cancel; there log1p((2p - 1) / (1 - p)) is exact to rounding,
    # since 2p - 1 is computed without error for p in [1/4, 1].
    # Each branch sees a harmless stand-in where it is not used, so no inf/nan reaches autograd.
    centre = (p - 0.5).abs() < 0.25
    p_centre = torch.where(centre, p, torch.full_like(p, 0.5))
    near_half = torch.log1p((2 * p_centre - 1) / (1 - p_centre))
    tails = torch.log(p) - torch.log1p(-p)
    return torch.where(centre, near_half, tails)


def probs_to_logits(probs: torch.Tensor, *, is_binary: bool = False) -> torch.Tensor:
    """Turn probabilities into logits.

    Parameters
    ----------
    probs : torch.Tensor
        Binary probabilities of ``x = 1`` when ``is_binary``; otherwise categorical probabilities
        over the last dim (they need not be normalised: the logits are defined up to a constant).
    is_binary : bool
        Whether ``probs`` are Bernoulli probabilities.

    Returns
    -------
    torch.Tensor
        ``logit(probs)`` when binary, else ``log(probs)`` (``-inf`` where a probability is 0,
        which :class:`~pyro.distributions.Categorical` handles as probability 0). Unlike
        :func:`torch.distributions.utils.probs_to_logits`, nothing is clamped.

    Examples
    --------
    >>> import torch
    >>> probs_to_logits(torch.tensor([0.25, 0.75]), is_binary=True)
    tensor([-1.0986,  1.0986])
    >>> probs_to_logits(torch.tensor([0.5, 0.5, 0.0]))
    tensor([-0.6931, -0.6931,    -inf])
    """
    if is_binary:
        return logit(probs)
    return torch.log(probs)


def logits_to_probs(logits: torch.Tensor, *, is_binary: bool = False) -> torch.Tensor:
    """Turn logits into probabilities: ``sigmoid`` when binary, else ``softmax`` over the last dim.

    Parameters
    ----------
    logits : torch.Tensor
        Bernoulli logits when ``is_binary``, else categorical logits over the last dim.
    is_binary : bool
        Whether ``logits`` are Bernoulli logits.

    Returns
    -------
    torch.Tensor
        Probabilities, same shape as ``logits``.

    Examples
    --------
    >>> import torch
    >>> logits_to_probs(torch.tensor([0.0, 2.0]), is_binary=True)
    tensor([0.5000, 0.8808])
    >>> logits_to_probs(torch.tensor([0.0, 0.0, float("-inf")]))
    tensor([0.5000, 0.5000, 0.0000])
    """
    if is_binary:
        return torch.sigmoid(logits)
    return torch.softmax(logits, dim=-1)


def binary_to_categorical_logits(logits: torch.Tensor) -> torch.Tensor:
    """Two-class categorical logits ``[0, z]`` equivalent to Bernoulli logits ``z``.

    ``Categorical(logits=binary_to_categorical_logits(z))`` gives class 1 the probability
    ``sigmoid(z)``, the same as ``Bernoulli(logits=z)`` gives the event ``x = 1``.

    Parameters
    ----------
    logits : torch.Tensor
        Bernoulli logits of any shape ``S``.

    Returns
    -------
    torch.Tensor
        Shape ``S + (2,)``.

    Examples
    --------
    >>> import torch
    >>> binary_to_categorical_logits(torch.tensor([1.5, -2.0]))
    tensor([[ 0.0000,  1.5000],
            [ 0.0000, -2.0000]])
    """
    return torch.stack([torch.zeros_like(logits), logits], dim=-1)


def categorical_to_binary_logits(logits: torch.Tensor) -> torch.Tensor:
    """Bernoulli logits of class 1 from two-class categorical logits.

    The result is ``logits[..., 1] - logits[..., 0]``.

    Parameters
    ----------
    logits : torch.Tensor
        Categorical logits with a last dim of size 2.

    Returns
    -------
    torch.Tensor
        Shape ``logits.shape[:-1]``.

    Raises
    ------
    ValueError
        If the last dim is not of size 2.

    Examples
    --------
    >>> import torch
    >>> categorical_to_binary_logits(torch.tensor([[3.0, 4.5], [0.0, -2.0]]))
    tensor([ 1.5000, -2.0000])
    """
    if logits.dim() == 0 or logits.shape[-1] != 2:
        raise ValueError(
            f"Expected categorical logits with a last dim of size 2 but got shape "
            f"{tuple(logits.shape)}; only two-class logits have a Bernoulli equivalent."
        )
    return logits[..., 1] - logits[..., 0]


def log_mean_exp(x: torch.Tensor, dim: int, *, keepdim: bool = False) -> torch.Tensor:
    """``log(mean(exp(x), dim))`` computed without overflow or underflow.

    Parameters
    ----------
    x : torch.Tensor
        Values in log space (``-inf`` allowed).
    dim : int
        The dim to average over.
    keepdim : bool
        Keep ``dim`` with size 1.

    Returns
    -------
    torch.Tensor
        ``logsumexp(x, dim) - log(n)``, with ``n = x.shape[dim]``.

    Raises
    ------
    ValueError
        If ``dim`` is out of range or empty (the mean of nothing is undefined), or ``x`` holds
        NaN.

    Examples
    --------
    >>> import torch
    >>> log_mean_exp(torch.tensor([-1000.0, -1000.0]), dim=0)
    tensor(-1000.)
    """
    _check_dim(x, dim, "x")
    if torch.isnan(x).any():
        raise ValueError(
            f"Expected x without NaN but got {int(torch.isnan(x).sum())} NaN value(s) in a tensor "
            f"of shape {tuple(x.shape)}; check what produced it."
        )
    n = x.shape[dim]
    if n == 0:
        raise ValueError(
            f"Expected at least one value along dim {dim} but got shape {tuple(x.shape)}."
        )
    return torch.logsumexp(x, dim=dim, keepdim=keepdim) - math.log(n)


def predictive_log_probs(
    logit_samples: torch.Tensor, dim: int = 0, *, is_binary: bool = False
) -> torch.Tensor:
    """Log posterior-predictive probabilities from logits drawn under posterior samples.

    Computes ``log(mean_s softmax(logits_s))`` (or ``sigmoid`` when binary) in log space as
    ``log_mean_exp(log_softmax(logits), dim)``: the Bayesian model average of the *predictions*.
    Averaging the logits first, ``softmax(mean_s logits_s)``, is a different and wrong quantity:
    it discards the disagreement between samples and is over-confident.

    Parameters
    ----------
    logit_samples : torch.Tensor
        Logits with a sample dim ``dim``; categorical logits have their classes in the last dim.
    dim : int
        The sample dim, averaged out. For categorical logits it must not be the class dim.
    is_binary : bool
        When true, ``logit_samples`` are Bernoulli logits and the result is ``log P(x = 1)``.

    Returns
    -------
    torch.Tensor
        Log-probabilities with the sample dim removed: normalised over the last dim for
        categorical logits (``exp`` sums to 1).

    Raises
    ------
    ValueError
        If ``dim`` is out of range or the class dim of categorical logits, or the logits hold
        NaN. A row with one ``+inf`` logit puts all its mass on that class, as
        :func:`~pyro_logits.categorical` does.

    Examples
    --------
    >>> import torch
    >>> samples = torch.tensor([[[4.0, -4.0]], [[-4.0, 4.0]]])  # 2 samples, 1 input, 2 classes
    >>> predictive_log_probs(samples).exp()  # the two samples disagree: 50/50
    tensor([[0.5000, 0.5000]])
    """
    _check_dim(logit_samples, dim, "logit_samples")
    if is_binary:
        return log_mean_exp(F.logsigmoid(logit_samples), dim)
    if logit_samples.dim() < 2 or dim % logit_samples.dim() == logit_samples.dim() - 1:
        raise ValueError(
            f"Expected a sample dim other than the class (last) dim but got dim={dim} for "
            f"logits of shape {tuple(logit_samples.shape)}; pass the dim that indexes samples."
        )
    pos_inf = logit_samples == math.inf
    if pos_inf.any():  # one +inf in a row: that class has probability 1 (log 0, others -inf)
        if (pos_inf.sum(-1) > 1).any():
            raise ValueError(
                "Expected at most one +inf logit per row but a row has several; the limit is "
                "ambiguous: replace them with large finite values that say which wins."
            )
        degenerate = torch.where(pos_inf, 0.0, -math.inf).to(logit_samples.dtype)
        logit_samples = torch.where(pos_inf.any(-1, keepdim=True), degenerate, logit_samples)
    return log_mean_exp(torch.log_softmax(logit_samples, dim=-1), dim)


def _check_dim(x: torch.Tensor, dim: int, name: str) -> None:
    if not isinstance(x, torch.Tensor):
        raise TypeError(f"Expected {name} to be a torch.Tensor but got {type(x).__name__}.")
    if isinstance(dim, bool) or not isinstance(dim, int) or not -x.dim() <= dim < max(x.dim(), 1):
        raise ValueError(
            f"Expected dim in [{-x.dim()}, {x.dim() - 1}] for {name} of shape "
            f"{tuple(x.shape)} but got {dim!r}."
        )
