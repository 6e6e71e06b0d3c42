"""The checkpoint file: a torch payload behind a header with its SHA-256, checked on load.

torch writes a CRC into its zip archives but does not check it on load, so a flipped byte can
load silently. Here the file is ``MAGIC``, a line ``sha256 <hex digest of the payload>`` and the
payload (``torch.save`` output); reading verifies the digest before unpickling with
``weights_only=True`` (tensors and plain containers, no code).
"""

from __future__ import annotations

import hashlib
import io
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import torch

from pyro_logits._atomic import atomic_write

MAGIC = b"pyro-logits checkpoint\n"


def write_checkpoint(path: Path, state: dict[str, Any]) -> None:
    """Write ``state`` to ``path`` atomically, with the digest of its payload."""
    buffer = io.BytesIO()
    torch.save(state, buffer)
    payload = buffer.getvalue()
    with atomic_write(path) as f:
        f.write(MAGIC + b"sha256 " + hashlib.sha256(payload).hexdigest().encode() + b"\n")
        f.write(payload)


def read_checkpoint(path: Path, required: Iterable[str]) -> dict[str, Any]:
    """Read and verify a checkpoint written by :func:`write_checkpoint`.

    Raises
    ------
    ValueError
        One message naming the file, what is wrong with it and what to do: missing, empty,
        truncated or altered (digest mismatch), not a checkpoint, or missing keys.
    """
    advice = "delete it to start afresh, or restore it from a copy"
    try:
        data = path.read_bytes()
    except OSError as error:
        raise ValueError(f"Cannot read the checkpoint {path}: {error.strerror or error}.") from None
    if not data:
        raise ValueError(f"The checkpoint {path} is empty (an interrupted copy?); {advice}.")
    if not data.startswith(MAGIC):
        raise ValueError(
            f"{path} is not a pyro-logits checkpoint (or one from an older version); {advice}."
        )
    header, _, payload = data[len(MAGIC) :].partition(b"\n")
    expected = header.removeprefix(b"sha256 ").decode("ascii", "replace")
    if hashlib.sha256(payload).hexdigest() != expected:
        raise ValueError(
            f"The checkpoint {path} is truncated or corrupted: its content does not match its "
            f"SHA-256 digest; {advice}."
        )
    try:
        state = torch.load(io.BytesIO(payload), map_location="cpu", weights_only=True)
    except Exception as error:  # the digest matched, so this is a payload of the wrong kind
        raise ValueError(f"The checkpoint {path} cannot be loaded ({error}); {advice}.") from None
    missing = [key for key in required if not isinstance(state, dict) or key not in state]
    if missing:
        raise ValueError(
            f"The checkpoint {path} lacks {', '.join(map(repr, missing))}: it was not written "
            f"by this version of pyro-logits; {advice}."
        )
    return state
