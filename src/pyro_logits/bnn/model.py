"""The model: a multilayer perceptron with Gaussian priors on its weights, as a Pyro model."""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence

import pyro
import pyro.distributions as dist
import torch

from pyro_logits.bnn.layers import _augment
from pyro_logits.observe import observe_categorical


class BayesianMLP(pyro.nn.PyroModule):
    """A multilayer perceptron with Gaussian priors on its weights, as a Pyro model.

    Layer ``i`` maps ``sizes[i]`` to ``sizes[i + 1]`` units; every layer but the last is
    followed by a ReLU, and the last gives the logits of a categorical likelihood. Each layer's
    weights and bias form one sample site ``f"layers.{i}"`` with value of shape
    ``(sizes[i] + 1, sizes[i + 1])``: the weight matrix (applied as ``h @ w``) with the bias as
    its last row.

    Parameters
    ----------
    in_features : int
        Size of the input (784 for flattened MNIST images).
    hidden : sequence of int
        Sizes of the hidden layers.
    num_classes : int
        Number of classes, the size of the output.
    prior_scale : float or sequence of float
        Standard deviation of the ``N(0, prior_scale**2)`` prior on every weight and bias, or
        one value per layer. The default, 0.2, did best on MNIST among 0.05 to 1.

    Raises
    ------
    ValueError
        On a non-positive size or prior scale, or a number of prior scales other than one or
        the number of layers.

    Examples
    --------
    >>> import pyro, torch
    >>> pyro.clear_param_store()
    >>> model = BayesianMLP(4, (8,), 3, prior_scale=[1.0, 0.5])
    >>> trace = pyro.poutine.trace(model).get_trace(torch.rand(5, 4), torch.zeros(5).long())
    >>> [tuple(trace.nodes[name]["value"].shape) for name in ("layers.0", "layers.1", "obs")]
    [(5, 8), (9, 3), (5,)]
    """

    def __init__(
        self,
        in_features: int = 784,
        hidden: Sequence[int] = (400, 400),
        num_classes: int = 10,
        *,
        prior_scale: float | Sequence[float] = 0.2,
    ) -> None:
        super().__init__()
        sizes = (int(in_features), *(int(h) for h in hidden), int(num_classes))
        if min(sizes) < 1:
            raise ValueError(f"Expected positive layer sizes but got {sizes}.")
        num_layers = len(sizes) - 1
        scales = (
            [float(prior_scale)] * num_layers
            if isinstance(prior_scale, int | float)
            else [float(s) for s in prior_scale]
        )
        if len(scales) != num_layers:
            raise ValueError(
                f"Expected one prior scale or {num_layers} (one per layer) but got "
                f"{len(scales)}: {scales}."
            )
        if not all(s > 0 and math.isfinite(s) for s in scales):
            raise ValueError(f"Expected positive finite prior scales but got {scales}.")
        self.sizes: tuple[int, ...] = sizes
        self.prior_scales: tuple[float, ...] = tuple(scales)

    @property
    def layer_shapes(self) -> list[tuple[int, int]]:
        """Shape of each layer's site: ``(fan_in + 1, fan_out)``, the bias being the last row."""
        return [(n_in + 1, n_out) for n_in, n_out in itertools.pairwise(self.sizes)]

    @property
    def layer_numels(self) -> list[int]:
        """Number of weights and biases of each layer."""
        return [n_in * n_out for n_in, n_out in self.layer_shapes]

    def unflatten(self, flat: torch.Tensor) -> list[torch.Tensor]:
        """Split flat ``(..., P)`` params into ``(..., fan_in + 1, fan_out)`` views, one a layer."""
        parts = flat.split(self.layer_numels, dim=-1)
        return [p.unflatten(-1, shape) for p, shape in zip(parts, self.layer_shapes, strict=True)]

    @property
    def site_names(self) -> list[str]:
        """Names of the weight sites, ``"layers.0"``, ``"layers.1"``, ..."""
        return [f"layers.{i}" for i in range(len(self.layer_shapes))]

    def prior(self, layer: int, *, device: torch.device | str | None = None) -> dist.Independent:
        """The prior of one layer's weights and bias, one event of shape ``layer_shapes[layer]``.

        Not validated: its values are the guide's samples, real by construction, and checking
        every weight on every step would cost more than the network.
        """
        zero = torch.zeros((), device=device)
        base = dist.Normal(zero, zero + self.prior_scales[layer], validate_args=False)
        return base.expand(self.layer_shapes[layer]).to_event(2)

    def network(self, x: torch.Tensor, weights: Sequence[torch.Tensor]) -> torch.Tensor:
        """Logits of the network with the given weights.

        Parameters
        ----------
        x : torch.Tensor
            Inputs of shape ``(N, in_features)``.
        weights : sequence of torch.Tensor
            One ``(fan_in + 1, fan_out)`` tensor per layer, or ``(S, fan_in + 1, fan_out)`` for
            ``S`` weight samples at once.

        Returns
        -------
        torch.Tensor
            Logits of shape ``(N, num_classes)``, or ``(S, N, num_classes)``.
        """
        h = x
        for i, w in enumerate(weights):
            h = _augment(h) @ w
            if i < len(weights) - 1:
                h = torch.relu(h)
        return h

    def local_reparam_network(
        self,
        x: torch.Tensor,
        locs: Sequence[torch.Tensor],
        variances: Sequence[torch.Tensor],
        *,
        noise_rows: tuple[int, int] | None = None,
    ) -> torch.Tensor:
        """Logits with independent Gaussian weights, by sampling each unit's pre-activation.

        Given a layer's input ``h``, the pre-activation ``h @ w`` of weights ``w ~ N(loc, var)``
        is Gaussian with mean ``h @ loc`` and variance ``h**2 @ var``; one draw per example and
        unit has the same distribution, per example, as a forward pass with sampled weights.

        Parameters
        ----------
        x : torch.Tensor
            Inputs of shape ``(N, in_features)``.
        locs, variances : sequence of torch.Tensor
            Posterior means and variances of each layer's weights, ``(fan_in + 1, fan_out)``.
        noise_rows : tuple of (int, int), optional
            ``(start, total)``: ``x`` is rows ``start:start + N`` of a batch of ``total``. Noise
            is drawn for the whole batch and these rows used, so that the shards of one batch
            over data-parallel processes get exactly the noise one process would draw.

        Returns
        -------
        torch.Tensor
            Logits of shape ``(N, num_classes)``.
        """
        h = x
        for i, (loc, var) in enumerate(zip(locs, variances, strict=True)):
            h = _augment(h)
            mean = h @ loc
            std = ((h * h) @ var).sqrt()
            if noise_rows is None:
                noise = torch.randn_like(mean)
            else:
                start, total = noise_rows
                full = torch.randn((total, mean.shape[-1]), dtype=mean.dtype, device=mean.device)
                noise = full[start : start + mean.shape[0]]
            h = mean + std * noise
            if i < len(locs) - 1:
                h = torch.relu(h)
        return h

    def likelihood(
        self,
        logits: torch.Tensor,
        y: torch.Tensor | None,
        *,
        dataset_size: int | None = None,
        validate: bool = True,
    ) -> torch.Tensor:
        """The observation site ``"obs"``: labels under categorical ``logits``.

        ``validate`` is :func:`~pyro_logits.observe_categorical`'s: check logits and labels.
        """
        return observe_categorical("obs", logits, y, dataset_size=dataset_size, validate=validate)

    def forward(
        self,
        x: torch.Tensor,
        y: torch.Tensor | None = None,
        *,
        dataset_size: int | None = None,
        validate: bool = True,
    ) -> torch.Tensor:
        """Run the model: sample the weights, compute the logits, observe (or sample) labels.

        Parameters
        ----------
        x : torch.Tensor
            Inputs of shape ``(N, in_features)``.
        y : torch.Tensor, optional
            Integer labels of shape ``(N,)``; ``None`` samples them.
        dataset_size : int, optional
            Size of the full data set when ``x`` is a minibatch of it.
        validate : bool
            Check the logits and labels at the likelihood.

        Returns
        -------
        torch.Tensor
            The logits, ``(N, num_classes)``.
        """
        weights = [
            pyro.sample(name, self.prior(i, device=x.device))
            for i, name in enumerate(self.site_names)
        ]
        logits = self.network(x, weights)
        self.likelihood(logits, y, dataset_size=dataset_size, validate=validate)
        return logits
