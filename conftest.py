"""Seeding for every test and docstring example (tests/ and src/)."""

from __future__ import annotations

import pyro
import pytest
import torch


@pytest.fixture(autouse=True)
def _seed_and_reset() -> None:
    """Seed torch, Python and Pyro, and start each test with an empty param store."""
    pyro.set_rng_seed(0)
    pyro.clear_param_store()
    torch.set_default_dtype(torch.float32)
