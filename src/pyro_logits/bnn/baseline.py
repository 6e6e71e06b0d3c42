"""Plain PyTorch networks of the Bayesian networks' shapes: the comparison and the cost floor."""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from pyro_logits.bnn.averaging import IterateAverage
from pyro_logits.runs.state import (
    StateError,
    expect_adam_state,
    expect_epoch,
    expect_keys,
    expect_tensor,
)

__all__ = ["PlainNetwork", "lenet", "plain_mlp"]


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
    """A deterministic network trained with ``F.cross_entropy`` and Adam, beside a Bayesian one.

    It trains on the same images with the same schedule as a :class:`BNNClassifier` (a learning
    rate decayed per epoch, iterate averaging from ``average_from``), so that the two differ in
    being Bayesian alone. Its batch order comes from its own generator: training it leaves the
    global random stream untouched.

    Parameters
    ----------
    net : torch.nn.Module
        The network (its weights are trained in place).
    lr : float
        Adam's learning rate.
    lr_decay : float
        Factor applied to the learning rate after each whole epoch.
    average_from : int
        From this epoch (counted from 1) on, every step's parameters are averaged (see
        :class:`~pyro_logits.bnn.averaging.IterateAverage`); 0 keeps no average.
    seed : int
        Seed of the batch order.
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
        lr_decay: float = 1.0,
        average_from: int = 0,
        seed: int = 0,
        fused: bool = False,
        device: torch.device | str = "cpu",
    ) -> None:
        self.net = net.to(device)
        self.optimizer = torch.optim.Adam(self.net.parameters(), lr=lr, fused=fused or None)
        self.lr_decay, self.average_from = lr_decay, average_from
        self.generator = torch.Generator().manual_seed(seed)
        self.epoch = 0
        self.average = IterateAverage()

    def step(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """One training step on a minibatch; return its loss (a tensor: no device sync)."""
        self.optimizer.zero_grad()
        loss = F.cross_entropy(self.net(x), y)
        loss.backward()
        self.optimizer.step()
        return loss.detach()

    def train_epoch(
        self, x: torch.Tensor, y: torch.Tensor, *, batch_size: int, max_steps: int | None = None
    ) -> float:
        """One pass over the shuffled data, or its first ``max_steps`` minibatches.

        A whole epoch counts towards ``average_from`` and decays the learning rate; a part of
        one (``max_steps``, to time steps) does neither.

        Returns
        -------
        float
            The fraction of an epoch trained.
        """
        n = x.shape[0]
        num_batches = math.ceil(n / batch_size)
        steps = num_batches if max_steps is None else min(max_steps, num_batches)
        order = torch.randperm(n, generator=self.generator)[: steps * batch_size].to(x.device)
        whole = max_steps is None
        averaging = whole and 0 < self.average_from <= self.epoch + 1
        for idx in order.split(batch_size):
            self.step(x[idx], y[idx])
            if averaging:
                self.average.update(list(self.net.parameters()))
        if whole:
            self.epoch += 1
            for group in self.optimizer.param_groups:
                group["lr"] *= self.lr_decay
        return steps / num_batches

    def use_average(self) -> None:
        """Put the parameters averaged since ``average_from`` in the network."""
        self.average.copy_to(list(self.net.parameters()))

    @torch.no_grad()
    def log_probs(self, x: torch.Tensor, *, batch_size: int = 1000) -> torch.Tensor:
        """Log class probabilities, ``(N, num_classes)``, on ``x``'s device."""
        return torch.cat([torch.log_softmax(self.net(xb), dim=-1) for xb in x.split(batch_size)])

    def state_dict(self) -> dict[str, Any]:
        """The network, Adam's state, the batch order's random state, the epoch and average."""
        return {
            "net": self.net.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "generator": self.generator.get_state(),
            "epoch": self.epoch,
            "average": self.average.state_dict(),
        }

    def check_state_dict(self, state: object, *, entry: str = "plain") -> None:
        """Check every entry of ``state`` against this network before any is loaded.

        Raises
        ------
        StateError
            A ``ValueError`` naming the first entry that does not fit.
        """
        keys = ("net", "optimizer", "generator", "epoch", "average")
        state = expect_keys(entry, state, keys)
        own = self.net.state_dict()
        weights = expect_keys(f"{entry}.net", state["net"], list(own))
        if set(weights) != set(own):
            raise StateError(f"{entry}.net", f"the tensors {list(own)}", f"{list(weights)}")
        for name, like in own.items():
            expect_tensor(f"{entry}.net[{name!r}]", weights[name], like, finite=True)
        params = list(self.net.parameters())
        steps = expect_adam_state(f"{entry}.optimizer", state["optimizer"], params)
        expect_tensor(f"{entry}.generator", state["generator"], self.generator.get_state())
        expect_epoch(f"{entry}.epoch", state["epoch"], steps)
        IterateAverage.check_state_dict(state["average"], params, entry=f"{entry}.average")

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore :meth:`state_dict`'s output, every entry checked first."""
        self.check_state_dict(state)
        self.net.load_state_dict(state["net"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.generator.set_state(state["generator"])
        self.epoch = int(state["epoch"])
        self.average.load_state_dict(state["average"], like=list(self.net.parameters()))


def plain_mlp(sizes: Sequence[int], *, seed: int = 0) -> nn.Sequential:
    """``nn.Linear`` layers with ReLUs between them, initialised from ``seed``.

    Building it leaves the global random stream untouched.

    Examples
    --------
    >>> plain_mlp((4, 8, 3))
    Sequential(
      (0): Linear(in_features=4, out_features=8, bias=True)
      (1): ReLU()
      (2): Linear(in_features=8, out_features=3, bias=True)
    )
    """
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        layers: list[nn.Module] = []
        for n_in, n_out in itertools.pairwise(sizes):
            layers += [nn.Linear(n_in, n_out), nn.ReLU()]
        return nn.Sequential(*layers[:-1])
