"""The scripts' shared pieces: argument types, the run directory, and file modes."""

from __future__ import annotations

import argparse
import os
import stat
from pathlib import Path

import pytest

from pyro_logits.runs import (
    atomic_write,
    nonnegative_int,
    positive_float,
    positive_int,
    prepare_run_dir,
    unit_interval,
)


@pytest.mark.parametrize(
    ("parse", "text", "match"),
    [
        (positive_int, "0", r"expected an integer >= 1 but got '0'"),
        (positive_int, "-1", r"expected an integer >= 1"),
        (positive_int, "1.5", r"expected an integer >= 1 but got '1.5'"),
        (nonnegative_int, "-1", r"expected an integer >= 0"),
        (positive_float, "-1", r"expected a finite number > 0 but got '-1'"),
        (positive_float, "nan", r"expected a finite number > 0 but got 'nan'"),
        (positive_float, "inf", r"expected a finite number > 0 but got 'inf'"),
        (unit_interval, "1.5", r"expected a number in \(0, 1\]"),
    ],
)
def test_bad_numbers_are_argparse_errors(parse, text, match) -> None:
    with pytest.raises(argparse.ArgumentTypeError, match=match):
        parse(text)
    assert positive_int("3") == 3 and positive_float("0.5") == 0.5 and unit_interval("1") == 1


def test_an_earlier_run_is_kept_unless_resumed_or_overwritten(tmp_path: Path) -> None:
    outputs = ["metrics.json", "checkpoint.pt"]
    (tmp_path / "metrics.json").write_text("{}")
    (tmp_path / "checkpoint.pt").write_bytes(b"x")
    with pytest.raises(
        ValueError,
        match=r"holds an earlier run \(metrics.json, checkpoint.pt\); "
        r"pass --resume to continue it, --overwrite to replace it",
    ):
        prepare_run_dir(tmp_path, outputs)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["checkpoint.pt", "metrics.json"]
    assert prepare_run_dir(tmp_path, outputs, resume=True) == outputs
    assert (tmp_path / "metrics.json").exists()
    prepare_run_dir(tmp_path, outputs, overwrite=True)
    assert list(tmp_path.iterdir()) == []


def test_unusable_output_places_are_refused_at_start(tmp_path: Path) -> None:
    a_file = tmp_path / "file"
    a_file.write_text("")
    with pytest.raises(ValueError, match=r"is a file, not a directory"):
        prepare_run_dir(a_file, ["metrics.json"])
    (tmp_path / "run" / "metrics.json").mkdir(parents=True)
    with pytest.raises(ValueError, match=r"has a directory named metrics.json"):
        prepare_run_dir(tmp_path / "run", ["metrics.json"])
    if os.geteuid() != 0:  # root writes anywhere
        locked = tmp_path / "locked"
        locked.mkdir(mode=0o500)
        with pytest.raises(ValueError, match=r"cannot be written"):
            prepare_run_dir(locked, ["metrics.json"])


def test_atomic_files_get_the_umask_mode_or_keep_theirs(tmp_path: Path) -> None:
    old = os.umask(0o022)
    try:
        path = tmp_path / "metrics.json"
        with atomic_write(path) as f:
            f.write(b"{}")
        assert stat.S_IMODE(path.stat().st_mode) == 0o644
        path.chmod(0o640)
        with atomic_write(path) as f:
            f.write(b"{ }")
        assert stat.S_IMODE(path.stat().st_mode) == 0o640
        os.umask(0o077)
        with atomic_write(tmp_path / "private.json") as f:
            f.write(b"{}")
        assert stat.S_IMODE((tmp_path / "private.json").stat().st_mode) == 0o600
    finally:
        os.umask(old)
