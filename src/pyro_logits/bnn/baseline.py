"""The cost floors of the Bayesian networks: plain PyTorch networks of their shape."""

from __future__ import annotations

import itertools
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["PlainMLP", "PlainNetwork", "lenet"]


def lenet(channels: tuple[int, int] = (20, 50), hidden: int = 500) -> nn.Sequential:
    """The LeNet-5 shape of the uncertainty benchmarks, for ``(N, 1, 28, 28)`` images.

    Two 5x5 convolutions, each followed by a ReLU and 2x2 max pooling, a hidden layer and 10
    classes: 20-50-500 by default (431k weights).

    Examples
    --------
    >>> import torch
    >>> lenet()(torch.zeros(2, 1, 28, 28)).shape
    torch.Size([2, 10])
    """
    first, second = channels
    return nn.Sequential(
        nn.Conv2d(1, first, 5),
        nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Conv2d(first, second, 5),
        nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Flatten(),
        nn.Linear(second * 4 * 4, hidden),
        nn.ReLU(),
        nn.Linear(hidden, 10),
    )


class PlainNetwork:
    """A deterministic ``nn.Sequential`` trained with ``F.cross_entropy`` and Adam.

    Parameters
    ----------
    net : torch.nn.Module
        The network (its weights are trained in place).
    lr : float
        Adam's learning rate.
    fused : bool
        Use Adam's fused implementation.
    device : torch.device or str
        Where the network lives.

    Examples
    --------
    >>> import torch
    >>> plain = PlainNetwork(torch.nn.Linear(4, 3))
    >>> bool(plain.step(torch.rand(5, 4), torch.zeros(5).long()) > 0)
    True
    """

    def __init__(
        self,
        net: nn.Module,
        *,
        lr: float = 1e-3,
        fused: bool = False,
        device: torch.device | str = "cpu",
    ) -> None:
        self.net = net.to(device)
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


class PlainMLP(PlainNetwork):
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
            layers: list[nn.Module] = []
            for n_in, n_out in itertools.pairwise(sizes):
                layers += [nn.Linear(n_in, n_out), nn.ReLU()]
            net = nn.Sequential(*layers[:-1])
        super().__init__(net, lr=lr, fused=fused, device=device)
