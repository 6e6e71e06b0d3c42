"""The fused variance-and-KL pass of a mean-field Gaussian posterior against a Gaussian prior."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import torch


def _forward(
    loc: torch.Tensor,
    log_scale: torch.Tensor,
    prior_vars: tuple[float, ...],
    numels: tuple[int, ...],
) -> tuple[torch.Tensor, torch.Tensor]:
    """``var = exp(2 log_scale)`` and the KL, summed: two passes over the weights and a dot."""
    var = log_scale.mul(2).exp_()
    kl = loc.numel() * -0.5 - log_scale.sum()
    for m, v, pv in zip(loc.split(numels), var.split(numels), prior_vars, strict=True):
        kl = kl + (v.sum() + torch.dot(m, m)) * (0.5 / pv) + m.numel() * 0.5 * math.log(pv)
    return var, kl


def _backward(
    ctx: Any,
    loc: torch.Tensor,
    var: torch.Tensor,
    grad_locs: Sequence[torch.Tensor | None],
    grad_vars: Sequence[torch.Tensor | None],
    grad_kl: torch.Tensor | None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Gradients of ``loc`` and ``log_scale`` from those of each segment's loc, var and the KL.

    With ``s = exp(log_scale)`` and ``p**2 = prior_var``::

        KL = sum(log(p / s) + (s**2 + loc**2) / (2 p**2) - 1/2)
        dKL/dloc = loc / p**2,   dKL/dlog_scale = s**2 / p**2 - 1,   dvar/dlog_scale = 2 var

    Each segment's result is written once into the flat gradients: the gradients arriving
    for a segment are added in the same pass, never concatenated first.
    """
    if grad_kl is None:
        grad_kl = var.new_zeros(())
    minus_grad_kl = -grad_kl
    grad_loc, grad_log_scale = torch.empty_like(loc), torch.empty_like(var)
    segments = zip(
        loc.split(ctx.numels),
        var.split(ctx.numels),
        grad_locs,
        grad_vars,
        grad_loc.split(ctx.numels),
        grad_log_scale.split(ctx.numels),
        ctx.prior_vars,
        strict=True,
    )
    for m, v, g_l, g_v, g_m, g_s, pv in segments:
        c = grad_kl / pv
        if g_l is None:
            torch.mul(m, c, out=g_m)
        else:
            torch.addcmul(g_l.reshape(-1), m, c, out=g_m)
        # dlog_scale = 2 var (grad_var + c / 2) - grad_kl: two passes
        if g_v is None:
            g_s.copy_(c / 2)
        else:
            torch.add(g_v.reshape(-1), c / 2, out=g_s)
        torch.addcmul(minus_grad_kl, v, g_s, value=2, out=g_s)
    return grad_loc, grad_log_scale


class _VarianceAndKL(torch.autograd.Function):
    """``var = exp(2 log_scale)`` and ``sum KL(N(loc, var) || N(0, prior_var))``, in few passes.

    ``loc`` and ``log_scale`` are flat and hold consecutive segments of ``numels`` elements, one
    per prior variance. The backward is written out because these passes over every weight are,
    with Adam, most of a step's cost beyond the matrix products; autograd takes about twice as
    many (measured: a 7% slower step for the default network).
    """

    @staticmethod
    def forward(
        ctx: Any,
        loc: torch.Tensor,
        log_scale: torch.Tensor,
        prior_vars: tuple[float, ...],
        numels: tuple[int, ...],
    ) -> tuple[torch.Tensor, torch.Tensor]:
        var, kl = _forward(loc, log_scale, prior_vars, numels)
        ctx.save_for_backward(loc, var)
        ctx.prior_vars, ctx.numels = prior_vars, numels
        return var, kl

    @staticmethod
    def backward(
        ctx: Any, grad_var: torch.Tensor | None, grad_kl: torch.Tensor | None
    ) -> tuple[torch.Tensor, torch.Tensor, None, None]:
        grad_vars = [None] * len(ctx.numels) if grad_var is None else grad_var.split(ctx.numels)
        loc, var = ctx.saved_tensors
        grads = _backward(ctx, loc, var, [None] * len(ctx.numels), grad_vars, grad_kl)
        return (*grads, None, None)


class _LayerVariancesAndKL(torch.autograd.Function):
    """:class:`_VarianceAndKL` with each segment's loc and var given out as a layer's matrix.

    The gradients that reach the layers' matrices are added into the flat gradients in the
    backward's own passes; through ``split`` and ``view`` autograd would first concatenate them
    into flat tensors and then add the KL's gradient in passes of their own.
    """

    @staticmethod
    def forward(
        ctx: Any,
        loc: torch.Tensor,
        log_scale: torch.Tensor,
        prior_vars: tuple[float, ...],
        shapes: tuple[tuple[int, ...], ...],
    ) -> tuple[torch.Tensor, ...]:
        numels = tuple(math.prod(shape) for shape in shapes)
        var, kl = _forward(loc, log_scale, prior_vars, numels)
        # var is no output (its views are), so it is kept on ctx rather than saved.
        ctx.save_for_backward(loc)
        ctx.var, ctx.prior_vars, ctx.numels = var, prior_vars, numels
        locs = [m.view(shape) for m, shape in zip(loc.split(numels), shapes, strict=True)]
        variances = [v.view(shape) for v, shape in zip(var.split(numels), shapes, strict=True)]
        return (*locs, *variances, kl)

    @staticmethod
    def backward(ctx: Any, *grads: torch.Tensor | None) -> tuple[torch.Tensor | None, ...]:
        n = len(ctx.numels)
        (loc,) = ctx.saved_tensors
        grad_loc, grad_log_scale = _backward(
            ctx, loc, ctx.var, grads[:n], grads[n : 2 * n], grads[-1]
        )
        return grad_loc, grad_log_scale, None, None


def gaussian_variance_and_kl(
    loc: torch.Tensor,
    log_scale: torch.Tensor,
    *,
    prior_scale: float | Sequence[float],
    numels: Sequence[int] | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Variance of a mean-field Gaussian and its KL divergence from a ``N(0, prior_scale**2)``.

    Parameters
    ----------
    loc, log_scale : torch.Tensor
        Means and log standard deviations of independent Gaussians, flat (1-D) and of one
        shape.
    prior_scale : float or sequence of float
        Standard deviation of the zero-mean Gaussian prior, or one per segment.
    numels : sequence of int, optional
        Lengths of consecutive segments of ``loc`` with their own prior scale.

    Returns
    -------
    var : torch.Tensor
        ``exp(2 * log_scale)``, differentiable.
    kl : torch.Tensor
        ``KL(N(loc, var) || N(0, prior_scale**2))`` summed over all elements (a scalar).

    Raises
    ------
    ValueError
        On tensors that are not 1-D or differ in shape, or segments that do not cover them.

    Examples
    --------
    >>> import torch
    >>> var, kl = gaussian_variance_and_kl(torch.zeros(3), torch.zeros(3), prior_scale=1.0)
    >>> var, kl
    (tensor([1., 1., 1.]), tensor(0.))
    """
    prior_vars, numels = _segments(loc, log_scale, prior_scale, numels)
    return _VarianceAndKL.apply(loc, log_scale, prior_vars, numels)


def layer_variances_and_kl(
    loc: torch.Tensor,
    log_scale: torch.Tensor,
    *,
    prior_scale: float | Sequence[float],
    shapes: Sequence[Sequence[int]],
) -> tuple[list[torch.Tensor], list[torch.Tensor], torch.Tensor]:
    """:func:`gaussian_variance_and_kl` with the means and variances as one matrix per layer.

    Parameters
    ----------
    loc, log_scale : torch.Tensor
        Flat means and log standard deviations, the layers one after another.
    prior_scale : float or sequence of float
        Standard deviation of the zero-mean Gaussian prior, or one per layer.
    shapes : sequence of sequence of int
        The shape of each layer's weights, in order; their sizes must add up to ``loc``'s.

    Returns
    -------
    locs, variances : list of torch.Tensor
        Views of ``loc`` and of ``exp(2 * log_scale)`` in the layers' shapes, differentiable.
    kl : torch.Tensor
        The summed KL divergence from the prior, a scalar.

    Examples
    --------
    >>> import torch
    >>> locs, variances, kl = layer_variances_and_kl(
    ...     torch.zeros(6), torch.zeros(6), prior_scale=1.0, shapes=[(2, 2), (1, 2)]
    ... )
    >>> [tuple(v.shape) for v in variances], kl
    ([(2, 2), (1, 2)], tensor(0.))
    """
    shapes = tuple(tuple(int(d) for d in shape) for shape in shapes)
    prior_vars, _ = _segments(loc, log_scale, prior_scale, [math.prod(s) for s in shapes])
    *outputs, kl = _LayerVariancesAndKL.apply(loc, log_scale, prior_vars, shapes)
    return outputs[: len(shapes)], outputs[len(shapes) :], kl


def _segments(
    loc: torch.Tensor,
    log_scale: torch.Tensor,
    prior_scale: float | Sequence[float],
    numels: Sequence[int] | None,
) -> tuple[tuple[float, ...], tuple[int, ...]]:
    """Check the arguments; return the prior variances and segment lengths as tuples."""
    if loc.dim() != 1 or loc.shape != log_scale.shape:
        raise ValueError(
            f"Expected flat loc and log_scale of one shape but got {tuple(loc.shape)} and "
            f"{tuple(log_scale.shape)}; pass t.flatten()."
        )
    if numels is None:
        numels = (loc.numel(),)
    scales = [prior_scale] * len(numels) if isinstance(prior_scale, int | float) else prior_scale
    if sum(numels) != loc.numel() or len(scales) != len(numels):
        raise ValueError(
            f"Expected segments summing to {loc.numel()} elements, one prior scale each, but "
            f"got numels={list(numels)} and prior_scale={prior_scale}."
        )
    return tuple(float(s) ** 2 for s in scales), tuple(numels)
