"""Shared fixtures: real MNIST found without a download (seeding is in the root conftest.py)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from hypothesis import settings

# Property tests draw the same examples on every run, so a pass or a failure is reproducible.
settings.register_profile("deterministic", derandomize=True, deadline=None)
settings.load_profile("deterministic")

REPO_ROOT = Path(__file__).resolve().parents[1]
MNIST_FILES = (
    "train-images-idx3-ubyte.gz",
    "train-labels-idx1-ubyte.gz",
    "t10k-images-idx3-ubyte.gz",
    "t10k-labels-idx1-ubyte.gz",
)


def _mnist_dir() -> Path | None:
    candidates = [
        os.environ.get("PYRO_LOGITS_TEST_MNIST_DIR"),
        REPO_ROOT.parent / "shared" / "data" / "mnist",
    ]
    for candidate in candidates:
        if candidate and all((Path(candidate) / name).is_file() for name in MNIST_FILES):
            return Path(candidate)
    return None


@pytest.fixture(scope="session")
def mnist_dir() -> Path:
    """Directory holding the four real MNIST files (skips the test when none is available)."""
    found = _mnist_dir()
    if found is None:
        pytest.skip(
            "real MNIST not found: set PYRO_LOGITS_TEST_MNIST_DIR to a directory with the four IDX files"
        )
    return found
