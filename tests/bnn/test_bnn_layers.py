"""Bayesian layers: local reparameterisation against sampled weights, and the builder."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from helpers import assert_close
from torch import nn

from pyro_logits.bnn.layers import (
    Conv2dSpec,
    FunctionSpec,
    LinearSpec,
    layers_from_sequential,
    local_reparam_forward,
)


def _as_param_matrix(conv: nn.Conv2d) -> torch.Tensor:
    """An nn.Conv2d's weight and bias in the layer's (fan_in + 1, out) layout."""
    return torch.cat([conv.weight.detach().flatten(1).t(), conv.bias.detach()[None]])


def test_conv_mean_is_torch_conv2d_with_the_same_weights() -> None:
    conv = nn.Conv2d(2, 3, (3, 2), stride=(2, 1), padding=(1, 0)).double()
    layer = layers_from_sequential(nn.Sequential(conv))[0]
    x = torch.randn(4, 2, 7, 6, dtype=torch.float64)
    assert_close(layer.mean(x, _as_param_matrix(conv)), conv(x).detach(), rtol=1e-12)


def test_conv_local_reparam_moments_match_sampled_weights_in_float64() -> None:
    # Pre-activations conv(x, w) for w ~ N(loc, var): mean conv(x, loc), variance
    # conv(x**2, var). S = 40000 weight samples; tolerance 5 standard errors of the estimates.
    g = torch.Generator().manual_seed(0)
    layer = Conv2dSpec(2, 3, (3, 3), padding=(1, 1))
    x = torch.randn(2, 2, 4, 4, dtype=torch.float64, generator=g)
    loc = torch.randn(layer.shape, dtype=torch.float64, generator=g) * 0.5
    var = torch.rand(layer.shape, dtype=torch.float64, generator=g) * 0.3
    samples = 40_000
    w = loc + var.sqrt() * torch.randn(samples, *layer.shape, dtype=torch.float64, generator=g)
    # conv is linear in its weights: unfold the patches once and apply every sample at once
    patches = F.unfold(x, (3, 3), padding=1).transpose(1, 2)  # (N, L, C*k*k)
    patches = torch.cat([patches, patches.new_ones(*patches.shape[:2], 1)], dim=-1)
    pre = torch.einsum("nlk,sko->snlo", patches, w)  # (S, N, L, out)
    mean, variance = layer.moments(x, loc, var)  # (N, out, H, W)
    assert_close(mean, layer.mean(x, loc), rtol=1e-12)
    as_pre = lambda t: t.flatten(2).transpose(1, 2)  # noqa: E731 (N, L, out)
    mc_mean, mc_var = pre.mean(0), pre.var(0)
    se_mean = (as_pre(variance) / samples).sqrt()
    assert ((mc_mean - as_pre(mean)).abs() <= 5 * se_mean).all()
    se_var = as_pre(variance) * (2 / (samples - 1)) ** 0.5
    assert ((mc_var - as_pre(variance)).abs() <= 5 * se_var).all()


@pytest.mark.parametrize(
    "kernel, stride, padding", [((5, 5), (1, 1), (0, 0)), ((3, 2), (2, 1), (1, 0))]
)
def test_one_channel_moments_are_the_two_convolutions_in_float64(kernel, stride, padding) -> None:
    # One input channel takes the unfolded path: it must equal conv(x, loc), conv(x**2, var).
    g = torch.Generator().manual_seed(1)
    layer = Conv2dSpec(1, 4, kernel, stride, padding)
    x = torch.randn(3, 1, 9, 8, dtype=torch.float64, generator=g)
    loc = torch.randn(layer.shape, dtype=torch.float64, generator=g)
    var = torch.rand(layer.shape, dtype=torch.float64, generator=g)
    mean, variance = layer.moments(x, loc, var)
    kernel_of = lambda w: w[:-1].t().reshape(4, 1, *kernel)  # noqa: E731
    assert_close(mean, F.conv2d(x, kernel_of(loc), loc[-1], stride, padding), rtol=1e-12)
    assert_close(variance, F.conv2d(x * x, kernel_of(var), var[-1], stride, padding), rtol=1e-12)


def test_local_reparam_forward_has_the_output_mean_of_sampled_weights() -> None:
    # Conv -> ReLU -> Flatten -> Linear: the output's mean is linear in the mean of each conv
    # unit, which depends on that unit's marginal alone, so one independent draw per unit
    # (local reparameterisation) and one weight sample shared by all positions give the same
    # mean; 20000 draws each, 5 standard errors. (Their variances differ: a shared sample
    # correlates the positions. So does a max over positions: pooling sees the joint.)
    g = torch.Generator().manual_seed(1)
    net = nn.Sequential(nn.Conv2d(1, 2, 3), nn.ReLU(), nn.Flatten(), nn.Linear(2 * 6 * 6, 2))
    layers = layers_from_sequential(net)
    shapes = [layer.shape for layer in layers if not isinstance(layer, FunctionSpec)]
    locs = [torch.randn(s, dtype=torch.float64, generator=g) * 0.5 for s in shapes]
    variances = [torch.rand(s, dtype=torch.float64, generator=g) * 0.1 for s in shapes]
    x = torch.rand(1, 1, 8, 8, dtype=torch.float64, generator=g)
    draws = 20_000
    reparam = local_reparam_forward(layers, x.expand(draws, 1, 8, 8), locs, variances, generator=g)
    weights = [
        m + v.sqrt() * torch.randn(draws, *m.shape, dtype=torch.float64, generator=g)
        for m, v in zip(locs, variances, strict=True)
    ]
    h = x.expand(draws, 1, 8, 8)[:, None]  # (S, 1, C, H, W): one example per weight sample
    weight_iter = iter(weights)
    for layer in layers:
        h = layer(h) if isinstance(layer, FunctionSpec) else layer.mean(h, next(weight_iter))
    sampled = h[:, 0]
    se = (reparam.var(0) / draws + sampled.var(0) / draws).sqrt()
    assert ((reparam.mean(0) - sampled.mean(0)).abs() <= 5 * se).all()


def _conv_moments_of_draws(draws: int, flipout: bool) -> tuple[torch.Tensor, ...]:
    """Mean, variance and covariance of two positions of one conv output, over many calls."""
    g = torch.Generator().manual_seed(3)
    layer = Conv2dSpec(2, 3, (3, 3))
    x = torch.randn(1, 2, 5, 5, dtype=torch.float64, generator=g)
    loc = torch.randn(layer.shape, dtype=torch.float64, generator=g) * 0.5
    var = torch.rand(layer.shape, dtype=torch.float64, generator=g) * 0.3 + 0.1
    # each call draws its own noise (Flipout: its own perturbation and signs) for one example
    out = torch.cat(
        [
            local_reparam_forward([layer], x, [loc], [var], flipout=flipout, generator=g)
            for _ in range(draws)
        ]
    ).flatten(2)  # (draws, out channels, positions)
    patches = F.unfold(x, (3, 3)).transpose(1, 2)[0]  # (positions, 18)
    patches = torch.cat([patches, patches.new_ones(len(patches), 1)], dim=-1)
    exact_mean = (patches @ loc).t()
    exact_cov = torch.einsum("pk,qk,ko->opq", patches, patches, var)  # per channel
    centred = out - out.mean(0)
    mc_cov = torch.einsum("sop,soq->opq", centred, centred) / (draws - 1)
    return out.mean(0), mc_cov, exact_mean, exact_cov


@pytest.mark.parametrize("flipout", [True, False])
def test_flipout_convolution_has_the_joint_moments_of_one_weight_sample(flipout) -> None:
    # With one weight sample w ~ N(loc, var) the outputs at positions p and q of channel o have
    # covariance sum_k x_p[k] x_q[k] var[k, o] (bias included): Flipout keeps it, per-unit
    # draws (local reparameterisation) keep the variances only. 8000 calls in float64;
    # tolerance 5 standard errors of a covariance, (var_p var_q + cov^2) / draws under the
    # normality of each output.
    draws = 8000
    mc_mean, mc_cov, exact_mean, exact_cov = _conv_moments_of_draws(draws, flipout)
    variances = exact_cov.diagonal(dim1=1, dim2=2)
    se_mean = (variances / draws).sqrt()
    assert ((mc_mean - exact_mean).abs() <= 5 * se_mean).all()
    se_cov = ((variances[:, :, None] * variances[:, None, :] + exact_cov**2) / draws).sqrt()
    close = (mc_cov - exact_cov).abs() <= 5 * se_cov
    assert close.diagonal(dim1=1, dim2=2).all()  # the marginals: both estimators
    assert close.all() == flipout  # the joint: Flipout's alone


@pytest.mark.parametrize("in_channels", [3, 1])  # 1: the input's patches, in one product
def test_flipout_is_a_torch_conv2d_of_each_examples_own_weight_sample(in_channels) -> None:
    # Hand-written reference: the same draws (delta, then input and output signs), each
    # example convolved by F.conv2d with its own weights loc + delta * s_out s_in^T and bias
    # loc_b + delta_b * s_out. Float64, stride and padding other than the defaults.
    layer = Conv2dSpec(in_channels, 4, (3, 2), stride=(2, 1), padding=(1, 0))
    g = torch.Generator().manual_seed(6)
    loc = torch.randn(layer.shape, dtype=torch.float64, generator=g)
    var = torch.rand(layer.shape, dtype=torch.float64, generator=g)
    x = torch.randn(5, in_channels, 7, 6, dtype=torch.float64, generator=g)
    out = local_reparam_forward(
        [layer], x, [loc], [var], flipout=True, generator=torch.Generator().manual_seed(7)
    )
    draws = torch.Generator().manual_seed(7)
    delta = var.sqrt() * torch.randn(var.shape, dtype=torch.float64, generator=draws)
    s_in = torch.randint(0, 2, (5, in_channels), generator=draws).double() * 2 - 1
    s_out = torch.randint(0, 2, (5, 4), generator=draws).double() * 2 - 1
    expected = []
    for n in range(5):
        flips = torch.cat([s_in[n].repeat_interleave(3 * 2), torch.ones(1, dtype=torch.float64)])
        w = loc + delta * flips[:, None] * s_out[n][None, :]  # (in_channels*3*2 + 1, 4)
        kernel = w[:-1].t().reshape(4, in_channels, 3, 2)
        expected.append(F.conv2d(x[n : n + 1], kernel, w[-1], stride=(2, 1), padding=(1, 0)))
    assert_close(out, torch.cat(expected), rtol=1e-10, atol=1e-12)


def test_flipout_with_one_input_channel_has_the_two_convolutions_gradients() -> None:
    # The one-input-channel path (patches in one product) against conv(h, loc) +
    # conv(h * s_in, delta) * s_out written with F.conv2d: outputs and the gradients of the
    # input, loc and delta, float64, rtol 1e-10.
    layer = Conv2dSpec(1, 3, (3, 3), stride=(1, 2), padding=(1, 1))
    g = torch.Generator().manual_seed(8)
    leaves = [
        torch.randn(2, 1, 6, 7, dtype=torch.float64, generator=g),
        torch.randn(layer.shape, dtype=torch.float64, generator=g),
        torch.randn(layer.shape, dtype=torch.float64, generator=g),
    ]
    s_in = torch.randint(0, 2, (2, 1, 1, 1), generator=g).double() * 2 - 1
    s_out = torch.randint(0, 2, (2, 3, 1, 1), generator=g).double() * 2 - 1
    weight = torch.randn(2, 3, 6, 4, dtype=torch.float64, generator=g)  # d loss / d output

    def outputs_and_grads(flipout) -> list[torch.Tensor]:
        x, loc, delta = (t.clone().requires_grad_() for t in leaves)
        out = flipout(x, loc, delta)
        return [out, *torch.autograd.grad((out * weight).sum(), [x, loc, delta])]

    def reference(x, loc, delta) -> torch.Tensor:
        def conv(h, w):
            kernel, bias = w[:-1].t().reshape(3, 1, 3, 3), w[-1]
            return F.conv2d(h, kernel, bias, stride=(1, 2), padding=(1, 1))

        return conv(x, loc) + conv(x * s_in, delta) * s_out

    ours = outputs_and_grads(lambda x, loc, delta: layer.flipout(x, loc, delta, s_in, s_out))
    for got, expected in zip(ours, outputs_and_grads(reference), strict=True):
        assert_close(got, expected, rtol=1e-10, atol=1e-12)


def test_flipout_examples_share_one_perturbation_with_their_own_signs() -> None:
    # One input channel and fixed biases: example i's output is mean + s_i[o] * conv(x,
    # delta)[o], with one delta per call and a sign per example and output channel. Copies of
    # one input then deviate from the mean by the same magnitudes, with differing signs.
    g = torch.Generator().manual_seed(4)
    layer = Conv2dSpec(1, 4, (3, 3))
    loc = torch.randn(layer.shape, dtype=torch.float64, generator=g)
    var = torch.full(layer.shape, 0.5, dtype=torch.float64)
    var[-1] = 0.0
    x = torch.rand(1, 1, 6, 6, dtype=torch.float64, generator=g).expand(64, 1, 6, 6)
    out = local_reparam_forward([layer], x, [loc], [var], flipout=True, generator=g)
    deviation = out - layer.mean(x[:1], loc)
    assert_close(deviation.abs(), deviation[:1].abs().expand_as(deviation), rtol=1e-9, atol=1e-12)
    signs = torch.sign(deviation[:, :, 0, 0])  # (copies, channels)
    assert (signs == 1).any(0).all() and (signs == -1).any(0).all()


def test_flipout_shards_get_the_rows_one_process_draws() -> None:
    layers = layers_from_sequential(
        nn.Sequential(nn.Conv2d(1, 3, 3), nn.ReLU(), nn.Flatten(), nn.Linear(3 * 4 * 4, 2))
    )
    shapes = [layer.shape for layer in layers if not isinstance(layer, FunctionSpec)]
    locs = [torch.randn(s, dtype=torch.float64) for s in shapes]
    variances = [torch.rand(s, dtype=torch.float64) for s in shapes]
    x = torch.rand(5, 1, 6, 6, dtype=torch.float64)

    def run(rows: slice | None) -> torch.Tensor:
        g = torch.Generator().manual_seed(5)
        part = x if rows is None else x[rows]
        where = None if rows is None else (rows.start, len(x))
        return local_reparam_forward(
            layers, part, locs, variances, flipout=True, noise_rows=where, generator=g
        )

    whole = run(None)
    assert_close(torch.cat([run(slice(0, 3)), run(slice(3, 5))]), whole, rtol=1e-12)


def test_builder_reads_sizes_and_keeps_the_order() -> None:
    lenet = nn.Sequential(
        nn.Conv2d(1, 20, 5, padding=2),
        nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Flatten(),
        nn.Linear(20 * 14 * 14, 10),
    )
    conv, relu, pool, flatten, linear = layers_from_sequential(lenet)
    assert conv == Conv2dSpec(1, 20, (5, 5), (1, 1), (2, 2)) and conv.shape == (26, 20)
    assert (relu.name, pool.name, flatten.name) == ("relu", "max_pool2d", "flatten")
    assert pool.kernel_size == pool.stride == (2, 2)
    assert linear == LinearSpec(3920, 10) and linear.shape == (3921, 10)


@pytest.mark.parametrize(
    ("module", "match"),
    [
        (nn.Dropout(0.5), r"module 0 is Dropout\(p=0.5, inplace=False\): no Bayesian version"),
        (nn.BatchNorm2d(3), r"module 0 is BatchNorm2d.*no Bayesian version"),
        (nn.Linear(3, 2, bias=False), r"without bias \(pass bias=True\)"),
        (nn.Conv2d(2, 2, 3, groups=2), r"groups, dilation or a non-zero padding mode"),
        (nn.Conv2d(2, 2, 3, dilation=2), r"groups, dilation"),
        (nn.Conv2d(2, 2, 3, padding=1, padding_mode="reflect"), r"non-zero padding mode"),
        (nn.Conv2d(2, 2, 3, padding="same"), r"string padding"),
        (nn.MaxPool2d(2, ceil_mode=True), r"padding, dilation, ceil_mode"),
        (nn.Flatten(0), r"a Flatten other than Flatten\(\)"),
    ],
)
def test_builder_refuses_what_it_cannot_make_bayesian(module: nn.Module, match: str) -> None:
    with pytest.raises(ValueError, match=r"Expected Linear, Conv2d, ReLU, MaxPool2d or Flatten"):
        layers_from_sequential(nn.Sequential(module))
    with pytest.raises(ValueError, match=match):
        layers_from_sequential(nn.Sequential(module))


def test_builder_refuses_a_module_that_is_not_sequential() -> None:
    with pytest.raises(TypeError, match=r"Expected an nn\.Sequential but got Linear"):
        layers_from_sequential(nn.Linear(2, 2))
