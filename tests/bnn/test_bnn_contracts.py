"""The BNN keeps Pyro's contracts: trained by plain SVI, its guide and loss swappable."""

from __future__ import annotations

import pyro
import pytest
import torch
from helpers import assert_close
from pyro.infer import SVI, TraceMeanField_ELBO
from pyro.infer.elbo import ELBOModule

from pyro_logits.bnn import BayesianMLP, BNNClassifier, MeanFieldELBO, MeanFieldGuide
from pyro_logits.bnn.optim import JointAdam


def _data(n: int = 120) -> tuple[torch.Tensor, torch.Tensor]:
    x = torch.rand(n, 6)
    return x, (x[:, 0] * 3).long().clamp(max=2)


def test_calling_the_loss_gives_pyros_elbo_module() -> None:
    model = BayesianMLP(6, (8,), 3)
    guide = MeanFieldGuide(model)
    x, y = _data(10)
    guide.posterior()  # its params exist before the random streams are seeded
    module = MeanFieldELBO()(model, guide)
    assert isinstance(module, ELBOModule)
    pyro.set_rng_seed(0)
    from_module = module(x, y, dataset_size=100)
    pyro.set_rng_seed(0)
    direct = MeanFieldELBO().differentiable_loss(model, guide, x, y, dataset_size=100)
    assert torch.equal(from_module, direct)


@pytest.mark.parametrize("estimator", ["local-reparam", "sample-weights"])
def test_plain_svi_trains_the_same_params_as_the_classifier_step_for_step(estimator: str) -> None:
    # The classifier's steps are pyro.infer.SVI's: the same batches, noise and Adam updates
    # give the same params. Its Adam is one fused optimizer over both params, plain SVI's
    # Pyro's per-param Adam, which differ in float32 rounding only: 1e-6 relative over 8 steps.
    x, y = _data()
    shuffle = torch.Generator().manual_seed(4)  # the classifier's seed=4

    pyro.clear_param_store()
    pyro.set_rng_seed(2)
    model = BayesianMLP(6, (8,), 3)
    guide = MeanFieldGuide(model)
    svi = SVI(model, guide, pyro.optim.Adam({"lr": 0.01}), loss=MeanFieldELBO(estimator=estimator))
    expected = []
    for _ in range(2):
        for step, idx in enumerate(torch.randperm(len(x), generator=shuffle).split(30)):
            svi.step(x[idx], y[idx], dataset_size=len(x), validate=step == 0)
            expected.append([pyro.param(name).detach().clone() for name in guide.param_names])

    pyro.clear_param_store()
    pyro.set_rng_seed(2)
    clf = BNNClassifier(BayesianMLP(6, (8,), 3), estimator=estimator, lr=0.01, seed=4)  # type: ignore[arg-type]
    got = []

    def record(step: int, num_steps: int, loss: float) -> None:
        got.append([pyro.param(name).detach().clone() for name in clf.guide.param_names])

    clf.fit(x, y, epochs=2, batch_size=30, callback=record)
    assert len(got) == len(expected) == 8
    for ours, theirs in zip(got, expected, strict=True):
        for a, b in zip(ours, theirs, strict=True):
            assert_close(a, b, rtol=1e-6, atol=1e-7)


def test_plain_svi_with_joint_adam_is_the_classifier_bit_for_bit() -> None:
    x, y = _data()
    order = torch.randperm(len(x), generator=torch.Generator().manual_seed(0))
    pyro.clear_param_store()
    pyro.set_rng_seed(3)
    model = BayesianMLP(6, (8,), 3)
    guide = MeanFieldGuide(model)
    svi = SVI(model, guide, JointAdam(lr=0.01), loss=MeanFieldELBO())
    for step, idx in enumerate(order.split(40)):
        svi.step(x[idx], y[idx], dataset_size=len(x), validate=step == 0)
    expected = [pyro.param(name).detach().clone() for name in guide.param_names]

    pyro.clear_param_store()
    pyro.set_rng_seed(3)
    clf = BNNClassifier(BayesianMLP(6, (8,), 3), lr=0.01)
    clf.optim.fused = False  # as the plain JointAdam above
    clf.fit(x, y, epochs=1, batch_size=40)
    for name, value in zip(clf.guide.param_names, expected, strict=True):
        assert torch.equal(pyro.param(name), value), name


def test_the_classifier_takes_a_users_own_guide_and_loss() -> None:
    # Pyro's own TraceMeanField_ELBO traces every weight site of the model and guide: the
    # model is a plain Pyro model and the guide a plain Pyro guide.
    x, y = _data(300)
    pyro.clear_param_store()
    model = BayesianMLP(6, (16,), 3)
    guide = MeanFieldGuide(model, init_scale=0.01, name="posterior")
    clf = BNNClassifier(model, guide=guide, loss=TraceMeanField_ELBO(), lr=0.02)
    assert clf.guide is guide and clf.estimator is None
    losses = clf.fit(x, y, epochs=15, batch_size=50)
    assert losses[-1] < 0.7 * losses[0]
    assert set(pyro.get_param_store()) == {"posterior.loc", "posterior.log_scale"}
    accuracy = (clf.predict_log_probs(x, num_samples=8).argmax(-1) == y).double().mean()
    assert accuracy > 0.6  # chance is 1/3


def test_a_loss_and_the_default_losss_options_are_not_both_given() -> None:
    model = BayesianMLP(6, (8,), 3)
    with pytest.raises(ValueError, match="set them on the loss you pass"):
        BNNClassifier(model, loss=MeanFieldELBO(), kl_weight=0.1)
    with pytest.raises(ValueError, match="kl_weight attribute for kl_warmup=2"):
        BNNClassifier(model, loss=TraceMeanField_ELBO(), kl_warmup=2)
    clf = BNNClassifier(model, loss=MeanFieldELBO(estimator="flipout", kl_weight=0.5), kl_warmup=2)
    assert clf.estimator == "flipout" and clf.kl_weight_at(1) == 0.25
