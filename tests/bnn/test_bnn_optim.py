"""JointAdam: one Adam over all params, against Pyro's per-param Adam and its schedule."""

from __future__ import annotations

import pyro
import pyro.optim
import pytest
import torch

from pyro_logits.bnn.optim import JointAdam


def _params() -> list[torch.Tensor]:
    g = torch.Generator().manual_seed(0)
    return [
        torch.randn(7, generator=g).requires_grad_(),
        torch.randn(3, generator=g).requires_grad_(),
    ]


def _grads(step: int) -> list[torch.Tensor]:
    g = torch.Generator().manual_seed(100 + step)
    return [torch.randn(7, generator=g), torch.randn(3, generator=g)]


@pytest.mark.parametrize("fused", [False, True])
def test_joint_adam_updates_as_pyro_per_param_exponential_lr(fused: bool) -> None:
    pyro.clear_param_store()
    ours, reference = _params(), _params()
    for name, p in zip("ab", reference, strict=True):
        pyro.param(name, p)
    reference = [pyro.param(name).unconstrained() for name in "ab"]
    joint = JointAdam(lr=0.01, gamma=0.5, fused=fused)
    adam_args = {"lr": 0.01, "fused": fused or None}
    scheduled = pyro.optim.ExponentialLR(
        {"optimizer": torch.optim.Adam, "optim_args": adam_args, "gamma": 0.5}
    )
    for epoch in range(3):
        for step in range(4):
            for params, optim in ((ours, joint), (reference, scheduled)):
                for p, g in zip(params, _grads(4 * epoch + step), strict=True):
                    p.grad = g.clone()
                optim(params)
        joint.step()
        scheduled.step()
    for a, b in zip(ours, reference, strict=True):
        assert torch.equal(a, b)  # the same arithmetic, element by element
    assert joint.lr == pytest.approx(0.01 * 0.5**3)


def test_joint_adam_state_resumes_where_it_stopped() -> None:
    straight, resumed = _params(), _params()
    first = JointAdam(lr=0.01, gamma=0.9)
    second = JointAdam(lr=0.01, gamma=0.9)
    for step in range(6):
        for p, g in zip(straight, _grads(step), strict=True):
            p.grad = g.clone()
        first(straight)
        if step == 2:
            first.step()
    for step in range(3):
        for p, g in zip(resumed, _grads(step), strict=True):
            p.grad = g.clone()
        second(resumed)
    second.step()
    state = second.get_state()
    third = JointAdam(lr=0.5, gamma=0.9)  # its own lr is replaced by the state's
    third.set_state(state)
    for step in range(3, 6):
        for p, g in zip(resumed, _grads(step), strict=True):
            p.grad = g.clone()
        third(resumed)
    for a, b in zip(straight, resumed, strict=True):
        assert torch.equal(a, b)
    assert third.lr == pytest.approx(first.lr)


def _logistic_model(x: torch.Tensor, y: torch.Tensor) -> None:
    w = pyro.param("w", torch.zeros(3))
    b = pyro.param("b", torch.zeros(()))
    with pyro.plate("data", len(x)):
        pyro.sample("y", pyro.distributions.Bernoulli(logits=x @ w + b), obs=y)


def _guide(x: torch.Tensor, y: torch.Tensor) -> None:
    pass


def _svi_params(optim: pyro.optim.PyroOptim) -> list[torch.Tensor]:
    pyro.clear_param_store()
    g = torch.Generator().manual_seed(3)
    x = torch.randn(50, 3, generator=g)
    y = torch.bernoulli(torch.sigmoid(x @ torch.tensor([1.0, -2.0, 0.5])), generator=g)
    svi = pyro.infer.SVI(_logistic_model, _guide, optim, pyro.infer.Trace_ELBO())
    with pyro.validation_enabled(True):
        for _ in range(20):
            svi.step(x, y)
    return [pyro.param(name).detach().clone() for name in ("w", "b")]


def test_joint_adam_in_pyro_svi_equals_pyro_adam() -> None:
    # A user's model with its own params and plate, under plain SVI with Trace_ELBO.
    ours = _svi_params(JointAdam(lr=0.05))
    reference = _svi_params(pyro.optim.Adam({"lr": 0.05}))
    for a, b in zip(ours, reference, strict=True):
        assert torch.equal(a, b)


def test_joint_adam_refuses_another_set_of_params() -> None:
    a, b = _params()
    a.grad, b.grad = torch.ones(7), torch.ones(3)
    optim = JointAdam(lr=0.1)
    optim([a, b])
    optim([b, a])  # the same params, in another order
    with pytest.raises(ValueError, match=r"Expected the 2 params of the first step but got 1"):
        optim([a])
