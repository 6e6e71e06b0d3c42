"""The profile benchmark's breakdown: every operator in one category, summing to the step."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from helpers import REPO_ROOT, load_script

ROOT = REPO_ROOT
SCRIPT = ROOT / "benchmarks" / "bnn_profile.py"


def test_profile_defaults_to_the_estimator_the_training_script_uses(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    profile = load_script(SCRIPT, "bnn_profile", monkeypatch)
    training = load_script(ROOT / "models" / "bnn_mnist.py", "bnn_mnist_script", monkeypatch)
    for arch, defaults in training.ARCH_DEFAULTS.items():
        assert profile.DEFAULT_ESTIMATOR[arch] == defaults["estimator"], arch


@pytest.mark.parametrize(
    ("estimator", "name"), [(None, "bnn-lenet-flipout"), ("local-reparam", "bnn-lenet")]
)
def test_profile_puts_the_kernel_and_the_optimizer_in_their_categories(
    tmp_path: Path, estimator: str | None, name: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    script = load_script(SCRIPT, "bnn_profile", monkeypatch)
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
