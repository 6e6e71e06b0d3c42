"""The loss: the (tempered) negative ELBO of a Bayesian network under a mean-field guide."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, NamedTuple, Protocol

import torch
from pyro.infer import ELBO
from pyro.infer.util import torch_item

from pyro_logits.bnn.model import ESTIMATORS, Estimator

if TYPE_CHECKING:
    from pyro_logits.bnn.distributed import DataParallel


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


class MeanFieldModel(Protocol):
    """What :class:`MeanFieldELBO` needs of a model (:class:`BayesianNetwork` has it)."""

    def logits_and_kl(
        self,
        x: torch.Tensor,
        loc: torch.Tensor,
        log_scale: torch.Tensor,
        *,
        estimator: Estimator = ...,
        noise_rows: tuple[int, int] | None = ...,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """One sample of the logits of ``x`` under the posterior, and ``KL(q || p)``."""
        ...

    def log_likelihood(
        self,
        logits: torch.Tensor,
        y: torch.Tensor,
        *,
        dataset_size: int | None = ...,
        validate: bool | None = ...,
    ) -> torch.Tensor:
        """The log-probability of the labels ``y`` given the ``logits``, a scalar."""
        ...


class MeanFieldPosterior(Protocol):
    """What :class:`MeanFieldELBO` needs of a guide (:class:`MeanFieldGuide` has it)."""

    def posterior(self) -> tuple[torch.Tensor, torch.Tensor]:
        """The flat means and log standard deviations, read through ``pyro.param``."""
        ...


class MeanFieldELBO(ELBO):
    """The negative ELBO of a Bayesian network under a mean-field Gaussian guide, for SVI.

    ``loss = kl_weight * KL(q || p) - E_q[log p(y | x, w)]``, the KL in closed form and the
    expectation by one Monte Carlo sample. A Pyro :class:`~pyro.infer.ELBO`: ``loss``,
    ``loss_and_grads`` and ``differentiable_loss`` take the model, the guide and the model's
    arguments, and calling it gives Pyro's ``ELBOModule``. What it needs of the model and the
    guide is small (:class:`MeanFieldModel`, :class:`MeanFieldPosterior`):
    ``guide.posterior()`` gives the flat means and log standard deviations,
    ``model.logits_and_kl`` one sample of the logits and the KL, and
    ``model.log_likelihood`` the likelihood of the labels: the model's own ``"obs"`` site run
    under ``poutine.trace``, so its data-set scaling and checks (and any handler around the
    call, such as :func:`~pyro_logits.check_logits`) apply. The weight sites are never traced.

    Parameters
    ----------
    estimator : {"local-reparam", "flipout", "sample-weights"}
        How the expected log-likelihood is sampled (see
        :meth:`BayesianNetwork.logits_and_kl`): each unit's pre-activation (local
        reparameterisation, faster and less noisy), the same with convolutions by Flipout, or
        one set of weights per step.
    kl_weight : float
        Multiplies the KL term. 1.0 (the default) is the negative ELBO. Minimising
        ``kl_weight * KL(q || p) - E_q[log p(y | x, w)]`` is minimising ``KL(q || r)`` to the
        target ``r(w) ∝ p(w) p(y | x, w) ** (1 / kl_weight)``: a weight below 1 makes the
        likelihood count more (a "cold", narrower posterior), not the prior less. Mean-field
        posteriors under the full KL underfit wide networks (most weights are kept near the
        prior and their noise drowns the signal); down-weighting the KL is the usual remedy, at
        the price of no longer being Bayes' rule.
    data_parallel : DataParallel, optional
        In a ``torchrun`` run, :meth:`loss_and_grads` sums the loss and the gradients over the
        processes, each of which holds a ``shard`` of the minibatch (see
        :mod:`pyro_logits.bnn.distributed`).

    Examples
    --------
    >>> import pyro, torch
    >>> from pyro_logits.bnn import BayesianMLP, MeanFieldGuide
    >>> pyro.clear_param_store()
    >>> model = BayesianMLP(4, (8,), 3)
    >>> guide = MeanFieldGuide(model)
    >>> svi = pyro.infer.SVI(model, guide, pyro.optim.Adam({"lr": 0.01}), loss=MeanFieldELBO())
    >>> loss = svi.step(torch.rand(5, 4), torch.zeros(5).long(), dataset_size=50)
    """

    def __init__(
        self,
        *,
        estimator: Estimator = "local-reparam",
        kl_weight: float = 1.0,
        data_parallel: DataParallel | None = None,
    ) -> None:
        if estimator not in ESTIMATORS:
            raise ValueError(f"Expected estimator to be one of {ESTIMATORS} but got {estimator!r}.")
        super().__init__(num_particles=1)
        self.estimator: Estimator = estimator
        self.kl_weight = kl_weight
        self.data_parallel = data_parallel

    def differentiable_loss(
        self,
        model: MeanFieldModel,
        guide: MeanFieldPosterior,
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
        rows = (shard.start, shard.total) if shard is not None else None
        logits, kl = model.logits_and_kl(
            x, loc, log_scale, estimator=self.estimator, noise_rows=rows
        )
        log_likelihood = model.log_likelihood(
            logits, y, dataset_size=dataset_size, validate=validate
        )
        loss = self.kl_weight * kl - log_likelihood
        return loss if shard is None else loss * shard.weight

    def _get_trace(self, *args: Any, **kwargs: Any) -> Any:
        raise NotImplementedError(
            "MeanFieldELBO never traces the weight sites: it computes the KL in closed form."
        )

    def loss(
        self, model: MeanFieldModel, guide: MeanFieldPosterior, *args: Any, **kwargs: Any
    ) -> float:
        """The estimate as a float, without gradients."""
        with torch.no_grad():
            return torch_item(self.differentiable_loss(model, guide, *args, **kwargs))

    def loss_and_grads(
        self, model: MeanFieldModel, guide: MeanFieldPosterior, *args: Any, **kwargs: Any
    ) -> float:
        """The estimate as a float, its gradients accumulated into the params' ``.grad``.

        With ``data_parallel``, both are summed over the processes (the posterior's two
        params, in the same order on every process).
        """
        loss = self.differentiable_loss(model, guide, *args, **kwargs)
        loss.backward()
        if self.data_parallel is None:
            return torch_item(loss)
        device = self.data_parallel.device
        total = torch.tensor(float(loss), dtype=torch.float64, device=device)
        self.data_parallel.sum_gradients(guide.posterior(), total)
        return float(total)
