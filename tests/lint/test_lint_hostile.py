"""Hostile input: every run ends with findings or a PL000 that says why, never a traceback or a hang."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pyro_logits_lint as lint
import pytest
from pyro_logits_lint._engine import analysis

MISTAKE = "import torch.nn.functional as F\nF.cross_entropy(F.softmax(z, dim=1), y)\n"
posix_only = pytest.mark.skipif(os.name != "posix", reason="POSIX file types")


def cli(*args: str | Path, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """The console script in a fresh interpreter, with a timeout that catches a hang."""
    command = [sys.executable, "-m", "pyro_logits_lint", *map(str, args)]
    return subprocess.run(command, capture_output=True, text=True, timeout=60, env=env)


def test_huge_integer_literals_in_arithmetic() -> None:
    source = f"x = {2**1100} * 1.0\ny = z / {10**400}\nw = {10**400} / math.log(10)\n"
    assert lint.lint_source(source) == []


@posix_only
def test_a_symbolic_link_to_itself_is_a_pl000(tmp_path: Path) -> None:
    (tmp_path / "loop.py").symlink_to(tmp_path / "loop.py")
    (tmp_path / "bad.py").write_text(MISTAKE)
    found = {(Path(f.path).name, f.code, f.message) for f in lint.lint_paths([tmp_path])}
    assert ("loop.py", "PL000", "cannot read: a symbolic link that loops") in found
    assert any(name == "bad.py" and code == "PL003" for name, code, _ in found)
    given = cli(tmp_path / "loop.py")  # named on the command line, not "no such file"
    assert given.returncode == 1 and "PL000 cannot read: a symbolic link that loops" in given.stdout


def test_a_notebook_nested_past_the_parsers_depth(tmp_path: Path) -> None:
    deep = tmp_path / "deep.ipynb"
    deep.write_text('{"cells": ' + "[" * 100_000 + "]" * 100_000 + "}")
    (finding,) = lint.lint_file(deep)
    assert (finding.code, finding.message) == (
        "PL000",
        "cannot read the notebook: its JSON is nested too deeply",
    )


@posix_only
def test_a_fifo_and_a_device_are_skipped_with_a_note(tmp_path: Path) -> None:
    os.mkfifo(tmp_path / "pipe.py")
    (tmp_path / "zero.py").symlink_to("/dev/zero")
    (tmp_path / "bad.py").write_text(MISTAKE)
    run = cli(tmp_path)  # would hang on the FIFO, or fill the memory from /dev/zero
    assert run.returncode == 1 and "Traceback" not in run.stderr
    assert [line.split(": ")[1][:5] for line in run.stdout.splitlines()] == ["PL003"]
    assert f"note: skipped {tmp_path / 'pipe.py'}: a FIFO, not a file" in run.stderr
    assert f"note: skipped {tmp_path / 'zero.py'}: a device, not a file" in run.stderr
    given = cli(tmp_path / "pipe.py")
    assert given.returncode == 0 and "note: skipped" in given.stderr


@posix_only
@pytest.mark.skipif(shutil.which("setpriv") is None and os.geteuid() == 0, reason="setpriv")
def test_a_directory_that_cannot_be_listed_is_reported() -> None:
    # Made outside pytest's private tmp so that an unprivileged user can reach it.
    root = Path(tempfile.mkdtemp(prefix="pl-unlistable-"))
    try:
        root.chmod(0o755)
        (root / "bad.py").write_text(MISTAKE)
        locked = root / "locked"
        locked.mkdir()
        (locked / "hidden.py").write_text(MISTAKE)
        locked.chmod(0)
        command = [sys.executable, "-m", "pyro_logits_lint", str(root)]
        if os.geteuid() == 0:  # root lists everything: run as nobody
            command = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", *command]
        env = {**os.environ, "PYTHONPATH": str(Path(lint.__file__).parents[1])}
        run = subprocess.run(command, capture_output=True, text=True, timeout=60, env=env)
        assert run.returncode == 1, run.stderr
        assert f"{locked}:1:1: PL000 cannot list directory: Permission denied" in run.stdout
        assert "bad.py:2:17: PL003" in run.stdout
    finally:
        (root / "locked").chmod(0o700)
        shutil.rmtree(root)


def test_a_finding_through_an_import_cycle_names_the_right_file_and_line(tmp_path: Path) -> None:
    (tmp_path / "model.py").write_text(
        "import torch.nn.functional as F\nfrom torch import nn\nimport train\n\n\n"
        "class Net(nn.Module):\n    def forward(self, x):\n"
        "        return F.softmax(x, dim=1)\n"
    )
    (tmp_path / "train.py").write_text(
        "import torch.nn.functional as F\nfrom model import Net\n\n\n"
        "def step(x, y):\n    return F.cross_entropy(Net()(x), y)\n"
    )
    (finding,) = lint.lint_paths([tmp_path])
    assert (Path(finding.path).name, finding.line, finding.code) == ("train.py", 6, "PL003")
    assert "(model.py, line 8)" in finding.message


def test_parser_running_out_of_memory_says_so() -> None:
    from pyro_logits_lint._engine.sources import _describe

    assert _describe(MemoryError())[2].endswith(
        ": out of memory (the file is too large or too deep)"
    )


def test_a_file_too_large_to_analyse(tmp_path: Path) -> None:
    big = tmp_path / "data.py"
    big.write_text("X = [" + "0, " * (lint.api.MAX_SOURCE_BYTES // 3 + 10) + "]\n")
    (finding,) = lint.lint_file(big)
    assert finding.code == "PL000" and finding.message.startswith("too large to analyse (10 MiB")


def test_analysis_past_its_time_limit_is_a_pl000(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(analysis, "MAX_SECONDS", -1.0)
    (finding,) = lint.lint_source(MISTAKE)
    assert (finding.code, finding.message) == ("PL000", "not analysed: it takes over -1 s")


@posix_only
def test_a_file_name_that_is_not_utf8_prints_on_a_strict_stdout(tmp_path: Path) -> None:
    name = os.fsdecode(b"caf\xe9.py")
    (tmp_path / name).write_text(MISTAKE)
    env = {**os.environ, "PYTHONIOENCODING": "utf-8:strict"}
    run = cli(tmp_path, env=env)
    assert run.returncode == 1 and "Traceback" not in run.stderr
    assert "caf\\udce9.py:2:17: PL003" in run.stdout
    as_json = cli("--format", "json", tmp_path, env=env)
    assert json.loads(as_json.stdout)[0]["path"].endswith("caf\udce9.py")


def test_select_keeps_the_pl000_of_a_file_that_could_not_be_read(tmp_path: Path) -> None:
    (tmp_path / "broken.py").write_text("def f(:\n")
    (tmp_path / "bad.py").write_text(MISTAKE)
    codes = sorted(f.code for f in lint.lint_paths([tmp_path], select=["PL003"]))
    assert codes == ["PL000", "PL003"]
    assert [f.code for f in lint.lint_paths([tmp_path], ignore=["PL000"])] == ["PL003"]


def test_a_path_given_twice_is_linted_once(tmp_path: Path) -> None:
    (tmp_path / "bad.py").write_text(MISTAKE)
    twice = lint.lint_paths([tmp_path, tmp_path / "bad.py", tmp_path / "." / "bad.py"])
    assert len(twice) == 1


def test_ipython_wildcard_help_lines_are_skipped(tmp_path: Path) -> None:
    cells = [{"cell_type": "code", "source": "torch.*Tensor?\n?np.*load*\nnp.lo*?"}]
    notebook = tmp_path / "help.ipynb"
    notebook.write_text(json.dumps({"cells": cells, "metadata": {}}))
    assert lint.lint_file(notebook) == []


def test_json_is_valid_when_empty_and_when_a_file_fails(tmp_path: Path) -> None:
    (tmp_path / "ok.py").write_text("x = 1\n")
    assert json.loads(cli("--format", "json", tmp_path / "ok.py").stdout) == []
    (tmp_path / "broken.py").write_text("def f(:\n")
    run = cli("--format", "json", "--exit-zero", tmp_path)
    assert run.returncode == 0
    assert [row["code"] for row in json.loads(run.stdout)] == ["PL000"]


def test_exit_zero_and_github_annotations(tmp_path: Path) -> None:
    (tmp_path / "bad.py").write_text(MISTAKE)
    run = cli("--exit-zero", "--format", "github", tmp_path)
    assert run.returncode == 0
    assert run.stdout.startswith(f"::error file={tmp_path / 'bad.py'},line=2,col=17,title=PL003::")


def test_version() -> None:
    run = cli("--version")
    assert (run.returncode, run.stdout.strip()) == (
        0,
        f"python -m pyro_logits_lint {lint.__version__}",
    )
