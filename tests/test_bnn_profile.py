"""The profile benchmark's breakdown: every operator in one category, summing to the step."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path
from types import ModuleType

import pytest

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "benchmarks" / "bnn_profile.py"


def _load(path: Path, name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_profile_defaults_to_the_estimator_the_training_script_uses(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.syspath_prepend(str(ROOT / "models"))  # the script imports its sibling modules
    profile = _load(SCRIPT, "bnn_profile")
    training = _load(ROOT / "models" / "bnn_mnist.py", "bnn_mnist_script")
    for arch, defaults in training.ARCH_DEFAULTS.items():
        assert profile.DEFAULT_ESTIMATOR[arch] == defaults["estimator"], arch


@pytest.mark.parametrize(
    ("estimator", "name"), [(None, "bnn-lenet-flipout"), ("local-reparam", "bnn-lenet")]
)
def test_profile_puts_the_kernel_and_the_optimizer_in_their_categories(
    tmp_path: Path, estimator: str | None, name: str
) -> None:
    script = _load(SCRIPT, "bnn_profile")
    options = ["--estimator", estimator] if estimator else []
    record = script.main(
        ["--arch", "lenet", "--steps", "2", "--threads", "1", "--out", str(tmp_path), *options]
    )
    assert json.loads((tmp_path / "bnn_profile_lenet.json").read_text()) == record
    assert record["estimator"] == (estimator or "flipout")  # the LeNet's default is Flipout
    bnn, plain = record["ms"][name], record["ms"]["lenet"]
    assert list(bnn) == list(script.CATEGORIES) == list(plain)
    # the BNN alone has the variance-and-KL pass and noise; both networks convolve and pool
    assert bnn["variance-and-KL pass"] > 0 and bnn["noise"] > 0
    assert plain["variance-and-KL pass"] == 0 and plain["noise"] == 0
    for ms in (bnn, plain):
        assert ms["convolutions"] > 0 and ms["pooling"] > 0 and ms["optimizer"] > 0
        assert all(v >= 0 for v in ms.values())
