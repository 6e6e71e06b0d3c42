"""A run's output directory: owned by one run at a time, never silently overwritten.

:func:`claim_run_dir` is what a script calls before its work starts: it takes the directory's
lock (:class:`RunLock`; a second run into the same directory is refused at once, naming the
owner's PID), checks the directory (an earlier run in it is never replaced unless asked,
``--overwrite``, or continued, ``--resume``) and removes the partial files an interrupted
write of one of the run's outputs left behind.
"""

from __future__ import annotations

import argparse
import contextlib
import errno
import fcntl
import os
from collections.abc import Iterator, Sequence
from pathlib import Path
from types import TracebackType
from typing import NoReturn

from pyro_logits._atomic import ensure_writable_dir

__all__ = [
    "RunLock",
    "claim_run_dir",
    "exit_in_one_line",
    "prepare_run_dir",
    "remove_partial_files",
    "run_dir_error",
]

LOCK_NAME = ".lock"


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
    _make_writable_dir(out)
    return _check_outputs(out, outputs, resume=resume, overwrite=overwrite, can_resume=can_resume)


def _check_outputs(
    out: Path, outputs: Sequence[str], *, resume: bool, overwrite: bool, can_resume: bool
) -> list[str]:
    """:func:`prepare_run_dir` once ``out`` is known to be a writable directory."""
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


def _make_writable_dir(out: Path) -> None:
    if out.exists() and not out.is_dir():
        raise ValueError(f"--out {out} is a file, not a directory; choose another --out")
    try:
        ensure_writable_dir(out)
    except OSError as error:
        raise ValueError(
            f"--out {out} cannot be written ({error.strerror or error}); choose another --out"
        ) from None


def run_dir_error(parser: argparse.ArgumentParser, error: ValueError) -> NoReturn:
    """Exit with status 2 and ``error``'s reason, without the usage text of a flag error.

    The run directory is fine as a flag and wrong as a place, so the usage would only bury the
    reason.
    """
    parser.exit(2, f"{parser.prog}: error: {error}\n")


class RunLock:
    """An exclusive lock on a run directory, held by one process from :meth:`acquire` to release.

    The lock is ``fcntl.flock`` on ``out/.lock``, which holds the owner's PID: the kernel
    releases it when the owner exits in any way (a crash or ``SIGKILL`` included), so a lock
    file left by a dead process is stale and is taken over, and :attr:`stale_owner` says whose
    it was. Use it as a context manager, or call :meth:`release`.

    Parameters
    ----------
    out : pathlib.Path
        The run directory; it must exist.

    Examples
    --------
    >>> import tempfile
    >>> with tempfile.TemporaryDirectory() as tmp:
    ...     with RunLock(Path(tmp)).acquire():
    ...         try:
    ...             RunLock(Path(tmp)).acquire()
    ...         except ValueError as error:
    ...             print(str(error).split(" by ")[0].replace(tmp, "DIR"))
    --out DIR is in use
    """

    def __init__(self, out: Path) -> None:
        self.path = out / LOCK_NAME
        self.out = out
        self.stale_owner: int | None = None
        self._fd: int | None = None

    def acquire(self) -> RunLock:
        """Take the lock, or raise ``ValueError`` naming the process that holds it."""
        while True:
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                owner = _read_pid(fd)
                os.close(fd)
                raise ValueError(
                    f"--out {self.out} is in use by another run (process {owner or 'unknown'}); "
                    f"wait for it to finish or choose another --out"
                ) from None
            # The owner before us may have removed the file between our open and our lock:
            # then we hold a lock on a file no one else will open, and try again.
            if _same_file(fd, self.path):
                break
            os.close(fd)
        self.stale_owner = _read_pid(fd)
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        self._fd = fd
        return self

    def release(self) -> None:
        """Remove the lock file and release the lock (nothing if not held)."""
        if self._fd is None:
            return
        with contextlib.suppress(OSError):
            self.path.unlink()
        os.close(self._fd)
        self._fd = None

    def __enter__(self) -> RunLock:
        return self if self._fd is not None else self.acquire()

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.release()


def _read_pid(fd: int) -> int | None:
    text = os.pread(fd, 32, 0).decode(errors="replace").strip()
    return int(text) if text.isdigit() else None


def _same_file(fd: int, path: Path) -> bool:
    try:
        return os.stat(path).st_ino == os.fstat(fd).st_ino
    except FileNotFoundError:
        return False


def remove_partial_files(out: Path, outputs: Sequence[str]) -> list[Path]:
    """Remove the partial files that interrupted atomic writes of ``outputs`` left in ``out``.

    :func:`~pyro_logits.runs.atomic_write` writes ``.{name}.XXXXXXXX.part`` beside ``name``
    and renames it; a process killed in between leaves it. Only the run's own names are
    touched. Returns the files removed.
    """
    removed = []
    for name in outputs:
        for part in out.glob(f".{name}.*.part"):
            with contextlib.suppress(FileNotFoundError):
                part.unlink()
                removed.append(part)
    return removed


def claim_run_dir(
    out: Path,
    outputs: Sequence[str],
    *,
    resume: bool = False,
    overwrite: bool = False,
    can_resume: bool = True,
) -> RunLock:
    """Make ``out`` this run's: lock it, check it (:func:`prepare_run_dir`), remove leftovers.

    Returns
    -------
    RunLock
        The held lock; release it when the run ends (a context manager).

    Raises
    ------
    ValueError
        With a one-line reason: another run holds ``out``, or :func:`prepare_run_dir` refuses.
    """
    _make_writable_dir(out)
    lock = RunLock(out).acquire()
    try:
        _check_outputs(out, outputs, resume=resume, overwrite=overwrite, can_resume=can_resume)
        remove_partial_files(out, outputs)
    except BaseException:
        lock.release()
        raise
    return lock


@contextlib.contextmanager
def exit_in_one_line(checkpoint: Path) -> Iterator[None]:
    """End a run on Ctrl-C or a full disk with one line: what was kept and how to go on.

    Raises
    ------
    SystemExit
        With that line (exit status 1) in place of ``KeyboardInterrupt`` or an ``OSError``
        of a full disk or quota; other errors pass through.
    """
    try:
        yield
    except KeyboardInterrupt:
        kept = (
            f"the last finished epoch is in {checkpoint}: continue with --resume"
            if checkpoint.exists()
            else "no epoch had finished: start the run again"
        )
        raise SystemExit(f"interrupted; {kept}") from None
    except OSError as error:
        if error.errno not in (errno.ENOSPC, errno.EDQUOT):
            raise
        raise SystemExit(
            f"no space left to write {error.filename or checkpoint.parent}; the files written "
            f"before are kept: free some space and continue with --resume"
        ) from None
