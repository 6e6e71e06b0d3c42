"""Image transforms for MNIST-sized data: shifts and distortions to train on; corruptions."""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
import torch.nn.functional as F

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


def warp_images(images: torch.Tensor, displacement: torch.Tensor) -> torch.Tensor:
    """Resample each image at its pixels moved by ``displacement``, bilinearly, filling with 0.

    Parameters
    ----------
    images : torch.Tensor
        Flattened images ``(N, 784)``.
    displacement : torch.Tensor
        ``(N, 2, 28, 28)``: for each output pixel, how many pixels down (channel 0) and right
        (channel 1) of it the input is read.

    Returns
    -------
    torch.Tensor
        The warped images, ``(N, 784)``; a whole-pixel displacement ``(-r, -c)`` everywhere is
        :func:`shift_images` by ``(r, c)``.

    Examples
    --------
    >>> import torch
    >>> image = torch.zeros(1, 784)
    >>> image[0, 0] = 1.0
    >>> moved = warp_images(image, torch.full((1, 2, 28, 28), -1.0))
    >>> (moved.view(28, 28) > 0.5).nonzero().tolist()
    [[1, 1]]
    """
    square = _as_images(images)
    expected = (square.shape[0], 2, SIDE, SIDE)
    if tuple(displacement.shape) != expected:
        raise ValueError(
            f"Expected a displacement of shape {expected} (rows, then columns, per pixel) "
            f"but got {tuple(displacement.shape)}."
        )
    pixels = torch.arange(SIDE, dtype=images.dtype, device=images.device)
    rows = pixels.view(SIDE, 1) + displacement[:, 0].to(images)
    cols = pixels.view(1, SIDE) + displacement[:, 1].to(images)
    # grid_sample reads (x, y) = (column, row), each scaled to [-1, 1] over the pixel centres
    grid = torch.stack((cols, rows), dim=-1) * (2.0 / (SIDE - 1)) - 1.0
    warped = F.grid_sample(square[:, None], grid, mode="bilinear", align_corners=True)
    return warped.reshape(images.shape)


def random_elastic(
    images: torch.Tensor,
    alpha: float = 34.0,
    sigma: float = 4.0,
    *,
    generator: torch.Generator | None = None,
    chunk: int = 8192,
) -> torch.Tensor:
    """Distort each image by a random smooth displacement field (Simard et al., 2003).

    Each pixel's displacement, per axis, is uniform in ``[-1, 1]``, smoothed by a Gaussian of
    ``sigma`` pixels and multiplied by ``alpha``; the image is resampled there
    (:func:`warp_images`). The defaults are the paper's for MNIST. Images are distorted
    ``chunk`` at a time, which bounds the memory the fields take.

    Examples
    --------
    >>> import torch
    >>> images = torch.rand(5, 784)
    >>> torch.allclose(random_elastic(images, alpha=0.0), images, atol=1e-5)
    True
    """
    if alpha < 0 or sigma <= 0:
        raise ValueError(f"Expected alpha >= 0 and sigma > 0 but got alpha={alpha}, sigma={sigma}.")
    _as_images(images)
    # the Gaussian as a banded matrix: B @ field @ B.T smooths both axes (zero beyond the edge)
    offsets = torch.arange(SIDE, dtype=images.dtype, device=images.device)
    offsets = offsets.view(1, SIDE) - offsets.view(SIDE, 1)
    band = torch.exp(-(offsets**2) / (2 * sigma**2)) * (offsets.abs() <= math.ceil(3 * sigma))
    radius = min(SIDE - 1, math.ceil(3 * sigma))
    whole = torch.arange(-radius, radius + 1, dtype=images.dtype, device=images.device)
    blur = band / torch.exp(-(whole**2) / (2 * sigma**2)).sum()
    parts = []
    for start in range(0, images.shape[0], chunk):
        part = images[start : start + chunk]
        field = torch.rand((part.shape[0], 2, SIDE, SIDE), generator=generator, dtype=images.dtype)
        field = blur @ (field.to(images.device) * 2 - 1) @ blur.T
        parts.append(warp_images(part, alpha * field))
    return torch.cat(parts) if parts else images.clone()


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


def rotate_images(
    images: torch.Tensor, degrees: float | torch.Tensor, *, image_size: tuple[int, int] = (28, 28)
) -> torch.Tensor:
    """Rotate images counter-clockwise about their centre, filling with 0 (black).

    Uses bilinear interpolation (:func:`torch.nn.functional.grid_sample`); rotations by
    multiples of 90 degrees move pixels exactly, matching :func:`torch.rot90` on the last two
    dims up to rounding. "Counter-clockwise" is as displayed, with row 0 at the top.

    Parameters
    ----------
    images : torch.Tensor
        Flattened images ``(N, H * W)``, as :func:`pyro_logits.datasets.load_mnist` returns,
        or images ``(N, H, W)``.
    degrees : float or torch.Tensor
        The angle, one for all images or a tensor of shape ``(N,)``, one per image.
    image_size : tuple of int
        ``(H, W)`` of flattened images. Default ``(28, 28)``.

    Returns
    -------
    torch.Tensor
        The rotated images, same shape and dtype as ``images``.

    Raises
    ------
    ValueError
        If ``images`` is neither ``(N, H * W)`` nor ``(N, H, W)``, is not floating-point,
        or ``degrees`` has the wrong shape.

    Examples
    --------
    >>> import torch
    >>> image = torch.tensor([[[1.0, 0.0], [0.0, 0.0]]])
    >>> rotate_images(image, 90.0)
    tensor([[[0., 0.],
             [1., 0.]]])
    """
    height, width = image_size
    if images.dim() == 2 and images.shape[1] == height * width:
        grid_images = images.reshape(-1, 1, height, width)
    elif images.dim() == 3:
        grid_images = images.unsqueeze(1)
        height, width = images.shape[1:]
    else:
        raise ValueError(
            f"Expected images of shape (N, {height * width}) or (N, H, W) but got "
            f"{tuple(images.shape)}; pass image_size=(H, W) for flattened images of another size."
        )
    if not images.is_floating_point():
        raise ValueError(
            f"Expected floating-point images but got {images.dtype}; convert bytes with "
            "images.float() / 255."
        )
    n = grid_images.shape[0]
    angle = torch.as_tensor(degrees, dtype=torch.float64, device=images.device)
    if angle.dim() == 0:
        angle = angle.expand(n)
    if angle.shape != (n,):
        raise ValueError(f"Expected degrees as a number or of shape ({n},) but got {angle.shape}.")
    radians = torch.deg2rad(angle)[:, None, None]
    cos, sin = torch.cos(radians), torch.sin(radians)
    # Pixel centres in grid_sample's coordinates (align_corners=False): x right, y down, both
    # in [-1, 1]. Each output pixel samples the input at its own position turned clockwise,
    # which turns the picture counter-clockwise; the aspect ratio keeps non-square images
    # rigid. In float64, a turn by 0 or 90 degrees hits pixel centres exactly.
    columns = torch.arange(width, dtype=torch.float64, device=images.device)
    rows = torch.arange(height, dtype=torch.float64, device=images.device)
    x = ((2 * columns + 1) / width - 1)[None, :]
    y = ((2 * rows + 1) / height - 1)[:, None]
    aspect = width / height
    grid = torch.stack([cos * x - sin * y / aspect, sin * x * aspect + cos * y], dim=-1)
    rotated = F.grid_sample(
        grid_images.to(torch.float64),
        grid,
        mode="bilinear",
        padding_mode="zeros",
        align_corners=False,
    )
    return rotated.reshape(images.shape).to(images.dtype)


def noise_images(
    n: int,
    *,
    shape: tuple[int, ...] = (784,),
    generator: torch.Generator | None = None,
    dtype: torch.dtype = torch.float32,
    device: torch.device | str | None = None,
) -> torch.Tensor:
    """Images of independent uniform noise in ``[0, 1)``, a simple out-of-distribution set.

    Parameters
    ----------
    n : int
        Number of images.
    shape : tuple of int
        Shape of one image. Default ``(784,)``, a flattened 28 x 28 image.
    generator : torch.Generator, optional
        Source of randomness, for reproducible sets.
    dtype : torch.dtype
        Default ``torch.float32``.
    device : torch.device or str, optional
        Where to create the images.

    Returns
    -------
    torch.Tensor
        Of shape ``(n, *shape)``.

    Raises
    ------
    ValueError
        If ``n`` is negative.

    Examples
    --------
    >>> import torch
    >>> images = noise_images(3, generator=torch.Generator().manual_seed(0))
    >>> images.shape, bool(images.min() >= 0), bool(images.max() < 1)
    (torch.Size([3, 784]), True, True)
    """
    if n < 0:
        raise ValueError(f"Expected a non-negative number of images but got {n}.")
    return torch.rand((n, *shape), generator=generator, dtype=dtype, device=device)
