"""``models/shift_summary.py`` over real runs of ``models/bnn_mnist.py`` (tiny settings)."""

from __future__ import annotations

import json
import math
import os
import re
import statistics
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
from helpers import REPO_ROOT, edited_run_copy, load_script

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
    earlier = _delete("shift_test_nll_difference")
    runs = [edited_run_copy(run, tmp_path / run.name, earlier) for run in seed_runs[:2]]
    result = _summary(*runs, "--out", tmp_path / "summary")
    assert result.returncode == 0, result.stderr
    summary = json.loads((tmp_path / "summary" / "shift_summary.json").read_text())
    assert all("nll_difference" not in row for row in summary["shift_test"].values())
    assert "beyond the test set's noise" not in result.stdout


def test_a_run_older_than_a_flag_compares_at_the_flags_earlier_value(
    seed_runs: list[Path], tmp_path: Path
) -> None:
    # A run written before --elastic and --validation existed ran without either.
    def older(metrics: dict[str, Any]) -> None:
        del metrics["config"]["elastic"], metrics["config"]["validation"]

    older_run = edited_run_copy(seed_runs[1], tmp_path / "older", older)
    result = _summary(seed_runs[0], older_run, "--out", tmp_path / "out")
    assert result.returncode == 0, result.stderr
    # the same run, had it used a distortion, is another experiment
    elastic = edited_run_copy(seed_runs[1], tmp_path / "elastic", _set(("config", "elastic"), 8.0))
    result = _summary(seed_runs[0], elastic, "--out", tmp_path / "refused")
    assert result.returncode == 2 and "{'elastic': (0.0, 8.0)}" in result.stderr


@pytest.mark.parametrize(
    ("pick", "message"),
    [
        ((1, 2), r"seed\(s\) \[1\] appear more than once"),
        ((0, 3), r"differs from .* in \{'kl_weight': \(0\.01, 1\.0\)\}"),
        ((0,), "expected at least two run directories"),
    ],
)
def test_summary_refuses_runs_it_cannot_compare(
    seed_runs: list[Path], tmp_path: Path, pick: tuple[int, ...], message: str
) -> None:
    result = _summary(*(seed_runs[i] for i in pick), "--out", tmp_path / "out")
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert re.search(message, result.stderr), result.stderr
    assert not (tmp_path / "out" / "shift_summary.json").exists()


def test_summary_refuses_a_run_without_metrics(seed_runs: list[Path], tmp_path: Path) -> None:
    unfinished = tmp_path / "unfinished"
    unfinished.mkdir()
    result = _summary(seed_runs[0], unfinished, "--out", tmp_path / "out")
    assert result.returncode == 2 and result.stderr.count("\n") == 1
    assert f"Expected {unfinished / 'metrics.json'}" in result.stderr
    assert "finish that run (--resume)" in result.stderr


def test_summary_refuses_runs_with_different_plain_networks(
    seed_runs: list[Path], tmp_path: Path
) -> None:
    # A run of an older script: its plain LeNet was trained otherwise, under the same flags.
    trained_otherwise = _set(("baseline_network",), "plain LeNet (trained alongside)")
    older = edited_run_copy(seed_runs[1], tmp_path / "older", trained_otherwise)
    result = _summary(seed_runs[0], older, "--out", tmp_path / "out")
    assert result.returncode == 2
    assert (
        "'baseline_network': (\"plain LeNet (trained alongside from the Bayesian net's initial "
        'means, same Adam schedule)"' in result.stderr
    )


@pytest.fixture
def script(monkeypatch: pytest.MonkeyPatch) -> ModuleType:
    return load_script(SCRIPT, "shift_summary_script", monkeypatch)


def _set(keys: tuple[str, ...], value: Any) -> Callable[[dict[str, Any]], None]:
    def damage(metrics: dict[str, Any]) -> None:
        for key in keys[:-1]:
            metrics = metrics[key]
        metrics[keys[-1]] = value

    return damage


def _delete(*keys: str) -> Callable[[dict[str, Any]], None]:
    def damage(metrics: dict[str, Any]) -> None:
        for key in keys[:-1]:
            metrics = metrics[key]
        del metrics[keys[-1]]

    return damage


WHAT = r"; this is not a metrics\.json as models/bnn_mnist\.py writes it: run that seed again"
MALFORMED = {
    "half the file": (
        lambda m: json.dumps(m)[: len(json.dumps(m)) // 2],
        r"Expected JSON in \S*damaged/metrics\.json but it does not parse \(.*line 1 column",
    ),
    "not UTF-8": (
        lambda m: b"\x80\x81 not text",
        r"Expected JSON in \S*damaged/metrics\.json but it does not parse \('utf-8' codec can't "
        r"decode byte 0x80 in position 0: invalid start byte\); run that seed again",
    ),
    "nested too deep": (lambda m: "[" * 100_000, "Expected JSON in .* but it does not parse"),
    "a list": (lambda m: "[1, 2]", "Expected the top level in .* to be a JSON object but got list"),
    "no corruption": (
        _delete("shift_test", "rotation"),
        r"Expected the corruptions of \S*/metrics\.json in \S*damaged/metrics\.json but it "
        r"lacks \['rotation'\] and has \[\] besides; run that seed again",
    ),
    "an extra corruption": (
        lambda m: m["shift_test"].update(fog=m["shift_test"]["clean"]),
        r"lacks \[\] and has \['fog'\] besides",
    ),
    "no config": (
        _delete("config"),
        r"Expected config in \S*damaged/metrics\.json to be a non-empty JSON object but it is "
        "missing" + WHAT,
    ),
    "a text seed": (
        _set(("config", "seed"), "1"),
        r"Expected config\['seed'\] in .* to be an integer but got str '1'" + WHAT,
    ),
    "an empty shift test": (
        _set(("shift_test",), {}),
        r"Expected shift_test in .* to be a non-empty JSON object but got dict \{\}" + WHAT,
    ),
    "a list of scores": (
        _set(("shift_test", "clean"), [1.0, 2.0]),
        r"Expected shift_test\['clean'\] in .* to be a non-empty JSON object but got list",
    ),
    "no plain scores": (
        _delete("shift_test", "rotation", "plain"),
        r"Expected shift_test\['rotation'\]\['plain'\] in .* to be .* but it is missing" + WHAT,
    ),
    "a text NLL": (
        _set(("shift_test", "clean", "bnn", "nll"), "2.3"),
        r"Expected shift_test\['clean'\]\['bnn'\]\['nll'\] in \S*damaged/metrics\.json to be a "
        "number or null but got str '2.3'" + WHAT,
    ),
    "a boolean accuracy": (
        _set(("shift_test", "contrast", "plain", "accuracy"), True),
        r"\['contrast'\]\['plain'\]\['accuracy'\] in .* to be a number or null but got bool True",
    ),
    "no ECE": (
        _delete("shift_test", "clean", "plain", "ece"),
        r"Expected shift_test\['clean'\]\['plain'\]\['ece'\] in .* to be a number or null but it "
        "is missing",
    ),
    "intervals in a list": (
        _set(("shift_test_nll_difference",), []),
        r"Expected shift_test_nll_difference in .* to be a JSON object but got list \[\]",
    ),
    "an interval without its low end": (
        _delete("shift_test_nll_difference", "rotation", "low"),
        r"Expected shift_test_nll_difference\['rotation'\]\['low'\] in .* but it is missing",
    ),
    "an interval upside down": (
        _set(("shift_test_nll_difference", "clean"), {"mean": 0.0, "low": 1.0, "high": -1.0}),
        r"Expected shift_test_nll_difference\['clean'\] in .* to be an interval with low <= "
        r"high but got dict \{'high': -1\.0, 'low': 1\.0, 'mean': 0\.0\}",
    ),
}


@pytest.mark.parametrize(("damage", "message"), MALFORMED.values(), ids=MALFORMED)
def test_summary_refuses_a_malformed_run_in_one_line(
    seed_runs: list[Path],
    tmp_path: Path,
    script: ModuleType,
    capsys: pytest.CaptureFixture[str],
    damage: Callable[[dict[str, Any]], Any],
    message: str,
) -> None:
    damaged = edited_run_copy(seed_runs[1], tmp_path / "damaged", damage)
    with pytest.raises(SystemExit) as exit_status:
        script.main([str(seed_runs[0]), str(damaged), "--out", str(tmp_path / "out")])
    assert exit_status.value.code == 2
    stderr = capsys.readouterr().err
    assert stderr.count("\n") == 1 and str(damaged / "metrics.json") in stderr
    assert re.search(message, stderr), stderr
    assert not (tmp_path / "out" / "shift_summary.json").exists()


def test_summary_refuses_an_unreadable_run(
    seed_runs: list[Path], tmp_path: Path, script: ModuleType, capsys: pytest.CaptureFixture[str]
) -> None:
    unreadable = edited_run_copy(seed_runs[1], tmp_path / "damaged", lambda m: None)
    (unreadable / "metrics.json").chmod(0)
    if os.access(unreadable / "metrics.json", os.R_OK):
        pytest.skip("this user reads files whatever their mode (root)")
    with pytest.raises(SystemExit) as exit_status:
        script.main([str(seed_runs[0]), str(unreadable), "--out", str(tmp_path / "out")])
    assert exit_status.value.code == 2
    stderr = capsys.readouterr().err
    assert stderr == (
        f"Expected to read {unreadable / 'metrics.json'} but could not (Permission denied); "
        "check its permissions or leave it out.\n"
    )


def test_summary_refuses_a_metrics_json_that_is_a_folder(
    seed_runs: list[Path], tmp_path: Path, script: ModuleType, capsys: pytest.CaptureFixture[str]
) -> None:
    # Unreadable as root too, unlike a file of mode 000.
    odd = tmp_path / "odd"
    (odd / "metrics.json").mkdir(parents=True)
    with pytest.raises(SystemExit) as exit_status:
        script.main([str(seed_runs[0]), str(odd), "--out", str(tmp_path / "out")])
    assert exit_status.value.code == 2
    assert capsys.readouterr().err == (
        f"Expected to read {odd / 'metrics.json'} but could not (Is a directory); "
        "check its permissions or leave it out.\n"
    )


def _refuse_constant(name: str) -> None:
    raise AssertionError(f"Expected strict JSON but found {name}")


@pytest.mark.parametrize("value", [math.nan, math.inf, None], ids=["NaN", "inf", "null"])
def test_summary_reports_the_seeds_whose_score_is_not_finite(
    seed_runs: list[Path],
    tmp_path: Path,
    script: ModuleType,
    capsys: pytest.CaptureFixture[str],
    value: float | None,
) -> None:
    def damage(metrics: dict[str, Any]) -> None:
        metrics["shift_test"]["clean"]["bnn"]["nll"] = value
        metrics["shift_test_nll_difference"]["clean"]["low"] = None if value is None else math.nan

    damaged = edited_run_copy(seed_runs[1], tmp_path / "damaged", damage)
    script.main([str(seed_runs[0]), str(damaged), "--out", str(tmp_path / "out")])
    text = (tmp_path / "out" / "shift_summary.json").read_text()
    summary = json.loads(text, parse_constant=_refuse_constant)
    first = json.loads((seed_runs[0] / "metrics.json").read_text())["shift_test"]["clean"]
    nll = summary["shift_test"]["clean"]["bnn"]["nll"]
    assert nll == {
        "mean": first["bnn"]["nll"],
        "min": first["bnn"]["nll"],
        "max": first["bnn"]["nll"],
        "values": [first["bnn"]["nll"], None],
        "not_finite_seeds": [1],
    }
    stdout = capsys.readouterr().out
    assert "not finite (left out): bnn nll in seeds [1]" in stdout
    beyond = summary["shift_test"]["clean"]["nll_difference"]
    assert beyond["intervals"][1]["low"] is None and beyond["nan_in"] == 1
    columns = ("bnn_lower_beyond_noise_in", "plain_lower_beyond_noise_in", "within_noise_in")
    assert sum(beyond[c] for c in columns) == 1  # the first seed's; the second is in nan_in
    assert re.search(r"clean .*neither \d, NaN 1 ", stdout), stdout
