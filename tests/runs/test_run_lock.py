"""An output directory is owned by one run: the lock, stale locks, and interrupted writes."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
from helpers import REPO_ROOT, interruptible

from pyro_logits.runs import RunLock, claim_run_dir, remove_partial_files

MODELS = REPO_ROOT / "models"


def _wait_for(condition: object, what: str, timeout: float = 120.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():  # type: ignore[operator]
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)


def _holder(code: str) -> subprocess.Popen[str]:
    """A real Python process running ``code`` (which prints "ready" when it holds the lock)."""
    process = subprocess.Popen(
        [sys.executable, "-c", textwrap.dedent(code)], stdout=subprocess.PIPE, text=True
    )
    assert process.stdout is not None
    assert process.stdout.readline().strip() == "ready"
    return process


def _stop(process: subprocess.Popen[str], sig: signal.Signals) -> None:
    process.send_signal(sig)
    process.wait()
    assert process.stdout is not None
    process.stdout.close()


def test_a_second_lock_is_refused_naming_the_owner_and_released_on_exit(tmp_path: Path) -> None:
    with RunLock(tmp_path) as lock:
        assert (tmp_path / ".lock").read_text() == f"{os.getpid()}\n"
        with pytest.raises(
            ValueError, match=rf"is in use by another run \(process {os.getpid()}\)"
        ):
            RunLock(tmp_path).acquire()
        assert lock.stale_owner is None
    assert not (tmp_path / ".lock").exists()
    RunLock(tmp_path).acquire().release()


def test_a_lock_of_a_killed_process_is_stale_and_taken_over(tmp_path: Path) -> None:
    holder = _holder(
        f"""
        from pathlib import Path
        import time
        from pyro_logits.runs import RunLock
        lock = RunLock(Path({str(tmp_path)!r})).acquire()
        print("ready", flush=True)
        time.sleep(600)
        """
    )
    with pytest.raises(ValueError, match=rf"process {holder.pid}\)"):
        RunLock(tmp_path).acquire()
    _stop(holder, signal.SIGKILL)
    assert (tmp_path / ".lock").exists()  # left behind by the killed process
    lock = RunLock(tmp_path).acquire()
    assert lock.stale_owner == holder.pid
    lock.release()


def test_partial_files_of_the_runs_own_outputs_are_removed_at_start(tmp_path: Path) -> None:
    # A process killed inside an atomic write leaves its .part file behind.
    writer = _holder(
        f"""
        from pathlib import Path
        import time
        from pyro_logits.runs import atomic_write
        with atomic_write(Path({str(tmp_path)!r}) / "checkpoint.pt") as f:
            f.write(b"x" * 100_000)
            print("ready", flush=True)
            time.sleep(600)
        """
    )
    _stop(writer, signal.SIGTERM)
    leftovers = list(tmp_path.glob(".checkpoint.pt.*.part"))
    assert len(leftovers) == 1
    (tmp_path / ".notes.txt.abc.part").write_text("not ours")
    lock = claim_run_dir(tmp_path, ["metrics.json", "checkpoint.pt"], resume=True)
    lock.release()
    assert not leftovers[0].exists() and (tmp_path / ".notes.txt.abc.part").exists()
    assert remove_partial_files(tmp_path, ["checkpoint.pt"]) == []


def test_claiming_checks_the_directory_before_and_after_locking(tmp_path: Path) -> None:
    (tmp_path / "metrics.json").write_text("{}")
    with pytest.raises(ValueError, match="holds an earlier run"):
        claim_run_dir(tmp_path, ["metrics.json"])
    assert not (tmp_path / ".lock").exists()  # a refused claim leaves no lock behind
    file = tmp_path / "file"
    file.write_text("")
    with pytest.raises(ValueError, match="is a file, not a directory"):
        claim_run_dir(file, ["metrics.json"])


@pytest.mark.mnist
def test_two_runs_into_one_out_the_second_exits_at_once(mnist_dir: Path, tmp_path: Path) -> None:
    out = tmp_path / "run"
    command = [
        sys.executable,
        MODELS / "bnn_mnist.py",
        *("--data-dir", mnist_dir, "--train-size", "20000", "--test-size", "200"),
        *("--epochs", "1000", "--hidden", "64", "--num-samples", "2", "--no-progress"),
        *("--shift-test-samples", "2", "--threads", "1", "--out", out),
    ]
    with interruptible(command) as first:
        lock = out / ".lock"
        _wait_for(
            lambda: lock.exists() and lock.read_text() == f"{first.pid}\n", "the first run's lock"
        )
        for script in ("bnn_mnist.py", "vae_mnist.py"):
            second = subprocess.run(
                [
                    sys.executable,
                    str(MODELS / script),
                    "--data-dir",
                    str(mnist_dir),
                    "--out",
                    str(out),
                ],
                capture_output=True,
                text=True,
                timeout=120,
            )
            assert second.returncode == 2, second.stderr
            assert f"is in use by another run (process {first.pid})" in second.stderr
            assert len(second.stderr.strip().splitlines()) <= 2, second.stderr
        assert first.poll() is None  # the first run was still going when the others were refused
        first.send_signal(signal.SIGINT)  # it would train for long: stop it as Ctrl-C does
        _, stderr = first.communicate(timeout=120)
    assert first.returncode == 1 and stderr.startswith("interrupted; "), stderr
    assert not lock.exists()
