"""The model: a classifier network with Gaussian priors on its weights, as a Pyro model."""

from __future__ import annotations

import functools
import itertools
import math
import operator
from collections.abc import Sequence
from typing import Literal

import pyro
import pyro.distributions as dist
import torch
import torch.nn.functional as F
from pyro import poutine
from pyro.poutine.runtime import get_plates
from torch import nn

from pyro_logits.bnn.kernel import gaussian_variance_and_kl, layer_variances_and_kl
from pyro_logits.bnn.layers import (
    FunctionSpec,
    Layer,
    LinearSpec,
    layers_from_sequential,
    local_reparam_forward,
)
from pyro_logits.likelihoods import resolve_validate
from pyro_logits.observe import observe_categorical

Estimator = Literal["local-reparam", "flipout", "sample-weights"]
ESTIMATORS: tuple[str, ...] = ("local-reparam", "flipout", "sample-weights")


class BayesianNetwork(pyro.nn.PyroModule):
    """A classifier network with Gaussian priors on its weights, as a Pyro model.

    The network is stated as users write it, an ``nn.Sequential`` of ``Linear``, ``Conv2d``,
    ``ReLU``, ``MaxPool2d`` and ``Flatten`` modules (see
    :func:`~pyro_logits.bnn.layers.layers_from_sequential`; only their sizes are read), ending
    in the logits of a categorical likelihood. Each weighted layer's weights and bias form one
    sample site ``f"layers.{i}"`` (``i`` counts weighted layers) with value of shape
    ``(fan_in + 1, fan_out)``: the weights as applied to an input row or unfolded patch, with
    the bias as the last row.

    Parameters
    ----------
    net : torch.nn.Sequential or sequence of layers
        The network, or the layers :func:`~pyro_logits.bnn.layers.layers_from_sequential` gives.
    input_shape : sequence of int
        Shape of one input, e.g. ``(784,)`` for a flattened MNIST image or ``(1, 28, 28)``.
    prior_scale : float, sequence of float or "he"
        Standard deviation of the ``N(0, prior_scale**2)`` prior on every weight and bias, one
        value per weighted layer, or ``"he"``: ``sqrt(2 / fan_in)`` for each layer (``fan_in``
        its inputs, or ``in_channels * kh * kw`` for a convolution), the scale of He's
        initialisation, which keeps a ReLU network's activations the same size layer to layer.

    Raises
    ------
    ValueError
        On a module without a Bayesian version, a network without weighted layers, layers
        whose sizes do not fit ``input_shape`` or one another, an output that is not
        ``(N, num_classes)``, or prior scales that are not positive, not one or one per
        weighted layer, or a string other than ``"he"``.

    Examples
    --------
    >>> import pyro, torch
    >>> from torch import nn
    >>> pyro.clear_param_store()
    >>> lenet = nn.Sequential(
    ...     nn.Conv2d(1, 4, 5), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(), nn.Linear(144, 10)
    ... )
    >>> model = BayesianNetwork(lenet, input_shape=(1, 16, 16))
    >>> model.layer_shapes, model.num_classes
    ([(26, 4), (145, 10)], 10)
    >>> trace = pyro.poutine.trace(model).get_trace(torch.rand(3, 1, 16, 16))
    >>> tuple(trace.nodes["_RETURN"]["value"].shape)
    (3, 10)
    """

    def __init__(
        self,
        net: nn.Sequential | Sequence[Layer],
        *,
        input_shape: Sequence[int],
        prior_scale: float | Sequence[float] | str = 0.2,
    ) -> None:
        super().__init__()
        layers = layers_from_sequential(net) if isinstance(net, nn.Module) else list(net)
        weighted = [layer for layer in layers if not isinstance(layer, FunctionSpec)]
        if not weighted:
            raise ValueError("Expected a network with at least one Linear or Conv2d layer.")
        num_layers = len(weighted)
        if isinstance(prior_scale, str):
            if prior_scale != "he":
                raise ValueError(
                    f"Expected prior_scale to be a number, one number per layer or 'he' but "
                    f"got {prior_scale!r}."
                )
            scales = [math.sqrt(2.0 / (layer.shape[0] - 1)) for layer in weighted]
        elif isinstance(prior_scale, int | float):
            scales = [float(prior_scale)] * num_layers
        else:
            scales = [float(s) for s in prior_scale]
        if len(scales) != num_layers:
            raise ValueError(
                f"Expected one prior scale or {num_layers} (one per layer) but got "
                f"{len(scales)}: {scales}."
            )
        if not all(s > 0 and math.isfinite(s) for s in scales):
            raise ValueError(f"Expected positive finite prior scales but got {scales}.")
        self.layers: list[Layer] = layers
        self.input_shape: tuple[int, ...] = tuple(int(d) for d in input_shape)
        self.prior_scales: tuple[float, ...] = tuple(scales)
        self.layer_shapes: list[tuple[int, int]] = [layer.shape for layer in weighted]
        self.num_classes: int = self._output_size()

    def _output_size(self) -> int:
        """Run the network on shapes alone (the meta device); return its number of outputs."""
        x = torch.zeros((1, *self.input_shape), device="meta")
        try:
            out = self.network(x, [torch.zeros(s, device="meta") for s in self.layer_shapes])
        except RuntimeError as error:
            raise ValueError(
                f"Expected layers that take inputs of shape {self.input_shape} one after "
                f"another, but running them failed: {str(error).splitlines()[0]}; check "
                f"input_shape and the sizes of the layers (after Flatten, Linear's "
                f"in_features is channels x height x width)."
            ) from None
        if out.dim() != 2:
            raise ValueError(
                f"Expected the network to end in class scores of shape (N, num_classes) but "
                f"it gives {tuple(out.shape)} for one input; end it with Flatten and Linear."
            )
        return out.shape[-1]

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
            Inputs of shape ``(N, *input_shape)``.
        weights : sequence of torch.Tensor
            One ``(fan_in + 1, fan_out)`` tensor per weighted layer, or ``(S, fan_in + 1,
            fan_out)`` for ``S`` weight samples at once.

        Returns
        -------
        torch.Tensor
            Logits of shape ``(N, num_classes)``, or ``(S, N, num_classes)``.
        """
        remaining = iter(weights)
        h = x
        for layer in self.layers:
            h = layer(h) if isinstance(layer, FunctionSpec) else layer.mean(h, next(remaining))
        return h

    @torch.no_grad()
    def load_into(self, net: nn.Module, weights: Sequence[torch.Tensor]) -> None:
        """Copy one set of weights into a plain network of this shape, in place.

        For example the guide's initial or posterior means, to train a deterministic network
        from the same starting point or to use the posterior mean as one.

        Parameters
        ----------
        net : torch.nn.Module
            A network with the same ``Linear`` and ``Conv2d`` layers in the same order (such as
            the ``nn.Sequential`` this model was built from); its other modules are ignored.
        weights : sequence of torch.Tensor
            One ``(fan_in + 1, fan_out)`` tensor per weighted layer, as
            :meth:`unflatten` gives them.
        """
        modules = [m for m in net.modules() if isinstance(m, nn.Linear | nn.Conv2d)]
        if len(modules) != len(self.layer_shapes) or len(weights) != len(self.layer_shapes):
            raise ValueError(
                f"Expected a network and weights of {len(self.layer_shapes)} weighted layers but "
                f"got {len(modules)} Linear/Conv2d modules and {len(weights)} weight tensors."
            )
        specs = [layer for layer in self.layers if not isinstance(layer, FunctionSpec)]
        for index, (module, w, spec) in enumerate(zip(modules, weights, specs, strict=True)):
            mismatch = ValueError(
                f"Expected weighted layer {index} of shape {spec.shape} but got weights of "
                f"shape {tuple(w.shape)} for a module {module}."
            )
            if tuple(w.shape) != spec.shape:
                raise mismatch
            weight, bias = spec.torch_weights(w)
            if weight.shape != module.weight.shape:
                raise mismatch
            if module.bias is None:
                raise ValueError(f"Expected weighted layer {index} to have a bias: {module}.")
            module.weight.copy_(weight)
            module.bias.copy_(bias)

    @torch.no_grad()
    def weights_from(self, net: nn.Module) -> list[torch.Tensor]:
        """The weights of a plain network of this shape, one ``(fan_in + 1, fan_out)`` a layer.

        The inverse of :meth:`load_into`: each ``Linear`` or ``Conv2d`` module's weight,
        flattened per output unit and transposed, with its bias as the last row.

        Raises
        ------
        ValueError
            If ``net`` has another number of ``Linear``/``Conv2d`` modules, a module of
            another shape, or one without a bias.
        """
        modules = [m for m in net.modules() if isinstance(m, nn.Linear | nn.Conv2d)]
        if len(modules) != len(self.layer_shapes):
            raise ValueError(
                f"Expected a network of {len(self.layer_shapes)} weighted layers but got "
                f"{len(modules)} Linear/Conv2d modules."
            )
        weights = []
        for index, (module, shape) in enumerate(zip(modules, self.layer_shapes, strict=True)):
            if module.bias is None:
                raise ValueError(f"Expected weighted layer {index} to have a bias: {module}.")
            kernel = module.weight.detach()
            w = torch.cat([kernel.reshape(kernel.shape[0], -1).t(), module.bias.detach()[None]])
            if tuple(w.shape) != shape:
                raise ValueError(
                    f"Expected weighted layer {index} of shape {shape} but the module {module} "
                    f"gives {tuple(w.shape)}."
                )
            weights.append(w.clone())
        return weights

    def logits_and_kl(
        self,
        x: torch.Tensor,
        loc: torch.Tensor,
        log_scale: torch.Tensor,
        *,
        estimator: Estimator = "local-reparam",
        noise_rows: tuple[int, int] | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """One sample of the logits under independent Gaussian weights, and their KL to the prior.

        The weights are ``N(loc, exp(log_scale)**2)``, flat as :meth:`unflatten` takes them.
        ``"local-reparam"`` samples each unit's pre-activation, Gaussian given the layer's
        input ``h`` with mean ``h @ loc`` and variance ``h**2 @ var`` (``conv(h, loc)`` and
        ``conv(h**2, var)`` for a convolution), one draw per example and unit; ``"flipout"``
        samples convolutions by Flipout, one weight sample per example at every position
        (:func:`~pyro_logits.bnn.layers.local_reparam_forward`); ``"sample-weights"`` draws
        one set of weights for the whole batch.

        Parameters
        ----------
        x : torch.Tensor
            Inputs of shape ``(N, *input_shape)``.
        loc, log_scale : torch.Tensor
            Flat posterior means and log standard deviations, ``(P,)``.
        estimator : {"local-reparam", "flipout", "sample-weights"}
            How the logits are sampled.
        noise_rows : tuple of (int, int), optional
            ``(start, total)``: ``x`` is rows ``start:start + N`` of a batch of ``total``, and
            these rows of the whole batch's noise are used (data-parallel shards).

        Returns
        -------
        tuple of torch.Tensor
            Logits of shape ``(N, num_classes)`` and ``KL(q || p)``, a scalar, both
            differentiable in ``loc`` and ``log_scale``.
        """
        if estimator == "sample-weights":
            var, kl = gaussian_variance_and_kl(
                loc, log_scale, prior_scale=self.prior_scales, numels=self.layer_numels
            )
            weights = torch.addcmul(loc, var.sqrt(), torch.randn_like(loc))
            return self.network(x, self.unflatten(weights)), kl
        locs, variances, kl = layer_variances_and_kl(
            loc, log_scale, prior_scale=self.prior_scales, shapes=self.layer_shapes
        )
        logits = local_reparam_forward(
            self.layers,
            x,
            locs,
            variances,
            flipout=estimator == "flipout",
            noise_rows=noise_rows,
        )
        return logits, kl

    def likelihood(
        self,
        logits: torch.Tensor,
        y: torch.Tensor | None,
        *,
        dataset_size: int | None = None,
        validate: bool | None = None,
    ) -> torch.Tensor:
        """The observation site ``"obs"``: labels under categorical ``logits``.

        ``validate`` is :func:`~pyro_logits.observe_categorical`'s: check logits and labels
        (``None`` follows :func:`pyro.enable_validation`).
        """
        return observe_categorical("obs", logits, y, dataset_size=dataset_size, validate=validate)

    def log_likelihood(
        self,
        logits: torch.Tensor,
        y: torch.Tensor,
        *,
        dataset_size: int | None = None,
        validate: bool | None = None,
    ) -> torch.Tensor:
        """Log-probability of the labels under :meth:`likelihood`, summed over its observed sites.

        :meth:`likelihood` runs under ``poutine.trace``, so its data-set scaling, checks and
        any handler around the call apply, a subclass's own likelihood included. Without
        checks (``validate=False``), outside any plate, the default categorical likelihood of
        ``(N, C)`` logits and integer labels ``(N,)`` is computed without Pyro's trace, as
        ``-cross_entropy(logits, y, reduction="sum") * dataset_size / N``: the same value (up
        to float rounding) at a fraction of the cost; the cross-entropy is then what
        :func:`~pyro_logits.check_logits` sees.

        Returns
        -------
        torch.Tensor
            A scalar, differentiable in ``logits``.
        """
        default = type(self).likelihood is BayesianNetwork.likelihood
        plain_labels = y.dim() == 1 and not y.is_floating_point() and y.dtype != torch.bool
        # anything else goes through the likelihood, whose errors explain it
        sized = dataset_size is None or (type(dataset_size) is int and dataset_size >= len(y))
        fast = default and logits.dim() == 2 and plain_labels and sized
        if fast and not resolve_validate(validate) and not get_plates():
            scale = 1.0 if dataset_size is None else dataset_size / y.shape[0]
            return F.cross_entropy(logits, y, reduction="sum") * -scale
        with poutine.trace() as tracer:
            self.likelihood(logits, y, dataset_size=dataset_size, validate=validate)
        trace = tracer.trace
        trace.compute_log_prob(site_filter=lambda name, site: site["is_observed"])
        terms = [
            site["log_prob_sum"]
            for site in trace.nodes.values()
            if site["type"] == "sample" and site["is_observed"]
        ]
        if not terms:
            raise ValueError(
                f"Expected the likelihood of {type(self).__name__} to observe the labels but it "
                f"has no observed site; call pyro.sample(..., obs=y) or an observe helper there."
            )
        return functools.reduce(operator.add, terms)

    def forward(
        self,
        x: torch.Tensor,
        y: torch.Tensor | None = None,
        *,
        dataset_size: int | None = None,
        validate: bool | None = None,
    ) -> torch.Tensor:
        """Run the model: sample the weights, compute the logits, observe (or sample) labels.

        Parameters
        ----------
        x : torch.Tensor
            Inputs of shape ``(N, *input_shape)``.
        y : torch.Tensor, optional
            Integer labels of shape ``(N,)``; ``None`` samples them.
        dataset_size : int, optional
            Size of the full data set when ``x`` is a minibatch of it.
        validate : bool, optional
            Check the logits and labels at the likelihood; ``None`` (the default) follows
            :func:`pyro.enable_validation`, as the core's helpers do.

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


class BayesianMLP(BayesianNetwork):
    """A multilayer perceptron with Gaussian priors on its weights, as a Pyro model.

    A :class:`BayesianNetwork` of linear layers with ReLUs between them: layer ``i`` maps
    ``sizes[i]`` to ``sizes[i + 1]`` units, its site ``f"layers.{i}"`` has shape
    ``(sizes[i] + 1, sizes[i + 1])``, the weight matrix (applied as ``h @ w``) with the bias as
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
        sizes = (int(in_features), *(int(h) for h in hidden), int(num_classes))
        if min(sizes) < 1:
            raise ValueError(f"Expected positive layer sizes but got {sizes}.")
        layers: list[Layer] = []
        for n_in, n_out in itertools.pairwise(sizes):
            layers += [LinearSpec(n_in, n_out), FunctionSpec("relu")]
        super().__init__(layers[:-1], input_shape=(sizes[0],), prior_scale=prior_scale)
        self.sizes: tuple[int, ...] = sizes
