"""The loss: the (tempered) negative ELBO of a Bayesian network under a mean-field guide."""

from __future__ import annotations

from typing import Any, NamedTuple

import torch
from pyro.infer import ELBO
from pyro.infer.util import torch_item

from pyro_logits.bnn.guide import MeanFieldGuide
from pyro_logits.bnn.kernel import gaussian_variance_and_kl, layer_variances_and_kl
from pyro_logits.bnn.model import BayesianNetwork


class Shard(NamedTuple):
    """Rows ``start:stop`` of a minibatch of ``total`` examples, given to one process.

    ``weight`` multiplies the process's loss: ``(stop - start) / total`` for its share, so that
    the sum over processes is the loss of the whole minibatch (0 for a process whose share of a
    small last batch is empty and that computes on a stand-in row).
    """

    start: int
    stop: int
    total: int
    weight: float


class MeanFieldELBO(ELBO):
    """The negative ELBO of a :class:`BayesianNetwork` under a :class:`MeanFieldGuide`, for SVI.

    ``loss = kl_weight * KL(q || p) - E_q[log p(y | x, w)]``, the KL in closed form and the
    expectation by one Monte Carlo sample: of every pre-activation (``local_reparam=True``;
    with ``flipout=True`` the convolutions by Flipout) or of the weights. The log-likelihood is
    the model's :meth:`~BayesianNetwork.log_likelihood`: its own ``"obs"`` site run under
    ``poutine.trace``, so its data-set scaling and checks (and any handler around the call, such
    as :func:`~pyro_logits.check_logits`) apply, or, for the default likelihood on steps without
    checks, the same value as a cross-entropy; the weight sites are never traced. A Pyro
    :class:`~pyro.infer.ELBO`: ``loss``, ``loss_and_grads`` and ``differentiable_loss`` take the
    model, the guide and the model's arguments.

    Parameters
    ----------
    local_reparam : bool
        Sample pre-activations (local reparameterisation) rather than weights.
    flipout : bool
        With ``local_reparam``, sample convolutions by Flipout (one weight sample per example
        at every position, see :func:`~pyro_logits.bnn.layers.local_reparam_forward`).
    kl_weight : float
        Multiplies the KL term. 1.0 (the default) is the negative ELBO. Minimising
        ``kl_weight * KL(q || p) - E_q[log p(y | x, w)]`` is minimising ``KL(q || r)`` to the
        target ``r(w) ∝ p(w) p(y | x, w) ** (1 / kl_weight)``: a weight below 1 makes the
        likelihood count more (a "cold", narrower posterior), not the prior less. Mean-field
        posteriors under the full KL underfit wide networks (most weights are kept near the
        prior and their noise drowns the signal); down-weighting the KL is the usual remedy, at
        the price of no longer being Bayes' rule.

    Examples
    --------
    >>> import pyro, torch
    >>> from pyro_logits.bnn import BayesianMLP
    >>> pyro.clear_param_store()
    >>> model = BayesianMLP(4, (8,), 3)
    >>> guide = MeanFieldGuide(model)
    >>> svi = pyro.infer.SVI(model, guide, pyro.optim.Adam({"lr": 0.01}), loss=MeanFieldELBO())
    >>> loss = svi.step(torch.rand(5, 4), torch.zeros(5).long(), dataset_size=50)
    """

    def __init__(
        self, *, local_reparam: bool = True, flipout: bool = False, kl_weight: float = 1.0
    ) -> None:
        super().__init__(num_particles=1)
        self.local_reparam = local_reparam
        self.flipout = flipout
        self.kl_weight = kl_weight

    def differentiable_loss(
        self,
        model: BayesianNetwork,
        guide: MeanFieldGuide,
        x: torch.Tensor,
        y: torch.Tensor,
        *,
        dataset_size: int | None = None,
        validate: bool | None = None,
        shard: Shard | None = None,
    ) -> torch.Tensor:
        """Return a differentiable one-sample estimate of the negative ELBO.

        The arguments after ``guide`` are the model's (see :meth:`BayesianNetwork.forward`);
        ``shard`` says which rows of a data-parallel minibatch ``x`` holds (see
        :mod:`pyro_logits.bnn.distributed`).
        """
        loc, log_scale = guide.posterior()
        if self.local_reparam:
            locs, variances, kl = layer_variances_and_kl(
                loc, log_scale, prior_scale=model.prior_scales, shapes=model.layer_shapes
            )
            rows = (shard.start, shard.total) if shard is not None else None
            logits = model.local_reparam_network(
                x, locs, variances, flipout=self.flipout, noise_rows=rows
            )
        else:
            var, kl = gaussian_variance_and_kl(
                loc, log_scale, prior_scale=model.prior_scales, numels=model.layer_numels
            )
            weights = torch.addcmul(loc, var.sqrt(), torch.randn_like(loc))
            logits = model.network(x, model.unflatten(weights))
        log_likelihood = model.log_likelihood(
            logits, y, dataset_size=dataset_size, validate=validate
        )
        loss = self.kl_weight * kl - log_likelihood
        return loss if shard is None else loss * shard.weight

    __call__ = differentiable_loss

    def _get_trace(self, *args: Any, **kwargs: Any) -> Any:
        raise NotImplementedError(
            "MeanFieldELBO never traces the weight sites: it computes the KL in closed form."
        )

    def loss(
        self, model: BayesianNetwork, guide: MeanFieldGuide, *args: Any, **kwargs: Any
    ) -> float:
        """The estimate as a float, without gradients."""
        with torch.no_grad():
            return torch_item(self.differentiable_loss(model, guide, *args, **kwargs))

    def loss_and_grads(
        self, model: BayesianNetwork, guide: MeanFieldGuide, *args: Any, **kwargs: Any
    ) -> float:
        """The estimate as a float, its gradients accumulated into the params' ``.grad``."""
        loss = self.differentiable_loss(model, guide, *args, **kwargs)
        loss.backward()
        return torch_item(loss)
