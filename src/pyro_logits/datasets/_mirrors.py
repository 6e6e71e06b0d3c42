"""Source 4: the MNIST mirrors."""

from __future__ import annotations

import io
import urllib.error
import urllib.request
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from pyro_logits.datasets._cache import write_verified

MNIST_MIRRORS: tuple[str, ...] = (
    "https://ossci-datasets.s3.amazonaws.com/mnist/",
    "https://storage.googleapis.com/cvdf-datasets/mnist/",
)
"""Base URLs that serve ``<name>.gz`` for each name in ``MNIST_MD5``, tried in order."""

_DOWNLOAD_TIMEOUT_S = 20.0
_CHUNK = 1 << 16


def _progress_bar(total: int | None, desc: str, enabled: bool) -> Any:
    if not enabled:
        return None
    try:
        from tqdm.auto import tqdm
    except ImportError:
        return None
    return tqdm(total=total, desc=desc, unit="B", unit_scale=True, unit_divisor=1024, leave=False)


def _download(url: str, name: str, *, progress: bool) -> bytes:
    """The bytes served at ``url`` (an MNIST file is at most 10 MB: kept in memory)."""
    buffer = io.BytesIO()
    with urllib.request.urlopen(url, timeout=_DOWNLOAD_TIMEOUT_S) as response:
        length = response.headers.get("Content-Length")
        bar = _progress_bar(int(length) if length else None, name, progress)
        try:
            while chunk := response.read(_CHUNK):
                buffer.write(chunk)
                if bar is not None:
                    bar.update(len(chunk))
        finally:
            if bar is not None:
                bar.close()
    return buffer.getvalue()


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
                data = _download(url, name, progress=progress)
                write_verified(cache, name, data, source=url)
                break
            except urllib.error.HTTPError as err:
                failures.append(f"{url}: {err}")
            except OSError as err:  # no connection or a timeout: skip this mirror from now on
                unreachable.add(mirror)
                failures.append(f"{url}: {err}")
            except ValueError as err:  # a corrupt or wrong file (the message names the URL)
                failures.append(str(err))
    return failures
