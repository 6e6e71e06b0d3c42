"""Bernoulli and Categorical likelihoods built directly from network logits.

:func:`bernoulli` and :func:`categorical` build the distribution; :func:`observe_bernoulli` and
:func:`observe_categorical` are the whole likelihood step inside a Pyro model: the data plate
(with data-set scaling for minibatches), an optional mask, label checks and the observed
``pyro.sample``. With ``validate=True`` (the default) the logits are checked for NaN, wrong dtypes
and empty class dims (a :class:`ValueError`), and for signs that they are not logits at all
(a :class:`~pyro_logits.LogitsWarning`, see :mod:`pyro_logits.checks`).

Infinite logits follow the mathematics: a Bernoulli logit of ``+inf`` is the event ``x = 1`` with
probability 1, a categorical logit of ``-inf`` gives its class probability 0.
"""

from __future__ import annotations

import math

import pyro
import pyro.distributions as dist
import torch
import torch.nn.functional as F
from torch.distributions.utils import broadcast_all

from pyro_logits.checks import CHECKED_MARK, warn_if_misused

__all__ = ["bernoulli", "categorical", "observe_bernoulli", "observe_categorical"]


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


def _resolve_positive_infinity(logits: torch.Tensor, where: str) -> torch.Tensor:
    """Rows with one ``+inf`` logit put all mass on that class; all ``-inf`` rows are invalid."""
    if (logits == float("-inf")).all(dim=-1).any():
        raise ValueError(
            f"Expected {where} to give some class a finite or +inf logit in every row, but a row "
            f"of shape {tuple(logits.shape)} is all -inf (no class has any probability)."
        )
    pos_inf = logits == float("inf")
    n_pos = pos_inf.sum(dim=-1, keepdim=True)
    if (n_pos > 1).any():
        raise ValueError(
            f"Expected at most one +inf logit per row in {where} but a row has several; "
            f"the limit is ambiguous: replace them with large finite values that say which wins."
        )
    degenerate = torch.where(pos_inf, torch.zeros_like(logits), torch.full_like(logits, -torch.inf))
    return torch.where(n_pos > 0, degenerate, logits)


def _bernoulli(logits: torch.Tensor, event_dim: int, validate: bool, where: str) -> dist.Bernoulli:
    if validate:
        _check_logits_tensor(logits, where, class_dim=False)
        warn_if_misused(logits, "bernoulli", where=where)
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
            logits = _resolve_positive_infinity(logits, where)
    d = dist.Categorical(logits=logits, validate_args=False if not validate else None)
    setattr(d, CHECKED_MARK, validate)
    return d


def bernoulli(
    logits: torch.Tensor, *, event_dim: int = 0, validate: bool = True
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
    validate : bool
        Check dtype and NaN (raising :class:`ValueError`) and warn when the values look like
        probabilities or log-probabilities rather than logits. ``False`` skips all checks.

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
    return _bernoulli(logits, event_dim, validate, "argument 'logits' of pyro_logits.bernoulli")


def categorical(logits: torch.Tensor, *, validate: bool = True) -> dist.Categorical:
    """A Pyro Categorical likelihood over the last dim, parametrised by logits.

    Parameters
    ----------
    logits : torch.Tensor
        Unnormalised scores of shape ``(..., num_classes)``: the raw network output. Categorical
        normalises them itself, so ``log_softmax`` first is redundant and ``softmax`` first is
        wrong. ``-inf`` gives a class probability 0; a single ``+inf`` in a row gives its class
        probability 1.
    validate : bool
        Check dtype, NaN and the class dim (raising :class:`ValueError`) and warn when the values
        look like probabilities or log-probabilities. ``False`` skips all checks.

    Returns
    -------
    pyro.distributions.Categorical

    Raises
    ------
    ValueError
        On NaN, a non-floating dtype, an empty class dim, a row of all ``-inf`` or several
        ``+inf`` in one row.

    Examples
    --------
    >>> import torch
    >>> d = categorical(torch.tensor([[2.0, 0.0, float("-inf")]]))
    >>> d.probs
    tensor([[0.8808, 0.1192, 0.0000]])
    """
    return _categorical(logits, validate, "argument 'logits' of pyro_logits.categorical")


def _data_plate(name: str, size: int, dataset_size: int | None, device: torch.device) -> pyro.plate:
    """The data plate at dim -1, scaled by ``dataset_size / size`` for a minibatch."""
    if dataset_size is None or dataset_size == size:
        return pyro.plate(f"{name}_data", size, dim=-1)
    if isinstance(dataset_size, bool) or not isinstance(dataset_size, int) or dataset_size < size:
        raise ValueError(
            f"Expected dataset_size to be an int >= the batch size {size} but got "
            f"{dataset_size!r}; pass the number of examples in the full training set."
        )
    # A fixed subsample (no random indices are drawn): only the scale size / subsample matters.
    subsample = torch.arange(size, device=device)
    return pyro.plate(f"{name}_data", dataset_size, subsample=subsample, dim=-1)


def _check_mask(mask: torch.Tensor | None, batch_shape: torch.Size, name: str) -> None:
    if mask is None:
        return
    if not isinstance(mask, torch.Tensor) or mask.dtype != torch.bool:
        got = mask.dtype if isinstance(mask, torch.Tensor) else type(mask).__name__
        raise ValueError(
            f"Expected mask for site {name!r} to be a bool tensor but got {got}; "
            f"use e.g. mask=(lengths > t) or mask.bool()."
        )
    try:
        torch.broadcast_shapes(mask.shape, batch_shape)
    except RuntimeError:
        raise ValueError(
            f"Expected mask for site {name!r} to broadcast to the batch shape "
            f"{tuple(batch_shape)} but got shape {tuple(mask.shape)}."
        ) from None


def _check_obs_shape(obs: torch.Tensor, expected: torch.Size, name: str, what: str) -> None:
    try:
        ok = torch.broadcast_shapes(obs.shape, expected) == expected
    except RuntimeError:
        ok = False
    if not ok or obs.dim() == 0:
        raise ValueError(
            f"Expected obs for site {name!r} to have shape {tuple(expected)} ({what}) but got "
            f"{tuple(obs.shape)}."
        )


def _check_class_labels(obs: object, batch_shape: torch.Size, num_classes: int, name: str) -> None:
    if not isinstance(obs, torch.Tensor):
        raise TypeError(
            f"Expected obs for site {name!r} to be a tensor of class labels but got "
            f"{type(obs).__name__}."
        )
    _check_obs_shape(obs, batch_shape, name, "one class label per row of logits")
    if obs.dtype == torch.bool or obs.is_complex():
        raise ValueError(f"Expected integer class labels for site {name!r} but got {obs.dtype}.")
    if obs.is_floating_point() and (obs != obs.floor()).any():
        raise ValueError(
            f"Expected integer class labels for site {name!r} but got non-integer values such "
            f"as {obs[obs != obs.floor()].flatten()[0].item()!r}; labels are class indices "
            f"(use obs.long(), or argmax for one-hot targets)."
        )
    out = (obs < 0) | (obs >= num_classes)
    if out.any():
        raise ValueError(
            f"Expected class labels in [0, {num_classes - 1}] for site {name!r} (the logits have "
            f"{num_classes} classes) but got {obs[out].flatten()[0].item()!r}; check the label "
            f"encoding or the number of network outputs."
        )


def _check_binary_obs(obs: object, shape: torch.Size, name: str) -> None:
    if not isinstance(obs, torch.Tensor):
        raise TypeError(
            f"Expected obs for site {name!r} to be a tensor of 0/1 outcomes but got "
            f"{type(obs).__name__}."
        )
    _check_obs_shape(obs, shape, name, "the shape of the logits")
    bad = (obs != 0) & (obs != 1)
    if bad.any():
        raise ValueError(
            f"Expected binary obs (0 or 1) for site {name!r} but got values such as "
            f"{obs[bad].flatten()[0].item()!r}; a Bernoulli observes outcomes, not probabilities "
            f"(for soft targets use a continuous likelihood)."
        )


def _observe(
    name: str,
    d: dist.TorchDistribution,
    obs: torch.Tensor | None,
    *,
    dataset_size: int | None,
    mask: torch.Tensor | None,
    validate: bool,
    device: torch.device,
) -> torch.Tensor:
    """Mask ``d`` and sample ``name`` inside the (scaled) data plate."""
    if validate:
        _check_mask(mask, d.batch_shape, name)
    with _data_plate(name, d.batch_shape[-1], dataset_size, device):
        fn = d.mask(mask) if mask is not None else d
        # The mark tells check_logits() that this site's logits were checked here already.
        return pyro.sample(name, fn, obs=obs, infer={CHECKED_MARK: validate})


def observe_bernoulli(
    name: str,
    logits: torch.Tensor,
    obs: torch.Tensor | None,
    *,
    dataset_size: int | None = None,
    mask: torch.Tensor | None = None,
    event_dim: int = 0,
    validate: bool = True,
) -> torch.Tensor:
    """Observe binary data under Bernoulli logits inside a Pyro model.

    Opens the data plate over the rightmost batch dim of ``logits`` (dim -1, named
    ``f"{name}_data"``; do not wrap the call in a plate of your own over the same data), scales
    the log-likelihood by ``dataset_size / batch_size`` when ``dataset_size`` is given, so the
    ELBO is an unbiased estimate for the full data set, applies ``mask`` and samples ``name``.

    Parameters
    ----------
    name : str
        The sample site's name.
    logits : torch.Tensor
        Bernoulli logits of shape ``(..., batch_size, *event_shape)``.
    obs : torch.Tensor or None
        0/1 outcomes with the shape of ``logits`` (float, int or bool); ``None`` samples instead
        (for prediction).
    dataset_size : int, optional
        Size of the full data set when ``logits`` cover a minibatch of it.
    mask : torch.Tensor, optional
        Bool tensor broadcastable to the batch shape; ``False`` entries do not count.
    event_dim : int
        Rightmost dims of ``logits`` forming one event (e.g. 1 for a vector of pixels).
    validate : bool
        Check logits and outcomes (errors) and warn on probabilities given as logits.

    Returns
    -------
    torch.Tensor
        The site's value: ``obs`` (as floats) when observed, else a sample.

    Raises
    ------
    ValueError
        On non-binary or wrongly shaped ``obs``, a bad ``mask`` or ``dataset_size``, and the
        logits errors of :func:`bernoulli`.

    Examples
    --------
    >>> import pyro, torch
    >>> def model(x, y):
    ...     return observe_bernoulli("y", 2.0 * x, y, dataset_size=1000)
    >>> trace = pyro.poutine.trace(model).get_trace(torch.randn(8), torch.ones(8))
    >>> trace.nodes["y"]["scale"]
    125.0
    """
    where = f"argument 'logits' of pyro_logits.observe_bernoulli (site {name!r})"
    d = _bernoulli(logits, event_dim, validate, where)
    if len(d.batch_shape) == 0:
        raise ValueError(
            f"Expected logits for site {name!r} with a batch dim (one row per data point) but got "
            f"shape {tuple(logits.shape)} with event_dim={event_dim}."
        )
    if obs is not None:
        if validate:
            _check_binary_obs(obs, logits.shape, name)
        obs = obs.to(logits.dtype) if obs.dtype != logits.dtype else obs
    return _observe(
        name, d, obs, dataset_size=dataset_size, mask=mask, validate=validate, device=logits.device
    )


def observe_categorical(
    name: str,
    logits: torch.Tensor,
    obs: torch.Tensor | None,
    *,
    dataset_size: int | None = None,
    mask: torch.Tensor | None = None,
    validate: bool = True,
) -> torch.Tensor:
    """Observe class labels under Categorical logits inside a Pyro model.

    Opens the data plate over the rightmost batch dim of ``logits`` (dim -1, named
    ``f"{name}_data"``; do not wrap the call in a plate of your own over the same data), scales
    the log-likelihood by ``dataset_size / batch_size`` when ``dataset_size`` is given, so the
    ELBO is an unbiased estimate for the full data set, applies ``mask`` and samples ``name``.

    Parameters
    ----------
    name : str
        The sample site's name.
    logits : torch.Tensor
        Raw network scores of shape ``(..., batch_size, num_classes)``.
    obs : torch.Tensor or None
        Integer class labels of shape ``(..., batch_size)``; ``None`` samples instead.
    dataset_size : int, optional
        Size of the full data set when ``logits`` cover a minibatch of it.
    mask : torch.Tensor, optional
        Bool tensor broadcastable to the batch shape; ``False`` entries do not count.
    validate : bool
        Check logits and labels (errors) and warn on probabilities or log-probabilities given
        as logits.

    Returns
    -------
    torch.Tensor
        The site's value: ``obs`` when observed, else sampled labels.

    Raises
    ------
    ValueError
        On out-of-range, non-integer or wrongly shaped labels, a bad ``mask`` or
        ``dataset_size``, and the logits errors of :func:`categorical`.

    Examples
    --------
    >>> import pyro, torch
    >>> def model(x, y):
    ...     return observe_categorical("y", x, y, dataset_size=60000)
    >>> trace = pyro.poutine.trace(model).get_trace(torch.randn(128, 10), torch.zeros(128).long())
    >>> round(trace.nodes["y"]["scale"], 3)
    468.75
    """
    where = f"argument 'logits' of pyro_logits.observe_categorical (site {name!r})"
    d = _categorical(logits, validate, where)
    if len(d.batch_shape) == 0:
        raise ValueError(
            f"Expected logits for site {name!r} of shape (batch_size, num_classes) but got "
            f"{tuple(logits.shape)}; add a batch dim with logits.unsqueeze(0)."
        )
    if validate and obs is not None:
        _check_class_labels(obs, d.batch_shape, logits.shape[-1], name)
    return _observe(
        name, d, obs, dataset_size=dataset_size, mask=mask, validate=validate, device=logits.device
    )
