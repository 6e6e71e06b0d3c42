"""Shared fixtures: real MNIST found without a download, tiny script runs (seeding is in the\nroot conftest.py)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from helpers import find_test_mnist
from hypothesis import settings

# Property tests draw the same examples on every run, so a pass or a failure is reproducible.
settings.register_profile("deterministic", derandomize=True, deadline=None)
settings.load_profile("deterministic")

REPO_ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="session")
def mnist_dir() -> Path:
    """Directory holding the four real MNIST files (skips the test when none is available)."""
    found = find_test_mnist(REPO_ROOT.parent / "shared" / "data" / "mnist")
    if found is None:
        pytest.skip(
            "real MNIST not found: run `make demo` once (it caches MNIST), or set "
            "PYRO_LOGITS_TEST_MNIST_DIR to a directory with the four IDX files"
        )
    return found


@pytest.fixture(scope="session")
def seed_runs(mnist_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    """Tiny unshifted LeNet runs of models/bnn_mnist.py: seeds 0, 1, 1 again, 2 with KL weight 1."""
    root = tmp_path_factory.mktemp("seed_runs")
    common = [
        *("--data-dir", str(mnist_dir), "--arch", "lenet", "--shift", "0", "--train-size", "300"),
        *("--test-size", "200", "--num-samples", "2", "--shift-test-samples", "2"),
        *("--threads", "2", "--no-progress", "--eval-every", "0", "--epochs", "1"),
    ]
    flags = [["--seed", "0"], ["--seed", "1"], ["--seed", "1"], ["--seed", "2", "--kl-weight", "1"]]
    runs = [root / str(i) for i in range(len(flags))]
    for out, extra in zip(runs, flags, strict=True):
        command = [sys.executable, str(REPO_ROOT / "models" / "bnn_mnist.py"), *common, *extra]
        result = subprocess.run(
            [*command, "--out", str(out)], capture_output=True, text=True, timeout=300
        )
        assert result.returncode == 0, result.stdout + result.stderr
    return runs
