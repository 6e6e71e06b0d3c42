"""What a run records of its environment, and checks of what it will need at its end."""

from __future__ import annotations

import importlib
import platform
from typing import Any

import pyro
import torch

import pyro_logits

__all__ = ["progress_bar", "require_modules", "synchronize", "versions"]


def versions() -> dict[str, str]:
    """The versions of Python, torch, Pyro and pyro-logits, and the platform, for a results file."""
    return {
        "python": platform.python_version(),
        "torch": torch.__version__,
        "pyro": pyro.__version__,
        "pyro_logits": pyro_logits.__version__,
        "platform": platform.platform(),
    }


def synchronize(device: torch.device) -> None:
    """Wait for the device's queued work (CUDA), so that a timer reads the work's end."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def require_modules(*names: str, why: str) -> None:
    """Check at start-up that modules a run needs at its end import, so it fails in a second.

    Raises
    ------
    ModuleNotFoundError
        Naming the first module that does not import, why it is needed and how to install it.
    """
    for name in names:
        try:
            importlib.import_module(name)
        except ImportError:
            raise ModuleNotFoundError(
                f"Expected the module {name!r} ({why}) but it cannot be imported; "
                f"pip install {name}, or pip install 'pyro-logits[examples]'.",
                name=name,
            ) from None


def progress_bar(total: int, desc: str, *, disable: bool = False) -> Any:
    """A tqdm bar of ``total`` steps that goes away when closed."""
    from tqdm.auto import tqdm

    return tqdm(total=total, desc=desc, leave=False, disable=disable, dynamic_ncols=True)
