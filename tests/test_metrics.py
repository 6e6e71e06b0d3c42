"""Metrics against float64 references written out by hand, and the OOD input makers."""

from __future__ import annotations

import math

import pytest
import torch
from helpers import assert_close
from hypothesis import given, settings
from hypothesis import strategies as st

from pyro_logits import datasets, metrics

# References: loops over examples in float64, written for clarity, not speed.


def reference_accuracy(log_probs: torch.Tensor, labels: torch.Tensor) -> float:
    hits = [int(row.argmax()) == int(y) for row, y in zip(log_probs.double(), labels, strict=True)]
    return sum(hits) / len(hits)


def reference_nll(log_probs: torch.Tensor, labels: torch.Tensor) -> float:
    rows = log_probs.double()
    return -sum(float(rows[n, int(y)]) for n, y in enumerate(labels)) / len(labels)


def reference_brier(log_probs: torch.Tensor, labels: torch.Tensor) -> float:
    total = 0.0
    for row, y in zip(log_probs.double().exp(), labels, strict=True):
        total += sum((float(p) - (c == int(y))) ** 2 for c, p in enumerate(row))
    return total / len(labels)


def reference_ece(log_probs: torch.Tensor, labels: torch.Tensor, n_bins: int) -> float:
    probs = log_probs.double().exp()
    bins: list[list[tuple[float, bool]]] = [[] for _ in range(n_bins)]
    for row, y in zip(probs, labels, strict=True):
        conf, pred = float(row.max()), int(row.argmax())
        b = next(b for b in range(n_bins) if conf <= (b + 1) / n_bins)
        bins[b].append((conf, pred == int(y)))
    ece = 0.0
    for members in bins:
        if members:
            acc = sum(hit for _, hit in members) / len(members)
            conf = sum(c for c, _ in members) / len(members)
            ece += len(members) / len(labels) * abs(acc - conf)
    return ece


def brute_force_auroc(scores_in: list[float], scores_out: list[float]) -> float:
    # Mann-Whitney: P(out > in) + P(out == in) / 2 over all pairs.
    wins = sum((o > i) + 0.5 * (o == i) for o in scores_out for i in scores_in)
    return wins / (len(scores_in) * len(scores_out))


def random_log_probs(n: int, c: int, *, dtype: torch.dtype = torch.float32) -> torch.Tensor:
    return torch.log_softmax(3 * torch.randn(n, c, dtype=dtype), dim=-1)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_scalar_metrics_match_references(dtype: torch.dtype) -> None:
    log_probs = random_log_probs(200, 10, dtype=dtype)
    labels = torch.randint(0, 10, (200,))
    # The metrics work in float64 on the same inputs: agreement to rounding.
    for metric, reference in (
        (metrics.accuracy, reference_accuracy),
        (metrics.nll, reference_nll),
        (metrics.brier_score, reference_brier),
    ):
        value = metric(log_probs, labels)
        assert isinstance(value, float)
        assert value == pytest.approx(reference(log_probs, labels), rel=1e-12, abs=1e-12)
    for n_bins in (1, 10, 15):
        value = metrics.expected_calibration_error(log_probs, labels, n_bins=n_bins)
        assert value == pytest.approx(reference_ece(log_probs, labels, n_bins), abs=1e-12)


def test_perfect_classifier() -> None:
    labels = torch.tensor([0, 2, 1, 2])
    log_probs = torch.full((4, 3), -math.inf).scatter(1, labels[:, None], 0.0)
    assert metrics.accuracy(log_probs, labels) == 1.0
    assert metrics.nll(log_probs, labels) == 0.0
    assert metrics.brier_score(log_probs, labels) == 0.0
    assert metrics.expected_calibration_error(log_probs, labels) == 0.0
    assert torch.equal(metrics.predictive_entropy(log_probs), torch.zeros(4))


def test_useless_classifier() -> None:
    c = 10
    labels = torch.arange(100) % c
    log_probs = torch.full((100, c), -math.log(c), dtype=torch.float64)
    assert metrics.accuracy(log_probs, labels) == pytest.approx(1 / c, abs=1e-15)
    assert metrics.nll(log_probs, labels) == pytest.approx(math.log(c), rel=1e-15)
    assert metrics.brier_score(log_probs, labels) == pytest.approx(1 - 1 / c, rel=1e-14)
    # Confidence 1/c and accuracy 1/c: perfectly calibrated, though useless.
    assert metrics.expected_calibration_error(log_probs, labels) == pytest.approx(0, abs=1e-15)
    expected = torch.full((100,), math.log(c), dtype=torch.float64)
    assert_close(metrics.predictive_entropy(log_probs), expected, rtol=1e-14)


def test_confidently_wrong_classifier() -> None:
    log_probs = torch.tensor([[0.0, -math.inf], [-math.inf, 0.0]])
    labels = torch.tensor([1, 0])
    assert metrics.accuracy(log_probs, labels) == 0.0
    assert metrics.nll(log_probs, labels) == math.inf
    assert metrics.brier_score(log_probs, labels) == 2.0
    assert metrics.expected_calibration_error(log_probs, labels) == 1.0


def test_ece_and_bins_on_a_constructed_example() -> None:
    # Five bins of width 0.2. Confidence, prediction and label per example:
    # 0.55 right -> bin 2; 0.65 wrong, 0.75 right -> bin 3; 0.95 right, 0.9 wrong,
    # 0.85 right -> bin 4. Gaps: |1 - 0.55| = 0.45, |0.5 - 0.7| = 0.2, |2/3 - 0.9| = 0.7/3.
    probs = torch.tensor(
        [[0.55, 0.45], [0.35, 0.65], [0.75, 0.25], [0.05, 0.95], [0.9, 0.1], [0.85, 0.15]],
        dtype=torch.float64,
    )
    labels = torch.tensor([0, 0, 0, 1, 1, 0])
    ece = metrics.expected_calibration_error(probs.log(), labels, n_bins=5)
    assert ece == pytest.approx((1 * 0.45 + 2 * 0.2 + 3 * (0.7 / 3)) / 6, rel=1e-12)

    bins = metrics.calibration_bins(probs.log(), labels, n_bins=5)
    edges = torch.tensor([0.0, 0.2, 0.4, 0.6, 0.8, 1.0], dtype=torch.float64)
    assert_close(bins.edges, edges, rtol=1e-15)
    assert bins.counts.tolist() == [0, 0, 1, 2, 3]
    nan = math.nan
    torch.testing.assert_close(
        bins.confidence,
        torch.tensor([nan, nan, 0.55, 0.7, 0.9], dtype=torch.float64),
        equal_nan=True,
    )
    torch.testing.assert_close(
        bins.accuracy,
        torch.tensor([nan, nan, 1.0, 0.5, 2 / 3], dtype=torch.float64),
        equal_nan=True,
    )


def test_predictive_entropy_matches_reference() -> None:
    log_probs = random_log_probs(50, 7)
    log_probs[0] = torch.tensor([0.0] + [-math.inf] * 6)  # a one-hot row: entropy exactly 0
    expected = torch.tensor(
        [-sum(p * math.log(p) for p in row.tolist() if p > 0) for row in log_probs.double().exp()],
        dtype=torch.float64,
    )
    entropy = metrics.predictive_entropy(log_probs)
    assert entropy.dtype == torch.float32 and entropy.shape == (50,)
    assert_close(entropy, expected, rtol=1e-6, atol=1e-7)  # float32 output
    assert entropy[0] == 0 and not torch.signbit(entropy[0])


@settings(max_examples=60, deadline=None)
@given(
    st.lists(st.integers(0, 5), min_size=1, max_size=30),
    st.lists(st.integers(0, 5), min_size=1, max_size=30),
)
def test_auroc_is_mann_whitney(scores_in: list[int], scores_out: list[int]) -> None:
    # Small integer scores make many ties, the case the mid-ranks must get right.
    value = metrics.auroc(torch.tensor(scores_in, dtype=torch.float32), torch.tensor(scores_out))
    assert value == pytest.approx(brute_force_auroc(scores_in, scores_out), abs=1e-12)


def test_auroc_extremes() -> None:
    low, high = torch.tensor([0.1, 0.2, 0.3]), torch.tensor([0.5, 0.9])
    assert metrics.auroc(low, high) == 1.0
    assert metrics.auroc(high, low) == 0.0
    assert metrics.auroc(low, low.clone()) == 0.5


def test_ood_auroc_uses_entropy() -> None:
    confident = torch.tensor([[0.98, 0.01, 0.01], [0.01, 0.97, 0.02]]).log()
    unsure = torch.tensor([[0.4, 0.3, 0.3], [1 / 3, 1 / 3, 1 / 3], [0.5, 0.5, 0.0]]).log()
    assert metrics.ood_auroc(confident, unsure) == 1.0
    assert metrics.ood_auroc(unsure, confident) == 0.0


def test_input_errors() -> None:
    logits = torch.tensor([[2.0, 1.0], [0.0, 3.0]])
    labels = torch.tensor([0, 1])
    with pytest.raises(
        ValueError, match=r"normalised log_probs .* row 1 has logsumexp 3\.049.*log_softmax"
    ):
        metrics.nll(logits, labels)
    log_probs = torch.log_softmax(logits, -1)
    assert metrics.accuracy(log_probs, labels.int()) == metrics.accuracy(log_probs, labels)
    with pytest.raises(ValueError, match=r"integer class labels for labels but got torch\.float32"):
        metrics.accuracy(log_probs, labels.float())
    with pytest.raises(
        ValueError, match=r"class labels in \[0, 1\] for labels \(2 classes\) but got 2; check"
    ):
        metrics.brier_score(log_probs, torch.tensor([0, 2]))
    with pytest.raises(
        ValueError, match=r"labels of shape \(2,\) to match log_probs but got \(3,\)"
    ):
        metrics.accuracy(log_probs, torch.tensor([0, 1, 1]))
    with pytest.raises(ValueError, match=r"log_probs of shape \(N, C\) but got \(2,\)"):
        metrics.predictive_entropy(torch.zeros(2))
    with pytest.raises(ValueError, match="without NaN or \\+inf"):
        metrics.accuracy(torch.tensor([[math.nan, 0.0]]), torch.tensor([0]))
    with pytest.raises(ValueError, match="n_bins to be a positive int but got 0"):
        metrics.expected_calibration_error(log_probs, labels, n_bins=0)
    with pytest.raises(ValueError, match=r"scores_out of shape \(N,\) with N > 0 but got \(0,\)"):
        metrics.auroc(torch.ones(3), torch.ones(0))
    with pytest.raises(ValueError, match="scores_in without NaN"):
        metrics.auroc(torch.tensor([math.nan]), torch.ones(1))


# OOD inputs


def test_rotate_by_zero_is_identity() -> None:
    images = torch.rand(6, 784)
    assert torch.equal(datasets.rotate_images(images, 0.0), images)
    assert_close(datasets.rotate_images(images, 360.0), images, rtol=0, atol=1e-6)


@pytest.mark.parametrize("k", [1, 2, 3, -1])
def test_rotate_by_right_angles_matches_rot90(k: int) -> None:
    images = torch.rand(6, 28, 28)
    rotated = datasets.rotate_images(images, 90.0 * k)
    assert_close(rotated, torch.rot90(images, k, dims=(-2, -1)), rtol=0, atol=1e-6)
    flat = datasets.rotate_images(images.reshape(6, 784), 90.0 * k)
    assert flat.shape == (6, 784) and flat.dtype == torch.float32
    assert_close(flat.reshape(6, 28, 28), rotated, rtol=0, atol=0)


def test_rotate_per_image_and_non_square() -> None:
    images = torch.rand(3, 28, 28)
    rotated = datasets.rotate_images(images, torch.tensor([0.0, 90.0, 180.0]))
    for i in range(3):
        assert_close(rotated[i], torch.rot90(images[i], i), rtol=0, atol=1e-6)
    wide = torch.rand(2, 4, 6)
    assert_close(
        datasets.rotate_images(wide, 180.0), torch.rot90(wide, 2, (-2, -1)), rtol=0, atol=1e-6
    )


def test_rotate_45_keeps_the_centre_and_blanks_the_corners() -> None:
    image = torch.ones(1, 28, 28)
    rotated = datasets.rotate_images(image, 45.0)[0]
    assert rotated[14, 14] == pytest.approx(1.0, abs=1e-6)
    assert rotated[0, 0] == 0 and rotated[27, 27] == 0


def test_rotate_errors() -> None:
    with pytest.raises(
        ValueError, match=r"images of shape \(N, 784\) or \(N, H, W\) but got \(2, 100\)"
    ):
        datasets.rotate_images(torch.zeros(2, 100), 10.0)
    with pytest.raises(ValueError, match=r"floating-point images but got torch\.uint8"):
        datasets.rotate_images(torch.zeros(2, 784, dtype=torch.uint8), 10.0)
    with pytest.raises(ValueError, match=r"degrees as a number or of shape \(2,\)"):
        datasets.rotate_images(torch.zeros(2, 784), torch.zeros(3))


def test_noise_images() -> None:
    images = datasets.noise_images(500, generator=torch.Generator().manual_seed(1))
    assert images.shape == (500, 784) and images.dtype == torch.float32
    assert images.min() >= 0 and images.max() < 1
    assert images.mean().item() == pytest.approx(0.5, abs=0.01)  # 392k uniforms: sd 0.0005
    again = datasets.noise_images(500, generator=torch.Generator().manual_seed(1))
    assert torch.equal(images, again)
    assert datasets.noise_images(2, shape=(28, 28), dtype=torch.float64).shape == (2, 28, 28)
    with pytest.raises(ValueError, match="non-negative number of images but got -1"):
        datasets.noise_images(-1)


def test_nll_difference_mean_is_the_difference_of_the_nlls() -> None:
    torch.manual_seed(0)
    a, b = random_log_probs(500, 10), random_log_probs(500, 10)
    labels = torch.randint(10, (500,))
    diff = metrics.nll_difference(a, b, labels)
    assert diff.mean == pytest.approx(reference_nll(a, labels) - reference_nll(b, labels), abs=1e-9)
    assert diff.low < diff.mean < diff.high


def test_nll_difference_interval_matches_the_normal_one_on_a_large_sample() -> None:
    # With 20,000 examples the mean of the differences is close to normal: the bootstrap's
    # interval should match mean +- 1.96 sd / sqrt(n) within 10% of its half-width (Monte Carlo
    # error of 2,000 resamples and the remaining skew).
    torch.manual_seed(1)
    n = 20_000
    a, b = random_log_probs(n, 5, dtype=torch.float64), random_log_probs(n, 5, dtype=torch.float64)
    labels = torch.randint(5, (n,))
    d = torch.tensor(
        [float(b[i, int(y)] - a[i, int(y)]) for i, y in enumerate(labels)], dtype=torch.float64
    )
    half = 1.959964 * d.std().item() / math.sqrt(n)
    diff = metrics.nll_difference(a, b, labels)
    assert diff.low == pytest.approx(d.mean().item() - half, abs=0.1 * half)
    assert diff.high == pytest.approx(d.mean().item() + half, abs=0.1 * half)


def test_nll_difference_of_a_prediction_with_itself_is_zero() -> None:
    log_probs, labels = random_log_probs(50, 3), torch.randint(3, (50,))
    assert metrics.nll_difference(log_probs, log_probs, labels) == (0.0, 0.0, 0.0)


def test_nll_difference_interval_level_and_seed() -> None:
    torch.manual_seed(2)
    a, b, labels = random_log_probs(300, 4), random_log_probs(300, 4), torch.randint(4, (300,))
    wide = metrics.nll_difference(a, b, labels, level=0.99)
    usual = metrics.nll_difference(a, b, labels)
    narrow = metrics.nll_difference(a, b, labels, level=0.5)
    assert wide.low < usual.low < narrow.low < narrow.high < usual.high < wide.high
    assert metrics.nll_difference(a, b, labels, seed=3) == metrics.nll_difference(
        a, b, labels, seed=3
    )
    assert metrics.nll_difference(a, b, labels, seed=3) != usual


def test_nll_difference_with_a_label_of_probability_zero() -> None:
    a = torch.tensor([[0.0, 1.0], [0.5, 0.5]]).log()
    b = torch.tensor([[0.5, 0.5], [0.5, 0.5]]).log()
    diff = metrics.nll_difference(a, b, torch.tensor([0, 1]))
    assert diff == (math.inf, math.inf, math.inf)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"level": 1.0}, r"level in \(0, 1\)"),
        ({"num_resamples": 0}, "num_resamples to be an int >= 100 but got 0"),
        ({"num_resamples": 1}, "num_resamples to be an int >= 100 but got 1; fewer resampled"),
        ({"num_resamples": 99}, "num_resamples to be an int >= 100 but got 99"),
        ({"num_resamples": 100.0}, r"num_resamples to be an int >= 100 but got 100\.0"),
        ({"other": random_log_probs(3, 4)}, "two predictions of one shape"),
        ({"other": torch.rand(3, 3)}, "normalised"),
    ],
)
def test_nll_difference_errors(kwargs: dict, message: str) -> None:
    a, labels = random_log_probs(3, 3), torch.tensor([0, 1, 2])
    other = kwargs.pop("other", a)
    with pytest.raises(ValueError, match=message):
        metrics.nll_difference(a, other, labels, **kwargs)


def test_nll_difference_refuses_a_single_example() -> None:
    # One example has no spread to resample: the interval would be (mean, mean), "significant".
    a, b = random_log_probs(1, 3), random_log_probs(1, 3)
    with pytest.raises(ValueError, match="Expected at least 2 examples but got 1; one example"):
        metrics.nll_difference(a, b, torch.tensor([2]))


def test_nll_difference_at_the_smallest_accepted_sizes() -> None:
    # Two examples and 100 resamples are accepted, and the interval holds the mean.
    a = torch.tensor([[0.9, 0.1], [0.4, 0.6]]).log()
    b = torch.tensor([[0.5, 0.5], [0.5, 0.5]]).log()
    diff = metrics.nll_difference(a, b, torch.tensor([0, 1]), num_resamples=100)
    assert diff.low < diff.mean < diff.high


def _brute_force_average_precision(scores_in: list[float], scores_out: list[float]) -> float:
    # Every distinct score as a threshold, from the highest down, in exact fractions.
    from fractions import Fraction

    pairs = [(s, 0) for s in scores_in] + [(s, 1) for s in scores_out]
    total, previous_recall = Fraction(0), Fraction(0)
    for threshold in sorted({s for s, _ in pairs}, reverse=True):
        flagged = [label for s, label in pairs if s >= threshold]
        recall = Fraction(sum(flagged), len(scores_out))
        total += (recall - previous_recall) * Fraction(sum(flagged), len(flagged))
        previous_recall = recall
    return float(total)


def _brute_force_fpr(scores_in: list[float], scores_out: list[float], tpr: float) -> float:
    # The lowest FPR over all thresholds that reach the TPR.
    best = 1.0
    for threshold in sorted(set(scores_in) | set(scores_out)):
        found = sum(s >= threshold for s in scores_out) / len(scores_out)
        if found >= tpr - 1e-12:
            best = min(best, sum(s >= threshold for s in scores_in) / len(scores_in))
    return best


@pytest.mark.parametrize("seed", range(6))
def test_aupr_and_fpr_match_brute_force_references(seed: int) -> None:
    g = torch.Generator().manual_seed(seed)
    # Rounded scores make ties, which both references count as thresholds of their own.
    scores_in = (torch.randn(37, generator=g, dtype=torch.float64) * 4).round() / 4
    scores_out = (torch.randn(23, generator=g, dtype=torch.float64) * 4 + 2).round() / 4
    ins, outs = scores_in.tolist(), scores_out.tolist()
    assert metrics.aupr(scores_in, scores_out) == pytest.approx(
        _brute_force_average_precision(ins, outs), abs=1e-12
    )
    for tpr in (0.5, 0.95, 1.0):
        assert metrics.fpr_at_tpr(scores_in, scores_out, tpr=tpr) == pytest.approx(
            _brute_force_fpr(ins, outs, tpr), abs=1e-12
        )


def test_ood_scores_separate_perfectly_and_not_at_all() -> None:
    confident = torch.tensor([[0.99, 0.01], [0.02, 0.98], [0.97, 0.03]]).log()
    unsure = torch.tensor([[0.6, 0.4], [0.5, 0.5]]).log()
    assert metrics.ood_scores(confident, unsure) == {
        "auroc": 1.0,
        "aupr_out": 1.0,
        "aupr_in": 1.0,
        "fpr_at_95_tpr": 0.0,
    }
    same = metrics.ood_scores(confident, confident)
    assert same["auroc"] == 0.5 and same["fpr_at_95_tpr"] == 1.0
    assert same["aupr_out"] == pytest.approx(0.5)  # chance: the share of positives
    with pytest.raises(ValueError, match=r"Expected tpr in \(0, 1\] but got 0"):
        metrics.fpr_at_tpr(torch.ones(2), torch.ones(2), tpr=0)


def test_adaptive_ece_matches_a_float64_reference() -> None:
    g = torch.Generator().manual_seed(3)
    log_probs = torch.log_softmax(torch.randn(103, 4, generator=g, dtype=torch.float64) * 3, -1)
    labels = torch.randint(4, (103,), generator=g)
    confidence, predicted = log_probs.exp().max(-1)
    order = confidence.argsort()
    expected = 0.0
    for bin_ in order.tensor_split(10):  # equal mass: 10 or 11 examples a bin
        hits = (predicted[bin_] == labels[bin_]).double()
        expected += len(bin_) * abs(hits.mean().item() - confidence[bin_].mean().item())
    expected /= 103
    got = metrics.adaptive_calibration_error(log_probs, labels, n_bins=10)
    assert got == pytest.approx(expected, abs=1e-12)
    # With one example a bin it is the mean gap between confidence and correctness.
    per_example = metrics.adaptive_calibration_error(log_probs, labels, n_bins=103)
    gaps = (confidence - (predicted == labels).double()).abs().mean().item()
    assert per_example == pytest.approx(gaps, abs=1e-12)
