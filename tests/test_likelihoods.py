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
from pyro.infer import SVI, Predictive, Trace_ELBO
from pyro.infer.autoguide import AutoNormal
from pyro.optim import Adam

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
    with pytest.raises(TypeError, match=r"torch\.Tensor of logits but got list"):
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


# ------------------------------------------------------------------------------- observe step
def trace_of(fn, *args, **kwargs) -> pyro.poutine.Trace:
    tr = pyro.poutine.trace(fn).get_trace(*args, **kwargs)
    tr.compute_log_prob()
    return tr


def test_observe_categorical_scales_to_the_dataset() -> None:
    z, y = torch.randn(128, 10), torch.randint(0, 10, (128,))
    tr = trace_of(pl.observe_categorical, "y", z, y, dataset_size=60_000)
    site = tr.nodes["y"]
    assert site["is_observed"] and site["value"] is y
    assert site["scale"] == pytest.approx(60_000 / 128)
    expected = categorical_logp_sum(z, y) * 60_000 / 128
    assert_close(tr.log_prob_sum(), expected, rtol=1e-6)


def categorical_logp_sum(z: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    return torch.log_softmax(z.double(), -1).gather(-1, y[:, None]).sum()


def test_minibatch_estimates_average_to_the_full_data_log_likelihood() -> None:
    """Scaled minibatch log-likelihoods are unbiased: their mean over a partition is exact."""
    n, b = 600, 50
    z, y = torch.randn(n, 4, dtype=torch.float64), torch.randint(0, 4, (n,))
    full = categorical_logp_sum(z, y)
    estimates = [
        trace_of(
            pl.observe_categorical, "y", z[i : i + b], y[i : i + b], dataset_size=n
        ).log_prob_sum()
        for i in range(0, n, b)
    ]
    assert_close(torch.stack(estimates).mean(), full, rtol=1e-12)


def test_observe_without_dataset_size_is_unscaled_and_uses_dim_minus_one() -> None:
    tr = trace_of(pl.observe_bernoulli, "y", torch.randn(16), torch.ones(16))
    assert tr.nodes["y"]["scale"] == 1.0
    frame = tr.nodes["y"]["cond_indep_stack"][0]
    assert frame.name == "y_data" and frame.dim == -1 and frame.size == 16


def test_observe_mask_drops_entries() -> None:
    z, y = torch.randn(6, 3), torch.tensor([0, 1, 2, 0, 1, 2])
    mask = torch.tensor([True, False, True, False, True, False])
    tr = trace_of(pl.observe_categorical, "y", z, y, mask=mask)
    assert_close(tr.log_prob_sum(), categorical_logp_sum(z[mask], y[mask]), rtol=1e-6)


def test_observe_bernoulli_event_dim_and_int_obs() -> None:
    z = torch.randn(5, 784)
    y = (torch.rand(5, 784) > 0.5).long()
    tr = trace_of(pl.observe_bernoulli, "x", z, y, event_dim=1, dataset_size=50)
    ref = bernoulli_logp(z, y).sum() * 10
    assert_close(tr.log_prob_sum(), ref, rtol=1e-6)
    assert tr.nodes["x"]["value"].dtype == torch.float32


def bernoulli_logp(z: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    z64 = z.double()
    return torch.where(y != 0, F.logsigmoid(z64), F.logsigmoid(-z64))


def test_observe_returns_a_sample_when_obs_is_none() -> None:
    value = pl.observe_categorical("y", torch.randn(7, 3), None)
    assert value.shape == (7,) and value.dtype == torch.int64


@pytest.mark.parametrize(
    ("obs", "match"),
    [
        (torch.tensor([0, 1, 3]), r"labels in \[0, 2\] .* but got 3"),
        (torch.tensor([0, -1, 2]), r"labels in \[0, 2\] .* but got -1"),
        (torch.tensor([0.0, 1.5, 2.0]), "non-integer values such as 1.5"),
        (torch.tensor([True, False, True]), "integer class labels .* torch.bool"),
        (
            torch.tensor([0, 1]),
            r"shape \(3,\) \(one class label per row of logits\) but got \(2,\)",
        ),
    ],
)
def test_observe_categorical_rejects_bad_labels(obs, match) -> None:
    with pytest.raises(ValueError, match=match):
        pl.observe_categorical("y", torch.randn(3, 3), obs)


def test_observe_categorical_accepts_integral_float_labels() -> None:
    pl.observe_categorical("y", torch.randn(3, 3), torch.tensor([0.0, 2.0, 1.0]))


def test_observe_bernoulli_rejects_non_binary_obs() -> None:
    with pytest.raises(
        ValueError, match=r"binary obs \(0 or 1\) for site 'y' but got values such as 0.69999"
    ):
        pl.observe_bernoulli("y", torch.randn(3), torch.tensor([0.0, 0.7, 1.0]))


def test_observe_rejects_bad_dataset_size_and_mask() -> None:
    z, y = torch.randn(8, 3), torch.zeros(8, dtype=torch.long)
    with pytest.raises(
        ValueError, match=r"dataset_size to be an int >= the batch size 8 but got 4"
    ):
        pl.observe_categorical("y", z, y, dataset_size=4)
    with pytest.raises(
        ValueError, match=r"mask for site 'y' to be a bool tensor but got torch\.int64"
    ):
        pl.observe_categorical("y", z, y, mask=torch.ones(8, dtype=torch.long))
    with pytest.raises(ValueError, match=r"broadcast to the batch shape \(8,\)"):
        pl.observe_categorical("y", z, y, mask=torch.ones(3, dtype=torch.bool))
    with pytest.raises(
        ValueError, match=r"shape \(batch_size, num_classes\) but got \(3,\); add a batch dim"
    ):
        pl.observe_categorical("y", torch.randn(3), torch.tensor(0))


# ------------------------------------------------------------------------------ real inference
def logistic_model(x: torch.Tensor, y: torch.Tensor | None, n: int) -> torch.Tensor:
    w = pyro.sample("w", dist.Normal(0.0, 5.0).expand([2]).to_event(1))
    return pl.observe_bernoulli("y", x @ w, y, dataset_size=n)


def test_svi_with_minibatches_recovers_logistic_regression_weights() -> None:
    n = 4000
    x = torch.randn(n, 2)
    w_true = torch.tensor([2.0, -1.0])
    y = torch.bernoulli(torch.sigmoid(x @ w_true))
    guide = AutoNormal(logistic_model)
    svi = SVI(logistic_model, guide, Adam({"lr": 0.05}), Trace_ELBO())
    for _ in range(600):
        idx = torch.randint(0, n, (200,))
        svi.step(x[idx], y[idx], n)
    w_loc = guide.median()["w"]
    # With 4000 points the posterior sd is about 0.06; 0.25 is a generous bound.
    assert (w_loc - w_true).abs().max().item() < 0.25


def test_predictive_samples_labels() -> None:
    x = torch.randn(50, 2)
    predictive = Predictive(logistic_model, num_samples=7, return_sites=["y"])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        samples = predictive(x, None, 50)["y"]
    assert samples.shape == (7, 50)
    assert set(samples.unique().tolist()) <= {0.0, 1.0}


# ---------------------------------------------------------------------------- logits warnings
def test_helpers_warn_on_log_softmax_and_validate_false_silences() -> None:
    z = torch.randn(32, 10, requires_grad=True)
    with pytest.warns(pl.LogSoftmaxAsLogitsWarning, match="pyro_logits.categorical"):
        pl.categorical(F.log_softmax(z, -1))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        pl.categorical(F.log_softmax(z, -1), validate=False)
        pl.categorical(z)


def test_observe_warns_on_softmax_as_logits_naming_the_site() -> None:
    z = torch.randn(32, 10, requires_grad=True)
    with pytest.warns(pl.ProbsAsLogitsWarning, match="site 'label'"):
        pl.observe_categorical("label", torch.softmax(z, -1), torch.zeros(32, dtype=torch.long))


def test_helper_and_messenger_warn_once_together() -> None:
    """Inside check_logits(), a helper's site is not checked (and reported) a second time."""
    z = torch.randn(32, 10, requires_grad=True)
    y = torch.zeros(32, dtype=torch.long)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        with pl.check_logits():
            pl.observe_categorical("label", F.log_softmax(z, -1), y)
            pyro.sample("raw", pl.categorical(z, validate=False), obs=y)
            pyro.sample("raw2", pl.categorical(F.softmax(z, -1), validate=False), obs=y)
    assert [w.category for w in caught] == [pl.LogSoftmaxAsLogitsWarning, pl.ProbsAsLogitsWarning]
    assert "observe_categorical (site 'label')" in str(caught[0].message)
    assert "sample site 'raw2'" in str(caught[1].message)
