"""Checks of a checkpoint's content, entry by entry, before anything is loaded from it.

A checkpoint's digest proves the file is whole, not that what it holds fits the model being
resumed: a wrongly shaped Adam moment crashes torch's fused Adam (it checks no shapes), a
negative epoch trains for ever. These functions check one entry each and raise
:class:`StateError`, which names the entry (``optimizer.adam.state[0].exp_avg``), what was
expected and what was found.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import torch

__all__ = [
    "StateError",
    "expect_adam_state",
    "expect_epoch",
    "expect_int",
    "expect_keys",
    "expect_number",
    "expect_tensor",
]


class StateError(ValueError):
    """An entry of a checkpoint that cannot belong to what is being resumed."""

    def __init__(self, entry: str, expected: str, got: str) -> None:
        super().__init__(f"Expected {entry} to be {expected} but got {got}.")
        self.entry, self.expected, self.got = entry, expected, got


def _describe(value: object) -> str:
    if isinstance(value, torch.Tensor):
        return f"a {value.dtype} tensor of shape {tuple(value.shape)}"
    text = repr(value)
    return f"{type(value).__name__} {text if len(text) <= 40 else text[:37] + '...'}"


def expect_keys(entry: str, value: object, keys: Sequence[Any]) -> Mapping[Any, Any]:
    """``value`` as a mapping that holds ``keys`` (it may hold others)."""
    if not isinstance(value, Mapping):
        raise StateError(entry, "a dict", _describe(value))
    missing = [key for key in keys if key not in value]
    if missing:
        raise StateError(entry, f"a dict with {', '.join(map(repr, keys))}", f"no {missing[0]!r}")
    return value


def expect_int(entry: str, value: object, *, low: int = 0, high: int | None = None) -> int:
    """``value`` as an int in ``[low, high]`` (a Python int, or an integer-valued 0-d tensor)."""
    if isinstance(value, torch.Tensor) and value.dim() == 0 and not value.dtype.is_complex:
        number = value.item()
        value = int(number) if float(number).is_integer() else number
    if isinstance(value, bool) or not isinstance(value, int):
        raise StateError(entry, "an integer", _describe(value))
    if value < low or (high is not None and value > high):
        bounds = f">= {low}" if high is None else f"in [{low}, {high}]"
        raise StateError(entry, f"an integer {bounds}", str(value))
    return value


def expect_number(entry: str, value: object, *, positive: bool = True) -> float:
    """``value`` as a finite float (positive unless ``positive=False``)."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise StateError(entry, "a number", _describe(value))
    if not math.isfinite(value) or (positive and value <= 0):
        raise StateError(
            entry, "a finite number > 0" if positive else "a finite number", str(value)
        )
    return float(value)


def expect_tensor(
    entry: str, value: object, like: torch.Tensor, *, finite: bool = False
) -> torch.Tensor:
    """``value`` as a tensor of the shape and dtype of ``like`` (finite if asked)."""
    if not isinstance(value, torch.Tensor):
        raise StateError(entry, f"a {like.dtype} tensor", _describe(value))
    if value.shape != like.shape or value.dtype != like.dtype:
        expected = f"a {like.dtype} tensor of shape {tuple(like.shape)}"
        raise StateError(entry, expected, _describe(value))
    if finite and not bool(torch.isfinite(value).all()):
        raise StateError(entry, "finite values", "NaN or infinite ones")
    return value


def expect_adam_state(entry: str, value: object, params: Sequence[torch.Tensor]) -> int:
    """``value`` as ``torch.optim.Adam(params).state_dict()``; return its step count.

    Every param has a step count, equal across params, and first and second moments of the
    param's shape and dtype (the second moments non-negative); there is one param group over
    all params.
    """
    adam = expect_keys(entry, value, ("state", "param_groups"))
    groups = adam["param_groups"]
    indices = list(range(len(params)))
    if not (isinstance(groups, list) and len(groups) == 1 and isinstance(groups[0], Mapping)):
        raise StateError(f"{entry}.param_groups", "one param group", _describe(groups))
    if list(groups[0].get("params", ())) != indices:
        got = _describe(groups[0].get("params"))
        raise StateError(f"{entry}.param_groups[0].params", f"the params {indices}", got)
    state = expect_keys(f"{entry}.state", adam["state"], ())
    if sorted(state) != indices and state:
        raise StateError(f"{entry}.state", f"the state of params {indices}", str(sorted(state)))
    steps = set()
    for index, param in enumerate(params):
        if index not in state:
            continue
        where = f"{entry}.state[{index}]"
        moments = expect_keys(where, state[index], ("step", "exp_avg", "exp_avg_sq"))
        steps.add(expect_int(f"{where}.step", moments["step"]))
        expect_tensor(f"{where}.exp_avg", moments["exp_avg"], param, finite=True)
        second = expect_tensor(f"{where}.exp_avg_sq", moments["exp_avg_sq"], param, finite=True)
        if bool((second < 0).any()):
            raise StateError(f"{where}.exp_avg_sq", "non-negative values", "negative ones")
    if len(steps) > 1:
        raise StateError(f"{entry}.state", "one step count for every param", str(sorted(steps)))
    return steps.pop() if steps else 0


def expect_epoch(entry: str, value: object, steps: int) -> int:
    """``value`` as an epoch count no larger than the ``steps`` Adam took (one or more an epoch)."""
    epoch = expect_int(entry, value)
    if epoch > steps:
        raise StateError(entry, f"at most the {steps} steps Adam took", str(epoch))
    return epoch
