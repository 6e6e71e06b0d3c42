"""Random shifts, elastic distortions and corruptions of MNIST images, against hand-written
references."""

from __future__ import annotations

import math

import pytest
import torch

from pyro_logits.datasets import (
    CORRUPTIONS,
    corrupt,
    random_elastic,
    random_shift,
    shift_images,
    warp_images,
)


def shifted_by_hand(image: torch.Tensor, dy: int, dx: int) -> torch.Tensor:
    square, out = image.view(28, 28), torch.zeros(28, 28, dtype=image.dtype)
    for r in range(28):
        for c in range(28):
            if 0 <= r - dy < 28 and 0 <= c - dx < 28:
                out[r, c] = square[r - dy, c - dx]
    return out.flatten()


def test_shift_images_matches_a_pixel_loop() -> None:
    g = torch.Generator().manual_seed(0)
    images = torch.rand(6, 784, dtype=torch.float64, generator=g)
    rows, cols = torch.tensor([0, 2, -2, 5, -1, 3]), torch.tensor([0, -1, 2, 0, -4, 3])
    out = shift_images(images, rows, cols)
    for i in range(6):
        assert torch.equal(out[i], shifted_by_hand(images[i], int(rows[i]), int(cols[i])))


def test_random_shift_moves_each_image_by_at_most_max_shift() -> None:
    images = torch.zeros(200, 784)
    images.view(200, 28, 28)[:, 14, 14] = 1.0  # one lit pixel in the middle
    out = random_shift(images, 2, generator=torch.Generator().manual_seed(1)).view(200, 28, 28)
    where = out.nonzero()[:, 1:] - 14
    assert len(where) == 200 and where.abs().max() == 2
    assert len({tuple(w) for w in where.tolist()}) == 25  # every offset in [-2, 2]^2 occurs


def bilinear_by_hand(image: torch.Tensor, rows: torch.Tensor, cols: torch.Tensor) -> torch.Tensor:
    """Read ``image`` at ``(r + rows[r, c], c + cols[r, c])`` bilinearly, 0 outside."""
    square, out = image.view(28, 28), torch.zeros(28, 28, dtype=image.dtype)

    def pixel(r: int, c: int) -> float:
        return float(square[r, c]) if 0 <= r < 28 and 0 <= c < 28 else 0.0

    for r in range(28):
        for c in range(28):
            y, x = r + float(rows[r, c]), c + float(cols[r, c])
            y0, x0 = math.floor(y), math.floor(x)
            fy, fx = y - y0, x - x0
            out[r, c] = (
                (1 - fy) * (1 - fx) * pixel(y0, x0)
                + (1 - fy) * fx * pixel(y0, x0 + 1)
                + fy * (1 - fx) * pixel(y0 + 1, x0)
                + fy * fx * pixel(y0 + 1, x0 + 1)
            )
    return out.flatten()


def test_warp_images_by_whole_pixels_is_a_shift() -> None:
    images = torch.rand(3, 784, dtype=torch.float64, generator=torch.Generator().manual_seed(4))
    rows, cols = torch.tensor([2, -3, 0]), torch.tensor([-1, 0, 4])
    displacement = torch.stack(
        [
            torch.stack([-r * torch.ones(28, 28), -c * torch.ones(28, 28)])
            for r, c in zip(rows, cols, strict=True)
        ]
    ).double()
    torch.testing.assert_close(
        warp_images(images, displacement), shift_images(images, rows, cols), rtol=0, atol=1e-12
    )


def test_warp_images_matches_a_bilinear_pixel_loop() -> None:
    g = torch.Generator().manual_seed(5)
    images = torch.rand(2, 784, dtype=torch.float64, generator=g)
    displacement = 3 * (torch.rand(2, 2, 28, 28, dtype=torch.float64, generator=g) * 2 - 1)
    out = warp_images(images, displacement)
    for i in range(2):
        expected = bilinear_by_hand(images[i], displacement[i, 0], displacement[i, 1])
        torch.testing.assert_close(out[i], expected, rtol=0, atol=1e-12)


def test_random_elastic_is_the_smoothed_uniform_field_of_its_generator() -> None:
    images = torch.rand(2, 784, dtype=torch.float64, generator=torch.Generator().manual_seed(6))
    alpha, sigma = 8.0, 2.0
    out = random_elastic(images, alpha, sigma, generator=torch.Generator().manual_seed(7))
    field = torch.rand(
        2, 2, 28, 28, dtype=torch.float64, generator=torch.Generator().manual_seed(7)
    )
    field = field * 2 - 1
    radius = math.ceil(3 * sigma)
    weights = {d: math.exp(-(d**2) / (2 * sigma**2)) for d in range(-radius, radius + 1)}
    total = sum(weights.values())
    smoothed = torch.zeros_like(field)
    for r in range(28):
        for c in range(28):
            for dr in range(-radius, radius + 1):
                for dc in range(-radius, radius + 1):
                    if 0 <= r + dr < 28 and 0 <= c + dc < 28:
                        weight = weights[dr] * weights[dc] / total**2
                        smoothed[:, :, r, c] += weight * field[:, :, r + dr, c + dc]
    for i in range(2):
        expected = bilinear_by_hand(images[i], alpha * smoothed[i, 0], alpha * smoothed[i, 1])
        torch.testing.assert_close(out[i], expected, rtol=0, atol=1e-10)


def test_random_elastic_keeps_images_and_follows_its_generator() -> None:
    images = torch.rand(300, 784, generator=torch.Generator().manual_seed(8))
    torch.testing.assert_close(random_elastic(images, alpha=0.0), images, rtol=0, atol=1e-5)
    first = random_elastic(images, generator=torch.Generator().manual_seed(9), chunk=128)
    again = random_elastic(images, generator=torch.Generator().manual_seed(9), chunk=128)
    assert torch.equal(first, again) and first.shape == images.shape
    assert first.min() >= 0 and first.max() <= 1 and not torch.allclose(first, images)
    assert random_elastic(images[:0]).shape == (0, 784)


def test_warp_and_elastic_refuse_bad_arguments() -> None:
    images = torch.rand(2, 784)
    with pytest.raises(ValueError, match=r"displacement of shape \(2, 2, 28, 28\)"):
        warp_images(images, torch.zeros(2, 28, 28))
    with pytest.raises(ValueError, match="alpha >= 0 and sigma > 0"):
        random_elastic(images, alpha=-1.0)
    with pytest.raises(ValueError, match="flattened float images"):
        random_elastic(images.view(2, 28, 28))


def test_corruptions_are_reproducible_and_stay_images() -> None:
    images = torch.rand(20, 784, generator=torch.Generator().manual_seed(2))
    for name in CORRUPTIONS:
        first, again = corrupt(images, name, seed=3), corrupt(images, name, seed=3)
        assert torch.equal(first, again), name
        assert first.shape == images.shape and first.min() >= 0 and first.max() <= 1, name
        assert not torch.equal(first, images), name


def test_corruptions_against_their_definitions() -> None:
    images = torch.zeros(3, 784, dtype=torch.float64)
    images.view(3, 28, 28)[:, 10:18, 10:18] = 0.8
    assert torch.equal(corrupt(images, "inversion"), 1 - images)
    contrast = corrupt(images, "contrast")
    mean = images.mean(1, keepdim=True)
    torch.testing.assert_close(contrast, 0.3 * (images - mean) + mean, rtol=1e-12, atol=1e-12)
    # A normalised blur keeps the total intensity of a digit away from the border.
    torch.testing.assert_close(
        corrupt(images, "gaussian_blur").sum(1), images.sum(1), rtol=1e-12, atol=0
    )
    impulse = corrupt(images, "impulse_noise")
    changed = (impulse != images).double().mean()
    assert 0.05 < changed < 0.12  # 10% of the pixels are set to 0 or 1, some already were
    distance = corrupt(images, "translation").view(3, 28, 28).nonzero()[:, 1:].double() - 13.5
    assert distance.abs().max() > 5  # moved beyond the +-2 pixels of training shifts


def test_corrupt_refuses_unknown_names_and_shapes() -> None:
    with pytest.raises(ValueError, match=r"Expected a corruption in \['contrast'"):
        corrupt(torch.zeros(1, 784), "fog")
    with pytest.raises(ValueError, match=r"flattened float images of shape \(N, 784\)"):
        corrupt(torch.zeros(1, 28, 28), "inversion")
