"""``models/shift_summary.py`` over real runs of ``models/bnn_mnist.py`` (tiny settings)."""

from __future__ import annotations

import json
import re
import shutil
import statistics
import subprocess
import sys
from pathlib import Path

import pytest
from helpers import REPO_ROOT

from pyro_logits.datasets import CORRUPTIONS

SCRIPT = REPO_ROOT / "models" / "shift_summary.py"

pytestmark = pytest.mark.mnist


def _summary(*args: str | Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(SCRIPT), *map(str, args)], capture_output=True, text=True, timeout=120
    )


def test_summary_gives_each_corruption_over_the_seeds(
    seed_runs: list[Path], tmp_path: Path
) -> None:
    runs = [seed_runs[0], seed_runs[1]]
    result = _summary(*runs, "--out", tmp_path)
    assert result.returncode == 0, result.stderr
    summary = json.loads((tmp_path / "shift_summary.json").read_text())
    assert (tmp_path / "shift_summary.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert summary["seeds"] == [0, 1] and summary["runs"] == [str(r) for r in runs]
    assert set(summary["shift_test"]) == {"clean", *CORRUPTIONS}
    metrics = [json.loads((r / "metrics.json").read_text())["shift_test"] for r in runs]
    for name, row in summary["shift_test"].items():
        for net in ("bnn", "plain"):
            values = [m[name][net]["nll"] for m in metrics]
            assert row[net]["nll"]["values"] == values
            assert row[net]["nll"]["mean"] == pytest.approx(statistics.fmean(values), rel=1e-12)
            assert (row[net]["nll"]["min"], row[net]["nll"]["max"]) == (min(values), max(values))
        wins = sum(m[name]["bnn"]["nll"] < m[name]["plain"]["nll"] for m in metrics)
        assert row["bnn_lower_nll_in"] == wins
        assert f"Bayesian lower in {wins} of 2" in result.stdout
        intervals = [
            json.loads((r / "metrics.json").read_text())["shift_test_nll_difference"][name]
            for r in runs
        ]
        beyond = row["nll_difference"]
        assert beyond["intervals"] == intervals
        assert beyond["bnn_lower_beyond_noise_in"] == sum(d["high"] < 0 for d in intervals)
        assert beyond["plain_lower_beyond_noise_in"] == sum(d["low"] > 0 for d in intervals)
        assert (
            beyond["within_noise_in"]
            == 2 - beyond["bnn_lower_beyond_noise_in"] - beyond["plain_lower_beyond_noise_in"]
        )
    assert result.stdout.count("beyond the test set's noise: Bayesian") == 1 + len(CORRUPTIONS)
    assert "impulse_noise" in result.stdout and "seeds [0, 1]" in result.stdout


def test_summary_of_runs_without_paired_differences(seed_runs: list[Path], tmp_path: Path) -> None:
    # Runs written before the paired differences were saved are summarised without them.
    runs = []
    for run in seed_runs[:2]:
        copy = tmp_path / run.name
        copy.mkdir()
        metrics = json.loads((run / "metrics.json").read_text())
        del metrics["shift_test_nll_difference"]
        (copy / "metrics.json").write_text(json.dumps(metrics))
        runs.append(copy)
    result = _summary(*runs, "--out", tmp_path / "summary")
    assert result.returncode == 0, result.stderr
    summary = json.loads((tmp_path / "summary" / "shift_summary.json").read_text())
    assert all("nll_difference" not in row for row in summary["shift_test"].values())
    assert "beyond the test set's noise" not in result.stdout


@pytest.mark.parametrize(
    ("pick", "message"),
    [
        ((1, 2), r"seed\(s\) \[1\] appear more than once"),
        ((0, 3), r"differs from .* in \{'kl_weight': \(0\.03, 1\.0\)\}"),
        ((0,), "expected at least two run directories"),
    ],
)
def test_summary_refuses_runs_it_cannot_compare(
    seed_runs: list[Path], tmp_path: Path, pick: tuple[int, ...], message: str
) -> None:
    result = _summary(*(seed_runs[i] for i in pick), "--out", tmp_path / "out")
    assert result.returncode in (1, 2) and "Traceback" not in result.stderr
    assert re.search(message, result.stderr), result.stderr
    assert not (tmp_path / "out" / "shift_summary.json").exists()


def test_summary_refuses_a_run_without_metrics(seed_runs: list[Path], tmp_path: Path) -> None:
    unfinished = tmp_path / "unfinished"
    unfinished.mkdir()
    result = _summary(seed_runs[0], unfinished, "--out", tmp_path / "out")
    assert result.returncode == 1
    assert f"Expected {unfinished / 'metrics.json'}" in result.stderr
    assert "finish that run (--resume)" in result.stderr


def test_summary_refuses_runs_with_different_plain_networks(
    seed_runs: list[Path], tmp_path: Path
) -> None:
    # A run of an older script: its plain LeNet was trained otherwise, under the same flags.
    older = tmp_path / "older"
    shutil.copytree(seed_runs[1], older)
    metrics = json.loads((older / "metrics.json").read_text())
    metrics["baseline_network"] = "plain LeNet (trained alongside)"
    (older / "metrics.json").write_text(json.dumps(metrics))
    result = _summary(seed_runs[0], older, "--out", tmp_path / "out")
    assert result.returncode == 1
    assert (
        "'baseline_network': (\"plain LeNet (trained alongside from the Bayesian net's initial "
        'means, same Adam schedule)"' in result.stderr
    )
