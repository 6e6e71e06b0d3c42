"""The corpus benchmark of the linter, on a two-case corpus written here."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from helpers import REPO_ROOT, load_script

SCRIPT = REPO_ROOT / "benchmarks" / "lint_corpus.py"
MODEL = """\
import torch.nn.functional as F
from torch import nn


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(784, 10)

    def forward(self, x):
        return F.softmax(self.fc(x), dim=1)
"""
TRAIN = """\
import torch.nn.functional as F

from model import Net

for x, y in loader:
    F.cross_entropy(Net()(x), y)
    F.nll_loss(Net()(x), y)
"""


def test_recall_and_extra_findings_are_counted(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    case = tmp_path / "corpus" / "cases" / "split"
    case.mkdir(parents=True)
    (case / "model.py").write_text(MODEL)
    (case / "train.py").write_text(TRAIN)
    correct = tmp_path / "corpus" / "correct" / "clean"
    correct.mkdir(parents=True)
    (correct / "model.py").write_text(MODEL.replace("F.softmax(self.fc(x), dim=1)", "self.fc(x)"))
    manifest = [
        {
            "case": "cases/split",
            "kind": "multi-file",
            "expected": [
                {"file": "train.py", "line": 6, "code": "PL003"},
                {"file": "train.py", "line": 99, "code": "PL003"},
            ],
            "extra_verdicts": {"train.py:7:PL003": "true mistake, not in the manifest"},
        },
        {"case": "correct/clean", "kind": "correct", "expected": []},
    ]
    (tmp_path / "corpus" / "manifest.json").write_text(json.dumps(manifest))
    script = load_script(SCRIPT, "lint_corpus", monkeypatch)
    result = script.main([str(tmp_path / "corpus"), "--out", str(tmp_path / "out")])
    multi = result["summary"]["multi-file"]
    assert (multi["expected"], multi["matched"], multi["recall"]) == (2, 1, 0.5)
    assert result["cases"][0]["extra"][0]["verdict"] == "true mistake, not in the manifest"
    assert result["summary"]["correct"]["extra_findings"] == 0
    assert json.loads((tmp_path / "out" / "lint_corpus.json").read_text()) == result
    assert "found 1 of 2" in capsys.readouterr().out


def test_a_missing_manifest_is_a_usage_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    script = load_script(SCRIPT, "lint_corpus", monkeypatch)
    with pytest.raises(SystemExit) as exit_info:
        script.main([str(tmp_path)])
    assert exit_info.value.code == 2
