"""The release: the sdist and the wheel build without warnings and hold what they should."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tarfile
import zipfile
from pathlib import Path

import pytest
from helpers import REPO_ROOT

import pyro_logits

IN_SDIST = [
    "LICENSE",
    "CHANGELOG.md",
    "README.md",
    "Makefile",
    "conftest.py",
    "pyproject.toml",
    "tests/conftest.py",
    "tests/helpers.py",
    "tests/bnn/test_bnn.py",
    "docs/conf.py",
    "docs/build_results.py",
    "docs/_inventories/torch.inv",
    "models/bnn_mnist.py",
    "lint/pyproject.toml",
    "lint/LICENSE",
    "src/pyro_logits/py.typed",
    "lint/src/pyro_logits_lint/api.py",
]


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, str]:
    """The sdist and the wheel of a copy of the tracked files, and the build's output."""
    if shutil.which("git") is None or not (REPO_ROOT / ".git").exists():
        pytest.skip("the tracked files are listed by git")
    root = tmp_path_factory.mktemp("release")
    source = root / "source"
    tracked = subprocess.run(
        ["git", "ls-files", "-z"], cwd=REPO_ROOT, capture_output=True, check=True
    ).stdout.decode()
    for name in filter(None, tracked.split("\0")):
        if (REPO_ROOT / name).is_file():
            (source / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(REPO_ROOT / name, source / name, follow_symlinks=False)
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    result = subprocess.run(
        [sys.executable, "-m", "build", "--no-isolation", "--outdir", str(root / "dist"), "."],
        cwd=source,
        capture_output=True,
        text=True,
        env=env,
        timeout=600,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    (sdist,) = (root / "dist").glob("*.tar.gz")
    (wheel,) = (root / "dist").glob("*.whl")
    return sdist, wheel, result.stdout + result.stderr


def test_the_build_gives_no_warning(built: tuple[Path, Path, str]) -> None:
    output = built[2].lower()
    assert "warning" not in output, [line for line in output.splitlines() if "warning" in line]


def test_the_sdist_holds_the_tests_docs_and_scripts(built: tuple[Path, Path, str]) -> None:
    sdist = built[0]
    assert sdist.name == f"pyro_logits-{pyro_logits.__version__}.tar.gz"
    with tarfile.open(sdist) as archive:
        names = {name.split("/", 1)[1] for name in archive.getnames() if "/" in name}
    missing = [name for name in IN_SDIST if name not in names]
    assert not missing
    assert not [n for n in names if "__pycache__" in n or n.startswith("docs/_build")]


def test_the_wheel_holds_both_packages_the_licence_and_the_metadata(
    built: tuple[Path, Path, str],
) -> None:
    with zipfile.ZipFile(built[1]) as wheel:
        names = set(wheel.namelist())
        (metadata,) = [n for n in names if n.endswith(".dist-info/METADATA")]
        text = wheel.read(metadata).decode()
    assert {"pyro_logits/__init__.py", "pyro_logits/py.typed", "pyro_logits_lint/api.py"} <= names
    assert any(n.endswith(".dist-info/licenses/LICENSE") for n in names)
    assert not any(n.startswith(("tests/", "docs/", "models/")) for n in names)
    assert f"Version: {pyro_logits.__version__}" in text
    assert "License-Expression: MIT" in text
    assert "Requires-Dist: torch>=2.7" in text and "Classifier: Typing :: Typed" in text


def test_twine_accepts_both(built: tuple[Path, Path, str]) -> None:
    checked = subprocess.run(
        [sys.executable, "-m", "twine", "check", "--strict", str(built[0]), str(built[1])],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert checked.returncode == 0, checked.stdout + checked.stderr


def test_one_version_for_the_project() -> None:
    import pyro_logits_lint

    version = subprocess.run(
        [sys.executable, "-m", "pyro_logits_lint", "--version"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert pyro_logits.__version__ == pyro_logits_lint.__version__
    assert version.strip().endswith(pyro_logits.__version__)
    assert f"## {pyro_logits.__version__} - " in (REPO_ROOT / "CHANGELOG.md").read_text()
