"""The layers of a Bayesian network, stated as the ``nn.Sequential`` users already write.

:func:`layers_from_sequential` reads ``Linear``, ``Conv2d``, ``ReLU``, ``MaxPool2d`` and
``Flatten`` modules (their sizes only, not their weights) and refuses anything else. A layer
with weights holds them, bias included, as one matrix of shape ``(fan_in + 1, fan_out)``: the
weights as applied to an input row (``h @ w`` for ``Linear``; for ``Conv2d``, to an unfolded
input patch of ``in_channels * kh * kw`` values), the bias as the last row. Under independent
Gaussian weights ``N(loc, var)``, a weighted layer's output given its input ``h`` is Gaussian
with the mean and variance :meth:`LinearSpec.moments` gives: ``h @ loc`` and ``h**2 @ var``, or
``conv(h, loc)`` and ``conv(h**2, var)`` for a convolution. Local reparameterisation samples
that output, one draw per output unit.

For a fully connected layer the draws are exact per example. For a convolution each output
unit's marginal is exact, but one weight sample is shared by all positions and correlates
them, while local reparameterisation draws them independently: a mean over positions is
unchanged, a max over them (pooling) is not: the estimate is then that of a network whose
weights are drawn anew at every position. Flipout (``flipout=True``) keeps one weight sample
per example for every position, with no per-position noise.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn


def _augment(h: torch.Tensor) -> torch.Tensor:
    """Append a column of ones, so one matrix product applies weights and bias."""
    return torch.cat([h, h.new_ones((*h.shape[:-1], 1))], dim=-1)


@dataclass(frozen=True)
class LinearSpec:
    """The spec of ``nn.Linear(in_features, out_features)`` with Gaussian weights."""

    in_features: int
    out_features: int

    @property
    def shape(self) -> tuple[int, int]:
        """Shape of the layer's weights and bias: ``(in_features + 1, out_features)``."""
        return (self.in_features + 1, self.out_features)

    def torch_weights(self, w: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``w`` as ``nn.Linear``'s ``(weight, bias)``."""
        return w[:-1].t(), w[-1]

    def mean(self, h: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
        """Output for weights ``w`` (also the output mean for weight means ``w``).

        ``w`` may carry a leading sample dim ``S``; the output then has one too.
        """
        return _augment(h) @ w

    def moments(
        self, h: torch.Tensor, loc: torch.Tensor, var: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Output mean and variance given the input ``h`` and weights ``N(loc, var)``."""
        h = _augment(h)
        return h @ loc, (h * h) @ var


@dataclass(frozen=True)
class Conv2dSpec:
    """The spec of ``nn.Conv2d`` (zero padding, no groups or dilation) with Gaussian weights."""

    in_channels: int
    out_channels: int
    kernel_size: tuple[int, int]
    stride: tuple[int, int] = (1, 1)
    padding: tuple[int, int] = (0, 0)

    @property
    def shape(self) -> tuple[int, int]:
        """``(in_channels * kh * kw + 1, out_channels)``: one column per output channel."""
        kh, kw = self.kernel_size
        return (self.in_channels * kh * kw + 1, self.out_channels)

    def torch_weights(self, w: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``w`` as ``nn.Conv2d``'s ``(weight, bias)``."""
        kernel = w[:-1].t().reshape(self.out_channels, self.in_channels, *self.kernel_size)
        return kernel, w[-1]

    def _conv(self, h: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
        kernel, bias = self.torch_weights(w)
        # channels-last inputs give channels-last outputs, whose backward runs faster on CPU
        h = h.contiguous(memory_format=torch.channels_last)
        return F.conv2d(h, kernel, bias, stride=self.stride, padding=self.padding)

    def mean(self, h: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
        """Output for weights ``w`` (also the output mean for weight means ``w``).

        ``w`` may carry a leading sample dim ``S``; ``h`` then has it too, or is shared.
        """
        if w.dim() == 2:
            return self._conv(h, w)
        if h.dim() == 4:  # one input batch for every weight sample
            h = h.expand(len(w), *h.shape)
        return torch.stack([self._conv(h_s, w_s) for h_s, w_s in zip(h, w, strict=True)])

    def _patches(self, h: torch.Tensor) -> tuple[torch.Tensor, tuple[int, int, int]]:
        """The input's patches, one row per output position, and the output's ``(N, H, W)``."""
        n, _, height, width = h.shape
        (kh, kw), (sh, sw), (ph, pw) = self.kernel_size, self.stride, self.padding
        out_h, out_w = (height + 2 * ph - kh) // sh + 1, (width + 2 * pw - kw) // sw + 1
        patches = F.unfold(h, self.kernel_size, padding=self.padding, stride=self.stride)
        return patches.transpose(1, 2).reshape(-1, self.shape[0] - 1), (n, out_h, out_w)

    def moments(
        self, h: torch.Tensor, loc: torch.Tensor, var: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Output mean and variance given the input ``h`` and weights ``N(loc, var)``.

        With one input channel the input's patches are few enough to unfold once and share
        between two matrix products; the outputs are then channels-last, as the convolutions'.
        """
        if self.in_channels != 1:
            return self._conv(h, loc), self._conv(h * h, var)
        patches, positions = self._patches(h)
        mean = torch.addmm(loc[-1], patches, loc[:-1])
        variance = torch.addmm(var[-1], patches.square(), var[:-1])
        shape = (*positions, self.out_channels)
        return mean.view(shape).permute(0, 3, 1, 2), variance.view(shape).permute(0, 3, 1, 2)

    def flipout(
        self,
        h: torch.Tensor,
        loc: torch.Tensor,
        delta: torch.Tensor,
        signs_in: torch.Tensor,
        signs_out: torch.Tensor,
    ) -> torch.Tensor:
        """``conv(h, loc) + conv(h * signs_in, delta) * signs_out``: Flipout's output.

        ``signs_in`` is ``(N, in_channels, 1, 1)``, ``signs_out`` ``(N, out_channels, 1, 1)``.
        With one input channel the input sign is one number per example, which commutes with
        the convolution: both weights then apply to the input's patches, unfolded once, in one
        matrix product (a convolution's weight gradient is slow for one input channel).
        """
        if self.in_channels != 1:
            return self._conv(h, loc) + self._conv(h * signs_in, delta) * signs_out
        patches, positions = self._patches(h)
        both = patches @ torch.cat([loc[:-1], delta[:-1]], dim=1)
        mean, perturbation = both.view(*positions, 2 * self.out_channels).chunk(2, dim=-1)
        signs_out = signs_out.permute(0, 2, 3, 1)  # channels-last, as the products
        bias = torch.addcmul(loc[-1], delta[-1], signs_out)  # the bias is not flipped by signs_in
        out = torch.addcmul(bias, perturbation, signs_in.view(-1, 1, 1, 1) * signs_out) + mean
        return out.permute(0, 3, 1, 2)


@dataclass(frozen=True)
class FunctionSpec:
    """A layer without weights: ``relu``, ``max_pool2d`` or ``flatten``, and its arguments."""

    name: str
    kernel_size: tuple[int, int] = (1, 1)
    stride: tuple[int, int] = (1, 1)

    def __call__(self, h: torch.Tensor) -> torch.Tensor:
        """Apply the function to a batch ``(N, ...)`` or to ``(S, N, ...)``."""
        if self.name == "relu":
            return torch.relu(h)
        if self.name == "flatten":
            return h.flatten(-3)  # (C, H, W) of each example, with or without a sample dim
        lead = h.shape[:-3]
        out = F.max_pool2d(h.reshape(-1, *h.shape[-3:]), self.kernel_size, self.stride)
        return out.reshape(*lead, *out.shape[-3:])


Layer = LinearSpec | Conv2dSpec | FunctionSpec


def _pair(value: int | Sequence[int]) -> tuple[int, int]:
    return (value, value) if isinstance(value, int) else (int(value[0]), int(value[1]))


def _refuse(index: int, module: nn.Module, why: str) -> ValueError:
    return ValueError(
        f"Expected Linear, Conv2d, ReLU, MaxPool2d or Flatten modules, as plain PyTorch gives "
        f"them, but module {index} is {module!r}: {why}."
    )


def layers_from_sequential(net: nn.Sequential) -> list[Layer]:
    """The layers of ``net`` as Bayesian layers (sizes only; ``net``'s weights are not used).

    Parameters
    ----------
    net : torch.nn.Sequential
        ``Linear``, ``Conv2d``, ``ReLU``, ``MaxPool2d`` and ``Flatten`` modules, in any order.

    Returns
    -------
    list
        One :class:`LinearSpec`, :class:`Conv2dSpec` or :class:`FunctionSpec` per module.

    Raises
    ------
    ValueError
        On any other module, a layer without bias, a convolution with groups, dilation,
        string padding or non-zero padding mode, a pooling with padding, dilation or
        ``ceil_mode``, or a ``Flatten`` other than ``Flatten()`` (which keeps the batch dim).

    Examples
    --------
    >>> from torch import nn
    >>> lenet = nn.Sequential(
    ...     nn.Conv2d(1, 20, 5), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(), nn.Linear(2880, 10)
    ... )
    >>> [type(layer).__name__ for layer in layers_from_sequential(lenet)]
    ['Conv2dSpec', 'FunctionSpec', 'FunctionSpec', 'FunctionSpec', 'LinearSpec']
    """
    if not isinstance(net, nn.Sequential):
        raise TypeError(f"Expected an nn.Sequential but got {type(net).__name__}.")
    layers: list[Layer] = []
    for index, module in enumerate(net):
        if isinstance(module, nn.Linear):
            if module.bias is None:
                raise _refuse(index, module, "a layer without bias (pass bias=True)")
            layers.append(LinearSpec(module.in_features, module.out_features))
        elif isinstance(module, nn.Conv2d):
            if module.bias is None:
                raise _refuse(index, module, "a layer without bias (pass bias=True)")
            if isinstance(module.padding, str):
                raise _refuse(index, module, "string padding (give the padding as numbers)")
            unsupported = module.groups != 1 or _pair(module.dilation) != (1, 1)
            if unsupported or module.padding_mode != "zeros":
                raise _refuse(index, module, "groups, dilation or a non-zero padding mode")
            layers.append(
                Conv2dSpec(
                    module.in_channels,
                    module.out_channels,
                    _pair(module.kernel_size),
                    _pair(module.stride),
                    _pair(module.padding),
                )
            )
        elif isinstance(module, nn.ReLU):
            layers.append(FunctionSpec("relu"))
        elif isinstance(module, nn.MaxPool2d):
            plain = _pair(module.padding) == (0, 0) and _pair(module.dilation) == (1, 1)
            if not plain or module.ceil_mode or module.return_indices:
                raise _refuse(index, module, "padding, dilation, ceil_mode or return_indices")
            stride = module.stride if module.stride is not None else module.kernel_size
            layers.append(FunctionSpec("max_pool2d", _pair(module.kernel_size), _pair(stride)))
        elif isinstance(module, nn.Flatten):
            if (module.start_dim, module.end_dim) != (1, -1):
                raise _refuse(index, module, "a Flatten other than Flatten() over (C, H, W)")
            layers.append(FunctionSpec("flatten"))
        else:
            raise _refuse(index, module, "no Bayesian version of it here")
    return layers


def _random_signs(
    shape: tuple[int, ...], like: torch.Tensor, generator: torch.Generator | None
) -> torch.Tensor:
    """Independent +1 or -1, each with probability 1/2, of ``like``'s dtype and device."""
    bits = torch.randint(0, 2, shape, device=like.device, generator=generator)
    return bits.to(like.dtype).mul_(2).sub_(1)


def local_reparam_forward(
    layers: Sequence[Layer],
    x: torch.Tensor,
    locs: Sequence[torch.Tensor],
    variances: Sequence[torch.Tensor],
    *,
    flipout: bool = False,
    noise_rows: tuple[int, int] | None = None,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """Outputs with independent Gaussian weights, sampling each weighted layer's output.

    Parameters
    ----------
    layers : sequence of layers
        As :func:`layers_from_sequential` gives them.
    x : torch.Tensor
        A batch of inputs, ``(N, ...)``.
    locs, variances : sequence of torch.Tensor
        Means and variances of each weighted layer's weights, in :attr:`LinearSpec.shape`.
    flipout : bool
        Sample each convolution's output by Flipout rather than per unit: one weight
        perturbation ``delta`` for the batch, made different for each example by random signs
        on its input and output channels, ``conv(h, loc) + conv(h * s_in, delta) * s_out``.
        Each example then sees one weight sample at every position, as the model says, and
        no per-position noise is drawn. Fully connected layers stay sampled per unit (exact).
    noise_rows : tuple of (int, int), optional
        ``(start, total)``: ``x`` is rows ``start:start + N`` of a batch of ``total``. Noise
        (and Flipout's signs) is drawn for the whole batch and these rows used, so that the
        shards of one batch over data-parallel processes get exactly what one process draws.
    generator : torch.Generator, optional
        Source of the noise.

    Returns
    -------
    torch.Tensor
        The last layer's output, one draw per example and unit.
    """
    weighted = iter(zip(locs, variances, strict=True))
    start, total = (0, x.shape[0]) if noise_rows is None else noise_rows
    rows = slice(start, start + x.shape[0])
    h = x
    for layer in layers:
        if isinstance(layer, FunctionSpec):
            h = layer(h)
            continue
        loc, var = next(weighted)
        if flipout and isinstance(layer, Conv2dSpec):
            delta = var.sqrt() * torch.randn(
                var.shape, dtype=var.dtype, device=var.device, generator=generator
            )
            s_in = _random_signs((total, layer.in_channels, 1, 1), h, generator)[rows]
            s_out = _random_signs((total, layer.out_channels, 1, 1), h, generator)[rows]
            h = layer.flipout(h, loc, delta, s_in, s_out)
            continue
        mean, variance = layer.moments(h, loc, var)
        conv = mean.dim() == 4  # drawn as (N, H, W, C): the channels-last layout of conv outputs
        shape = (total, *mean.shape[2:], mean.shape[1]) if conv else (total, *mean.shape[1:])
        noise = torch.randn(shape, dtype=mean.dtype, device=mean.device, generator=generator)
        if conv:
            noise = noise.permute(0, 3, 1, 2)
        h = mean + variance.sqrt() * noise[rows]
    return h
