"""A Bayesian network started from a trained plain network keeps what the network learned."""

from __future__ import annotations

import pyro
import pytest
import torch
from torch import nn

from pyro_logits.bnn import BayesianNetwork, BNNClassifier, MeanFieldGuide
from pyro_logits.bnn.baseline import PlainNetwork, lenet


def test_weights_from_is_the_inverse_of_load_into() -> None:
    torch.manual_seed(0)
    net = lenet(channels=(3, 4), hidden=8)
    model = BayesianNetwork(net, input_shape=(1, 28, 28))
    weights = model.weights_from(net)
    assert [tuple(w.shape) for w in weights] == model.layer_shapes
    copy = lenet(channels=(3, 4), hidden=8)
    model.load_into(copy, weights)
    for name, value in net.state_dict().items():
        assert torch.equal(copy.state_dict()[name], value), name
    with pytest.raises(ValueError, match="of shape"):
        model.weights_from(lenet(channels=(3, 4), hidden=9))
    with pytest.raises(ValueError, match="4 weighted layers but got 1"):
        model.weights_from(nn.Linear(3, 2))


def _toy(n: int = 600) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(1)
    x = torch.randn(n, 8, generator=g)
    y = (x[:, 0] + x[:, 1] > 0).long() + (x[:, 2] > 0.5).long()
    return x, y


def test_a_guide_from_a_trained_network_predicts_as_the_network_does() -> None:
    x, y = _toy()
    torch.manual_seed(0)
    net = nn.Sequential(nn.Linear(8, 32), nn.ReLU(), nn.Linear(32, 3))
    plain = PlainNetwork(net, lr=0.02)
    for _ in range(30):
        plain.train_epoch(x, y, batch_size=50)
    plain_accuracy = (plain.log_probs(x).argmax(-1) == y).double().mean().item()
    assert plain_accuracy > 0.9

    pyro.clear_param_store()
    model = BayesianNetwork(net, input_shape=(8,))
    guide = MeanFieldGuide.from_trained(model, net, scale_fraction=0.05)
    clf = BNNClassifier(model, guide=guide)
    started = clf.predict_log_probs(x, num_samples=16).argmax(-1)
    assert (started == y).double().mean().item() > plain_accuracy - 0.03  # before any step
    loc, log_scale = guide.posterior()
    # By hand: each layer's weight transposed to (fan_in, fan_out), its bias as the last row.
    first, second = net[0], net[2]
    layers = [torch.cat([m.weight.t(), m.bias[None]]).flatten() for m in (first, second)]
    expected = torch.cat(layers).detach()
    assert torch.equal(loc.detach(), expected)
    torch.testing.assert_close(log_scale.exp(), (0.05 * expected.abs()).clamp_min(1e-4))

    pyro.clear_param_store()
    scratch = BNNClassifier(BayesianNetwork(net, input_shape=(8,)))
    from_scratch = scratch.predict_log_probs(x, num_samples=16).argmax(-1)
    assert (from_scratch == y).double().mean().item() < 0.7  # what the start is worth


def test_from_trained_refuses_non_positive_scales() -> None:
    net = nn.Sequential(nn.Linear(3, 2))
    model = BayesianNetwork(net, input_shape=(3,))
    with pytest.raises(ValueError, match="scale_fraction > 0 and min_scale > 0"):
        MeanFieldGuide.from_trained(model, net, scale_fraction=0.0)
