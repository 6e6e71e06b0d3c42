"""Image transforms for MNIST-sized data: random shifts to train on, corruptions to test on."""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
import torch.nn.functional as F

from pyro_logits.metrics import rotate_images

SIDE = 28


def _as_images(images: torch.Tensor) -> torch.Tensor:
    if images.dim() != 2 or images.shape[1] != SIDE * SIDE or not images.is_floating_point():
        raise ValueError(
            f"Expected flattened float images of shape (N, {SIDE * SIDE}), as load_mnist gives, "
            f"but got {images.dtype} of shape {tuple(images.shape)}."
        )
    return images.view(-1, SIDE, SIDE)


def shift_images(images: torch.Tensor, rows: torch.Tensor, cols: torch.Tensor) -> torch.Tensor:
    """Move each image by whole pixels, ``rows[i]`` down and ``cols[i]`` right, filling with 0.

    Parameters
    ----------
    images : torch.Tensor
        Flattened images ``(N, 784)``.
    rows, cols : torch.Tensor
        Integer shifts of shape ``(N,)``; negative moves up or left.

    Returns
    -------
    torch.Tensor
        The shifted images, ``(N, 784)``.

    Examples
    --------
    >>> import torch
    >>> image = torch.zeros(1, 784)
    >>> image[0, 0] = 1.0
    >>> shifted = shift_images(image, torch.tensor([2]), torch.tensor([1]))
    >>> shifted.view(28, 28).nonzero().tolist()
    [[2, 1]]
    """
    square = _as_images(images)
    rows, cols = rows.to(images.device), cols.to(images.device)
    pad = int(max(rows.abs().max(), cols.abs().max())) if len(images) else 0
    padded = F.pad(square, (pad, pad, pad, pad))
    out = torch.empty_like(square)
    for dy in rows.unique().tolist():
        for dx in cols.unique().tolist():
            which = (rows == dy) & (cols == dx)
            if which.any():
                top, left = pad - dy, pad - dx
                out[which] = padded[which, top : top + SIDE, left : left + SIDE]
    return out.view(-1, SIDE * SIDE)


def random_shift(
    images: torch.Tensor, max_shift: int = 2, *, generator: torch.Generator | None = None
) -> torch.Tensor:
    """Move each image by a random whole number of pixels in ``[-max_shift, max_shift]`` per axis.

    Examples
    --------
    >>> import torch
    >>> images = torch.rand(5, 784)
    >>> random_shift(images, 0).equal(images)
    True
    """
    n = images.shape[0]
    rows, cols = torch.randint(-max_shift, max_shift + 1, (2, n), generator=generator)
    return shift_images(images, rows, cols)


def _gaussian_blur(images: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    sigma, radius = 1.0, 2
    grid = torch.arange(-radius, radius + 1, dtype=images.dtype)
    kernel = torch.exp(-(grid**2) / (2 * sigma**2))
    kernel = kernel / kernel.sum()
    square = _as_images(images)[:, None]
    blurred = F.conv2d(F.pad(square, (radius,) * 4), kernel.view(1, 1, 1, -1))
    blurred = F.conv2d(blurred, kernel.view(1, 1, -1, 1))
    return blurred.reshape(images.shape)


def _shot_noise(images: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    photons = 30.0
    return (torch.poisson(images * photons, generator=generator) / photons).clamp_(0, 1)


def _impulse_noise(images: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    u = torch.rand(images.shape, generator=generator, dtype=images.dtype)
    out = images.clone()
    out[u < 0.05] = 0.0
    out[u > 0.95] = 1.0
    return out


def _rotation(images: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    n = images.shape[0]
    magnitude = 25.0 + 20.0 * torch.rand(n, generator=generator, dtype=torch.float64)
    sign = torch.randint(0, 2, (n,), generator=generator) * 2 - 1
    return rotate_images(images, magnitude * sign)


def _translation(images: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    n = images.shape[0]
    angle = 2 * math.pi * torch.rand(n, generator=generator, dtype=torch.float64)
    distance = 4.0 + 2.0 * torch.rand(n, generator=generator, dtype=torch.float64)
    rows = (distance * torch.sin(angle)).round().long()
    cols = (distance * torch.cos(angle)).round().long()
    return shift_images(images, rows, cols)


def _contrast(images: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    mean = images.mean(dim=1, keepdim=True)
    return (images - mean) * 0.3 + mean


def _inversion(images: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    return 1.0 - images


CORRUPTIONS: dict[str, Callable[[torch.Tensor, torch.Generator], torch.Tensor]] = {
    "gaussian_blur": _gaussian_blur,
    "shot_noise": _shot_noise,
    "impulse_noise": _impulse_noise,
    "rotation": _rotation,
    "translation": _translation,
    "contrast": _contrast,
    "inversion": _inversion,
}


def corrupt(images: torch.Tensor, name: str, *, seed: int = 0) -> torch.Tensor:
    """A corrupted copy of MNIST images, for a shift test; the same for the same ``seed``.

    Parameters
    ----------
    images : torch.Tensor
        Flattened images ``(N, 784)`` with values in [0, 1].
    name : str
        One of :data:`CORRUPTIONS`: ``gaussian_blur`` (sigma 1 pixel), ``shot_noise`` (Poisson,
        30 photons at full intensity), ``impulse_noise`` (5% of pixels black, 5% white),
        ``rotation`` (25 to 45 degrees either way), ``translation`` (4 to 6 pixels in a random
        direction), ``contrast`` (30% of the contrast about each image's mean) or
        ``inversion`` (``1 - x``).
    seed : int
        Seed of the corruption's randomness.

    Returns
    -------
    torch.Tensor
        The corrupted images, ``(N, 784)``, values in [0, 1].

    Examples
    --------
    >>> import torch
    >>> corrupt(torch.zeros(2, 784), "inversion").min()
    tensor(1.)
    """
    if name not in CORRUPTIONS:
        raise ValueError(f"Expected a corruption in {sorted(CORRUPTIONS)} but got {name!r}.")
    _as_images(images)
    generator = torch.Generator().manual_seed(seed)
    return CORRUPTIONS[name](images.cpu(), generator).to(images.device)
