"""The lint on the constructs real code reaches mistakes through: each with its correct twin."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from textwrap import dedent

import pyro_logits_lint as lint
import pytest
from helpers import REPO_ROOT

HEADER = """\
import torch
import torch.nn.functional as F
import pyro.distributions as dist
from torch import nn
"""
SOFTMAX_NET = dedent("""
class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(784, 10)

    def forward(self, x):
        return F.softmax(self.fc(x), dim=1)
""")
LOGITS_NET = SOFTMAX_NET.replace("F.softmax(self.fc(x), dim=1)", "self.fc(x)")


def found(source: str) -> list[tuple[str, int]]:
    """(code, line within the snippet) of each finding."""
    offset = HEADER.count("\n")
    results = lint.lint_source(HEADER + dedent(source), path="snippet.py")
    return [(f.code, f.line - offset) for f in results]


# (snippet, expected findings as (code, line)); the line counts from the snippet's first line
POSITIVES = {
    "view(-1, C) into a loss module": (
        """
        criterion = nn.CrossEntropyLoss()
        probs = F.softmax(net(x), dim=-1)
        loss = criterion(probs.view(-1, 10), y)
        """,
        [("PL003", 4)],
    ),
    "reshape, squeeze, flatten, contiguous, resize, indexing": (
        """
        p = F.softmax(net(x), dim=-1)
        F.cross_entropy(p.reshape(-1, 10), y)
        F.cross_entropy(p.squeeze(), y)
        F.cross_entropy(p.flatten(0, 1), y)
        F.cross_entropy(p.contiguous(), y)
        F.cross_entropy(p.resize(64, 10), y)
        F.cross_entropy(p[:, :10], y)
        """,
        [("PL003", n) for n in range(3, 9)],
    ),
    "exp of log_softmax is softmax": (
        """
        p = torch.exp(F.log_softmax(net(x), -1))
        F.cross_entropy(p, y)
        """,
        [("PL003", 3)],
    ),
    "log of softmax is log_softmax": (
        """
        lp = torch.log(F.softmax(net(x), -1))
        d = dist.Categorical(logits=lp)
        """,
        [("PL001", 3)],
    ),
    "model and loss as parameters, with the call site in the file": (
        SOFTMAX_NET
        + dedent("""
        def train(model, criterion, loader):
            for x, y in loader:
                loss = criterion(model(x), y)

        train(Net(), nn.CrossEntropyLoss(), loader)
        """),
        [("PL003", 12)],
    ),
    "loss as a default argument": (
        SOFTMAX_NET
        + dedent("""
        def evaluate(model, loader, loss_fn=nn.CrossEntropyLoss()):
            for x, y in loader:
                print(loss_fn(model(x), y))

        evaluate(Net(), loader)
        """),
        [("PL003", 12)],
    ),
    "functional loss alias set in __init__, used in another method": (
        """
        class Lit(nn.Module):
            def __init__(self):
                super().__init__()
                self.net = nn.Sequential(nn.Linear(784, 1), nn.Sigmoid())
                self.loss_fn = F.binary_cross_entropy_with_logits

            def training_step(self, x, y):
                return self.loss_fn(self.net(x), y)
        """,
        [("PL003", 9)],
    ),
    "model from a builder function, called through .forward": (
        """
        def build():
            return nn.Sequential(nn.Linear(784, 10), nn.Softmax(dim=-1))

        model = build()
        loss = F.cross_entropy(model.forward(x), y)
        """,
        [("PL003", 6)],
    ),
    "nn.Sequential grown with add_module": (
        """
        seq = nn.Sequential()
        seq.add_module("fc", nn.Linear(784, 10))
        seq.add_module("softmax", nn.Softmax(dim=1))
        loss = F.cross_entropy(seq(x), y)
        """,
        [("PL003", 5)],
    ),
    "append then torch.cat, and a loop over the list": (
        """
        outs = []
        for x, _ in loader:
            outs.append(F.softmax(net(x), dim=1))
        loss = F.cross_entropy(torch.cat(outs), y_all)
        for out in outs:
            F.cross_entropy(out, y_all)
        """,
        [("PL003", 5), ("PL003", 7)],
    ),
    "list comprehension then torch.stack": (
        """
        stacked = torch.stack([F.softmax(net(x), 1) for x, _ in loader])
        loss = F.nll_loss(stacked, y_all)
        """,
        [("PL003", 3)],
    ),
    "network outputs averaged: stack().mean(0), torch.mean, sum / n, another dim": (
        """
        preds = [m(x) for m in models]
        label = torch.stack(preds).mean(0).argmax(-1)
        avg = sum(preds) / len(preds)
        p = F.softmax(avg, -1)
        label2 = torch.mean(torch.stack(preds), dim=0).argmax(-1)
        outs = [model(x) for _ in range(8)]
        p2 = torch.stack(outs, dim=1).mean(1).softmax(-1)
        """,
        [("PL007", 3), ("PL007", 4), ("PL007", 6), ("PL007", 8)],
    ),
    "log-probabilities by name as positional probs": (
        """
        d = dist.Categorical(log_probs)
        e = dist.Bernoulli(logp)
        f = dist.Categorical(probs=y_log_prob)
        """,
        [("PL008", 2), ("PL008", 3), ("PL008", 4)],
    ),
}

NEGATIVES = {
    "logits reshaped into the loss": """
        criterion = nn.CrossEntropyLoss()
        logits = net(x)
        criterion(logits.view(-1, 10), y)
        F.cross_entropy(logits.reshape(-1, 10), y)
        """,
    "probability targets are fine": """
        F.cross_entropy(net(x), F.softmax(teacher(x), -1))
        F.cross_entropy(net(x), soft_targets)
        """,
    "exp of log_softmax, logged again, into nll_loss": """
        p = torch.exp(F.log_softmax(net(x), -1))
        F.nll_loss(torch.log(p), y)
        F.nll_loss(F.log_softmax(net(x), 1).view(-1, 10), y)
        """,
    "a slice of log_softmax output is not normalised": """
        d = dist.Categorical(logits=F.log_softmax(z, -1)[..., :5])
        """,
    "parameters given a logits network": LOGITS_NET
    + dedent("""
        def train(model, criterion, loader):
            for x, y in loader:
                loss = criterion(model(x), y)

        train(Net(), nn.CrossEntropyLoss(), loader)
        """),
    "default loss with a logits network": LOGITS_NET
    + dedent("""
        def evaluate(model, loader, loss_fn=nn.CrossEntropyLoss()):
            for x, y in loader:
                print(loss_fn(model(x), y))

        evaluate(Net(), loader)
        """),
    "functional alias with raw scores": """
        class Lit(nn.Module):
            def __init__(self):
                super().__init__()
                self.net = nn.Sequential(nn.Linear(784, 1))
                self.loss_fn = F.binary_cross_entropy_with_logits

            def training_step(self, x, y):
                return self.loss_fn(self.net(x), y)
        """,
    "builder of a logits network": """
        def build():
            return nn.Sequential(nn.Linear(784, 10), nn.ReLU(), nn.Linear(10, 10))

        model = build()
        loss = F.cross_entropy(model.forward(x), y)
        """,
    "probabilities averaged, logits concatenated": """
        outs = []
        for x, _ in loader:
            outs.append(F.softmax(net(x), dim=1))
        label = torch.stack(outs).mean(0).argmax(-1)
        logit_list = [net(x) for x, _ in loader]
        F.cross_entropy(torch.cat(logit_list), y)
        probs = [F.softmax(m(x), -1) for m in models]
        p2 = sum(probs) / len(probs)
        features = torch.stack([m(x) for m in models]).mean(-1)
        """,
    "log-probabilities passed as logits, probabilities as probs": """
        a = dist.Categorical(logits=log_probs)
        b = dist.Bernoulli(logits=logp)
        c = dist.Categorical(probs)
        """,
}


@pytest.mark.parametrize(("source", "expected"), list(POSITIVES.values()), ids=list(POSITIVES))
def test_construct_is_followed_to_the_mistake(source: str, expected) -> None:
    assert found(source) == expected


@pytest.mark.parametrize("source", list(NEGATIVES.values()), ids=list(NEGATIVES))
def test_correct_twin_is_clean(source: str) -> None:
    assert found(source) == []


def test_a_directory_is_one_project(tmp_path: Path) -> None:
    (tmp_path / "model.py").write_text(HEADER + dedent(SOFTMAX_NET))
    (tmp_path / "train.py").write_text(
        "import torch.nn as nn\nfrom model import Net\n\n"
        "loss = nn.CrossEntropyLoss()(Net()(x), y)\n"
    )
    (tmp_path / "pkg").mkdir()
    (tmp_path / "pkg" / "__init__.py").write_text("")
    (tmp_path / "pkg" / "run.py").write_text(
        "import torch.nn.functional as F\nfrom ..model import Net\n\nF.cross_entropy(Net()(x), y)\n"
    )
    results = lint.lint_paths([tmp_path])
    assert [(Path(f.path).name, f.line, f.code) for f in results] == [
        ("train.py", 4, "PL003"),
        ("run.py", 4, "PL003"),
    ]
    assert "(model.py, line 12)" in results[0].message
    # The imported file's own findings are reported on it alone, once.
    (tmp_path / "model.py").write_text(HEADER + dedent(LOGITS_NET))
    assert lint.lint_paths([tmp_path]) == []


def test_notebook_percent_continuation_is_code_not_magic() -> None:
    cell = '%matplotlib inline\nprint("%d of %d"\n      % (a, b))\np = F.softmax(z, -1)\n'
    notebook = {
        "cells": [
            {"cell_type": "code", "source": "import torch.nn.functional as F\n"},
            {"cell_type": "code", "source": cell},
            {"cell_type": "code", "source": "F.cross_entropy(p, y)"},
        ]
    }
    results = lint.lint_notebook(json.dumps(notebook), path="nb.ipynb")
    assert [(f.cell, f.code) for f in results] == [(3, "PL003")]


def run_cli(*args: str) -> subprocess.CompletedProcess[str]:
    script = "import sys; from pyro_logits_lint import cli; sys.exit(cli(sys.argv[1:]))"
    return subprocess.run(
        [sys.executable, "-c", script, "lint", *args], capture_output=True, text=True, timeout=60
    )


def test_cli_json_statistics_and_exit_zero(tmp_path: Path) -> None:
    source = tmp_path / "m.py"
    source.write_text(
        HEADER + "F.cross_entropy(F.softmax(z, -1), y)\nF.nll_loss(F.softmax(z, 1), y)\n"
    )
    result = run_cli("--format", "json", str(source))
    assert result.returncode == 1
    rows = json.loads(result.stdout)
    assert [(r["line"], r["code"]) for r in rows] == [(5, "PL003"), (6, "PL003")]
    assert set(rows[0]) == {"path", "cell", "line", "col", "code", "message", "summary"}
    result = run_cli("--statistics", "--exit-zero", str(source))
    assert result.returncode == 0
    assert result.stdout.splitlines()[-1].startswith("2     PL003 softmax/sigmoid output")


def test_importing_the_linter_imports_neither_torch_nor_pyro() -> None:
    script = (
        "import sys, pyro_logits_lint; "
        "print(sorted(m for m in sys.modules if m.split('.')[0] in ('torch', 'pyro')))"
    )
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"


def test_pre_commit_hook_declares_the_script_and_the_file_types() -> None:
    hooks = (REPO_ROOT / ".pre-commit-hooks.yaml").read_text()
    assert "id: pyro-logits-lint" in hooks and "entry: lint/pre-commit-hook" in hooks
    assert "types_or: [python, jupyter]" in hooks and "language: script" in hooks
