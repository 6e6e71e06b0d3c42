"""The speed benchmark on real MNIST: the LeNet rows at the script's minibatch size."""

from __future__ import annotations

import importlib.util
import json
import math
import sys
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "bnn_speed.py"


def test_lenet_rows_train_on_the_given_minibatch_size(
    tmp_path: Path, mnist_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    spec = importlib.util.spec_from_file_location("bnn_speed", SCRIPT)
    assert spec is not None and spec.loader is not None
    script = importlib.util.module_from_spec(spec)
    monkeypatch.setitem(sys.modules, "bnn_speed", script)  # its dataclass looks itself up
    spec.loader.exec_module(script)
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
