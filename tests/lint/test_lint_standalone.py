"""The linter as a product of its own: a wheel in a venv without torch, and the pre-commit hook."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from helpers import REPO_ROOT

REPO = REPO_ROOT
MISTAKE = "import torch.nn.functional as F\n\nloss = F.cross_entropy(F.softmax(out, dim=1), y)\n"
CLEAN = "import torch.nn.functional as F\n\nloss = F.cross_entropy(out, y)\n"


def run(*command: str | Path, cwd: Path | None = None, env: dict[str, str] | None = None):
    return subprocess.run(
        [str(c) for c in command], capture_output=True, text=True, cwd=cwd, env=env, timeout=300
    )


def test_the_linter_installs_alone_in_a_venv_without_torch(tmp_path: Path) -> None:
    wheels = tmp_path / "wheels"
    source = tmp_path / "lint"  # a copy: building writes build/ and egg-info beside the sources
    shutil.copytree(REPO / "lint", source, ignore=shutil.ignore_patterns("build", "*.egg-info"))
    built = run(
        sys.executable,
        *("-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "--no-index"),
        *(source, "-w", wheels),
    )
    assert built.returncode == 0, built.stdout + built.stderr
    (wheel,) = wheels.glob("pyro_logits_lint-*.whl")
    venv = tmp_path / "venv"
    assert run(sys.executable, "-m", "venv", venv).returncode == 0
    python = venv / "bin" / "python"
    installed = run(python, "-m", "pip", "install", "--no-index", "--quiet", wheel)
    assert installed.returncode == 0, installed.stdout + installed.stderr
    listed = run(python, "-m", "pip", "list", "--format=freeze").stdout.lower()
    assert "pyro-logits-lint==0.1.0" in listed and "torch" not in listed

    (tmp_path / "bad.py").write_text(MISTAKE)
    (tmp_path / "good.py").write_text(CLEAN)
    found = run(venv / "bin" / "pyro-logits-lint", tmp_path / "bad.py")
    assert found.returncode == 1 and "bad.py:3:24: PL003" in found.stdout
    assert run(venv / "bin" / "pyro-logits-lint", tmp_path / "good.py").returncode == 0
    version = run(venv / "bin" / "pyro-logits-lint", "--version")
    assert version.stdout.strip() == "pyro-logits-lint 0.1.0"
    plugins = run(
        python,
        "-c",
        "from importlib.metadata import entry_points; "
        "print([e.value for e in entry_points(group='flake8.extension')])",
    )
    assert "pyro_logits_lint:Flake8Checker" in plugins.stdout


@pytest.mark.skipif(
    shutil.which("git") is None or not (REPO / ".git").exists(),
    reason="pre-commit try-repo needs git and a git checkout (an sdist is not one)",
)
def test_the_pre_commit_hook_reports_a_mistake_and_passes_clean_code(tmp_path: Path) -> None:
    scratch = tmp_path / "project"
    scratch.mkdir()
    (scratch / "bad.py").write_text(MISTAKE)
    (scratch / "good.py").write_text(CLEAN)
    env = {**os.environ, "PRE_COMMIT_HOME": str(tmp_path / "cache"), "GIT_CONFIG_NOSYSTEM": "1"}
    env.update(GIT_AUTHOR_NAME="t", GIT_AUTHOR_EMAIL="t@t", GIT_COMMITTER_NAME="t")
    env.update(GIT_COMMITTER_EMAIL="t@t", HOME=str(tmp_path))
    assert run("git", "init", "-q", cwd=scratch, env=env).returncode == 0
    assert run("git", "add", ".", cwd=scratch, env=env).returncode == 0
    pre_commit = Path(sys.executable).parent / "pre-commit"
    try_repo = (pre_commit, "try-repo", REPO, "pyro-logits-lint", "--files")
    bad = run(*try_repo, "bad.py", cwd=scratch, env=env)
    assert bad.returncode == 1, bad.stdout + bad.stderr
    assert "bad.py:3:24: PL003" in bad.stdout
    good = run(*try_repo, "good.py", cwd=scratch, env=env)
    assert good.returncode == 0, good.stdout + good.stderr
    assert "Passed" in good.stdout
