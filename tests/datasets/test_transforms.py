"""Random shifts and corruptions of MNIST images, against hand-written references."""

from __future__ import annotations

import pytest
import torch

from pyro_logits.datasets import CORRUPTIONS, corrupt, random_shift, shift_images


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
