"""A full disk: one clear line naming the file, and the last good files kept."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from helpers import REPO_ROOT

SCRIPT = REPO_ROOT / "models" / "bnn_mnist.py"
FLAGS = ["--train-size", "500", "--test-size", "100", "--hidden", "16", "--num-samples", "2"]
FLAGS += ["--shift-test-samples", "2", "--threads", "1", "--no-progress", "--eval-every", "0"]


def _run(*args: object) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, str(SCRIPT), *map(str, args)]
    return subprocess.run(command, capture_output=True, text=True, timeout=300)


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Callable[[int], Path]]:
    """Mounts a tmpfs of the given size (root, with mount, only); unmounts it after the test."""
    if os.geteuid() != 0 or shutil.which("mount") is None:
        pytest.skip("mounting a small file system needs root and mount(8)")
    disk = tmp_path / "disk"
    disk.mkdir()

    def mount(size: int) -> Path:
        kib = -(-size // 4096) * 4
        command = ["mount", "-t", "tmpfs", "-o", f"size={kib}k", "tmpfs", str(disk)]
        mounted = subprocess.run(command, capture_output=True, text=True)
        if mounted.returncode != 0:
            pytest.skip(f"cannot mount a tmpfs here: {mounted.stderr.strip()}")
        return disk

    try:
        yield mount
    finally:
        subprocess.run(["umount", str(disk)], capture_output=True)


@pytest.mark.mnist
def test_a_full_disk_stops_the_run_in_one_line_and_keeps_the_checkpoint(
    mnist_dir: Path, tmp_path: Path, small_disk: Callable[[int], Path]
) -> None:
    first = tmp_path / "first"
    done = _run("--data-dir", mnist_dir, *FLAGS, "--epochs", "1", "--out", first)
    assert done.returncode == 0, done.stderr
    checkpoint = (first / "checkpoint.pt").read_bytes()
    out = small_disk(len(checkpoint) * 3 // 2) / "run"  # room for it once, not twice
    out.mkdir()
    (out / "checkpoint.pt").write_bytes(checkpoint)
    resumed = _run("--data-dir", mnist_dir, *FLAGS, "--epochs", "2", "--resume", "--out", out)
    assert resumed.returncode == 1, resumed.stdout + resumed.stderr
    assert "Traceback" not in resumed.stderr
    assert resumed.stderr.strip() == (
        f"no space left to write {out / 'checkpoint.pt'}; the files written before are kept: "
        f"free some space and continue with --resume"
    )
    assert (out / "checkpoint.pt").read_bytes() == checkpoint  # the last good one
    assert sorted(p.name for p in out.iterdir()) == ["checkpoint.pt"]  # no .part, no lock
