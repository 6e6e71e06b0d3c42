"""End-to-end runs of ``models/vae_mnist.py`` with tiny settings, in a subprocess."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from helpers import REPO_ROOT

SCRIPT = REPO_ROOT / "models" / "vae_mnist.py"
TINY = ["--train-size", "1000", "--hidden", "64", "--threads", "2", "--no-progress"]


def _run(*args: object) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(SCRIPT), *map(str, args)], capture_output=True, text=True, timeout=300
    )


@pytest.mark.mnist
def test_script_trains_on_real_mnist_and_refuses_to_overwrite(mnist_dir: Path, tmp_path) -> None:
    out = tmp_path / "run"
    result = _run("--data-dir", mnist_dir, "--out", out, "--epochs", "2", *TINY)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "LogitsWarning" not in result.stderr
    assert {p.name for p in out.iterdir()} == {"metrics.json", "samples.png", "checkpoint.pt"}
    metrics = json.loads((out / "metrics.json").read_text())
    # A binarised MNIST image has 784 pixels: an untrained decoder scores about -543 nats
    # (784 log 2); two epochs on 1000 images already explain a good part of them.
    assert -400 < metrics["test_elbo_nats_per_image"] < -100
    assert metrics["test_elbo"][1] > metrics["test_elbo"][0]
    assert len(metrics["seconds"]) == 2 and metrics["config"]["train_size"] == 1000
    assert (out / "samples.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"

    before = {p.name: p.read_bytes() for p in out.iterdir()}
    again = _run("--data-dir", mnist_dir, "--out", out, "--epochs", "1", *TINY)
    assert again.returncode == 2
    assert "holds an earlier run" in again.stderr and "--overwrite" in again.stderr
    assert "Traceback" not in again.stderr
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before

    replaced = _run("--data-dir", mnist_dir, "--out", out, "--epochs", "1", "--overwrite", *TINY)
    assert replaced.returncode == 0, replaced.stderr
    assert json.loads((out / "metrics.json").read_text())["epochs"] == 1


@pytest.mark.mnist
def test_an_interrupted_run_resumes_to_the_uninterrupted_result(
    mnist_dir: Path, tmp_path: Path
) -> None:
    straight = _run("--data-dir", mnist_dir, "--out", tmp_path / "a", "--epochs", "2", *TINY)
    assert straight.returncode == 0, straight.stderr
    first = _run("--data-dir", mnist_dir, "--out", tmp_path / "b", "--epochs", "1", *TINY)
    assert first.returncode == 0, first.stderr
    resumed = _run(
        "--data-dir", mnist_dir, "--out", tmp_path / "b", "--epochs", "2", "--resume", *TINY
    )
    assert resumed.returncode == 0, resumed.stderr
    assert "resumed from" in resumed.stdout and "after epoch 1" in resumed.stdout
    a, b = (json.loads((tmp_path / d / "metrics.json").read_text()) for d in "ab")
    for key in ("train_elbo", "test_elbo", "test_elbo_nats_per_image"):
        assert a[key] == b[key], key  # bit for bit
    other = _run(
        "--data-dir", mnist_dir, "--out", tmp_path / "b", "--epochs", "3", "--resume", "--lr",
        "0.01", *TINY,
    )  # fmt: skip
    assert other.returncode == 1 and "these differ" in other.stderr and "'lr'" in other.stderr


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        (["--batch-size", "0"], "argument --batch-size: expected an integer >= 1 but got '0'"),
        (["--hidden", "64", "0"], "argument --hidden: expected an integer >= 1 but got '0'"),
        (["--lr", "nan"], "argument --lr: expected a finite number > 0 but got 'nan'"),
        (["--seed", "-1"], "argument --seed: expected an integer >= 0 but got '-1'"),
    ],
)
def test_bad_flags_are_usage_errors(flags, message, tmp_path) -> None:
    result = _run("--out", tmp_path / "run", *flags)
    assert result.returncode == 2 and message in result.stderr
    assert not (tmp_path / "run").exists()
