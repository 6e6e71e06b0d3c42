"""The verified MNIST cache: checksums, what the cache lacks, and its one verifying writer."""

from __future__ import annotations

import contextlib
import gzip
import hashlib
import os
import time
import zlib
from pathlib import Path

from pyro_logits._atomic import atomic_write, ensure_writable_dir
from pyro_logits.datasets._idx import _GZIP_MAGIC, _locate, _read_payload

DATA_DIR_ENV = "PYRO_LOGITS_DATA_DIR"
"""Environment variable naming a directory that holds the four MNIST files."""

MNIST_MD5: dict[str, str] = {
    "train-images-idx3-ubyte": "6bbc9ace898e44ae57da46a324031adb",
    "train-labels-idx1-ubyte": "a25bea736e30d166cdddb491f175f624",
    "t10k-images-idx3-ubyte": "2646ac647ad5339dbf082846283269ea",
    "t10k-labels-idx1-ubyte": "27ae3e4e09519cfbb04c329615203637",
}
"""MD5 of each canonical MNIST file, *uncompressed*, keyed by its base name."""

_STALE_PART_S = 3600.0  # a temporary file untouched this long belongs to no live download

# Uncompressed MD5 of files already hashed in this process, keyed by path and stat fields, so
# that verifying the same directory again costs one ``stat`` per file.
_md5_memo: dict[tuple[object, ...], str] = {}


def _md5(data: bytes) -> str:
    return hashlib.md5(data, usedforsecurity=False).hexdigest()


def _uncompressed_md5(path: Path) -> str:
    stat = path.stat()
    # ctime and the inode change whenever the file is replaced, even if its mtime is restored.
    key = (str(path.resolve()), stat.st_size, stat.st_mtime_ns, stat.st_ctime_ns, stat.st_ino)
    digest = _md5_memo.get(key)
    if digest is None:
        digest = _md5(_read_payload(path))
        _md5_memo[key] = digest
    return digest


def _checksum_error(path: Path, expected: str, actual: str) -> ValueError:
    return ValueError(
        f"Expected MD5 {expected} (of the uncompressed data) but {path} has {actual}: the file is "
        "corrupt, truncated or not the canonical MNIST file. Delete it and download it again "
        "(load_mnist() re-fetches corrupt files in its cache by itself), or pass verify=False "
        "for a different data set in the same layout."
    )


def _verify(path: Path, name: str) -> None:
    expected = MNIST_MD5[name]
    actual = _uncompressed_md5(path)
    if actual != expected:
        raise _checksum_error(path, expected, actual)


def _default_cache_dir() -> Path:
    xdg = os.environ.get("XDG_CACHE_HOME", "")
    # The XDG spec says relative paths are invalid and must be ignored.
    base = Path(xdg) if xdg and os.path.isabs(xdg) else Path.home() / ".cache"
    return base / "pyro-logits" / "mnist"


def _cache_problems(cache: Path, *, verify: bool) -> dict[str, str]:
    """Map each MNIST file the cache lacks, or holds corrupt, to the reason."""
    problems: dict[str, str] = {}
    for name in MNIST_MD5:
        path = _locate(cache, name)
        if path is None:
            problems[name] = "missing"
            continue
        if not verify:
            continue
        try:
            _verify(path, name)
        except (ValueError, OSError) as err:
            problems[name] = str(err)
    return problems


def write_verified(cache: Path, name: str, data: bytes, *, source: str) -> None:
    """Check ``data`` (gzipped or not) against :data:`MNIST_MD5` and write it gzipped to the cache.

    Every source goes through here, so nothing reaches the cache unverified; ``source`` (a URL,
    a wheel) names where the data came from in the error.
    """
    if data.startswith(_GZIP_MAGIC):
        try:
            data = gzip.decompress(data)
        except (OSError, EOFError, zlib.error) as err:
            raise ValueError(f"{source}: not valid gzip ({err})") from None
    actual = _md5(data)
    if actual != MNIST_MD5[name]:
        raise ValueError(f"{source}: expected MD5 {MNIST_MD5[name]} for {name} but got {actual}")
    with atomic_write(cache / f"{name}.gz") as handle:
        handle.write(gzip.compress(data, compresslevel=6, mtime=0))


def _clean_stale_parts(cache: Path) -> None:
    """Remove temporary files that interrupted downloads left in the cache.

    Only files older than :data:`_STALE_PART_S` go: a younger one may be another process's
    download in progress.
    """
    now = time.time()
    for part in cache.glob(".*.part"):
        with contextlib.suppress(OSError):
            if now - part.stat().st_mtime > _STALE_PART_S:
                part.unlink()


def _check_cache_writable(cache: Path) -> None:
    try:
        ensure_writable_dir(cache)
    except OSError as err:
        raise RuntimeError(
            f"Expected to download MNIST into the cache {cache} but it cannot be written "
            f"({err.strerror or err}). Pass data_dir (or ${DATA_DIR_ENV}) pointing at the four "
            f"files, or a writable cache_dir (or XDG_CACHE_HOME)."
        ) from None
