"""Bernoulli and Categorical likelihoods built directly from network logits.

:func:`bernoulli` and :func:`categorical` build the distribution; the observe step around them
(plates, data-set scaling, masks, label checks) is in :mod:`pyro_logits.observe`. When
validating, the logits are checked for NaN, wrong dtypes and empty class dims (a
:class:`ValueError`), and for signs that they are not logits at all (a
:class:`~pyro_logits.LogitsWarning`, see :mod:`pyro_logits.checks`). ``validate=None``, the
default, follows Pyro's switch, :func:`pyro.enable_validation`. Models that hold
probabilities rather than scores pass ``probs=`` instead (exactly one of the two, as in
``torch.distributions``).

Bernoulli observations between 0 and 1 (pixel intensities, as Pyro's VAE examples observe them
with ``validate_args=False``) are refused when validating; without validation they get the
likelihood ``x log p + (1 - x) log(1 - p)``, exactly as ``dist.Bernoulli`` does.

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
from pyro.util import ignore_jit_warnings
from torch.distributions.utils import broadcast_all

from pyro_logits.checks import CHECKED_MARK, WarnedLocations, warn_if_misused

__all__ = ["bernoulli", "categorical"]

# The helpers warn once per line of user code and kind of mistake, not once per call.
_WARNED = WarnedLocations()


def resolve_validate(validate: bool | None) -> bool:
    """``validate`` itself, or Pyro's validation switch when it is ``None``."""
    return is_validation_enabled() if validate is None else bool(validate)


class _ExactBernoulli(dist.Bernoulli):
    """A Pyro Bernoulli whose ``log_prob`` and ``entropy`` stay exact for ``+-inf`` logits.

    ``torch.distributions.Bernoulli`` computes both through ``binary_cross_entropy_with_logits``,
    which gives NaN at infinite logits (``inf - inf``); here each outcome uses its own
    ``logsigmoid``, which is exact (``logsigmoid(+inf) = 0``, ``logsigmoid(-inf) = -inf``).
    Values between 0 and 1, which only pass without validation, get torch's
    ``x log p + (1 - x) log(1 - p)``.
    """

    def log_prob(self, value: torch.Tensor) -> torch.Tensor:
        if self._validate_args:
            self._validate_sample(value)
        logits, value = broadcast_all(self.logits, value)
        log_p, log_q = F.logsigmoid(logits), F.logsigmoid(-logits)
        # x log p + (1 - x) log(1 - p), as torch computes it for values in (0, 1) (Pyro's VAE
        # examples observe pixel intensities so); 0 and 1 take one term alone, which stays
        # exact where the other is infinite.
        relaxed = value * log_p + (1 - value) * log_q
        return torch.where(value == 1, log_p, torch.where(value == 0, log_q, relaxed))

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


# check_logits() skips the distributions a helper has checked (and warned about) already. The
# mark is a class attribute, so that it survives the new instances expand() makes in plates.
class _CheckedBernoulli(_ExactBernoulli):
    """An :class:`_ExactBernoulli` whose logits a helper has checked."""


class _CheckedCategorical(dist.Categorical):
    """A Categorical whose logits (or probabilities) a helper has checked."""


setattr(_CheckedBernoulli, CHECKED_MARK, True)
setattr(_CheckedCategorical, CHECKED_MARK, True)


def _describe(x: torch.Tensor) -> str:
    return f"dtype {x.dtype} and shape {tuple(x.shape)}"


def one_parameter(
    logits: torch.Tensor | None, probs: torch.Tensor | None, function: str
) -> tuple[str, torch.Tensor]:
    """``("logits", logits)`` or ``("probs", probs)``: exactly one must be given."""
    if (logits is None) == (probs is None):
        got = "both" if logits is not None else "neither"
        raise ValueError(
            f"Expected exactly one of logits= or probs= for {function} but got {got}; pass the "
            f"raw network scores as logits=, or probabilities as probs=."
        )
    return ("logits", logits) if logits is not None else ("probs", probs)  # type: ignore[return-value]


def _check_tensor(x: object, where: str, *, class_dim: bool) -> bool:
    """Raise a clear error for non-tensors, non-float dtypes, empty class dims and NaN.

    Returns whether every value is finite: one pass and one sync settle the common case.
    """
    if not isinstance(x, torch.Tensor):
        raise TypeError(
            f"Expected {where} to be a torch.Tensor but got {type(x).__name__}; "
            f"wrap it with torch.as_tensor(..., dtype=torch.float32)."
        )
    if not x.is_floating_point():
        raise ValueError(
            f"Expected {where} to be a floating-point tensor but got {_describe(x)}; "
            f"logits and probabilities are real numbers: convert with .float() (labels belong "
            f"in obs)."
        )
    if class_dim and (x.dim() == 0 or x.shape[-1] == 0):
        raise ValueError(
            f"Expected {where} to have a non-empty class dim (the last dim) but got shape "
            f"{tuple(x.shape)}; a Categorical's parameters have shape (..., num_classes)."
        )
    if class_dim and x.shape[-1] == 1:
        raise ValueError(
            f"Expected {where} to have at least 2 classes (the last dim) but got shape "
            f"{tuple(x.shape)}: a one-class Categorical gives its class probability 1 and "
            f"no gradient. For a binary head use pyro_logits.bernoulli(logits.squeeze(-1))."
        )
    if torch.isfinite(x).all():
        return True
    if torch.isnan(x).any():
        bad = int(torch.isnan(x).sum())
        raise ValueError(
            f"Expected {where} to hold no NaN but got {bad} NaN value(s) in a tensor of shape "
            f"{tuple(x.shape)}; check the network's inputs and learning rate "
            f"(torch.autograd.set_detect_anomaly(True) finds where they appear)."
        )
    return False


def _check_probs(probs: torch.Tensor, where: str, *, class_dim: bool) -> None:
    """Raise when ``probs`` are not probabilities: outside [0, 1], or a row with no mass."""
    _check_tensor(probs, where, class_dim=class_dim)
    outside = (probs < 0) | (probs > 1)
    if outside.any():
        example = probs[outside].flatten()[0].item()
        raise ValueError(
            f"Expected {where} to hold probabilities in [0, 1] but got values such as "
            f"{example!r}; raw network scores are logits: pass them as logits=."
        )
    if class_dim and (probs.sum(-1) == 0).any():
        raise ValueError(
            f"Expected every row of {where} to give some class a positive probability but a "
            f"row of shape {tuple(probs.shape)} is all 0."
        )


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


# Under torch.jit.trace (JitTrace_ELBO) the checks read the shapes and values of the traced call
# alone, as Pyro's own shape checks do: the tracer's warning about it is not the user's concern.
# (A context manager used as a decorator starts afresh on every call.)
checks_under_jit = ignore_jit_warnings(["Converting a tensor to a Python boolean"])


@checks_under_jit
def build_bernoulli(
    parameter: str, x: torch.Tensor, event_dim: int, validate: bool, where: str
) -> dist.Bernoulli | dist.Independent:
    """:func:`bernoulli` for the helpers: ``x`` is the ``parameter`` (logits or probs) given."""
    if validate:
        if parameter == "probs":
            _check_probs(x, where, class_dim=False)
        else:
            _check_tensor(x, where, class_dim=False)
            warn_if_misused(x, "bernoulli", where=where, once=_WARNED)
    if isinstance(event_dim, bool) or not isinstance(event_dim, int):
        raise TypeError(f"Expected event_dim to be an int but got {event_dim!r}.")
    if not 0 <= event_dim <= x.dim():
        raise ValueError(
            f"Expected event_dim between 0 and {x.dim()} (the dims of {where}) but got {event_dim}."
        )
    kind = _CheckedBernoulli if validate else _ExactBernoulli
    d = kind(**{parameter: x}, validate_args=False if not validate else None)
    return d.to_event(event_dim) if event_dim else d


@checks_under_jit
def build_categorical(
    parameter: str, x: torch.Tensor, validate: bool, where: str
) -> dist.Categorical:
    """:func:`categorical` for the helpers: ``x`` is the ``parameter`` (logits or probs) given."""
    if parameter == "probs":
        if validate:
            _check_probs(x, where, class_dim=True)
        kind = _CheckedCategorical if validate else dist.Categorical
        return kind(probs=x, validate_args=False if not validate else None)
    if validate:
        finite = _check_tensor(x, where, class_dim=True)
        warn_if_misused(x, "categorical", where=where, once=_WARNED)
        if not finite:
            _check_infinities(x, where)
            x = _resolve_positive_infinity(x)
    else:
        x = _resolve_positive_infinity(x)
    kind = _CheckedCategorical if validate else dist.Categorical
    return kind(logits=x, validate_args=False if not validate else None)


def bernoulli(
    logits: torch.Tensor | None = None,
    *,
    probs: torch.Tensor | None = None,
    event_dim: int = 0,
    validate: bool | None = None,
) -> dist.Bernoulli | dist.Independent:
    """A Pyro Bernoulli likelihood parametrised by logits (or probabilities).

    Parameters
    ----------
    logits : torch.Tensor, optional
        Log-odds ``log p - log(1 - p)`` of the event ``x = 1``: the raw network output, *not*
        ``sigmoid`` or ``logsigmoid`` of it. ``+-inf`` is allowed (probability 1 or 0).
    probs : torch.Tensor, optional
        Probabilities of ``x = 1``, for models that have probabilities rather than scores.
        Exactly one of ``logits`` and ``probs`` is given, as in ``torch.distributions``.
    event_dim : int
        Number of rightmost dims to treat as one event (``.to_event(event_dim)``), e.g. 1 for
        the pixels of an image.
    validate : bool, optional
        Check dtype and NaN (raising :class:`ValueError`), refuse probabilities outside
        ``[0, 1]`` and values other than 0 and 1 in ``log_prob``, and warn when the logits look
        like probabilities or log-probabilities. ``None`` (the default) follows
        :func:`pyro.enable_validation`.

    Returns
    -------
    pyro.distributions.Bernoulli or pyro.distributions.Independent
        A Bernoulli (a subclass whose ``log_prob`` and ``entropy`` are exact at infinite logits),
        wrapped in ``Independent`` when ``event_dim > 0``. Without validation ``log_prob`` of a
        value ``x`` between 0 and 1 is ``x log p + (1 - x) log(1 - p)``, as
        ``dist.Bernoulli(logits=z, validate_args=False)`` gives: the "relaxed" likelihood of
        Pyro's VAE examples, which observe pixel intensities.

    Raises
    ------
    ValueError
        On both or neither of ``logits`` and ``probs``, on NaN, a non-floating dtype, or an
        ``event_dim`` larger than the parameter's rank; when validating, on probabilities
        outside ``[0, 1]``.

    Examples
    --------
    >>> import torch
    >>> d = bernoulli(torch.tensor([-90.0, 0.0, 90.0]))
    >>> d.log_prob(torch.tensor([1.0, 1.0, 0.0]))  # exact where sigmoid(-90) is 0 in float32
    tensor([-90.0000,  -0.6931, -90.0000])
    >>> bernoulli(torch.tensor([0.0]), validate=False).log_prob(torch.tensor([0.3]))
    tensor([-0.6931])
    """
    parameter, x = one_parameter(logits, probs, "pyro_logits.bernoulli")
    where = f"argument {parameter!r} of pyro_logits.bernoulli"
    return build_bernoulli(parameter, x, event_dim, resolve_validate(validate), where)


def categorical(
    logits: torch.Tensor | None = None,
    *,
    probs: torch.Tensor | None = None,
    validate: bool | None = None,
) -> dist.Categorical:
    """A Pyro Categorical likelihood over the last dim, parametrised by logits (or probabilities).

    Parameters
    ----------
    logits : torch.Tensor, optional
        Unnormalised scores of shape ``(..., num_classes)``: the raw network output. Categorical
        normalises them itself, so ``log_softmax`` first is redundant and ``softmax`` first is
        wrong. ``-inf`` gives a class probability 0; a single ``+inf`` in a row gives its class
        probability 1.
    probs : torch.Tensor, optional
        Class probabilities of shape ``(..., num_classes)``, for models that have probabilities
        rather than scores (a topic's word distribution, a ``pyro.param`` on the simplex).
        Exactly one of ``logits`` and ``probs`` is given, as in ``torch.distributions``.
    validate : bool, optional
        Check dtype, NaN, the class dim and undefined infinities (raising :class:`ValueError`),
        refuse probabilities outside ``[0, 1]``, and warn when the logits look like
        probabilities or log-probabilities. ``None`` (the default) follows
        :func:`pyro.enable_validation`.

    Returns
    -------
    pyro.distributions.Categorical

    Raises
    ------
    ValueError
        On both or neither of ``logits`` and ``probs``; when validating: on NaN, a non-floating
        dtype, an empty or one-class class dim, a row of all ``-inf`` or several ``+inf`` in one
        row, probabilities outside ``[0, 1]`` or a row of zero probabilities.

    Examples
    --------
    >>> import torch
    >>> d = categorical(torch.tensor([[2.0, 0.0, float("-inf")]]))
    >>> d.probs
    tensor([[0.8808, 0.1192, 0.0000]])
    >>> categorical(probs=torch.tensor([[0.25, 0.75]])).log_prob(torch.tensor([1]))
    tensor([-0.2877])
    """
    parameter, x = one_parameter(logits, probs, "pyro_logits.categorical")
    where = f"argument {parameter!r} of pyro_logits.categorical"
    return build_categorical(parameter, x, resolve_validate(validate), where)
