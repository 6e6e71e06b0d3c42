"""What the command-line scripts under ``models/`` share: argument types and the run directory.

Every flag is checked by argparse before any data is loaded (a bad value is a usage error, exit
status 2), and the output directory is checked before training starts: an earlier run in it is
never replaced unless asked (``--overwrite``) or continued (``--resume``).
"""

from __future__ import annotations

import argparse
import math
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import NoReturn

from pyro_logits._atomic import atomic_write, ensure_writable_dir

__all__ = [
    "atomic_write",
    "nonnegative_float",
    "nonnegative_int",
    "positive_float",
    "positive_int",
    "prepare_run_dir",
    "run_dir_error",
    "unit_interval",
]


def _number(kind: Callable[[str], float], test: Callable[[float], bool], what: str):
    def parse(text: str) -> float:
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected {what} but got {text!r}") from None
        if not (math.isfinite(value) and test(value)):
            raise argparse.ArgumentTypeError(f"expected {what} but got {text!r}")
        return value

    parse.__name__ = what  # argparse names the type in its messages
    return parse


positive_int = _number(int, lambda v: v >= 1, "an integer >= 1")
nonnegative_int = _number(int, lambda v: v >= 0, "an integer >= 0")
positive_float = _number(float, lambda v: v > 0, "a finite number > 0")
nonnegative_float = _number(float, lambda v: v >= 0, "a finite number >= 0")
unit_interval = _number(float, lambda v: 0 < v <= 1, "a number in (0, 1]")


def prepare_run_dir(
    out: Path,
    outputs: Sequence[str],
    *,
    resume: bool = False,
    overwrite: bool = False,
    can_resume: bool = True,
) -> list[str]:
    """Check that ``out`` can take a run's ``outputs``; with ``overwrite``, clear the old ones.

    Parameters
    ----------
    out : pathlib.Path
        The run directory (created if missing).
    outputs : sequence of str
        The file names a run writes there.
    resume : bool
        The run continues the one in ``out``: its files are kept.
    overwrite : bool
        Replace an earlier run: its files are removed before the new run starts, so that none
        of them is left beside the new run's if it stops early.
    can_resume : bool
        Whether the script has ``--resume`` (the error message offers it).

    Returns
    -------
    list of str
        The outputs of an earlier run found in ``out``.

    Raises
    ------
    ValueError
        With a one-line reason: ``out`` is a file or cannot be written, an output name is a
        directory, or ``out`` holds an earlier run and neither ``resume`` nor ``overwrite``
        is given.

    Examples
    --------
    >>> import tempfile
    >>> with tempfile.TemporaryDirectory() as tmp:
    ...     _ = (Path(tmp) / "metrics.json").write_text("{}")
    ...     try:
    ...         prepare_run_dir(Path(tmp), ["metrics.json"])
    ...     except ValueError as error:
    ...         print(str(error).split(";")[0].replace(tmp, "DIR"))
    --out DIR holds an earlier run (metrics.json)
    """
    if out.exists() and not out.is_dir():
        raise ValueError(f"--out {out} is a file, not a directory; choose another --out")
    try:
        ensure_writable_dir(out)
    except OSError as error:
        raise ValueError(
            f"--out {out} cannot be written ({error.strerror or error}); choose another --out"
        ) from None
    for name in outputs:
        if (out / name).is_dir():
            raise ValueError(
                f"--out {out} has a directory named {name}, where the run writes a file; "
                f"remove it or choose another --out"
            )
    earlier = [name for name in outputs if (out / name).exists()]
    if earlier and not resume and not overwrite:
        continue_it = "--resume to continue it, " if can_resume else ""
        raise ValueError(
            f"--out {out} holds an earlier run ({', '.join(earlier)}); pass {continue_it}"
            f"--overwrite to replace it, or choose another --out"
        )
    if overwrite and not resume:
        for name in earlier:
            (out / name).unlink()
    return earlier


def run_dir_error(parser: argparse.ArgumentParser, error: ValueError) -> NoReturn:
    """Exit with status 2 and ``error``'s reason, without the usage text of a flag error.

    The run directory is fine as a flag and wrong as a place, so the usage would only bury the
    reason.
    """
    parser.exit(2, f"{parser.prog}: error: {error}\n")
