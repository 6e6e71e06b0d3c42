"""Conversions against float64 references."""

from __future__ import annotations

import math

import pytest
import torch
from helpers import assert_close

import pyro_logits as pl

F32_EPS = torch.finfo(torch.float32).eps


def logit64(p: torch.Tensor) -> torch.Tensor:
    p = p.double()
    return torch.log(p) - torch.log1p(-p)


@pytest.mark.parametrize(
    "make",
    [
        lambda g: torch.rand(100_000, generator=g),
        lambda g: 0.5 + (torch.rand(100_000, generator=g) - 0.5) * 1e-3,  # logit near 0
        lambda g: torch.rand(100_000, generator=g) * 1e-30,  # far left tail
        lambda g: 1 - torch.rand(100_000, generator=g) * 1e-3,  # right tail
    ],
    ids=["uniform", "near-half", "tiny", "near-one"],
)
def test_logit_is_accurate_to_a_few_ulp(make) -> None:
    p = make(torch.Generator().manual_seed(1)).clamp(1e-38, 1 - F32_EPS / 2)
    p = p[p != 0.5]
    truth = logit64(p)
    err = ((pl.logit(p).double() - truth).abs() / truth.abs()).max().item()
    # torch.logit loses ~1e-4 relative near p = 1/2; the float32 logit here stays within 4 ulp.
    assert err < 4 * F32_EPS


def test_logit_limits_and_gradient() -> None:
    out = pl.logit(torch.tensor([0.0, 0.5, 1.0]))
    assert out.tolist() == [-math.inf, 0.0, math.inf]
    q = torch.tensor([0.3, 0.5, 0.8], dtype=torch.float64, requires_grad=True)
    (grad,) = torch.autograd.grad(pl.logit(q).sum(), q)
    assert_close(grad, 1 / (q.detach() * (1 - q.detach())), rtol=1e-12)


def test_probs_logits_round_trip_float32() -> None:
    # float32 holds small p to full relative precision but 1 - p only to eps: the round trip is
    # exact far into the left tail and loses eps * e^z absolute precision for z > 0.
    z = torch.linspace(-80, 4, 841)
    back = pl.probs_to_logits(pl.logits_to_probs(z, is_binary=True), is_binary=True)
    assert_close(back, z, rtol=2e-6, atol=2e-5)
    zc = torch.randn(10, 4)
    back = pl.probs_to_logits(pl.logits_to_probs(zc))
    assert_close(back - back[:, :1], zc - zc[:, :1], rtol=0, atol=1e-5)


def test_probs_to_logits_is_not_clamped() -> None:
    assert pl.probs_to_logits(torch.tensor([0.0, 1.0])).tolist() == [-math.inf, 0.0]
    assert pl.probs_to_logits(torch.tensor([0.0, 1.0]), is_binary=True).tolist() == [
        -math.inf,
        math.inf,
    ]


def test_categorical_to_binary_requires_two_classes() -> None:
    with pytest.raises(ValueError, match=r"last dim of size 2 but got shape \(4, 3\)"):
        pl.categorical_to_binary_logits(torch.zeros(4, 3))


def test_log_mean_exp_extremes() -> None:
    x = torch.tensor([[-1000.0, -1000.0], [1000.0, 1000.0], [-math.inf, 0.0]])
    assert_close(pl.log_mean_exp(x, 1), torch.tensor([-1000.0, 1000.0, -math.log(2)]), rtol=1e-7)
    assert pl.log_mean_exp(torch.full((3,), -math.inf), 0).item() == -math.inf
    with pytest.raises(ValueError, match="at least one value along dim 0"):
        pl.log_mean_exp(torch.zeros(0, 3), 0)


def test_predictive_log_probs_is_the_mean_of_probabilities() -> None:
    samples = torch.randn(30, 8, 5) * 6  # S, N, C: strong disagreement between samples
    out = pl.predictive_log_probs(samples)
    ref = torch.softmax(samples.double(), -1).mean(0).log()
    assert out.shape == (8, 5)
    assert_close(out, ref, rtol=1e-5, atol=1e-6)
    assert_close(out.exp().sum(-1), torch.ones(8), rtol=1e-6)
    # Averaging logits is a different quantity: over-confident where samples disagree.
    wrong = torch.log_softmax(samples.mean(0), -1)
    assert (wrong - out).abs().max().item() > 0.5


def test_predictive_log_probs_binary_and_other_sample_dim() -> None:
    z = torch.randn(8, 20) * 5  # N, S
    out = pl.predictive_log_probs(z, dim=1, is_binary=True)
    assert_close(out, torch.sigmoid(z.double()).mean(1).log(), rtol=1e-5, atol=1e-7)
    # Extreme logits: computed in log space, no underflow to -inf.
    far = pl.predictive_log_probs(torch.full((4, 3), -500.0), dim=0, is_binary=True)
    assert_close(far, torch.full((3,), -500.0), rtol=1e-6)


def test_predictive_log_probs_rejects_the_class_dim() -> None:
    with pytest.raises(ValueError, match="other than the class"):
        pl.predictive_log_probs(torch.zeros(3, 4), dim=-1)
    with pytest.raises(ValueError, match="other than the class"):
        pl.predictive_log_probs(torch.zeros(3, 4), dim=1)


# ------------------------------------------------------------------------------- bad input
def test_logit_of_integer_and_bool_probabilities_is_torch_logit() -> None:
    p = torch.tensor([0, 1])
    assert pl.logit(p, eps=1e-6).tolist() == torch.logit(p, eps=1e-6).tolist()
    assert pl.logit(p, eps=1e-6).dtype == torch.float32
    assert pl.logit(torch.tensor([True, False]), eps=1e-6).tolist() == pytest.approx(
        [13.8023, -13.8155], abs=1e-4
    )


@pytest.mark.parametrize(
    ("call", "error", "match"),
    [
        (lambda: pl.logit([0.1, 0.2]), TypeError, r"torch\.Tensor of probabilities but got list"),
        (lambda: pl.logit(0.3), TypeError, r"but got float; wrap it with torch\.as_tensor"),
        (lambda: pl.logit(torch.tensor([0.2]), eps=0.7), ValueError, r"eps in \[0, 0\.5\]"),
        (lambda: pl.logit(torch.tensor([0.2]), eps=-1e-3), ValueError, r"eps in \[0, 0\.5\]"),
        (lambda: pl.log_mean_exp(torch.zeros(3), 1), ValueError, r"dim in \[-1, 0\] .* got 1"),
        (lambda: pl.log_mean_exp(torch.tensor([math.nan, 0.0]), 0), ValueError, r"without NaN"),
        (
            lambda: pl.predictive_log_probs(torch.zeros(4, 2, 3), dim=3),
            ValueError,
            r"dim in \[-3, 2\] for logit_samples of shape \(4, 2, 3\) but got 3",
        ),
        (
            lambda: pl.predictive_log_probs(torch.tensor([[[math.nan, 0.0]]])),
            ValueError,
            r"without NaN",
        ),
    ],
)
def test_bad_input_gets_a_clear_error(call, error, match) -> None:
    with pytest.raises(error, match=match):
        call()


def test_predictive_treats_a_plus_inf_logit_as_probability_one() -> None:
    samples = torch.tensor([[[1.0, math.inf, 0.0]], [[0.0, 0.0, 0.0]]])
    probs = pl.predictive_log_probs(samples).exp()
    assert_close(probs, torch.tensor([[1 / 6, 2 / 3, 1 / 6]]), rtol=1e-6)
    with pytest.raises(ValueError, match="at most one \\+inf"):
        pl.predictive_log_probs(torch.tensor([[[math.inf, math.inf]]]))
