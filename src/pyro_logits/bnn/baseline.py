"""The cost floor of the Bayesian network: a plain PyTorch MLP of its size, as users write it."""

from __future__ import annotations

import itertools
from collections.abc import Sequence

import torch
import torch.nn.functional as F

__all__ = ["PlainMLP"]


class PlainMLP:
    """``nn.Linear`` layers with ReLUs between them, ``F.cross_entropy`` and Adam.

    Its random numbers come from its own seed: building it leaves the global stream untouched.

    Parameters
    ----------
    sizes : sequence of int
        Layer sizes, inputs first (as :attr:`BayesianMLP.sizes`).
    lr : float
        Adam's learning rate.
    fused : bool
        Use Adam's fused implementation.
    seed : int
        Seed of the initial weights.
    device : torch.device or str
        Where the network lives.

    Examples
    --------
    >>> import torch
    >>> mlp = PlainMLP((4, 8, 3))
    >>> bool(mlp.step(torch.rand(5, 4), torch.zeros(5).long()) > 0)
    True
    """

    def __init__(
        self,
        sizes: Sequence[int],
        *,
        lr: float = 1e-3,
        fused: bool = False,
        seed: int = 0,
        device: torch.device | str = "cpu",
    ) -> None:
        device = torch.device(device)
        with torch.random.fork_rng(devices=[device] if device.type == "cuda" else []):
            torch.manual_seed(seed)
            layers: list[torch.nn.Module] = []
            for n_in, n_out in itertools.pairwise(sizes):
                layers += [torch.nn.Linear(n_in, n_out), torch.nn.ReLU()]
            self.net = torch.nn.Sequential(*layers[:-1]).to(device)
        self.optimizer = torch.optim.Adam(self.net.parameters(), lr=lr, fused=fused or None)

    def step(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """One training step on a minibatch; return its loss (a tensor: no device sync)."""
        self.optimizer.zero_grad()
        loss = F.cross_entropy(self.net(x), y)
        loss.backward()
        self.optimizer.step()
        return loss.detach()

    @torch.no_grad()
    def log_probs(self, x: torch.Tensor) -> torch.Tensor:
        """Log class probabilities, ``(N, num_classes)``."""
        return torch.log_softmax(self.net(x), dim=-1)
