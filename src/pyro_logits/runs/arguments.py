"""Argument types for the command lines of the reference runs: a bad value is a usage error."""

from __future__ import annotations

import argparse
import math
from collections.abc import Callable

__all__ = [
    "nonnegative_float",
    "nonnegative_int",
    "positive_float",
    "positive_int",
    "unit_interval",
]


def _number(
    kind: Callable[[str], float], test: Callable[[float], bool], what: str
) -> Callable[[str], float]:
    def parse(text: str) -> float:
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected {what} but got {text!r}") from None
        if not (math.isfinite(value) and test(value)):
            raise argparse.ArgumentTypeError(f"expected {what} but got {text!r}")
        return value

    parse.__name__ = what  # argparse names the type in its messages
    return parse


positive_int = _number(int, lambda v: v >= 1, "an integer >= 1")
nonnegative_int = _number(int, lambda v: v >= 0, "an integer >= 0")
positive_float = _number(float, lambda v: v > 0, "a finite number > 0")
nonnegative_float = _number(float, lambda v: v >= 0, "a finite number >= 0")
unit_interval = _number(float, lambda v: 0 < v <= 1, "a number in (0, 1]")
