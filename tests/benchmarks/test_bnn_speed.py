"""The speed benchmark on real MNIST: the LeNet rows at the script's minibatch size."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
from helpers import REPO_ROOT, load_script

SCRIPT = REPO_ROOT / "benchmarks" / "bnn_speed.py"


def test_lenet_rows_train_on_the_given_minibatch_size(
    tmp_path: Path, mnist_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    script = load_script(SCRIPT, "bnn_speed", monkeypatch)
    seen: list[int] = []
    split = script.batches

    def recording(*args: object) -> list:
        out = split(*args)
        seen.extend(len(idx) for idx in out)
        return out

    monkeypatch.setattr(script, "batches", recording)
    systems = ["lenet", "bnn-lenet-flipout"]
    argv = ["--data-dir", str(mnist_dir), "--quick", "--steps", "3", "--threads", "1"]
    record = script.main(
        [*argv, "--systems", *systems, "--batch-size", "64", "--out", str(tmp_path)]
    )
    written = json.loads((tmp_path / "bnn_speed.json").read_text())
    assert json.dumps(written) == json.dumps(record)  # NaN ratios: no MLP floor in this run
    assert record["batch_size"] == 64
    assert [r["system"] for r in record["rows"]] == systems
    # both systems step through minibatches of 64 (the Bayesian one on its own generator)
    assert seen == [64] * 6
    assert record["steps_per_epoch"] == 3 and record["quick"]
    flip = record["rows"][1]
    assert flip["ratio_to_lenet"] > 0 and math.isfinite(flip["test_nll"])
