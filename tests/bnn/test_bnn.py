"""Tests of the Bayesian MLP: shapes, the closed-form KL, local reparameterisation, training."""

from __future__ import annotations

import pyro
import pytest
import torch
from helpers import assert_close
from pyro.infer import TraceMeanField_ELBO
from torch import nn
from torch.distributions import Normal, kl_divergence

from pyro_logits.bnn import (
    BayesianMLP,
    BayesianNetwork,
    BNNClassifier,
    MeanFieldELBO,
    MeanFieldGuide,
    gaussian_variance_and_kl,
    layer_variances_and_kl,
)
from pyro_logits.bnn.baseline import lenet
from pyro_logits.bnn.layers import local_reparam_forward
from pyro_logits.bnn.model import Estimator
from pyro_logits.datasets import load_mnist


def _toy_data(n: int = 96, d: int = 6, classes: int = 3) -> tuple[torch.Tensor, torch.Tensor]:
    x = torch.rand(n, d)
    y = (x[:, 0] * classes).long().clamp(max=classes - 1)
    return x, y


def test_model_and_guide_sites_have_the_layer_shapes() -> None:
    model = BayesianMLP(5, (7, 4), 3, prior_scale=[1.0, 0.5, 0.2])
    guide = MeanFieldGuide(model)
    x, y = torch.rand(8, 5), torch.randint(3, (8,))
    model_trace = pyro.poutine.trace(model).get_trace(x, y, dataset_size=80)
    guide_trace = pyro.poutine.trace(guide).get_trace(x, y, dataset_size=80)
    assert model.layer_shapes == [(6, 7), (8, 4), (5, 3)]
    for name, shape in zip(model.site_names, model.layer_shapes, strict=True):
        assert model_trace.nodes[name]["fn"].event_shape == shape
        assert guide_trace.nodes[name]["value"].shape == shape
    assert model_trace.nodes["obs"]["value"] is y
    assert model_trace.nodes["obs"]["scale"] == pytest.approx(10.0)
    assert torch.all(model.prior(2).base_dist.scale == 0.2)
    assert pyro.param("guide.loc").shape == (sum(model.layer_numels),)


def test_network_takes_a_leading_sample_dim() -> None:
    model = BayesianMLP(5, (7,), 3)
    guide = MeanFieldGuide(model)
    x = torch.rand(4, 5)
    weights = guide.sample_weights(6)
    assert [tuple(w.shape) for w in weights] == [(6, 6, 7), (6, 8, 3)]
    logits = model.network(x, weights)
    assert logits.shape == (6, 4, 3)
    assert_close(logits[2], model.network(x, [w[2] for w in weights]), rtol=1e-6, atol=1e-6)


def test_unflatten_gives_views_in_layer_order() -> None:
    model = BayesianMLP(2, (3,), 2)
    flat = torch.arange(float(sum(model.layer_numels)))
    first, second = model.unflatten(flat)
    assert first.shape == (3, 3) and second.shape == (4, 2)
    assert first[0, 0] == 0 and second[0, 0] == 9 and second[-1, -1] == 16
    assert first.data_ptr() == flat.data_ptr()


@pytest.mark.parametrize("scales", [(1.0,), (0.2, 3.0, 0.05)])
def test_kl_matches_torch_distributions_in_float64(scales: tuple[float, ...]) -> None:
    numels = (4, 3, 5) if len(scales) == 3 else (12,)
    loc = torch.randn(12, dtype=torch.float64)
    log_scale = torch.randn(12, dtype=torch.float64) - 1.0
    var, kl = gaussian_variance_and_kl(
        loc.float(), log_scale.float(), prior_scale=list(scales), numels=numels
    )
    prior_scale = torch.cat(
        [torch.full((n,), s, dtype=torch.float64) for n, s in zip(numels, scales, strict=True)]
    )
    expected = kl_divergence(Normal(loc, log_scale.exp()), Normal(0.0, prior_scale)).sum()
    assert_close(kl, expected, rtol=1e-5)
    assert_close(var, (2 * log_scale).exp(), rtol=1e-6)


def test_kl_gradient_matches_autograd_in_float64() -> None:
    loc = torch.randn(9, dtype=torch.float64, requires_grad=True)
    log_scale = (0.3 * torch.randn(9, dtype=torch.float64)).requires_grad_()

    def fn(loc: torch.Tensor, log_scale: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return gaussian_variance_and_kl(loc, log_scale, prior_scale=[0.5, 2.0], numels=[4, 5])

    assert torch.autograd.gradcheck(fn, (loc, log_scale))
    assert torch.autograd.gradcheck(lambda a, b: fn(a, b)[1], (loc, log_scale))


def test_layer_variances_and_kl_gradients_match_autograd_in_float64() -> None:
    loc = torch.randn(10, dtype=torch.float64, requires_grad=True)
    log_scale = (0.3 * torch.randn(10, dtype=torch.float64)).requires_grad_()
    shapes = [(2, 3), (2, 2)]

    def fn(loc: torch.Tensor, log_scale: torch.Tensor) -> tuple[torch.Tensor, ...]:
        locs, variances, kl = layer_variances_and_kl(
            loc, log_scale, prior_scale=[0.5, 2.0], shapes=shapes
        )
        return (*locs, *variances, kl)

    assert torch.autograd.gradcheck(fn, (loc, log_scale))
    # The same values as the flat kernel, in the layers' shapes.
    *outputs, kl = fn(loc, log_scale)
    var, flat_kl = gaussian_variance_and_kl(loc, log_scale, prior_scale=[0.5, 2.0], numels=[6, 4])
    assert torch.equal(kl, flat_kl)
    assert torch.equal(torch.cat([o.flatten() for o in outputs[2:]]), var)
    assert torch.equal(torch.cat([o.flatten() for o in outputs[:2]]), loc)


def test_kl_rejects_mismatched_segments() -> None:
    with pytest.raises(ValueError, match="segments summing to 5"):
        gaussian_variance_and_kl(torch.zeros(5), torch.zeros(5), prior_scale=1.0, numels=[2, 2])
    with pytest.raises(ValueError, match="flat loc and log_scale"):
        gaussian_variance_and_kl(torch.zeros(2, 2), torch.zeros(2, 2), prior_scale=1.0)


def test_local_reparam_preactivations_match_weight_sampling_moments() -> None:
    # One layer: pre-activations h @ w for w ~ N(loc, var), by both routes, S draws each;
    # the means and variances must agree with each other and with h @ loc and h**2 @ var.
    model = BayesianMLP(6, (), 4)
    loc = torch.randn(7, 4)
    var = torch.rand(7, 4) * 0.5 + 0.1
    x = torch.rand(3, 6)
    num = 20000
    local = local_reparam_forward(model.layers, x.expand(num, 3, 6).reshape(-1, 6), [loc], [var])
    local = local.reshape(num, 3, 4)
    weights = loc + var.sqrt() * torch.randn(num, 7, 4)
    sampled = model.network(x, [weights])
    h = torch.cat([x, torch.ones(3, 1)], dim=1)
    mean, variance = h @ loc, (h * h) @ var
    # Monte Carlo standard errors: sd / sqrt(S) for the mean, about sd**2 * sqrt(2 / S) for the
    # variance; 5 standard errors.
    for draws in (local, sampled):
        assert_close(draws.mean(0), mean, rtol=0, atol=5 * float(variance.max().sqrt()) / num**0.5)
        assert_close(draws.var(0), variance, rtol=5 * (2 / num) ** 0.5)


def test_local_reparam_logits_match_weight_sampling_distribution() -> None:
    # Two layers: per example, the logits' mean and sd agree between the two estimators.
    model = BayesianMLP(4, (5,), 3)
    loc = torch.randn(sum(model.layer_numels))
    var = torch.full_like(loc, 0.05)
    x = torch.rand(2, 4)
    num = 20000
    local = local_reparam_forward(
        model.layers, x.repeat(num, 1), model.unflatten(loc), model.unflatten(var)
    ).reshape(num, 2, 3)
    sampled = model.network(x, model.unflatten(loc + var.sqrt() * torch.randn(num, loc.numel())))
    sd = sampled.std(0)
    assert_close(local.mean(0), sampled.mean(0), rtol=0, atol=float(7 * sd.max() / num**0.5))
    assert_close(local.std(0), sd, rtol=0.05)


def small_lenet() -> BayesianNetwork:
    net = nn.Sequential(
        nn.Conv2d(1, 2, 3), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(), nn.Linear(2 * 2 * 2, 3)
    )
    return BayesianNetwork(net, input_shape=(1, 6, 6), prior_scale=[0.5, 2.0])


# validate=False: the default likelihood without Pyro's trace, as a cross-entropy
@pytest.mark.parametrize("validate", [True, False])
@pytest.mark.parametrize("estimator", ["local-reparam", "sample-weights"])
@pytest.mark.parametrize("network", ["mlp", "lenet"])
def test_loss_matches_trace_mean_field_elbo_when_the_posterior_is_a_point(
    estimator: Estimator, network: str, validate: bool
) -> None:
    # With posterior scales of 1e-9 the one-sample likelihood term is deterministic, so our loss
    # and Pyro's TraceMeanField_ELBO on the same model and guide must agree, value and gradient.
    torch.set_default_dtype(torch.float64)
    if network == "mlp":
        model = BayesianMLP(5, (7,), 3, prior_scale=[0.5, 2.0])
        x = torch.rand(6, 5)
    else:
        model, x = small_lenet(), torch.rand(6, 1, 6, 6)
    guide = MeanFieldGuide(model, init_scale=1e-9)
    y = torch.randint(3, (6,))
    loc, log_scale = guide.posterior()
    with torch.no_grad():
        loc.unconstrained().normal_()

    def loss_and_grads(loss_fn: object) -> tuple[torch.Tensor, ...]:
        loss = loss_fn(model, guide, x, y, dataset_size=60, validate=validate)  # type: ignore[operator]
        return (loss, *torch.autograd.grad(loss, [loc.unconstrained(), log_scale.unconstrained()]))

    ours = loss_and_grads(MeanFieldELBO(estimator=estimator).differentiable_loss)
    pyros = loss_and_grads(TraceMeanField_ELBO().differentiable_loss)
    for a, b in zip(ours, pyros, strict=True):
        assert_close(a, b, rtol=1e-7, atol=1e-7)


class _TemperedNetwork(BayesianNetwork):
    """A subclass with its own likelihood: the logits divided by a temperature of 2."""

    def likelihood(self, logits, y, *, dataset_size=None, validate=True):  # type: ignore[override]
        return super().likelihood(logits / 2, y, dataset_size=dataset_size, validate=validate)


@pytest.mark.parametrize("validate", [True, False])
def test_log_likelihood_is_the_likelihoods_own_in_float64(validate: bool) -> None:
    torch.set_default_dtype(torch.float64)
    logits, y = torch.randn(7, 4) * 3, torch.randint(4, (7,))
    expected = torch.distributions.Categorical(logits=logits).log_prob(y).sum()
    net = nn.Sequential(nn.Linear(3, 4))
    plain = BayesianNetwork(net, input_shape=(3,))
    tempered = _TemperedNetwork(net, input_shape=(3,))
    for dataset_size, scale in ((None, 1.0), (70, 10.0)):
        got = plain.log_likelihood(logits, y, dataset_size=dataset_size, validate=validate)
        assert_close(got, scale * expected, rtol=1e-12)
        # a subclass's likelihood counts, with or without checks
        got = tempered.log_likelihood(logits, y, dataset_size=dataset_size, validate=validate)
        halved = torch.distributions.Categorical(logits=logits / 2).log_prob(y).sum()
        assert_close(got, scale * halved, rtol=1e-12)
    with pytest.raises(ValueError, match="dataset_size"):
        plain.log_likelihood(logits, y, dataset_size=3, validate=validate)


def test_log_likelihood_inside_a_users_subsampled_plate_is_scaled_by_the_plate() -> None:
    # A model of the user's own, with a subsampling plate of 70 examples around 7: the plate
    # scales the site (the observe helper joins it), with or without checks.
    torch.set_default_dtype(torch.float64)
    logits, y = torch.randn(7, 4), torch.randint(4, (7,))
    model = BayesianNetwork(nn.Sequential(nn.Linear(3, 4)), input_shape=(3,))
    expected = 10.0 * torch.distributions.Categorical(logits=logits).log_prob(y).sum()
    for validate in (True, False):
        with pyro.plate("data", 70, subsample=torch.arange(7)):
            got = model.log_likelihood(logits, y, validate=validate)
        assert_close(got, expected, rtol=1e-12)


def test_kl_weight_scales_only_the_kl() -> None:
    model = BayesianMLP(5, (7,), 3)
    guide = MeanFieldGuide(model)
    x, y = torch.rand(6, 5), torch.randint(3, (6,))
    guide.posterior()  # create the params before seeding
    losses = []
    for weight in (1.0, 0.25):
        pyro.set_rng_seed(3)
        elbo = MeanFieldELBO(kl_weight=weight)
        losses.append(elbo.differentiable_loss(model, guide, x, y, dataset_size=60))
    loc, log_scale = guide.posterior()
    _, kl = gaussian_variance_and_kl(
        loc, log_scale, prior_scale=model.prior_scales, numels=model.layer_numels
    )
    assert_close(losses[0] - losses[1], 0.75 * kl, rtol=1e-5)


def test_network_from_sequential_is_the_mlp_of_the_same_sizes() -> None:
    net = nn.Sequential(nn.Linear(6, 4), nn.ReLU(), nn.Linear(4, 3))
    model, mlp = BayesianNetwork(net, input_shape=(6,)), BayesianMLP(6, (4,), 3)
    assert model.layers == mlp.layers and model.layer_shapes == mlp.layer_shapes == [(7, 4), (5, 3)]
    assert model.num_classes == 3 and model.input_shape == (6,)


@pytest.mark.parametrize(
    ("net", "input_shape", "match"),
    [
        (
            nn.Sequential(nn.Conv2d(1, 2, 3), nn.Flatten(), nn.Linear(10, 3)),
            (1, 6, 6),
            "Linear's in_features",
        ),
        (nn.Sequential(nn.Conv2d(1, 2, 3)), (1, 6, 6), r"end in class scores.*\(1, 2, 4, 4\)"),
        (nn.Sequential(nn.Linear(5, 3)), (6,), r"inputs of shape \(6,\)"),
        (nn.Sequential(nn.ReLU()), (6,), "at least one Linear or Conv2d"),
    ],
)
def test_network_refuses_layers_that_do_not_fit(net, input_shape, match) -> None:
    with pytest.raises(ValueError, match=match):
        BayesianNetwork(net, input_shape=input_shape)


def test_classifier_checks_image_inputs() -> None:
    clf = BNNClassifier(small_lenet())
    with pytest.raises(ValueError, match=r"Expected float inputs of shape \(N, 1, 6, 6\)"):
        clf.train_epoch(torch.rand(4, 36), torch.zeros(4, dtype=torch.long))


def test_he_prior_is_sqrt_two_over_each_layers_fan_in() -> None:
    net = nn.Sequential(
        nn.Conv2d(2, 4, 3), nn.ReLU(), nn.Flatten(), nn.Linear(4 * 4 * 4, 8), nn.Linear(8, 3)
    )
    model = BayesianNetwork(net, input_shape=(2, 6, 6), prior_scale="he")
    expected = [(2 / (2 * 3 * 3)) ** 0.5, (2 / 64) ** 0.5, (2 / 8) ** 0.5]
    assert model.prior_scales == pytest.approx(expected, rel=1e-12)
    assert torch.all(model.prior(1).base_dist.scale == model.prior_scales[1])
    with pytest.raises(ValueError, match="a number, one number per layer or 'he' but got 'glorot'"):
        BayesianNetwork(net, input_shape=(2, 6, 6), prior_scale="glorot")


def test_layer_summary_matches_torch_distributions_in_float64() -> None:
    model = BayesianMLP(5, (7,), 3, prior_scale=[1.0, 0.3])
    guide = MeanFieldGuide(model)
    generator = torch.Generator().manual_seed(0)
    loc = torch.randn(6 * 7 + 8 * 3, generator=generator, dtype=torch.float64) * 0.2
    scale = torch.rand(loc.shape, generator=generator, dtype=torch.float64) * 0.3 + 0.01
    pyro.param("guide.loc", loc.float())
    pyro.param("guide.log_scale", scale.log().float())
    loc, scale = (t.float().double() for t in (loc, scale))  # what the store holds
    summary = guide.layer_summary()
    assert [layer["site"] for layer in summary] == ["layers.0", "layers.1"]
    for layer, m, s, prior in zip(
        summary, loc.split([42, 24]), scale.split([42, 24]), [1.0, 0.3], strict=True
    ):
        kl = kl_divergence(Normal(m, s), Normal(torch.zeros_like(m), prior)).sum()
        assert layer["weights"] == m.numel() and layer["prior_scale"] == prior
        assert layer["kl"] == pytest.approx(kl.item(), rel=1e-6)
        assert layer["loc_rms"] == pytest.approx(m.pow(2).mean().sqrt().item(), rel=1e-6)
        assert layer["scale_median"] == pytest.approx(s.median().item(), rel=1e-6)
        below = sum(abs(a) < b for a, b in zip(m.tolist(), s.tolist(), strict=True))
        assert 0 < below < m.numel()
        assert layer["snr_below_1"] == pytest.approx(below / m.numel(), abs=1e-12)


def test_load_into_gives_the_plain_network_the_same_function_in_float64() -> None:
    model = BayesianNetwork(lenet(channels=(3, 4), hidden=8), input_shape=(1, 28, 28))
    loc, _ = MeanFieldGuide(model).posterior()
    weights = [w.double() for w in model.unflatten(loc.detach())]
    net = lenet(channels=(3, 4), hidden=8).double()
    model.load_into(net, weights)
    x = torch.rand(5, 1, 28, 28, dtype=torch.float64)
    assert_close(net(x), model.network(x, weights), rtol=1e-12, atol=1e-12)
    with pytest.raises(ValueError, match="4 weighted layers but got 2 Linear/Conv2d modules"):
        model.load_into(nn.Sequential(nn.Linear(784, 8), nn.Linear(8, 10)), weights)
    with pytest.raises(ValueError, match="weighted layer 2 of shape"):
        model.load_into(lenet(channels=(3, 4), hidden=9), weights)


def test_guide_refuses_params_of_another_network() -> None:
    MeanFieldGuide(BayesianMLP(5, (7,), 3)).posterior()
    with pytest.raises(ValueError, match="clear_param_store"):
        MeanFieldGuide(BayesianMLP(5, (8,), 3)).posterior()


def test_classifier_checks_its_arguments_and_data() -> None:
    model = BayesianMLP(6, (8,), 3)
    with pytest.raises(ValueError, match="estimator to be one of"):
        BNNClassifier(model, estimator="reinforce")  # type: ignore[arg-type]
    for warmup in (-1, 2.5, True):
        with pytest.raises(ValueError, match="kl_warmup to be an int >= 0"):
            BNNClassifier(model, kl_warmup=warmup)  # type: ignore[arg-type]
    clf = BNNClassifier(model)
    x, y = _toy_data()
    with pytest.raises(ValueError, match=r"labels in \[0, 2\]"):
        clf.train_epoch(x, y + 1)
    with pytest.raises(ValueError, match="inputs of shape"):
        clf.train_epoch(x[:, :5], y)


def test_nan_logits_and_non_finite_losses_are_reported(monkeypatch: pytest.MonkeyPatch) -> None:
    clf = BNNClassifier(BayesianMLP(6, (8,), 3), lr=1e-3)
    x, y = _toy_data()
    # The likelihood's checks run on the first step of each epoch ...
    with pytest.raises(ValueError, match="NaN"):
        clf.train_epoch(x * float("nan"), y, batch_size=32)
    # ... and every step's loss must be finite.
    monkeypatch.setattr(clf.svi, "step", lambda *args, **kwargs: float("inf"))
    with pytest.raises(FloatingPointError, match="lower the learning rate"):
        clf.train_epoch(x, y, batch_size=32)


def test_predictions_average_probabilities() -> None:
    clf = BNNClassifier(BayesianMLP(6, (8,), 3), init_scale=0.5)
    x, _ = _toy_data(10)
    clf.guide.posterior()  # create the params before seeding
    pyro.set_rng_seed(1)
    log_probs = clf.predict_log_probs(x, num_samples=5, sample_chunk=2, batch_size=3)
    pyro.set_rng_seed(1)  # the same draws, in the same chunks
    chunks = [clf.guide.sample_weights(size) for size in (2, 2, 1)]
    logits = torch.cat([clf.model.network(x, weights) for weights in chunks])
    expected = torch.softmax(logits, -1).mean(0).log()
    assert_close(log_probs, expected, rtol=1e-5, atol=1e-6)
    assert_close(log_probs.exp().sum(-1), torch.ones(10), rtol=1e-6)


@pytest.mark.parametrize("estimator", ["local-reparam", "sample-weights"])
def test_resumed_training_equals_uninterrupted_training(estimator: str, tmp_path: object) -> None:
    x, y = _toy_data(200, 6, 3)

    def new() -> BNNClassifier:
        return BNNClassifier(
            BayesianMLP(6, (16,), 3),
            estimator=estimator,
            lr=0.01,
            lr_decay=0.8,
            seed=5,  # type: ignore[arg-type]
        )

    pyro.clear_param_store()
    pyro.set_rng_seed(1)
    straight = new()
    straight.fit(x, y, epochs=2, batch_size=32)
    expected = {k: v.detach().clone() for k, v in pyro.get_param_store().items()}

    pyro.clear_param_store()
    pyro.set_rng_seed(1)
    first = new()
    first.fit(x, y, epochs=1, batch_size=32)
    path = tmp_path / "checkpoint.pt"  # type: ignore[operator]
    first.save(path, extra={"note": "epoch 1"})

    pyro.clear_param_store()
    pyro.set_rng_seed(999)  # the checkpoint restores the random state
    resumed = new()
    assert resumed.load(path) == {"note": "epoch 1"}
    assert resumed.epoch == 1 and resumed.current_lr == pytest.approx(0.008)
    resumed.fit(x, y, epochs=2, batch_size=32)
    for name, value in expected.items():
        assert torch.equal(pyro.param(name).detach(), value), name


def test_kl_warmup_trains_as_epochs_of_the_rising_weights(tmp_path: object) -> None:
    # Reference: one epoch at a time with a constant KL weight of 0.1, 0.2, 0.3 (a warm-up of
    # 4 epochs to 0.4), each continuing from the previous checkpoint.
    x, y = _toy_data(200, 6, 3)

    def new(kl_weight: float, kl_warmup: int = 0) -> BNNClassifier:
        return BNNClassifier(
            BayesianMLP(6, (16,), 3), lr=0.01, kl_weight=kl_weight, kl_warmup=kl_warmup, seed=5
        )

    pyro.clear_param_store()
    pyro.set_rng_seed(1)
    warm = new(0.4, kl_warmup=4)
    assert [warm.kl_weight_at(e) for e in (1, 2, 4, 9)] == pytest.approx([0.1, 0.2, 0.4, 0.4])
    warm.fit(x, y, epochs=3, batch_size=32)
    expected = {k: v.detach().clone() for k, v in pyro.get_param_store().items()}

    path = tmp_path / "checkpoint.pt"  # type: ignore[operator]
    pyro.clear_param_store()
    pyro.set_rng_seed(1)
    for epoch, weight in enumerate((0.1, 0.2, 0.3), start=1):
        step = new(weight)
        if epoch > 1:
            step.load(path)
        if epoch == 3:  # a warm-up resumed from the checkpoint picks up its weight too
            resumed = new(0.4, kl_warmup=4)
            resumed.load(path)
            resumed.fit(x, y, epochs=3, batch_size=32)
            resumed_params = {k: v.detach().clone() for k, v in pyro.get_param_store().items()}
            step.load(path)
        step.fit(x, y, epochs=epoch, batch_size=32)
        step.save(path)
    for name, value in expected.items():
        assert torch.equal(pyro.param(name).detach(), value), name
        assert torch.equal(resumed_params[name], value), name


def test_a_kl_weight_set_on_the_loss_is_kept_without_warmup() -> None:
    # A caller's own schedule sets clf.loss.kl_weight between epochs; without kl_warmup the
    # classifier must not put its constructor's weight back.
    x, y = _toy_data(200, 6, 3)
    params = []
    for constructed, set_on_loss in ((0.3, None), (1.0, 0.3)):
        pyro.clear_param_store()
        pyro.set_rng_seed(1)
        clf = BNNClassifier(BayesianMLP(6, (16,), 3), lr=0.01, kl_weight=constructed, seed=5)
        if set_on_loss is not None:
            clf.loss.kl_weight = set_on_loss
        clf.fit(x, y, epochs=2, batch_size=32)
        params.append({k: v.detach().clone() for k, v in pyro.get_param_store().items()})
    for name, value in params[0].items():
        assert torch.equal(params[1][name], value), name


def test_the_average_is_the_mean_of_the_params_after_each_averaged_step() -> None:
    # Reference: the params recorded by hand after every step of epochs 2 and 3, stacked and
    # averaged in float64; the running mean agrees to float32 rounding.
    x, y = _toy_data(200, 6, 3)
    pyro.clear_param_store()
    pyro.set_rng_seed(1)
    clf = BNNClassifier(BayesianMLP(6, (16,), 3), lr=0.01, lr_decay=0.8, average_from=2, seed=5)
    names = clf.guide.param_names
    seen: dict[str, list[torch.Tensor]] = {name: [] for name in names}

    def record(step: int, num_steps: int, loss: float) -> None:
        if clf.epoch >= 1:  # the epoch counter moves on after the last step
            for name in names:
                seen[name].append(pyro.param(name).detach().double().clone())

    clf.fit(x, y, epochs=3, batch_size=32, callback=record)
    assert clf.average.count == len(seen[names[0]]) == 2 * 7
    last = {name: pyro.param(name).detach().clone() for name in names}
    clf.use_average()
    for name in names:
        expected = torch.stack(seen[name]).mean(0)
        assert not torch.allclose(last[name].double(), expected, atol=1e-4)
        torch.testing.assert_close(pyro.param(name).detach().double(), expected, rtol=0, atol=1e-6)
    # the predictive reads the averaged params
    torch.testing.assert_close(
        clf.guide.posterior()[0].detach().double(),
        torch.stack(seen[names[0]]).mean(0),
        rtol=0,
        atol=1e-6,
    )


def test_averaging_does_not_change_training_and_resumes_exactly(tmp_path: object) -> None:
    x, y = _toy_data(200, 6, 3)

    def new(average_from: int) -> BNNClassifier:
        return BNNClassifier(
            BayesianMLP(6, (16,), 3), lr=0.01, lr_decay=0.8, average_from=average_from, seed=5
        )

    def trained(average_from: int, resume_after: int | None = None) -> dict[str, torch.Tensor]:
        pyro.clear_param_store()
        pyro.set_rng_seed(1)
        clf = new(average_from)
        if resume_after is not None:
            clf.fit(x, y, epochs=resume_after, batch_size=32)
            path = tmp_path / "checkpoint.pt"  # type: ignore[operator]
            clf.save(path)
            pyro.clear_param_store()
            clf = new(average_from)
            clf.load(path)
        clf.fit(x, y, epochs=3, batch_size=32)
        out = {name: pyro.param(name).detach().clone() for name in clf.guide.param_names}
        if average_from:
            clf.use_average()
            out |= {f"average {n}": pyro.param(n).detach().clone() for n in clf.guide.param_names}
        return out

    plain, averaged, resumed = trained(0), trained(2), trained(2, resume_after=2)
    for name, value in plain.items():
        assert torch.equal(averaged[name], value), name  # the average only watches
    for name, value in averaged.items():
        assert torch.equal(resumed[name], value), name  # the checkpoint holds the average


def test_use_average_without_an_average_says_what_to_pass() -> None:
    x, y = _toy_data(200, 6, 3)
    clf = BNNClassifier(BayesianMLP(6, (16,), 3), average_from=3)
    clf.fit(x, y, epochs=2, batch_size=64)
    with pytest.raises(RuntimeError, match="average_from is 3 and 2 epoch"):
        clf.use_average()
    for bad in (-1, True, 1.5):
        with pytest.raises(ValueError, match="average_from to be an int >= 0"):
            BNNClassifier(BayesianMLP(6, (16,), 3), average_from=bad)  # type: ignore[arg-type]


def test_checkpoint_is_replaced_atomically(tmp_path: object) -> None:
    clf = BNNClassifier(BayesianMLP(6, (8,), 3))
    x, y = _toy_data()
    clf.train_epoch(x, y)
    path = tmp_path / "ckpt.pt"  # type: ignore[operator]
    clf.save(path)
    clf.save(path)
    assert sorted(p.name for p in path.parent.iterdir()) == ["ckpt.pt"]
    extra = BNNClassifier(BayesianMLP(6, (8,), 3)).load(path)
    assert extra == {}


def _corrupt(data: bytes, how: str) -> bytes:
    if how == "flipped byte":
        middle = len(data) // 2
        return data[:middle] + bytes([data[middle] ^ 0x01]) + data[middle + 1 :]
    if how == "truncated":
        return data[: len(data) // 2]
    if how == "empty":
        return b""
    if how == "not a checkpoint":
        return b"PK\x03\x04 a zip, say, or a raw torch.save file"
    raise AssertionError(how)


@pytest.mark.parametrize(
    ("how", "match"),
    [
        ("flipped byte", r"truncated or corrupted: its content does not match its SHA-256"),
        ("truncated", r"truncated or corrupted"),
        ("empty", r"is empty"),
        ("not a checkpoint", r"is not a pyro-logits checkpoint"),
    ],
)
def test_a_damaged_checkpoint_is_refused_with_one_clear_error(how, match, tmp_path) -> None:
    clf = BNNClassifier(BayesianMLP(6, (8,), 3))
    x, y = _toy_data()
    clf.train_epoch(x, y)
    path = tmp_path / "ckpt.pt"
    clf.save(path)
    path.write_bytes(_corrupt(path.read_bytes(), how))
    with pytest.raises(ValueError, match=match) as error:
        BNNClassifier(BayesianMLP(6, (8,), 3)).load(path)
    assert str(path) in str(error.value) and "delete it to start afresh" in str(error.value)


def test_a_checkpoint_with_missing_keys_is_refused(tmp_path) -> None:
    from pyro_logits._checkpoint import write_checkpoint

    path = tmp_path / "ckpt.pt"
    write_checkpoint(path, {"format": 2, "epoch": 1})
    with pytest.raises(ValueError, match=r"lacks 'estimator', 'params', 'optimizer', 'rng'"):
        BNNClassifier(BayesianMLP(6, (8,), 3)).load(path)


@pytest.fixture(scope="module")
def mnist_subset(mnist_dir: object) -> tuple[torch.Tensor, ...]:
    x, y = load_mnist("train", data_dir=mnist_dir, progress=False)
    x_test, y_test = load_mnist("test", data_dir=mnist_dir, progress=False)
    return x[:4000], y[:4000], x_test[:2000], y_test[:2000]


@pytest.mark.mnist
@pytest.mark.parametrize("estimator", ["local-reparam", "sample-weights"])
def test_short_training_on_real_mnist_beats_chance_by_far(
    mnist_subset: tuple[torch.Tensor, ...], estimator: str
) -> None:
    x, y, x_test, y_test = mnist_subset
    clf = BNNClassifier(
        BayesianMLP(784, (200,), 10, prior_scale=0.2),
        estimator=estimator,  # type: ignore[arg-type]
        lr=3e-3,
        kl_weight=0.1,
    )
    losses = clf.fit(x, y, epochs=3, batch_size=128)
    assert losses[-1] < losses[0]
    log_probs = clf.predict_log_probs(x_test, num_samples=8)
    accuracy = (log_probs.argmax(-1) == y_test).double().mean().item()
    assert accuracy > 0.85


@pytest.mark.mnist
@pytest.mark.parametrize(("estimator", "prior_scale"), [("local-reparam", 0.2), ("flipout", "he")])
def test_a_bayesian_lenet_learns_real_mnist(
    mnist_subset: tuple[torch.Tensor, ...], estimator: str, prior_scale: float | str
) -> None:
    x, y, x_test, y_test = (t.view(-1, 1, 28, 28) if t.dim() == 2 else t for t in mnist_subset)
    lenet = nn.Sequential(
        nn.Conv2d(1, 8, 5),
        nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Conv2d(8, 16, 5),
        nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Flatten(),
        nn.Linear(16 * 4 * 4, 10),
    )
    model = BayesianNetwork(lenet, input_shape=(1, 28, 28), prior_scale=prior_scale)
    clf = BNNClassifier(
        model,
        estimator=estimator,  # type: ignore[arg-type]
        lr=3e-3,
        kl_weight=0.1,
    )
    losses = clf.fit(x, y, epochs=2, batch_size=128)
    assert losses[-1] < losses[0]
    log_probs = clf.predict_log_probs(x_test, num_samples=4)
    accuracy = (log_probs.argmax(-1) == y_test).double().mean().item()
    assert accuracy > 0.85
