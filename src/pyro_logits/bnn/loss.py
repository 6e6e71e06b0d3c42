"""The loss: the (tempered) negative ELBO of a Bayesian MLP under a mean-field guide."""

from __future__ import annotations

import torch
from pyro import poutine

from pyro_logits.bnn.guide import MeanFieldGuide
from pyro_logits.bnn.kernel import gaussian_variance_and_kl
from pyro_logits.bnn.model import BayesianMLP


class MeanFieldELBO:
    """The negative ELBO of a :class:`BayesianMLP` under a :class:`MeanFieldGuide`, for SVI.

    ``loss = KL(q || p) - E_q[log p(y | x, w)]``, the KL in closed form and the expectation by
    one Monte Carlo sample: of every pre-activation (``local_reparam=True``) or of the weights.
    The log-likelihood is the model's own ``"obs"`` site, run under ``poutine.trace``, so its
    data-set scaling, mask and checks (and any handler around the call, such as
    :func:`~pyro_logits.check_logits`) apply; the weight sites are never traced.

    Parameters
    ----------
    local_reparam : bool
        Sample pre-activations (local reparameterisation) rather than weights.
    kl_weight : float
        Multiplies the KL term. 1.0 (the default) is the negative ELBO. A smaller weight fits
        a tempered ("cold") posterior, ``q`` close to ``p(w) ** kl_weight * p(y | x, w)``
        rather than the Bayesian ``p(w) * p(y | x, w)``: the prior counts for less, the
        posterior is narrower. Mean-field posteriors under the full KL underfit wide networks
        (most weights are kept near the prior and their noise drowns the signal); down-weighting
        the KL is the usual remedy, at the price of no longer being Bayes' rule.

    Examples
    --------
    >>> import pyro, torch
    >>> pyro.clear_param_store()
    >>> model = BayesianMLP(4, (8,), 3)
    >>> guide = MeanFieldGuide(model)
    >>> svi = pyro.infer.SVI(model, guide, pyro.optim.Adam({"lr": 0.01}), loss=MeanFieldELBO())
    >>> loss = svi.step(torch.rand(5, 4), torch.zeros(5).long(), dataset_size=50)
    """

    def __init__(self, *, local_reparam: bool = True, kl_weight: float = 1.0) -> None:
        self.local_reparam = local_reparam
        self.kl_weight = kl_weight

    def __call__(
        self,
        model: BayesianMLP,
        guide: MeanFieldGuide,
        x: torch.Tensor,
        y: torch.Tensor,
        *,
        dataset_size: int | None = None,
        validate: bool = True,
    ) -> torch.Tensor:
        """Return a differentiable one-sample estimate of the negative ELBO.

        The arguments after ``guide`` are the model's (see :meth:`BayesianMLP.forward`).
        """
        loc, log_scale = guide.posterior()
        var, kl = gaussian_variance_and_kl(
            loc, log_scale, prior_scale=model.prior_scales, numels=model.layer_numels
        )
        if self.local_reparam:
            logits = model.local_reparam_network(x, model.unflatten(loc), model.unflatten(var))
        else:
            weights = torch.addcmul(loc, var.sqrt(), torch.randn_like(loc))
            logits = model.network(x, model.unflatten(weights))
        with poutine.trace() as tracer:
            model.likelihood(logits, y, dataset_size=dataset_size, validate=validate)
        trace = tracer.trace
        trace.compute_log_prob(site_filter=lambda name, site: site["is_observed"])
        log_likelihood = sum(
            site["log_prob_sum"]
            for site in trace.nodes.values()
            if site["type"] == "sample" and site["is_observed"]
        )
        return self.kl_weight * kl - log_likelihood
