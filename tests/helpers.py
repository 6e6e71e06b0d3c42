"""Test helpers shared across test modules."""

from __future__ import annotations

import contextlib
import importlib.util
import json
import os
import shutil
import signal
import subprocess
import sys
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
import torch

from pyro_logits.datasets import find_mnist

REPO_ROOT = Path(__file__).resolve().parents[1]  # the checkout: src/, lint/, models/, ...
MNIST_FILES = (
    "train-images-idx3-ubyte.gz",
    "train-labels-idx1-ubyte.gz",
    "t10k-images-idx3-ubyte.gz",
    "t10k-labels-idx1-ubyte.gz",
)


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


def load_script(path: Path, name: str, monkeypatch: pytest.MonkeyPatch) -> ModuleType:
    """Import a script of ``models/`` or ``benchmarks/`` as module ``name``, for this test only.

    The module goes into ``sys.modules`` (dataclasses look their module up) until the test ends.
    """
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    monkeypatch.setitem(sys.modules, name, module)
    spec.loader.exec_module(module)
    return module


def edited_run_copy(
    run: Path, target: Path, edit: Callable[[dict[str, Any]], Any], *, keep: Sequence[str] = ()
) -> Path:
    """A copy of ``run``'s ``metrics.json`` in ``target``, changed by ``edit``.

    ``edit`` changes the metrics in place, or returns the file's new text (str or bytes). The
    files named in ``keep`` (plots) are copied as they are.
    """
    target.mkdir(parents=True)
    metrics = json.loads((run / "metrics.json").read_text())
    text = edit(metrics)
    if text is None:
        text = json.dumps(metrics)  # NaN and inf as bnn_mnist.py writes them: NaN, Infinity
    (target / "metrics.json").write_bytes(text if isinstance(text, bytes) else text.encode())
    for name in keep:
        shutil.copy2(run / name, target / name)
    return target


def _default_sigint() -> None:
    signal.signal(signal.SIGINT, signal.SIG_DFL)


@contextlib.contextmanager
def interruptible(command: Sequence[str | Path]) -> Iterator[subprocess.Popen[str]]:
    """A real process that Ctrl-C (SIGINT) reaches as a ``KeyboardInterrupt``; killed at the end.

    A shell starts background jobs with SIGINT ignored and children inherit that, so Python
    would never install its handler: the child gets SIGINT at its default instead. Whatever
    the test does, the process is killed if still running and its pipes are closed.
    """
    process = subprocess.Popen(
        [str(c) for c in command],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        preexec_fn=_default_sigint,
    )
    try:
        yield process
    finally:
        if process.poll() is None:
            process.kill()
        process.communicate()


def find_test_mnist(shared: Path) -> Path | None:
    """The real MNIST files for the tests, or ``None``.

    Looked for in ``$PYRO_LOGITS_TEST_MNIST_DIR``, then ``shared``, then where ``make demo``
    finds them (``$PYRO_LOGITS_DATA_DIR``, or the cache it downloads into), never downloading.
    """
    for candidate in (os.environ.get("PYRO_LOGITS_TEST_MNIST_DIR"), shared):
        if candidate and all((Path(candidate) / name).is_file() for name in MNIST_FILES):
            return Path(candidate)
    try:
        return find_mnist(download=False, progress=False)
    except (OSError, ValueError, RuntimeError):
        return None
