"""The observe step in the models Pyro users write, each against the hand-written Pyro site.

Every comparison runs the helper's model and a reference model, identical but for
``pyro.sample(name, dist.X(logits=...), obs=...)`` written by hand, on the same replayed guide
sample, with Pyro validation on.
"""

from __future__ import annotations

import math
import warnings

import pyro
import pyro.distributions as dist
import pytest
import torch
import torch.nn.functional as F
from helpers import assert_close
from pyro import poutine
from pyro.infer import SVI, Predictive, Trace_ELBO, TraceEnum_ELBO, config_enumerate
from pyro.infer.autoguide import AutoDelta, AutoNormal
from pyro.optim import Adam

import pyro_logits as pl


@pytest.fixture(autouse=True)
def _pyro_validation_on():
    with pyro.validation_enabled(True):
        yield


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
            r"shape \(3,\) \(one class label per row of logits; leading dims may be left out\) but got \(2,\)",
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


# ------------------------------------------------------------------ against hand-written sites
def replayed(model, guide, *args):
    """The model's trace on one guide sample, with log-probabilities computed."""
    guide_trace = poutine.trace(guide).get_trace(*args)
    trace = poutine.trace(poutine.replay(model, trace=guide_trace)).get_trace(*args)
    trace.compute_log_prob()
    return trace


def assert_same_site(helper_trace, reference_trace, name: str) -> None:
    helper, reference = helper_trace.nodes[name], reference_trace.nodes[name]
    assert helper["scale"] == pytest.approx(reference["scale"], rel=1e-12)
    assert helper["log_prob"].shape == reference["log_prob"].shape
    assert_close(helper["log_prob_sum"], reference["log_prob_sum"], rtol=1e-6)
    assert_close(helper_trace.log_prob_sum(), reference_trace.log_prob_sum(), rtol=1e-6)


Z_DIM, PIXELS = 4, 784
encoder = torch.nn.Linear(PIXELS, 2 * Z_DIM)
decoder = torch.nn.Sequential(
    torch.nn.Linear(Z_DIM, 32), torch.nn.Tanh(), torch.nn.Linear(32, PIXELS)
)


def vae_model(x, idx, helper: bool):
    """Pyro's VAE: a local latent and the pixel likelihood in one subsampled data plate."""
    pyro.module("decoder", decoder)
    with pyro.plate("data", len(x), subsample=idx):
        z = pyro.sample("z", dist.Normal(torch.zeros(Z_DIM), 1.0).to_event(1))
        logits = decoder(z)
        if helper:
            pl.observe_bernoulli("x", logits, x[idx], event_dim=1)
        else:
            pyro.sample("x", dist.Bernoulli(logits=logits).to_event(1), obs=x[idx])


def vae_guide(x, idx, helper: bool):
    pyro.module("encoder", encoder)
    with pyro.plate("data", len(x), subsample=idx):
        loc, log_scale = encoder(x[idx]).chunk(2, -1)
        pyro.sample("z", dist.Normal(loc, log_scale.exp()).to_event(1))


def binary_images(n: int) -> torch.Tensor:
    return torch.bernoulli(torch.full((n, PIXELS), 0.3))


def test_vae_in_a_subsampled_plate_equals_the_hand_written_site() -> None:
    x, idx = binary_images(200), torch.randperm(200)[:32]
    pyro.set_rng_seed(1)
    helper = replayed(vae_model, vae_guide, x, idx, True)
    pyro.set_rng_seed(1)
    reference = replayed(vae_model, vae_guide, x, idx, False)
    assert_same_site(helper, reference, "x")
    assert helper.nodes["x"]["scale"] == pytest.approx(200 / 32)
    assert [f.name for f in helper.nodes["x"]["cond_indep_stack"]] == ["data"]


def test_vae_svi_steps_and_vectorised_particles_equal_the_reference() -> None:
    x, idx = binary_images(100), torch.arange(40)
    initial = [{k: v.clone() for k, v in net.state_dict().items()} for net in (encoder, decoder)]
    losses = {}
    for helper in (True, False):
        for net, state in zip((encoder, decoder), initial, strict=True):
            net.load_state_dict(state)
        pyro.clear_param_store()
        pyro.set_rng_seed(2)
        torch.manual_seed(2)
        elbo = Trace_ELBO(num_particles=3, vectorize_particles=True)
        svi = SVI(vae_model, vae_guide, Adam({"lr": 1e-3}), elbo)
        losses[helper] = [svi.step(x, idx, helper) for _ in range(3)]
    assert losses[True] == pytest.approx(losses[False], rel=1e-6)


def classifier_model(x, y, helper: bool, dataset_size=None):
    w = pyro.sample("w", dist.Normal(0.0, 1.0).expand([x.shape[-1], 3]).to_event(2))
    with pyro.plate("data", len(x)):
        logits = x @ w
        if helper:
            pl.observe_categorical("y", logits, y, dataset_size=dataset_size)
        else:
            scale = 1.0 if dataset_size is None else dataset_size / len(x)
            with poutine.scale(scale=scale):
                pyro.sample("y", dist.Categorical(logits=logits), obs=y)


def test_classifier_in_a_full_data_plate_opens_no_plate_and_takes_dataset_size() -> None:
    x, y = torch.randn(16, 5), torch.randint(0, 3, (16,))
    guide = AutoNormal(lambda x, y, h, n=None: classifier_model(x, y, h, n))
    guide(x, y, True)  # initialises the guide's params before the two traces are compared
    for dataset_size in (None, 1600):
        pyro.set_rng_seed(3)
        helper = replayed(classifier_model, guide, x, y, True, dataset_size)
        pyro.set_rng_seed(3)
        reference = replayed(classifier_model, guide, x, y, False, dataset_size)
        assert_same_site(helper, reference, "y")
        assert [f.name for f in helper.nodes["y"]["cond_indep_stack"]] == ["data"]
    assert helper.nodes["y"]["scale"] == pytest.approx(100.0)


def test_dataset_size_inside_a_subsampled_plate_is_refused() -> None:
    x = binary_images(10)

    def model():
        with pyro.plate("data", 100, subsample=torch.arange(10)):
            pl.observe_bernoulli("x", torch.zeros(10, PIXELS), x, event_dim=1, dataset_size=100)

    with pytest.raises(ValueError, match=r"inside the subsampled plate 'data'.* scale the likeli"):
        model()


HEADS = [(32,), (32, 1), (32, 10), (32, PIXELS)]


@pytest.mark.parametrize("shape", HEADS, ids=str)
def test_every_head_shape_outside_plates_scales_by_dataset_size_over_batch(shape) -> None:
    logits, obs = torch.randn(shape), torch.bernoulli(torch.full(shape, 0.5))

    def reference():
        with pyro.plate("data", 60_000, subsample=torch.arange(32)):
            d = dist.Bernoulli(logits=logits).to_event(len(shape) - 1)
            pyro.sample("y", d, obs=obs)

    helper = trace_of(pl.observe_bernoulli, "y", logits, obs, dataset_size=60_000)
    assert helper.nodes["y"]["scale"] == pytest.approx(60_000 / 32)
    assert helper.nodes["y"]["fn"].batch_shape == (32,)
    assert_same_site(helper, trace_of(reference), "y")


def test_categorical_sequence_head_outside_plates_is_one_event_per_example() -> None:
    logits, obs = torch.randn(8, 5, 4), torch.randint(0, 4, (8, 5))
    tr = trace_of(pl.observe_categorical, "y", logits, obs, dataset_size=80)
    assert tr.nodes["y"]["scale"] == pytest.approx(10.0)
    expected = torch.log_softmax(logits.double(), -1).gather(-1, obs[..., None]).sum() * 10
    assert_close(tr.log_prob_sum(), expected, rtol=1e-6)


def test_column_head_inside_a_data_plate_is_refused_and_event_dim_one_matches() -> None:
    logits, obs = torch.randn(4, 1), torch.ones(4, 1)

    def reference():
        with pyro.plate("data", 4):
            pyro.sample("y", dist.Bernoulli(logits=logits), obs=obs)

    # Written by hand, the plate broadcasts the (4, 1) head to (4, 4): each row counted 4 times.
    assert trace_of(reference).nodes["y"]["log_prob"].shape == (4, 4)
    with (
        pytest.raises(
            ValueError,
            match=r"size 4 at dim -1 \(the enclosing plate 'data'\).*"
            r"count each observation 4 times.*event_dim=1",
        ),
        pyro.plate("data", 4),
    ):
        pl.observe_bernoulli("y", logits, obs)
    with pyro.plate("data", 4), poutine.trace() as tracer:
        pl.observe_bernoulli("y", logits, obs, event_dim=1)
    site = tracer.trace.nodes["y"]
    assert_close(site["fn"].log_prob(obs).sum(), F.logsigmoid(logits.double()).sum(), rtol=1e-6)
    assert site["fn"].batch_shape == (4,)


def test_event_dim_that_contradicts_obs_outside_plates_is_refused() -> None:
    with pytest.raises(ValueError, match=r"Expected event_dim=1 or None .* observe inside pyro"):
        pl.observe_bernoulli("y", torch.randn(8, 3), torch.ones(8, 3), event_dim=0)


def test_two_plates_as_in_pyros_hmm_example() -> None:
    logits = torch.randn(6, 88)
    obs = torch.bernoulli(torch.full((6, 88), 0.5))

    def model(helper: bool):
        with pyro.plate("sequences", 6, dim=-2), pyro.plate("tones", 88, dim=-1):
            if helper:
                pl.observe_bernoulli("y", logits, obs)
            else:
                pyro.sample("y", dist.Bernoulli(logits=logits), obs=obs)

    assert_same_site(trace_of(model, True), trace_of(model, False), "y")


# --------------------------------------------------------------------------------- enumeration
K, D = 3, 12


@config_enumerate
def mixture_model(x, helper: bool, local: bool):
    """A Bernoulli mixture: the component enumerated per datum (local) or once (global)."""
    weights = pyro.sample("weights", dist.Dirichlet(torch.ones(K)))
    proto = pyro.param("proto", lambda: torch.randn(K, D))
    if local:
        with pyro.plate("data", len(x)):
            c = pyro.sample("c", dist.Categorical(weights))
            if helper:
                pl.observe_bernoulli("x", proto[c], x, event_dim=1)
            else:
                pyro.sample("x", dist.Bernoulli(logits=proto[c]).to_event(1), obs=x)
    else:
        c = pyro.sample("c", dist.Categorical(weights))
        if helper:
            pl.observe_bernoulli("x", proto[c], x)
        else:
            with pyro.plate("x_data", len(x)):
                pyro.sample("x", dist.Bernoulli(logits=proto[c]).to_event(1), obs=x)


@pytest.mark.parametrize("local", [True, False], ids=["local", "global"])
def test_enumerated_mixture_loss_equals_the_reference(local: bool) -> None:
    x = torch.bernoulli(torch.full((20, D), 0.4))
    guide = AutoDelta(poutine.block(mixture_model, expose=["weights"]))
    elbo = TraceEnum_ELBO(max_plate_nesting=1)
    pyro.set_rng_seed(4)
    helper = elbo.loss(mixture_model, guide, x, True, local)
    pyro.set_rng_seed(4)
    reference = elbo.loss(mixture_model, guide, x, False, local)
    assert helper == pytest.approx(reference, rel=1e-6)
    assert math.isfinite(helper)


@config_enumerate
def label_mixture_model(y, helper: bool):
    class_logits = pyro.param("class_logits", lambda: torch.randn(K, 5))
    with pyro.plate("data", len(y)):
        c = pyro.sample("c", dist.Categorical(torch.ones(K) / K))
        if helper:
            pl.observe_categorical("y", class_logits[c], y)
        else:
            pyro.sample("y", dist.Categorical(logits=class_logits[c]), obs=y)


def test_enumerated_categorical_site_equals_the_reference() -> None:
    y = torch.randint(0, 5, (30,))
    elbo = TraceEnum_ELBO(max_plate_nesting=1)
    helper = elbo.loss(label_mixture_model, lambda y, h: None, y, True)
    reference = elbo.loss(label_mixture_model, lambda y, h: None, y, False)
    assert helper == pytest.approx(reference, rel=1e-6)


# -------------------------------------------------------------------- particles, autoguides
def column_model(x, y, helper: bool):
    """Logistic regression with a (B, 1) head and no plate of the model's own."""
    w = pyro.sample("w", dist.Normal(0.0, 5.0).expand([2]).to_event(1))
    logits = (x * w.unsqueeze(-2)).sum(-1, keepdim=True)
    if helper:
        pl.observe_bernoulli("y", logits, y, dataset_size=1000)
    else:
        with pyro.plate("y_data", 1000, subsample=torch.arange(len(x))):
            pyro.sample("y", dist.Bernoulli(logits=logits).to_event(1), obs=y)


@pytest.mark.parametrize("num_particles", [1, 4])
def test_column_head_svi_with_vectorised_particles_equals_the_reference(num_particles) -> None:
    x = torch.randn(50, 2)
    y = torch.bernoulli(torch.sigmoid(x @ torch.tensor([2.0, -1.0])))[:, None]
    params = {}
    for helper in (True, False):
        pyro.clear_param_store()
        pyro.set_rng_seed(5)
        guide = AutoNormal(column_model)
        elbo = Trace_ELBO(num_particles=num_particles, vectorize_particles=True)
        svi = SVI(column_model, guide, Adam({"lr": 0.05}), elbo)
        losses = [svi.step(x, y, helper) for _ in range(5)]
        params[helper] = (
            losses,
            {k: v.detach().clone() for k, v in pyro.get_param_store().items()},
        )
    assert params[True][0] == pytest.approx(params[False][0], rel=1e-6)
    for name, value in params[False][1].items():
        assert_close(params[True][1][name], value, rtol=1e-6)


def local_latent_model(x, helper: bool):
    """A per-datum latent in a subsampled plate, fitted by an AutoNormal guide."""
    loadings = pyro.param("loadings", lambda: torch.randn(2, D))
    with pyro.plate("data", 100, subsample_size=len(x)):
        z = pyro.sample("z", dist.Normal(torch.zeros(2), 1.0).to_event(1))
        if helper:
            pl.observe_bernoulli("x", z @ loadings, x, event_dim=1)
        else:
            pyro.sample("x", dist.Bernoulli(logits=z @ loadings).to_event(1), obs=x)


def test_autonormal_svi_over_local_latents_equals_the_reference() -> None:
    x = torch.bernoulli(torch.full((25, D), 0.5))
    results = {}
    for helper in (True, False):
        pyro.clear_param_store()
        pyro.set_rng_seed(6)
        svi = SVI(
            local_latent_model, AutoNormal(local_latent_model), Adam({"lr": 0.01}), Trace_ELBO()
        )
        results[helper] = [svi.step(x, helper) for _ in range(4)]
    assert results[True] == pytest.approx(results[False], rel=1e-6)


@pytest.mark.parametrize("parallel", [False, True], ids=["sequential", "parallel"])
def test_predictive_samples_the_site_inside_and_outside_plates(parallel: bool) -> None:
    x, y = torch.randn(50, 2), torch.zeros(50, 1)
    guide = AutoNormal(column_model)
    Trace_ELBO().loss(column_model, guide, x, y, True)  # creates the guide's params
    samples = Predictive(column_model, guide=guide, num_samples=7, parallel=parallel)(x, None, True)
    assert samples["y"].shape == (7, 50, 1)
    x_img = binary_images(10)
    samples = Predictive(vae_model, guide=vae_guide, num_samples=3, parallel=parallel)(
        x_img, torch.arange(10), True
    )
    assert samples["x"].shape == (3, 10, PIXELS)


# ---------------------------------------------------------------- masks, empty batches, validate
def test_mask_that_would_enlarge_the_batch_is_refused() -> None:
    logits, obs = torch.randn(4, 3), torch.tensor([0, 1, 2, 0])
    with pytest.raises(
        ValueError, match=r"broadcast to the batch shape \(4,\) but got shape \(4, 1\)"
    ):
        pl.observe_categorical("y", logits, obs, mask=torch.ones(4, 1, dtype=torch.bool))


def test_mask_inside_a_user_plate_equals_the_reference() -> None:
    logits, obs = torch.randn(6, 3), torch.tensor([0, 1, 2, 0, 1, 2])
    mask = torch.tensor([True, False, True, False, True, True])

    def model(helper: bool):
        with pyro.plate("data", 6):
            if helper:
                pl.observe_categorical("y", logits, obs, mask=mask)
            else:
                pyro.sample("y", dist.Categorical(logits=logits).mask(mask), obs=obs)

    assert_same_site(trace_of(model, True), trace_of(model, False), "y")


@pytest.mark.parametrize(
    ("observe", "logits", "obs"),
    [
        (pl.observe_categorical, torch.randn(0, 3), torch.zeros(0, dtype=torch.long)),
        (pl.observe_bernoulli, torch.randn(0, 5), torch.zeros(0, 5)),
    ],
    ids=["categorical", "bernoulli"],
)
def test_empty_batch_gets_a_clear_error(observe, logits, obs) -> None:
    with pytest.raises(ValueError, match=r"non-empty batch for site 'y' but got 0 examples"):
        observe("y", logits, obs, dataset_size=100)


def test_validate_false_gives_the_same_result_for_infinite_logits() -> None:
    logits = torch.tensor([[1.0, math.inf, 3.0], [0.0, -math.inf, 1.0]])
    y = torch.tensor([1, 2])
    checked = pl.categorical(logits, validate=True).log_prob(y)
    unchecked = pl.categorical(logits, validate=False).log_prob(y)
    assert unchecked.tolist() == checked.tolist()
    assert checked[0].item() == 0.0


def test_validate_follows_pyros_switch() -> None:
    z = torch.randn(8, 3, requires_grad=True)
    y = torch.zeros(8, dtype=torch.long)
    with pyro.validation_enabled(False), warnings.catch_warnings():
        warnings.simplefilter("error")
        pl.observe_categorical("y", F.softmax(z, -1), y)  # noqa: PL003
        pl.categorical(torch.full((2, 3), math.nan))
    with pyro.validation_enabled(True), pytest.warns(pl.ProbsAsLogitsWarning, match="site 'y'"):
        pl.observe_categorical("y", F.softmax(z, -1), y)  # noqa: PL003
