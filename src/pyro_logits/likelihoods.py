"""Bernoulli and Categorical likelihoods built directly from network logits.

:func:`bernoulli` and :func:`categorical` build the distribution; the observe step around them
(plates, data-set scaling, masks, label checks) is in :mod:`pyro_logits.observe`. When
validating, the logits are checked for NaN, wrong dtypes and empty class dims (a
:class:`ValueError`), and for signs that they are not logits at all (a
:class:`~pyro_logits.LogitsWarning`, see :mod:`pyro_logits.checks`). ``validate=None``, the
default, follows Pyro's switch, :func:`pyro.enable_validation`.

Infinite logits follow the mathematics, validated or not: a Bernoulli logit of ``+inf`` is the
event ``x = 1`` with probability 1, a categorical logit of ``-inf`` gives its class probability
0 and a single ``+inf`` in a row gives its class probability 1.
"""

from __future__ import annotations

import math

import pyro.distributions as dist
import torch
import torch.nn.functional as F
from pyro.poutine.util import is_validation_enabled
from torch.distributions.utils import broadcast_all

from pyro_logits.checks import CHECKED_MARK, warn_if_misused

__all__ = ["bernoulli", "categorical"]


def resolve_validate(validate: bool | None) -> bool:
    """``validate`` itself, or Pyro's validation switch when it is ``None``."""
    return is_validation_enabled() if validate is None else bool(validate)


class _ExactBernoulli(dist.Bernoulli):
    """A Pyro Bernoulli whose ``log_prob`` and ``entropy`` stay exact for ``+-inf`` logits.

    ``torch.distributions.Bernoulli`` computes both through ``binary_cross_entropy_with_logits``,
    which gives NaN at infinite logits (``inf - inf``); here each outcome uses its own
    ``logsigmoid``, which is exact (``logsigmoid(+inf) = 0``, ``logsigmoid(-inf) = -inf``).
    """

    def log_prob(self, value: torch.Tensor) -> torch.Tensor:
        if self._validate_args:
            self._validate_sample(value)
        logits, value = broadcast_all(self.logits, value)
        return torch.where(value != 0, F.logsigmoid(logits), F.logsigmoid(-logits))

    def entropy(self) -> torch.Tensor:
        # Symmetric in z: with a = |z|, H = log1p(e^-a) + a e^-a / (1 + e^-a), and H -> 0 as
        # a -> inf. a e^-a is taken as exp(log a - a), which stays a normal float where e^-a
        # alone would be subnormal (a > 87 in float32) and lose its precision.
        a = self.logits.abs()
        usable = torch.isfinite(a) & (a > 0)
        a = torch.where(usable, a, torch.ones_like(a))
        e = torch.exp(-a)
        h = torch.log1p(e) + torch.exp(torch.log(a) - a) / (1 + e)
        at_zero = torch.full_like(h, math.log(2))
        return torch.where(usable, h, torch.where(self.logits == 0, at_zero, torch.zeros_like(h)))


def _describe(x: torch.Tensor) -> str:
    return f"dtype {x.dtype} and shape {tuple(x.shape)}"


def _check_logits_tensor(logits: object, where: str, *, class_dim: bool) -> bool:
    """Raise a clear error for non-tensors, non-float dtypes, empty class dims and NaN.

    Returns whether every logit is finite: one pass and one sync settle the common case.
    """
    if not isinstance(logits, torch.Tensor):
        raise TypeError(
            f"Expected {where} to be a torch.Tensor of logits but got {type(logits).__name__}; "
            f"wrap it with torch.as_tensor(..., dtype=torch.float32)."
        )
    if not logits.is_floating_point():
        raise ValueError(
            f"Expected {where} to be a floating-point tensor but got {_describe(logits)}; "
            f"logits are real-valued scores: convert with .float() (labels belong in obs)."
        )
    if class_dim and (logits.dim() == 0 or logits.shape[-1] == 0):
        raise ValueError(
            f"Expected {where} to have a non-empty class dim (the last dim) but got shape "
            f"{tuple(logits.shape)}; categorical logits have shape (..., num_classes)."
        )
    if class_dim and logits.shape[-1] == 1:
        raise ValueError(
            f"Expected {where} to have at least 2 classes (the last dim) but got shape "
            f"{tuple(logits.shape)}: a one-class Categorical gives its class probability 1 and "
            f"no gradient. For a binary head use pyro_logits.bernoulli(logits.squeeze(-1))."
        )
    if torch.isfinite(logits).all():
        return True
    if torch.isnan(logits).any():
        bad = int(torch.isnan(logits).sum())
        raise ValueError(
            f"Expected {where} to hold no NaN but got {bad} NaN value(s) in a tensor of shape "
            f"{tuple(logits.shape)}; check the network's inputs and learning rate "
            f"(torch.autograd.set_detect_anomaly(True) finds where they appear)."
        )
    return False


def _check_infinities(logits: torch.Tensor, where: str) -> None:
    """Raise on rows whose limit is undefined: all ``-inf``, or several ``+inf``."""
    if (logits == float("-inf")).all(dim=-1).any():
        raise ValueError(
            f"Expected {where} to give some class a finite or +inf logit in every row, but a row "
            f"of shape {tuple(logits.shape)} is all -inf (no class has any probability)."
        )
    if ((logits == float("inf")).sum(dim=-1) > 1).any():
        raise ValueError(
            f"Expected at most one +inf logit per row in {where} but a row has several; "
            f"the limit is ambiguous: replace them with large finite values that say which wins."
        )


def _resolve_positive_infinity(logits: torch.Tensor) -> torch.Tensor:
    """Give a row's ``+inf`` class logit 0 and every other class ``-inf``: all mass on it.

    Elementwise only (no host sync); without it Categorical's normalisation gives NaN
    (``inf - inf``).
    """
    pos_inf = logits == float("inf")
    degenerate = torch.where(pos_inf, torch.zeros_like(logits), torch.full_like(logits, -torch.inf))
    return torch.where(pos_inf.any(dim=-1, keepdim=True), degenerate, logits)


def _bernoulli(
    logits: torch.Tensor, event_dim: int, validate: bool, where: str
) -> dist.Bernoulli | dist.Independent:
    if validate:
        _check_logits_tensor(logits, where, class_dim=False)
        warn_if_misused(logits, "bernoulli", where=where)
    if isinstance(event_dim, bool) or not isinstance(event_dim, int):
        raise TypeError(f"Expected event_dim to be an int but got {event_dim!r}.")
    if not 0 <= event_dim <= logits.dim():
        raise ValueError(
            f"Expected event_dim between 0 and {logits.dim()} (the dims of {where}) but got "
            f"{event_dim}."
        )
    d = _ExactBernoulli(logits=logits, validate_args=False if not validate else None)
    setattr(d, CHECKED_MARK, validate)
    return d.to_event(event_dim) if event_dim else d


def _categorical(logits: torch.Tensor, validate: bool, where: str) -> dist.Categorical:
    if validate:
        finite = _check_logits_tensor(logits, where, class_dim=True)
        warn_if_misused(logits, "categorical", where=where)
        if not finite:
            _check_infinities(logits, where)
            logits = _resolve_positive_infinity(logits)
    else:
        logits = _resolve_positive_infinity(logits)
    d = dist.Categorical(logits=logits, validate_args=False if not validate else None)
    setattr(d, CHECKED_MARK, validate)
    return d


def bernoulli(
    logits: torch.Tensor, *, event_dim: int = 0, validate: bool | None = None
) -> dist.Bernoulli | dist.Independent:
    """A Pyro Bernoulli likelihood parametrised by logits.

    Parameters
    ----------
    logits : torch.Tensor
        Log-odds ``log p - log(1 - p)`` of the event ``x = 1``: the raw network output, *not*
        ``sigmoid`` or ``logsigmoid`` of it. ``+-inf`` is allowed (probability 1 or 0).
    event_dim : int
        Number of rightmost dims to treat as one event (``.to_event(event_dim)``), e.g. 1 for
        the pixels of an image.
    validate : bool, optional
        Check dtype and NaN (raising :class:`ValueError`) and warn when the values look like
        probabilities or log-probabilities rather than logits. ``False`` skips all checks and
        changes no result; ``None`` (the default) follows :func:`pyro.enable_validation`.

    Returns
    -------
    pyro.distributions.Bernoulli or pyro.distributions.Independent
        A Bernoulli (a subclass whose ``log_prob`` and ``entropy`` are exact at infinite logits),
        wrapped in ``Independent`` when ``event_dim > 0``.

    Raises
    ------
    ValueError
        On NaN, a non-floating dtype, or an ``event_dim`` larger than the logits' rank.

    Examples
    --------
    >>> import torch
    >>> d = bernoulli(torch.tensor([-90.0, 0.0, 90.0]))
    >>> d.log_prob(torch.tensor([1.0, 1.0, 0.0]))  # exact where sigmoid(-90) is 0 in float32
    tensor([-90.0000,  -0.6931, -90.0000])
    """
    where = "argument 'logits' of pyro_logits.bernoulli"
    return _bernoulli(logits, event_dim, resolve_validate(validate), where)


def categorical(logits: torch.Tensor, *, validate: bool | None = None) -> dist.Categorical:
    """A Pyro Categorical likelihood over the last dim, parametrised by logits.

    Parameters
    ----------
    logits : torch.Tensor
        Unnormalised scores of shape ``(..., num_classes)``: the raw network output. Categorical
        normalises them itself, so ``log_softmax`` first is redundant and ``softmax`` first is
        wrong. ``-inf`` gives a class probability 0; a single ``+inf`` in a row gives its class
        probability 1.
    validate : bool, optional
        Check dtype, NaN, the class dim and undefined infinities (raising :class:`ValueError`)
        and warn when the values look like probabilities or log-probabilities. ``False`` skips
        all checks and changes no result; ``None`` (the default) follows
        :func:`pyro.enable_validation`.

    Returns
    -------
    pyro.distributions.Categorical

    Raises
    ------
    ValueError
        When validating: on NaN, a non-floating dtype, an empty or one-class class dim, a row
        of all ``-inf`` or several ``+inf`` in one row.

    Examples
    --------
    >>> import torch
    >>> d = categorical(torch.tensor([[2.0, 0.0, float("-inf")]]))
    >>> d.probs
    tensor([[0.8808, 0.1192, 0.0000]])
    """
    where = "argument 'logits' of pyro_logits.categorical"
    return _categorical(logits, resolve_validate(validate), where)
