"""IDX files: reading one (gzipped or not), and finding a split's files in a directory."""

from __future__ import annotations

import gzip
import math
import os
import struct
import zlib
from collections.abc import Sequence
from pathlib import Path
from typing import Literal

import torch

_GZIP_MAGIC = b"\x1f\x8b"
_IDX_UBYTE = 0x08
_SPLIT_FILES: dict[str, tuple[str, str]] = {
    "train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
    "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
}


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
        start = " ".join(f"{b:02x}" for b in data[:4]) or "nothing"
        raise ValueError(
            f"Expected an IDX file starting with bytes 00 00 08 NN but {path} starts with "
            f"{start}. It is not an IDX file or it is damaged; delete it and download it again."
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
