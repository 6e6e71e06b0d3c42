"""JointAdam: one Adam over all params, against Pyro's per-param Adam and its schedule."""

from __future__ import annotations

import pyro
import pyro.optim
import pytest
import torch

from pyro_logits.bnn import JointAdam


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
