"""Test helpers shared across test modules."""

from __future__ import annotations

import torch


def assert_close(
    actual: torch.Tensor, expected: torch.Tensor, *, rtol: float, atol: float = 0.0
) -> None:
    """Compare ``actual`` against a (usually float64) reference with stated tolerances.

    The comparison runs in float64 so the reference's precision is kept; infinities must match
    exactly (same sign, same place).
    """
    actual = torch.as_tensor(actual).detach().to(torch.float64)
    expected = torch.as_tensor(expected).detach().to(torch.float64)
    torch.testing.assert_close(actual, expected, rtol=rtol, atol=atol, equal_nan=False)
