"""The likelihood helpers: construction, validation, infinities, and the observe step."""

from __future__ import annotations

import math
import warnings

import pyro
import pyro.distributions as dist
import pytest
import torch
import torch.nn.functional as F
from helpers import assert_close

import pyro_logits as pl

INF = math.inf


# ------------------------------------------------------------------------------- construction
def test_bernoulli_returns_a_pyro_bernoulli_from_logits() -> None:
    z = torch.randn(3, 4)
    d = pl.bernoulli(z)
    assert isinstance(d, dist.Bernoulli)
    assert d.logits is z
    assert d.batch_shape == (3, 4)
    e = pl.bernoulli(z, event_dim=1)
    assert isinstance(e, dist.Independent)
    assert e.batch_shape == (3,) and e.event_shape == (4,)
    y = torch.bernoulli(torch.full((3, 4), 0.5))
    assert_close(e.log_prob(y), d.log_prob(y).sum(-1), rtol=1e-6)


def test_categorical_returns_a_pyro_categorical_over_the_last_dim() -> None:
    z = torch.randn(3, 5)
    d = pl.categorical(z)
    assert isinstance(d, dist.Categorical)
    assert d.batch_shape == (3,)
    assert_close(d.logits, torch.log_softmax(z.double(), -1), rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("make", [pl.bernoulli, pl.categorical], ids=["bernoulli", "categorical"])
def test_nan_logits_are_rejected(make) -> None:
    z = torch.zeros(2, 3)
    z[1, 2] = math.nan
    with pytest.raises(ValueError, match=r"'logits' .* no NaN but got 1 NaN value\(s\) .*\(2, 3\)"):
        make(z)


@pytest.mark.parametrize("make", [pl.bernoulli, pl.categorical], ids=["bernoulli", "categorical"])
def test_integer_logits_are_rejected(make) -> None:
    with pytest.raises(
        ValueError, match=r"floating-point tensor but got dtype torch.int64 and shape \(4,\)"
    ):
        make(torch.arange(4))


def test_non_tensor_logits_are_rejected() -> None:
    with pytest.raises(
        TypeError,
        match=r"argument .logits. of pyro_logits.categorical to be a torch\.Tensor but got list",
    ):
        pl.categorical([0.0, 1.0])  # type: ignore[arg-type]


@pytest.mark.parametrize("shape", [(), (4, 0)])
def test_empty_class_dim_is_rejected(shape) -> None:
    with pytest.raises(ValueError, match="non-empty class dim"):
        pl.categorical(torch.zeros(shape))


def test_validate_false_skips_checks() -> None:
    z = torch.tensor([math.nan, 0.0])
    assert pl.bernoulli(z, validate=False).logits is z


def test_bad_event_dim() -> None:
    with pytest.raises(ValueError, match="event_dim between 0 and 2"):
        pl.bernoulli(torch.zeros(2, 3), event_dim=3)


# --------------------------------------------------------------------------------- infinities
def test_bernoulli_infinite_logits_follow_the_maths() -> None:
    z = torch.tensor([INF, INF, -INF, -INF, 0.0], requires_grad=True)
    y = torch.tensor([1.0, 0.0, 1.0, 0.0, 1.0])
    d = pl.bernoulli(z)
    assert d.log_prob(y).tolist() == pytest.approx([0.0, -INF, -INF, 0.0, -math.log(2)])
    assert d.entropy().tolist() == pytest.approx([0.0, 0.0, 0.0, 0.0, math.log(2)])
    assert d.mean.tolist() == [1.0, 1.0, 0.0, 0.0, 0.5]
    # torch's own Bernoulli gives NaN here.
    assert torch.isnan(dist.Bernoulli(logits=z.detach()).log_prob(y)[[0, 2, 3]]).all()
    # Gradients stay finite where the log-probability is finite.
    (g,) = torch.autograd.grad(d.log_prob(y)[[0, 3, 4]].sum(), z)
    assert torch.isfinite(g).all()


def test_categorical_minus_inf_class_has_probability_zero() -> None:
    d = pl.categorical(torch.tensor([[0.0, -INF, 0.0]]))
    assert d.probs.tolist() == [[0.5, 0.0, 0.5]]
    assert d.log_prob(torch.tensor([1])).item() == -INF
    assert d.entropy().item() == pytest.approx(math.log(2))


def test_categorical_single_plus_inf_takes_all_mass() -> None:
    d = pl.categorical(torch.tensor([[1.0, INF, 3.0], [0.0, 0.0, 0.0]]))
    assert d.probs[0].tolist() == [0.0, 1.0, 0.0]
    assert_close(d.probs[1], torch.full((3,), 1 / 3), rtol=1e-6)
    assert d.log_prob(torch.tensor([1, 0])).tolist() == pytest.approx([0.0, -math.log(3)])


def test_categorical_undefined_infinities_raise() -> None:
    with pytest.raises(ValueError, match="all -inf"):
        pl.categorical(torch.tensor([[0.0, 1.0], [-INF, -INF]]))
    with pytest.raises(ValueError, match="at most one \\+inf"):
        pl.categorical(torch.tensor([[INF, INF, 0.0]]))


# ---------------------------------------------------------------------------- logits warnings
def test_helpers_warn_on_log_softmax_and_validate_false_silences() -> None:
    z = torch.randn(32, 10, requires_grad=True)
    with pytest.warns(pl.LogSoftmaxAsLogitsWarning, match="pyro_logits.categorical"):
        pl.categorical(F.log_softmax(z, -1))  # noqa: PL001
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        pl.categorical(F.log_softmax(z, -1), validate=False)  # noqa: PL001
        pl.categorical(z)


def test_observe_warns_on_softmax_as_logits_naming_the_site() -> None:
    z = torch.randn(32, 10, requires_grad=True)
    with pytest.warns(pl.ProbsAsLogitsWarning, match="site 'label'"):
        pl.observe_categorical("label", torch.softmax(z, -1), torch.zeros(32, dtype=torch.long))  # noqa: PL003


def test_helper_and_messenger_warn_once_together() -> None:
    """Inside check_logits(), a helper's site is not checked (and reported) a second time."""
    z = torch.randn(32, 10, requires_grad=True)
    y = torch.zeros(32, dtype=torch.long)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        with pl.check_logits():
            pl.observe_categorical("label", F.log_softmax(z, -1), y)  # noqa: PL001
            pyro.sample("raw", pl.categorical(z, validate=False), obs=y)
            pyro.sample("raw2", pl.categorical(F.softmax(z, -1), validate=False), obs=y)  # noqa: PL003
    assert [w.category for w in caught] == [pl.LogSoftmaxAsLogitsWarning, pl.ProbsAsLogitsWarning]
    assert "observe_categorical (site 'label')" in str(caught[0].message)
    assert "sample site 'raw2'" in str(caught[1].message)


def test_a_one_class_categorical_is_refused() -> None:
    with pytest.raises(ValueError, match=r"at least 2 classes .* shape \(8, 1\).*bernoulli"):
        pl.categorical(torch.randn(8, 1))
    with pytest.raises(ValueError, match=r"at least 2 classes"):
        pl.observe_categorical("y", torch.randn(8, 1), torch.zeros(8, dtype=torch.long))


@pytest.mark.parametrize("event_dim", [True, 1.0, "1"])
def test_event_dim_must_be_an_int(event_dim) -> None:
    with pytest.raises((TypeError, ValueError), match="event_dim"):
        pl.bernoulli(torch.zeros(2, 3), event_dim=event_dim)
    with pytest.raises(ValueError, match="event_dim to be an int >= 0 or None"):
        pl.observe_bernoulli("y", torch.zeros(2, 3), torch.ones(2, 3), event_dim=event_dim)
