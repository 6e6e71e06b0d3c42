"""The posterior: independent Gaussians over the weights, in two flat Pyro params."""

from __future__ import annotations

import math
from typing import Any

import pyro
import pyro.distributions as dist
import torch
from torch import nn

from pyro_logits.bnn.kernel import gaussian_variance_and_kl
from pyro_logits.bnn.model import BayesianNetwork


class MeanFieldGuide:
    """Independent Gaussian posteriors over the weights of a :class:`BayesianNetwork`.

    Two flat Pyro params hold every weight of the network, layer after layer (in the order of
    :meth:`BayesianNetwork.unflatten`): ``f"{name}.loc"``, the means, and ``f"{name}.log_scale"``,
    the log standard deviations; both are unconstrained. Few, large params keep the per-step
    work of Pyro and Adam small. Means start as PyTorch's ``nn.Linear`` does, uniform in
    ``+-1/sqrt(fan_in)``; standard deviations start at ``init_scale``, small, so that the
    network first learns like a deterministic one and the KL term widens the posterior where
    the data allow.

    Parameters
    ----------
    model : BayesianNetwork
        The model whose weight sites this guide covers.
    init_scale : float
        Initial standard deviation of every weight.
    name : str
        Prefix of the param names.
    device : torch.device or str, optional
        Where the params are created.

    Examples
    --------
    >>> import pyro, torch
    >>> from pyro_logits.bnn import BayesianMLP
    >>> pyro.clear_param_store()
    >>> guide = MeanFieldGuide(BayesianMLP(4, (8,), 3))
    >>> sorted(guide(torch.rand(5, 4)))
    ['layers.0', 'layers.1']
    >>> pyro.param("guide.log_scale").shape, pyro.param("guide.log_scale").exp().max()
    (torch.Size([67]), tensor(0.0050, grad_fn=<MaxBackward1>))
    """

    def __init__(
        self,
        model: BayesianNetwork,
        *,
        init_scale: float = 0.005,
        name: str = "guide",
        device: torch.device | str | None = None,
    ) -> None:
        if not init_scale > 0:
            raise ValueError(f"Expected a positive init_scale but got {init_scale}.")
        self.model = model
        self.init_scale = float(init_scale)
        self.name = name
        self.device = torch.device(device) if device is not None else torch.device("cpu")
        self.initial: tuple[torch.Tensor, torch.Tensor] | None = None  # see from_trained

    @classmethod
    def from_trained(
        cls,
        model: BayesianNetwork,
        net: nn.Module,
        *,
        scale_fraction: float = 0.1,
        min_scale: float = 1e-4,
        name: str = "guide",
        device: torch.device | str | None = None,
    ) -> MeanFieldGuide:
        """A guide whose posterior starts at a trained plain network: what it learned is kept.

        The posterior means are the network's weights and biases
        (:meth:`BayesianNetwork.weights_from`); each standard deviation is
        ``scale_fraction`` times the magnitude of its weight, at least ``min_scale`` (the rule
        of MOPED, Krishnan et al., 2020): large weights may move more than small ones.

        Parameters
        ----------
        model : BayesianNetwork
            The model; ``net`` must have its shape (e.g. the ``nn.Sequential`` it was built
            from, trained).
        net : torch.nn.Module
            The trained network.
        scale_fraction : float
            Initial standard deviation relative to each weight's magnitude.
        min_scale : float
            Smallest initial standard deviation (for weights at or near 0).
        name, device
            As for :class:`MeanFieldGuide`.

        Examples
        --------
        >>> import pyro, torch
        >>> from torch import nn
        >>> pyro.clear_param_store()
        >>> net = nn.Sequential(nn.Linear(3, 2))
        >>> model = BayesianNetwork(net, input_shape=(3,))
        >>> guide = MeanFieldGuide.from_trained(model, net, scale_fraction=0.5)
        >>> loc, log_scale = guide.posterior()
        >>> torch.equal(loc[:6].view(3, 2), net[0].weight.t())
        True
        >>> torch.allclose(log_scale.exp(), (0.5 * loc.abs()).clamp_min(1e-4))
        True
        """
        if not scale_fraction > 0 or not min_scale > 0:
            raise ValueError(
                f"Expected scale_fraction > 0 and min_scale > 0 but got {scale_fraction} and "
                f"{min_scale}."
            )
        loc = torch.cat([w.flatten() for w in model.weights_from(net)]).float()
        guide = cls(model, init_scale=min_scale, name=name, device=device)
        scale = (scale_fraction * loc.abs()).clamp_min(min_scale)
        guide.initial = (loc.to(guide.device), scale.log().to(guide.device))
        return guide

    @property
    def param_names(self) -> list[str]:
        """Names of the guide's two Pyro params."""
        return [f"{self.name}.loc", f"{self.name}.log_scale"]

    def _init_loc(self) -> torch.Tensor:
        if self.initial is not None:
            return self.initial[0].clone()
        parts = []
        for fan_in_1, fan_out in self.model.layer_shapes:
            bound = 1.0 / math.sqrt(fan_in_1 - 1)
            w = torch.empty((fan_in_1, fan_out), device=self.device).uniform_(-bound, bound)
            parts.append(w.flatten())
        return torch.cat(parts)

    def _init_log_scale(self) -> torch.Tensor:
        if self.initial is not None:
            return self.initial[1].clone()
        size = sum(self.model.layer_numels)
        return torch.full((size,), math.log(self.init_scale), device=self.device)

    def posterior(self) -> tuple[torch.Tensor, torch.Tensor]:
        """Return the flat ``loc`` and ``log_scale`` from Pyro's param store.

        Read through ``pyro.param`` (created on first use), so that :class:`pyro.infer.SVI`
        sees and updates them.
        """
        size = sum(self.model.layer_numels)
        loc_name, log_scale_name = self.param_names
        loc = pyro.param(loc_name, self._init_loc)
        log_scale = pyro.param(log_scale_name, self._init_log_scale)
        if loc.shape != (size,) or log_scale.shape != (size,):
            raise ValueError(
                f"Expected params {loc_name!r} and {log_scale_name!r} of shape ({size},) but "
                f"Pyro's param store holds {tuple(loc.shape)} and {tuple(log_scale.shape)} from "
                f"another network; call pyro.clear_param_store() or give this guide another name."
            )
        return loc, log_scale

    def __call__(self, *args: Any, **kwargs: Any) -> dict[str, torch.Tensor]:
        """Sample every weight site (the guide as a Pyro guide; the model's args are ignored)."""
        loc, log_scale = self.posterior()
        m = self.model
        layers = zip(m.site_names, m.unflatten(loc), m.unflatten(log_scale), strict=True)
        return {
            name: pyro.sample(name, dist.Normal(m, s.exp()).to_event(2)) for name, m, s in layers
        }

    @torch.no_grad()
    def layer_summary(self) -> list[dict[str, Any]]:
        """How far each layer's posterior has moved from its prior, one dict a weighted layer.

        Mean-field variational inference tends to leave many weights at the prior, their
        means near zero and standard deviations near the prior's (over-pruning): the network
        then computes with fewer effective weights than it has. This summary shows it.

        Returns
        -------
        list of dict
            In the order of :attr:`BayesianNetwork.site_names`, each with ``site``,
            ``weights`` (biases included), ``loc_rms`` (root mean square of the means),
            ``scale_median``, ``prior_scale``, ``kl`` (``KL(q || p)`` of the layer in nats,
            closed form, float64) and ``snr_below_1``: the fraction of weights whose
            signal-to-noise ratio ``|loc| / scale`` is below 1, the usual mark of a weight the
            data left at the prior.
        """
        loc, log_scale = (t.detach().double() for t in self.posterior())
        m = self.model
        summary = []
        for site, prior, mean, log_sd in zip(
            m.site_names, m.prior_scales, m.unflatten(loc), m.unflatten(log_scale), strict=True
        ):
            sd = log_sd.exp()
            _, kl = gaussian_variance_and_kl(mean.flatten(), log_sd.flatten(), prior_scale=prior)
            summary.append(
                {
                    "site": site,
                    "weights": mean.numel(),
                    "loc_rms": mean.pow(2).mean().sqrt().item(),
                    "scale_median": sd.median().item(),
                    "prior_scale": prior,
                    "kl": kl.item(),
                    "snr_below_1": (mean.abs() < sd).double().mean().item(),
                }
            )
        return summary

    @torch.no_grad()
    def sample_weights(self, num_samples: int) -> list[torch.Tensor]:
        """Draw ``num_samples`` independent weight sets: ``(S, fan_in + 1, fan_out)`` per layer."""
        loc, log_scale = self.posterior()
        noise = torch.randn((num_samples, loc.numel()), device=loc.device)
        return self.model.unflatten(torch.addcmul(loc, log_scale.exp(), noise))
