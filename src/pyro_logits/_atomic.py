"""Write a file all at once, so an interruption never leaves half of it behind."""

from __future__ import annotations

import os
import stat
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import IO


@contextmanager
def atomic_write(path: Path) -> Iterator[IO[bytes]]:
    """Write ``path`` all at once: a temporary file beside it, renamed over it on success.

    On any exception (a failed check, a dropped connection, Ctrl-C) the temporary file is
    removed and ``path`` is left as it was. The new file gets the mode of the file it replaces,
    or the mode the umask gives a new file (0644 under 022).

    Examples
    --------
    >>> import tempfile
    >>> with tempfile.TemporaryDirectory() as tmp:
    ...     target = Path(tmp) / "out.txt"
    ...     with atomic_write(target) as f:
    ...         _ = f.write(b"done")
    ...     target.read_bytes()
    b'done'
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".part", dir=path.parent)
    try:
        # mkstemp makes the file 0600; give it the mode a plainly created file would have (or
        # the mode of the file it replaces), so a shared cache or run stays readable.
        os.fchmod(fd, _mode_for(path))
    finally:
        os.close(fd)
    tmp = Path(tmp_name)
    try:
        with tmp.open("wb") as handle:
            yield handle
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except OSError as error:
        tmp.unlink(missing_ok=True)
        if error.filename is None:  # a failed write names no file: name the one being written
            raise OSError(error.errno, error.strerror, str(path)) from error
        raise
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    _fsync_directory(path.parent)


def ensure_writable_dir(directory: Path) -> None:
    """Create ``directory`` if needed and check that a file can be made in it.

    Raises
    ------
    OSError
        If it cannot be created or written; callers turn this into their own message.
    """
    directory.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryFile(dir=directory):
        pass


def _mode_for(path: Path) -> int:
    try:
        return stat.S_IMODE(path.stat().st_mode)
    except OSError:
        umask = os.umask(0o022)  # read the umask: setting it is the only way
        os.umask(umask)
        return 0o666 & ~umask


def _fsync_directory(directory: Path) -> None:
    # Makes the rename durable on POSIX; directories cannot be opened this way on Windows.
    with suppress(OSError):
        fd = os.open(directory, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
