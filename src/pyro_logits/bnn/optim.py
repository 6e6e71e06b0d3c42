"""One Adam over all of the guide's params, as a Pyro optimizer, with a per-epoch decay."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import pyro
import torch
from pyro.optim import PyroOptim


def fused_adam_supported(device: torch.device) -> bool:
    """Whether ``torch.optim.Adam(fused=True)`` runs on ``device`` in this torch build."""
    try:
        param = torch.zeros(1, device=device, requires_grad=True)
        torch.optim.Adam([param], fused=True)
    except (RuntimeError, TypeError, ValueError):
        return False
    return True


class JointAdam(PyroOptim):
    """``torch.optim.Adam`` over all params at once, its learning rate decayed per epoch.

    Pyro's optimizers keep one torch optimizer (and scheduler) per param and step them one by
    one; this keeps one for all, so the fused implementation updates every param in one
    kernel and the per-call bookkeeping is paid once. The update is Adam's, param by param, as
    with Pyro's ``Adam``. It suits a guide with a fixed set of params, all updated on every
    step (it is given to :class:`pyro.infer.SVI` like any Pyro optimizer); a step with another
    set of params is refused. Params are taken in the order of their names in Pyro's param
    store, so that Adam's saved state fits them again however they are given. After each
    step their gradients are released (set to ``None``, as ``torch.optim.Optimizer.zero_grad``
    does), so that SVI's zeroing has nothing to fill and the next backward pass writes the
    gradients rather than adding into zeros.

    Parameters
    ----------
    lr : float
        The initial learning rate.
    gamma : float
        Factor applied to the learning rate by each :meth:`step` (one per epoch).
    fused : bool
        Use Adam's fused implementation.

    Examples
    --------
    >>> import torch
    >>> p = torch.ones(3, requires_grad=True)
    >>> p.grad = torch.ones(3)
    >>> optim = JointAdam(lr=0.1, gamma=0.5)
    >>> optim([p]); optim.step(); optim.lr
    0.05
    >>> p.detach()
    tensor([0.9000, 0.9000, 0.9000])
    """

    def __init__(self, *, lr: float, gamma: float = 1.0, fused: bool = False) -> None:
        super().__init__(torch.optim.Adam, {"lr": lr})
        self.lr, self.gamma, self.fused = lr, gamma, fused
        self.optimizer: torch.optim.Adam | None = None
        self._ids: set[int] = set()
        self._waiting: dict[str, Any] | None = None

    def __call__(self, params: Iterable[torch.Tensor], *args: Any, **kwargs: Any) -> None:
        """Take one Adam step on ``params``, the same tensors on every call; release their grads."""
        store = pyro.get_param_store()
        params = sorted(params, key=lambda p: store.param_name(p) or "")
        if self.optimizer is None:
            self.optimizer = torch.optim.Adam(params, lr=self.lr, fused=self.fused or None)
            self._ids = {id(p) for p in params}
            if self._waiting is not None:
                self.optimizer.load_state_dict(self._waiting)
                self._waiting = None
                for group in self.optimizer.param_groups:
                    group["lr"] = self.lr
        elif {id(p) for p in params} != self._ids:
            raise ValueError(
                f"Expected the {len(self._ids)} params of the first step but got {len(params)} "
                f"others; JointAdam updates one fixed set of params: use pyro.optim.Adam for "
                f"params that appear or change between steps."
            )
        self.optimizer.step()
        for param in params:
            param.grad = None

    def step(self) -> None:
        """Decay the learning rate by ``gamma`` (call once per epoch)."""
        self.lr *= self.gamma
        if self.optimizer is not None:
            for group in self.optimizer.param_groups:
                group["lr"] = self.lr

    def get_state(self) -> dict[str, Any]:
        """The learning rate and Adam's state (moments and step counts)."""
        adam = self.optimizer.state_dict() if self.optimizer is not None else self._waiting
        return {"lr": self.lr, "adam": adam}

    def set_state(self, state_dict: dict[str, Any]) -> None:
        """Restore :meth:`get_state`'s output; Adam's part is loaded on the next step."""
        self.lr = float(state_dict["lr"])
        self.optimizer, self._waiting = None, state_dict["adam"]
