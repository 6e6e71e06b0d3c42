"""Iterate averaging (Polyak and Ruppert): the running mean of parameters over training steps."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch

from pyro_logits.runs.state import StateError, expect_int, expect_keys, expect_tensor


class IterateAverage:
    """The running mean of a fixed list of tensors, one :meth:`update` per training step.

    The average of the last steps of stochastic gradient descent smooths their noise; it is
    what ``torch.optim.swa_utils.AveragedModel`` keeps for a module's parameters, written here
    for any tensors (the guide's Pyro params, or a network's parameters), with the same
    arithmetic: the first update copies, the ``k``-th moves the mean ``1 / k`` of the way to
    the new values.

    Examples
    --------
    >>> import torch
    >>> w = torch.zeros(2)
    >>> average = IterateAverage()
    >>> for value in (1.0, 2.0, 6.0):
    ...     _ = w.fill_(value)
    ...     average.update([w])
    >>> average.count, average.copy_to([w]), w
    (3, None, tensor([3., 3.]))
    """

    def __init__(self) -> None:
        self.means: list[torch.Tensor] = []
        self.count = 0

    @torch.no_grad()
    def update(self, tensors: Sequence[torch.Tensor]) -> None:
        """Fold the current values of ``tensors`` (the same list each time) into the mean."""
        if self.count and len(tensors) != len(self.means):
            raise ValueError(
                f"Expected the {len(self.means)} tensors of the first update but got "
                f"{len(tensors)}."
            )
        self.count += 1
        if self.count == 1:
            self.means = [t.detach().clone() for t in tensors]
            return
        for mean, value in zip(self.means, tensors, strict=True):
            mean.lerp_(value, 1.0 / self.count)

    @torch.no_grad()
    def copy_to(self, tensors: Sequence[torch.Tensor]) -> None:
        """Write the mean into ``tensors``, in place.

        Raises
        ------
        RuntimeError
            If nothing has been averaged yet.
        """
        if not self.count:
            raise RuntimeError("Expected an average but no step has been averaged yet.")
        for target, mean in zip(tensors, self.means, strict=True):
            target.copy_(mean)

    def state_dict(self) -> dict[str, Any]:
        """The means and the number of steps averaged."""
        return {"means": [mean.clone() for mean in self.means], "count": self.count}

    @staticmethod
    def check_state_dict(state: object, like: Sequence[torch.Tensor], *, entry: str) -> None:
        """Check that ``state`` is :meth:`state_dict` of an average of tensors like ``like``.

        Raises
        ------
        StateError
            Naming the first entry that does not fit (``entry`` prefixes the names).
        """
        average = expect_keys(entry, state, ("means", "count"))
        count = expect_int(f"{entry}.count", average["count"])
        means = average["means"]
        expected = len(like) if count else 0
        if not isinstance(means, list) or len(means) != expected:
            got = f"{len(means)} of them" if isinstance(means, list) else type(means).__name__
            raise StateError(f"{entry}.means", f"a list of {expected} tensors", got)
        for index, (mean, tensor) in enumerate(zip(means, like, strict=False)):
            expect_tensor(f"{entry}.means[{index}]", mean, tensor, finite=True)

    def load_state_dict(
        self, state: dict[str, Any], *, like: Sequence[torch.Tensor], entry: str = "average"
    ) -> None:
        """Restore :meth:`state_dict`'s output, checked against and moved beside ``like``."""
        self.check_state_dict(state, like, entry=entry)
        device = like[0].device if like else None
        self.means = [mean.to(device) for mean in state["means"]]
        self.count = int(state["count"])
