"""Bernoulli and Categorical parametrised by probs and by logits, against float64 references.

Both parametrisations agree with the float64 truth where probabilities are representable;
where float32 probabilities saturate (``sigmoid(-90) == 0`` exactly), the probs path gives
``-inf``, a clamped value or a lost gradient, and the logits path stays exact.
"""

from __future__ import annotations

import math

import pyro.distributions as dist
import pytest
import torch
import torch.nn.functional as F
from helpers import assert_close
from hypothesis import given, settings
from hypothesis import strategies as st

import pyro_logits as pl

F32 = torch.float32
TINY32 = torch.finfo(F32).tiny  # below this a float32 result cannot hold a relative error
# Chi-squared 0.999 quantiles: each goodness-of-fit test has a 0.1% false-alarm rate for a
# correct sampler (the seed is fixed, so a pass is reproducible).
CHI2_999 = {1: 10.828, 4: 18.467}


# ---------------------------------------------------------------------------- float64 references
def bernoulli_ref_log_prob(z64: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    return torch.where(y != 0, F.logsigmoid(z64), F.logsigmoid(-z64))


def bernoulli_ref_entropy(z64: torch.Tensor) -> torch.Tensor:
    # sigmoid(-z), not 1 - sigmoid(z): the latter is 0 in float64 for z > 37.
    return -(torch.sigmoid(z64) * F.logsigmoid(z64) + torch.sigmoid(-z64) * F.logsigmoid(-z64))


def categorical_ref_log_prob(z64: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    return torch.log_softmax(z64, -1).gather(-1, y.unsqueeze(-1)).squeeze(-1)


def categorical_ref_entropy(z64: torch.Tensor) -> torch.Tensor:
    logp = torch.log_softmax(z64, -1)
    return -(logp.exp() * logp).sum(-1)


def rel_err(actual: torch.Tensor, truth: torch.Tensor) -> torch.Tensor:
    actual, truth = actual.double(), truth.double()
    return (actual - truth).abs() / truth.abs().clamp_min(TINY32)


MODERATE = torch.linspace(-12.0, 12.0, 97)  # sigmoid is far from 0 and 1 in float32
EXTREME = torch.linspace(-300.0, 300.0, 6001)


def both_bernoullis(z: torch.Tensor) -> dict[str, dist.Bernoulli]:
    return {"probs": dist.Bernoulli(probs=torch.sigmoid(z)), "logits": pl.bernoulli(z)}


def both_categoricals(z: torch.Tensor) -> dict[str, dist.Categorical]:
    return {"probs": dist.Categorical(probs=torch.softmax(z, -1)), "logits": pl.categorical(z)}


# ------------------------------------------------------------ agreement where probs are healthy
# The probs path rounds p to float32 and then takes log(1 - p): relative error up to
# eps / (1 - p), about 1e-2 at |z| = 12; the logits path keeps 1e-6 throughout.
@pytest.mark.parametrize(("param", "rtol"), [("probs", 1e-2), ("logits", 1e-6)])
def test_bernoulli_moments_and_log_prob_agree_with_float64(param: str, rtol: float) -> None:
    d = both_bernoullis(MODERATE)[param]
    z64 = MODERATE.double()
    p64 = torch.sigmoid(z64)
    for y in (0.0, 1.0):
        value = torch.full_like(MODERATE, y)
        assert_close(d.log_prob(value), bernoulli_ref_log_prob(z64, value), rtol=rtol, atol=1e-6)
    assert_close(d.mean, p64, rtol=1e-6, atol=1e-7)
    assert_close(d.variance, p64 * (1 - p64), rtol=1e-5, atol=1e-7)
    assert_close(d.entropy(), bernoulli_ref_entropy(z64), rtol=max(rtol, 1e-5), atol=1e-7)


@pytest.mark.parametrize("param", ["probs", "logits"])
def test_categorical_moments_and_log_prob_agree_with_float64(param: str) -> None:
    z = torch.randn(64, 7) * 3
    d = both_categoricals(z)[param]
    z64 = z.double()
    y = torch.randint(0, 7, (64,))
    assert_close(d.log_prob(y), categorical_ref_log_prob(z64, y), rtol=1e-5, atol=1e-6)
    assert_close(d.entropy(), categorical_ref_entropy(z64), rtol=1e-5, atol=1e-6)
    assert_close(d.probs, torch.softmax(z64, -1), rtol=1e-5, atol=1e-7)
    # mean/variance of a Categorical are undefined (NaN) in torch; compare the class-index
    # moments computed from probs instead.
    k = torch.arange(7, dtype=torch.float64)
    mean64 = (torch.softmax(z64, -1) * k).sum(-1)
    assert_close((d.probs * k.float()).sum(-1), mean64, rtol=1e-5, atol=1e-6)


def test_enumerate_support_is_the_same_for_both_parametrisations() -> None:
    zb = torch.randn(5)
    for d in both_bernoullis(zb).values():
        support = d.enumerate_support()
        assert support.shape == (2, 5)
        assert torch.equal(support[:, 0], torch.tensor([0.0, 1.0]))
    zc = torch.randn(5, 4)
    for d in both_categoricals(zc).values():
        support = d.enumerate_support()
        assert support.shape == (4, 5)
        assert torch.equal(support[:, 0], torch.arange(4))
        # The enumerated log-probabilities sum to 1 in probability space for both.
        assert_close(d.log_prob(support).logsumexp(0), torch.zeros(5), rtol=0, atol=1e-6)


def test_bernoulli_gradient_wrt_logits_matches_float64() -> None:
    """d/dz log p(y | z) = y - sigmoid(z); the logits path is exact, even at |z| = 90."""
    z = torch.tensor([-90.0, -30.0, -3.0, 0.0, 3.0, 30.0, 90.0], requires_grad=True)
    y = torch.tensor([1.0, 1.0, 0.0, 1.0, 1.0, 0.0, 0.0])
    truth = y.double() - torch.sigmoid(z.detach().double())

    (grad_logits,) = torch.autograd.grad(pl.bernoulli(z).log_prob(y).sum(), z)
    assert_close(grad_logits, truth, rtol=1e-6, atol=1e-7)

    # Probs path: sigmoid saturates to 0 or 1 and torch clamps the probabilities, so the
    # gradient for the misclassified extremes (the examples that matter most) is 0 instead of +-1.
    (grad_probs,) = torch.autograd.grad(dist.Bernoulli(probs=torch.sigmoid(z)).log_prob(y).sum(), z)
    assert grad_probs[0].item() == 0.0  # truth: +1
    assert grad_probs[-1].item() == 0.0  # truth: -1
    assert_close(grad_probs[2:5], truth[2:5], rtol=1e-5, atol=1e-6)


def test_categorical_gradient_wrt_logits_matches_float64() -> None:
    z = (torch.randn(16, 5) * 2).requires_grad_()
    z.data[0] = torch.tensor([0.0, -120.0, 1.0, 2.0, 3.0])  # class 1 saturates in softmax
    y = torch.randint(0, 5, (16,))
    y[0] = 1
    truth = F.one_hot(y, 5).double() - torch.softmax(z.detach().double(), -1)
    (grad_logits,) = torch.autograd.grad(pl.categorical(z).log_prob(y).sum(), z)
    assert_close(grad_logits, truth, rtol=1e-5, atol=1e-6)
    (grad_probs,) = torch.autograd.grad(
        dist.Categorical(probs=torch.softmax(z, -1)).log_prob(y).sum(), z
    )
    assert grad_probs[0].abs().max().item() == 0.0  # the saturated example teaches nothing
    assert_close(grad_probs[1:], truth[1:], rtol=1e-4, atol=1e-6)


def chi_squared(counts: torch.Tensor, probs: torch.Tensor) -> float:
    expected = probs.double() * counts.sum()
    return float(((counts.double() - expected) ** 2 / expected).sum())


@pytest.mark.parametrize("param", ["probs", "logits"])
def test_categorical_sampling_frequencies_fit(param: str) -> None:
    z = torch.tensor([1.0, -0.5, 0.0, 2.0, -1.0])
    d = both_categoricals(z)[param]
    counts = torch.bincount(d.sample((50_000,)), minlength=5)
    assert chi_squared(counts, torch.softmax(z.double(), -1)) < CHI2_999[4]


@pytest.mark.parametrize("param", ["probs", "logits"])
def test_bernoulli_sampling_frequencies_fit(param: str) -> None:
    z = torch.tensor(-1.3)
    d = both_bernoullis(z)[param]
    ones = d.sample((50_000,)).sum()
    p = torch.sigmoid(z.double())
    counts = torch.stack([50_000 - ones, ones])
    assert chi_squared(counts, torch.stack([1 - p, p])) < CHI2_999[1]


def test_goodness_of_fit_detects_a_wrong_sampler() -> None:
    """The test above can fail: samples from a slightly different distribution are rejected."""
    z = torch.tensor([1.0, -0.5, 0.0, 2.0, -1.0])
    counts = torch.bincount(pl.categorical(z + torch.tensor([0.1, 0, 0, 0, 0])).sample((50_000,)))
    assert chi_squared(counts, torch.softmax(z.double(), -1)) > CHI2_999[4]


# ---------------------------------------------------------------- where probs fail, logits don't
def test_float32_sigmoid_saturates_to_exactly_zero() -> None:
    assert torch.sigmoid(torch.tensor(-90.0)).item() == 0.0
    assert torch.sigmoid(torch.tensor(17.0)).item() == 1.0


def test_bernoulli_logits_path_is_within_1e_6_relative_up_to_300() -> None:
    z64 = EXTREME.double()
    d = pl.bernoulli(EXTREME)
    for y in (0.0, 1.0):
        value = torch.full_like(EXTREME, y)
        truth = bernoulli_ref_log_prob(z64, value)
        representable = truth.abs() >= TINY32  # e.g. log p(1 | z=300) = -5e-131 is not
        err = rel_err(d.log_prob(value), truth)
        assert err[representable].max().item() < 1e-6
        assert (d.log_prob(value)[~representable].abs() < TINY32).all()
    err_h = rel_err(d.entropy(), bernoulli_ref_entropy(z64))
    assert err_h[bernoulli_ref_entropy(z64) >= TINY32].max().item() < 1e-5


def test_bernoulli_probs_path_gives_clamped_or_infinite_log_probs() -> None:
    z = torch.tensor([-300.0, -90.0, 90.0, 300.0])
    y = torch.tensor([1.0, 1.0, 0.0, 0.0])
    truth = bernoulli_ref_log_prob(z.double(), y)  # -300, -90, -90, -300
    probs = torch.sigmoid(z)
    # torch clamps probabilities to [eps, 1 - eps]: every answer becomes log(eps) ~ -15.94.
    clamped = dist.Bernoulli(probs=probs).log_prob(y)
    assert_close(clamped, torch.full((4,), math.log(torch.finfo(F32).eps)), rtol=1e-6)
    # The textbook formula y log p + (1 - y) log(1 - p) gives -inf.
    naive = y * torch.log(probs) + (1 - y) * torch.log1p(-probs)
    assert (naive == -math.inf).all()
    # The logits path is exact.
    assert rel_err(pl.bernoulli(z).log_prob(y), truth).max().item() < 1e-6


def test_binary_cross_entropy_from_probs_vs_from_logits() -> None:
    z = EXTREME
    y = (torch.arange(z.numel()) % 2).float()
    truth = -bernoulli_ref_log_prob(z.double(), y)
    from_logits = F.binary_cross_entropy_with_logits(z, y, reduction="none")
    from_probs = F.binary_cross_entropy(torch.sigmoid(z), y, reduction="none")
    big = truth >= 1.0  # the informative, misclassified examples
    assert rel_err(from_logits, truth)[big].max().item() < 1e-6
    # binary_cross_entropy clamps each log at -100: a loss of 300 reads as 100.
    assert from_probs.max().item() == 100.0
    assert rel_err(from_probs, truth)[big].max().item() > 0.5


def test_categorical_probs_path_is_clamped_where_logits_are_exact() -> None:
    z = torch.tensor([[0.0, -200.0, -1.0], [250.0, 0.0, 0.0]])
    y = torch.tensor([1, 2])
    truth = categorical_ref_log_prob(z.double(), y)  # about -200.3 and -250
    assert rel_err(pl.categorical(z).log_prob(y), truth).max().item() < 1e-6
    via_probs = dist.Categorical(probs=torch.softmax(z, -1)).log_prob(y)
    assert_close(via_probs, torch.full((2,), math.log(torch.finfo(F32).eps)), rtol=1e-6)
    assert torch.isinf(torch.log(torch.softmax(z, -1)).gather(-1, y[:, None])).all()


# ----------------------------------------------------------------------------- what a logit is
def test_log_p_over_ln10_is_not_a_logit() -> None:
    p = torch.tensor([0.1, 0.5, 0.9], dtype=torch.float64)
    base10 = torch.log(p) / math.log(10)
    assert_close(base10, torch.log10(p), rtol=1e-15)  # it is the base-10 log-probability
    assert_close(pl.logit(p), torch.log(p) - torch.log1p(-p), rtol=1e-15)
    assert pl.logit(p)[1].item() == 0.0 and base10[1].item() < -0.3
    # Used as Bernoulli logits, it describes different probabilities.
    wrong = pl.bernoulli(base10, validate=False).probs  # noqa: PL005
    assert_close(wrong, torch.tensor([0.2689, 0.4253, 0.4886], dtype=torch.float64), rtol=1e-3)
    assert_close(pl.bernoulli(pl.logit(p)).probs, p, rtol=1e-14)


def test_logit_eps_matches_torch_logit() -> None:
    x = torch.tensor([0.0, 1.0])
    ours = pl.logit(x, eps=1e-6)
    assert torch.equal(ours, torch.logit(x, eps=1e-6))
    assert_close(ours, torch.tensor([-13.8155, 13.8023]), rtol=0, atol=5e-5)


# -------------------------------------------------------------------------- property tests
probabilities = st.floats(min_value=1e-300, max_value=1.0, exclude_max=True)


@settings(max_examples=300, deadline=None)
@given(st.lists(probabilities, min_size=1, max_size=16))
def test_binary_round_trip(ps: list[float]) -> None:
    p = torch.tensor(ps, dtype=torch.float64)
    back = pl.logits_to_probs(pl.probs_to_logits(p, is_binary=True), is_binary=True)
    # Near 1 the logit carries 1 - p, which p itself cannot hold to better than ulp(1).
    assert_close(back, p, rtol=1e-13, atol=1e-16)


@settings(max_examples=200, deadline=None)
@given(st.lists(st.floats(min_value=1e-30, max_value=1.0), min_size=2, max_size=12))
def test_categorical_round_trip(ws: list[float]) -> None:
    p = torch.tensor(ws, dtype=torch.float64)
    p = p / p.sum()
    assert_close(pl.logits_to_probs(pl.probs_to_logits(p)), p, rtol=1e-12, atol=1e-300)


@settings(max_examples=200, deadline=None)
@given(
    st.lists(st.floats(min_value=-50, max_value=50), min_size=2, max_size=10),
    st.floats(min_value=-1e4, max_value=1e4),
)
def test_categorical_log_prob_is_shift_invariant(zs: list[float], c: float) -> None:
    z = torch.tensor(zs, dtype=torch.float64)
    y = torch.arange(len(zs))
    # validate=False: hypothesis happily draws rows such as [0, 0.5, 0.5], which are exactly a
    # probability vector, and the logits check would rightly warn about them.
    base = pl.categorical(z, validate=False).log_prob(y)
    shifted = pl.categorical(z + c, validate=False).log_prob(y)
    # Adding c costs |c| * eps of absolute precision in each logit.
    assert_close(shifted, base, rtol=0, atol=4 * (abs(c) + 50) * torch.finfo(torch.float64).eps)


@settings(max_examples=200, deadline=None)
@given(st.lists(st.floats(min_value=-300, max_value=300), min_size=1, max_size=10))
def test_binary_and_two_class_categorical_agree(zs: list[float]) -> None:
    z = torch.tensor(zs, dtype=torch.float64)
    two = pl.binary_to_categorical_logits(z)
    for y in (0, 1):
        lp_bin = pl.bernoulli(z).log_prob(torch.full_like(z, float(y)))
        lp_cat = pl.categorical(two, validate=False).log_prob(torch.full(z.shape, y))
        # log_softmax subtracts a logsumexp: a few eps * |z| of absolute error near 0.
        atol = 4 * torch.finfo(torch.float64).eps * (1 + z.abs().max().item())
        assert_close(lp_cat, lp_bin, rtol=1e-12, atol=atol)
    assert_close(pl.categorical_to_binary_logits(two), z, rtol=0)
