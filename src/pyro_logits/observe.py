"""The observe step of a Pyro model: a likelihood from logits, joined to the model's plates.

:func:`observe_bernoulli` and :func:`observe_categorical` are the whole likelihood step: they
build the distribution from logits (:mod:`pyro_logits.likelihoods`), check the observations,
apply a mask and data-set scaling and sample the site. Which plate the site sits in follows one
rule, read off the plates that enclose the call (:func:`pyro.poutine.runtime.get_plates`):

- **Inside your plates** (an enclosing plate is at dim -1): the helper opens no plate. Its site
  is exactly ``pyro.sample(name, dist.X(logits=logits).to_event(event_dim), obs=obs)`` written
  by hand in those plates: same log-probability, same scale from your subsampling. ``event_dim``
  means what it means in Pyro: the dims right of the plate dims, e.g. 1 for the pixels of an
  image. Observations must fill every plate they reach: a ``(B, 1)`` head in a data plate of
  size ``B`` at dim -1 is refused (Pyro would broadcast it to ``(B, B)`` and count every
  observation ``B`` times); pass ``event_dim=1`` or ``logits.squeeze(-1)``.
- **Outside** (no enclosing plate at dim -1, e.g. a plain classifier, or only Pyro's particle
  or prediction plates to the left): the helper opens the data plate ``f"{name}_data"`` at
  dim -1 over the **first dim of** ``obs``, the examples; the other dims of ``obs`` form one
  event. So ``(B,)``, ``(B, 1)``, ``(B, C)`` and ``(B, *event)`` heads are all ``B`` examples,
  scaled by ``dataset_size / B``. With ``obs=None`` the examples dim is the first dim of the
  logits' batch shape right of the enclosing plates' dims, unless ``event_dim`` says otherwise.

Dims left of the plates (enumerated discrete latents, vectorised particles, prediction samples)
broadcast as in any Pyro model. ``dataset_size`` scales the site by ``dataset_size / B``; inside
a plate that subsamples, that plate scales already and ``dataset_size`` is refused. Masks must
broadcast *to* the site's batch shape, plates included.

Checks that only read shapes always run, since a wrong shape gives a silently wrong likelihood;
checks that read values (NaN, labels, 0/1 outcomes, misused logits) follow ``validate``, which
defaults to Pyro's switch (:func:`pyro.enable_validation`).
"""

from __future__ import annotations

import contextlib
from typing import NamedTuple

import pyro
import pyro.distributions as dist
import torch
from pyro import poutine
from pyro.poutine.runtime import get_plates

from pyro_logits.labels import check_class_labels
from pyro_logits.likelihoods import (
    build_bernoulli,
    build_categorical,
    checks_under_jit,
    one_parameter,
    resolve_validate,
)

__all__ = ["observe_bernoulli", "observe_categorical"]

_UNSIZED = -1  # the size of an unsized pyro.plate("data"): whatever the sites broadcast to


def _require_tensor(x: object, where: str) -> None:
    if not isinstance(x, torch.Tensor):
        raise TypeError(
            f"Expected {where} to be a torch.Tensor but got {type(x).__name__}; "
            f"wrap it with torch.as_tensor(..., dtype=torch.float32)."
        )


def _check_event_dim(event_dim: object) -> None:
    if event_dim is not None and (
        isinstance(event_dim, bool) or not isinstance(event_dim, int) or event_dim < 0
    ):
        raise ValueError(f"Expected event_dim to be an int >= 0 or None but got {event_dim!r}.")


def _check_obs_broadcasts(
    obs: torch.Tensor, per_value: tuple[int, ...], name: str, what: str
) -> None:
    """``obs`` may lack leading dims of the logits, but must not be expanded itself."""
    try:
        full = tuple(torch.broadcast_shapes(obs.shape, per_value))
    except RuntimeError:
        full = None
    if full is None or (obs.dim() and full[-obs.dim() :] != tuple(obs.shape)):
        raise ValueError(
            f"Expected obs for site {name!r} to have shape {per_value} ({what}; leading dims "
            f"may be left out) but got {tuple(obs.shape)}."
        )


def _examples_event_dim(
    obs: torch.Tensor | None,
    value_shape: tuple[int, ...],
    frames: list[_Plate],
    event_dim: int | None,
    name: str,
) -> int:
    """Event dims when the helper opens the data plate: the dims of obs right of its first."""
    if obs is not None:
        if obs.dim() == 0:
            raise ValueError(
                f"Expected obs for site {name!r} with a dim of examples (shape (B, ...)) but got a "
                f"scalar; pass a batch, or observe inside a pyro.plate of your own."
            )
        natural = obs.dim() - 1
        if event_dim is not None and event_dim != natural:
            raise ValueError(
                f"Expected event_dim={natural} or None for site {name!r} but got {event_dim}: "
                f"outside a plate at dim -1 the helper opens the data plate over the first dim "
                f"of obs {tuple(obs.shape)} and the other {natural} dim(s) form one event; to "
                f"treat them as batch dims, observe inside pyro.plate(...) contexts of your own."
            )
        return natural
    if event_dim is not None:
        return event_dim
    outer = max((-f.dim for f in frames), default=1) - 1
    if len(value_shape) <= outer:
        raise ValueError(
            f"Expected logits for site {name!r} with a dim of examples right of the enclosing "
            f"plates' {outer} dim(s) but got batch shape {value_shape}; pass event_dim."
        )
    return len(value_shape) - outer - 1


def _check_fills_plates(obs: torch.Tensor, event_dim: int, frames: list[_Plate], name: str) -> None:
    """Inside user plates, obs must have each plate's size at that plate's dim."""
    batch = tuple(obs.shape[: obs.dim() - event_dim])
    if obs.dim() < event_dim or not batch:
        raise ValueError(
            f"Expected obs for site {name!r} with a batch dim at the enclosing plate dim -1 but "
            f"got shape {tuple(obs.shape)} with event_dim={event_dim}; the plate would count "
            f"one observation many times."
        )
    for f in frames:
        if f.size == _UNSIZED or -f.dim > len(batch) or batch[f.dim] == f.size:
            continue
        hint = (
            f"Pyro would broadcast it to size {f.size} there and count each observation "
            f"{f.size} times"
            if batch[f.dim] == 1
            else "the shapes disagree"
        )
        raise ValueError(
            f"Expected obs for site {name!r} to have size {f.size} at dim {f.dim} (the enclosing "
            f"plate {f.name!r}) but got shape {tuple(obs.shape)} with event_dim={event_dim}, "
            f"size {batch[f.dim]} there: {hint}. Pass the per-example dims as event_dim "
            f"(e.g. event_dim=1 for a (B, 1) head or a (B, 784) image), or squeeze them."
        )


def _site_batchtuple(batch: tuple[int, ...], frames: list[_Plate]) -> tuple[int, ...]:
    """The batch shape of the site once Pyro's plates have broadcast it."""
    width = max([len(batch), *(-f.dim for f in frames)])
    shape = [1] * (width - len(batch)) + list(batch)
    for f in frames:
        if shape[f.dim] == 1 and f.size != _UNSIZED:
            shape[f.dim] = f.size
    return tuple(shape)


def _check_mask(mask: torch.Tensor | None, site_shape: tuple[int, ...], name: str) -> None:
    if mask is None:
        return
    if not isinstance(mask, torch.Tensor) or mask.dtype != torch.bool:
        got = mask.dtype if isinstance(mask, torch.Tensor) else type(mask).__name__
        raise ValueError(
            f"Expected mask for site {name!r} to be a bool tensor but got {got}; "
            f"use e.g. mask=(lengths > t) or mask.bool()."
        )
    try:
        ok = tuple(torch.broadcast_shapes(mask.shape, site_shape)) == site_shape
    except RuntimeError:
        ok = False
    if not ok:
        raise ValueError(
            f"Expected mask for site {name!r} to broadcast to the batch shape {site_shape} but "
            f"got shape {tuple(mask.shape)}; a mask that would enlarge the batch counts the "
            f"kept entries several times."
        )


def _scale(dataset_size: int | None, size: int, subsampling: list[str], name: str) -> float:
    """``dataset_size / size``, refusing double scaling (``subsampling``: plates that subsample)."""
    if dataset_size is None:
        return 1.0
    if subsampling:
        raise ValueError(
            f"Expected dataset_size=None for site {name!r} inside the subsampled plate "
            f"{subsampling[0]!r}, which scales the site already, but got {dataset_size}; "
            f"passing both would scale the likelihood twice."
        )
    if isinstance(dataset_size, bool) or not isinstance(dataset_size, int) or dataset_size < size:
        raise ValueError(
            f"Expected dataset_size to be an int >= the batch size {size} but got "
            f"{dataset_size!r}; pass the number of examples in the full training set."
        )
    return dataset_size / size


class _Plate(NamedTuple):
    """A vectorised plate around the site (what the rule reads of Pyro's plate frames)."""

    name: str
    size: int  # of the subsample
    dim: int
    full_size: int | None


class _Layout(NamedTuple):
    """Where a site sits: the rule of this module applied to one call."""

    inside: bool  # the user's plates cover dim -1: the helper opens none
    event_dim: int
    batch_shape: tuple[int, ...]  # of the distribution, before the plates broadcast it
    size: int  # examples in the batch: dataset_size is divided by it
    frames: list[_Plate]  # the site's vectorised plates, its own data plate included


def _layout(
    name: str,
    obs: torch.Tensor | None,
    value_shape: tuple[int, ...],
    event_dim: int | None,
    frames: list[_Plate],
) -> _Layout:
    if any(f.dim == -1 for f in frames):
        e = 0 if event_dim is None else event_dim
        if e > len(value_shape):
            raise ValueError(
                f"Expected event_dim <= {len(value_shape)} for site {name!r} (the batch dims "
                f"of the logits, {value_shape}) but got {e}."
            )
        if obs is not None:
            _check_fills_plates(obs, e, frames, name)
        # The examples are counted by the plate over the first batch dim of obs, else dim -1.
        first = e - obs.dim() if obs is not None else -1
        examples = [f for f in frames if f.dim == first] or [f for f in frames if f.dim == -1]
        batch = value_shape[: len(value_shape) - e]
        size = examples[0].size
        if size == _UNSIZED:  # Pyro's broadcast plate: as many examples as the site holds there
            filled = batch if obs is None else obs.shape[: obs.dim() - e]
            size = filled[examples[0].dim] if -examples[0].dim <= len(filled) else 1
        return _Layout(True, e, batch, size, frames)
    e = _examples_event_dim(obs, value_shape, frames, event_dim, name)
    batch = value_shape[: len(value_shape) - e]
    size = obs.shape[0] if obs is not None else batch[-1]
    if size == 0:
        raise ValueError(
            f"Expected a non-empty batch for site {name!r} but got 0 examples (batch shape "
            f"{batch}); skip the observe step for an empty batch."
        )
    own = _Plate(f"{name}_data", size, -1, None)
    return _Layout(False, e, batch, size, [*frames, own])


class _Likelihood(NamedTuple):
    """What an observe helper gives the observe step: its distribution and its observations."""

    family: str  # "bernoulli" or "categorical"
    parameter: str  # "logits" or "probs"
    x: torch.Tensor
    where: str  # the argument, for messages
    validate: bool

    @property
    def value_shape(self) -> tuple[int, ...]:
        """The shape of one value of the site: the batch dims of ``x`` and, for Bernoulli, more."""
        return tuple(self.x.shape if self.family == "bernoulli" else self.x.shape[:-1])

    @property
    def what(self) -> str:
        if self.family == "bernoulli":
            return f"one outcome per {'logit' if self.parameter == 'logits' else 'probability'}"
        return f"one class label per row of {self.parameter}"

    def build(self, event_dim: int) -> dist.TorchDistribution:
        if self.family == "bernoulli":
            return build_bernoulli(self.parameter, self.x, event_dim, self.validate, self.where)
        d = build_categorical(self.parameter, self.x, self.validate, self.where)
        return d.to_event(event_dim) if event_dim else d

    def check(self, obs: torch.Tensor, name: str) -> None:
        if self.family == "bernoulli":
            _check_binary_obs(obs, name)
        else:
            classes = self.x.shape[-1]
            check_class_labels(obs, classes, where=f"site {name!r}", integral_floats=True)


@checks_under_jit
def _observe(
    name: str,
    likelihood: _Likelihood,
    obs: torch.Tensor | None,
    *,
    event_dim: int | None,
    dataset_size: int | None,
    mask: torch.Tensor | None,
) -> torch.Tensor:
    """Join the enclosing plates (or open the data plate), mask, scale and sample ``name``."""
    _check_event_dim(event_dim)
    all_frames = get_plates()
    value_shape = likelihood.value_shape
    if obs is not None:
        if not isinstance(obs, torch.Tensor):
            raise TypeError(
                f"Expected obs for site {name!r} to be a torch.Tensor but got {type(obs).__name__}."
            )
        _check_obs_broadcasts(obs, value_shape, name, likelihood.what)
    plates = [_Plate(f.name, f.size, f.dim, f.full_size) for f in all_frames if f.dim is not None]
    layout = _layout(name, obs, value_shape, event_dim, plates)
    d = likelihood.build(layout.event_dim)
    if obs is not None and likelihood.validate:
        likelihood.check(obs, name)
    _check_mask(mask, _site_batchtuple(layout.batch_shape, layout.frames), name)
    subsampling = [f.name for f in all_frames if f.full_size not in (None, f.size)]
    scale = _scale(dataset_size, layout.size, subsampling, name)
    fn = d.mask(mask) if mask is not None else d
    if layout.inside:
        with poutine.scale(scale=scale) if scale != 1.0 else contextlib.nullcontext():
            return pyro.sample(name, fn, obs=obs)
    if scale == 1.0:
        plate = pyro.plate(f"{name}_data", layout.size, dim=-1)
    else:
        # A fixed subsample (no random indices are drawn): only the scale size / subsample matters.
        subsample = torch.arange(layout.size, device=likelihood.x.device)
        plate = pyro.plate(f"{name}_data", dataset_size, subsample=subsample, dim=-1)
    with plate:
        return pyro.sample(name, fn, obs=obs)


def _check_binary_obs(obs: torch.Tensor, name: str) -> None:
    bad = (obs != 0) & (obs != 1)
    if bad.any():
        raise ValueError(
            f"Expected binary obs (0 or 1) for site {name!r} but got values such as "
            f"{obs[bad].flatten()[0].item()!r}; a Bernoulli observes outcomes. To observe "
            f"intensities in [0, 1] as Pyro's VAE examples do (dist.Bernoulli with "
            f"validate_args=False), pass validate=False: the site then scores "
            f"x log p + (1 - x) log(1 - p), as dist.Bernoulli does; dist.ContinuousBernoulli "
            f"is the normalised likelihood for such data."
        )


def observe_bernoulli(
    name: str,
    logits: torch.Tensor | None = None,
    obs: torch.Tensor | None = None,
    *,
    probs: torch.Tensor | None = None,
    dataset_size: int | None = None,
    mask: torch.Tensor | None = None,
    event_dim: int | None = None,
    validate: bool | None = None,
) -> torch.Tensor:
    """Observe binary data under Bernoulli logits inside a Pyro model.

    Joins the plates around the call or opens the data plate itself (the rule is in
    :mod:`pyro_logits.observe`), scales the log-likelihood by ``dataset_size / batch_size``
    when ``dataset_size`` is given, so the ELBO is an unbiased estimate for the full data set,
    applies ``mask`` and samples ``name``.

    Parameters
    ----------
    name : str
        The sample site's name.
    logits : torch.Tensor, optional
        Bernoulli logits, broadcastable to ``obs``: raw scores, not ``sigmoid`` of them.
    obs : torch.Tensor or None
        0/1 outcomes (float, int or bool); ``None`` samples instead (for prediction). Without
        validation, values between 0 and 1 are scored as ``dist.Bernoulli`` scores them (see
        :func:`~pyro_logits.bernoulli`); when validating they are refused.
    probs : torch.Tensor, optional
        Probabilities instead of ``logits`` (exactly one of the two is given).
    dataset_size : int, optional
        Size of the full data set when ``obs`` is a minibatch of it.
    mask : torch.Tensor, optional
        Bool tensor broadcastable to the site's batch shape; ``False`` entries do not count.
    event_dim : int, optional
        Rightmost dims forming one event. Inside your plates: as Pyro's ``.to_event``, default
        0 (e.g. 1 for an image of shape ``(B, 784)``). Outside: every dim of ``obs`` after the
        first, which is also the default.
    validate : bool, optional
        Check logits and outcomes (errors) and warn on probabilities given as logits; ``None``
        follows :func:`pyro.enable_validation`.

    Returns
    -------
    torch.Tensor
        The site's value: ``obs`` (as floats) when observed, else a sample.

    Raises
    ------
    ValueError
        On both or neither of ``logits`` and ``probs``, non-binary (when validating) or wrongly
        shaped ``obs``, a bad ``mask``, ``event_dim`` or
        ``dataset_size``, an empty batch, and the logits errors of
        :func:`~pyro_logits.bernoulli`.

    Examples
    --------
    A ``(B, 1)`` head with no plate of the model's own: one example per row.

    >>> import pyro, torch
    >>> def model(z, y):
    ...     return observe_bernoulli("y", z, y, dataset_size=60000)
    >>> trace = pyro.poutine.trace(model).get_trace(torch.randn(128, 1), torch.ones(128, 1))
    >>> round(trace.nodes["y"]["scale"], 3)
    468.75

    A VAE's decoder inside the model's own data plate:

    >>> def vae_model(x, decoder_logits):
    ...     with pyro.plate("data", 60000, subsample_size=len(x)):
    ...         observe_bernoulli("x", decoder_logits, x, event_dim=1)
    >>> x = torch.bernoulli(torch.full((32, 784), 0.3))
    >>> trace = pyro.poutine.trace(vae_model).get_trace(x, torch.randn(32, 784))
    >>> trace.nodes["x"]["fn"].batch_shape, trace.nodes["x"]["scale"]
    (torch.Size([32]), 1875.0)
    """
    validate = resolve_validate(validate)
    parameter, x = one_parameter(logits, probs, "pyro_logits.observe_bernoulli")
    where = f"argument {parameter!r} of pyro_logits.observe_bernoulli (site {name!r})"
    _require_tensor(x, where)
    if isinstance(obs, torch.Tensor) and obs.dtype != x.dtype and x.is_floating_point():
        obs = obs.to(x.dtype)
    likelihood = _Likelihood("bernoulli", parameter, x, where, validate)
    return _observe(
        name, likelihood, obs, event_dim=event_dim, dataset_size=dataset_size, mask=mask
    )


def observe_categorical(
    name: str,
    logits: torch.Tensor | None = None,
    obs: torch.Tensor | None = None,
    *,
    probs: torch.Tensor | None = None,
    dataset_size: int | None = None,
    mask: torch.Tensor | None = None,
    event_dim: int | None = None,
    validate: bool | None = None,
) -> torch.Tensor:
    """Observe class labels under Categorical logits inside a Pyro model.

    Joins the plates around the call or opens the data plate itself (the rule is in
    :mod:`pyro_logits.observe`), scales the log-likelihood by ``dataset_size / batch_size``
    when ``dataset_size`` is given, applies ``mask`` and samples ``name``.

    Parameters
    ----------
    name : str
        The sample site's name.
    logits : torch.Tensor, optional
        Raw network scores of shape ``(..., num_classes)``, broadcastable to ``obs`` in their
        batch dims.
    obs : torch.Tensor or None
        Integer class labels, one per row of logits; ``None`` samples instead.
    probs : torch.Tensor, optional
        Class probabilities instead of ``logits`` (exactly one of the two is given).
    dataset_size : int, optional
        Size of the full data set when ``obs`` is a minibatch of it.
    mask : torch.Tensor, optional
        Bool tensor broadcastable to the site's batch shape; ``False`` entries do not count.
    event_dim : int, optional
        Rightmost label dims forming one event, as for :func:`observe_bernoulli` (e.g. 1 for
        a ``(B, T)`` sequence of labels inside a data plate of your own).
    validate : bool, optional
        Check logits and labels (errors) and warn on probabilities or log-probabilities given
        as logits; ``None`` follows :func:`pyro.enable_validation`.

    Returns
    -------
    torch.Tensor
        The site's value: ``obs`` when observed, else sampled labels.

    Raises
    ------
    ValueError
        On both or neither of ``logits`` and ``probs``, out-of-range, non-integer or wrongly
        shaped labels, a bad ``mask``, ``event_dim`` or
        ``dataset_size``, an empty batch, and the logits errors of
        :func:`~pyro_logits.categorical`.

    Examples
    --------
    >>> import pyro, torch
    >>> def model(x, y):
    ...     return observe_categorical("y", x, y, dataset_size=60000)
    >>> trace = pyro.poutine.trace(model).get_trace(torch.randn(128, 10), torch.zeros(128).long())
    >>> round(trace.nodes["y"]["scale"], 3)
    468.75
    """
    validate = resolve_validate(validate)
    parameter, x = one_parameter(logits, probs, "pyro_logits.observe_categorical")
    where = f"argument {parameter!r} of pyro_logits.observe_categorical (site {name!r})"
    _require_tensor(x, where)
    if x.dim() == 1:
        raise ValueError(
            f"Expected {parameter} for site {name!r} of shape (batch_size, num_classes) but got "
            f"{tuple(x.shape)}; add a batch dim with {parameter}.unsqueeze(0)."
        )
    likelihood = _Likelihood("categorical", parameter, x, where, validate)
    return _observe(
        name, likelihood, obs, event_dim=event_dim, dataset_size=dataset_size, mask=mask
    )
