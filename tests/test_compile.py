"""Checks on compiled networks: ``torch.compile`` (eager, aot_eager, inductor) and TorchScript.

AOTAutograd (``aot_eager``, ``inductor``) records a compiled function as one autograd node,
``CompiledFunctionBackward``, so provenance is lost: Categorical misuse is still found by its
values, and where nothing is found a ``ProvenanceUnavailableWarning`` says the tensor was not
checked. ``backend="eager"`` keeps the graph and is checked as uncompiled code.
"""

from __future__ import annotations

import re
import shutil
import sys
import warnings
from collections.abc import Callable, Iterator

import pyro
import pyro.distributions as dist
import pytest
import torch
import torch._dynamo
import torch.nn.functional as F
from pyro.infer import SVI, Trace_ELBO
from pyro.infer.autoguide import AutoNormal

from pyro_logits import (
    LogitsWarning,
    ProbsAsLogitsWarning,
    check_logits,
    diagnose,
    observe_bernoulli,
)
from pyro_logits.checks import ProvenanceUnavailableWarning

HIDDEN = "could not tell what produced these logits. Evidence: autograd: produced inside "
HIDDEN_COMPILE = re.escape(
    HIDDEN + "a compiled function (CompiledFunctionBackward, from torch.compile)"
)
REPORTED = (LogitsWarning, ProvenanceUnavailableWarning)


def _inductor_skip_reason() -> str | None:
    if not any(shutil.which(cxx) for cxx in ("g++", "c++", "clang++")):
        return "inductor compiles C++ on the CPU and no C++ compiler (g++, c++, clang++) is found"
    return None


BACKENDS = [
    "eager",
    "aot_eager",
    pytest.param(
        "inductor",
        marks=[
            pytest.mark.slow,  # a C++ compile: seconds with inductor's cache, ~20 s without
            pytest.mark.skipif(
                _inductor_skip_reason() is not None, reason=str(_inductor_skip_reason())
            ),
            # torch's own notice from inside inductor, not ours to fix
            pytest.mark.filterwarnings("ignore:`torch.jit.script_method` is deprecated"),
        ],
    ),
]
# what a sigmoid output given as Bernoulli logits warns, per backend
SIGMOID_WARNS = {
    "eager": (ProbsAsLogitsWarning, r"Evidence: autograd: produced by sigmoid"),
    "aot_eager": (ProvenanceUnavailableWarning, HIDDEN_COMPILE),
    "inductor": (ProvenanceUnavailableWarning, HIDDEN_COMPILE),
}


@pytest.fixture(autouse=True)
def _fresh_dynamo_and_validation() -> Iterator[None]:
    """Each test compiles afresh (no recompile limit reached) with Pyro validation on."""
    torch._dynamo.reset()
    with pyro.validation_enabled(True):
        yield
    torch._dynamo.reset()


def reported(fn: Callable[[], object]) -> list[warnings.WarningMessage]:
    """Run ``fn`` and return the warnings of pyro_logits it issued (no deduplication)."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        fn()
    return [w for w in caught if issubclass(w.category, REPORTED)]


class Head(torch.nn.Module):
    """A two-layer network whose last operation is ``act``."""

    def __init__(self, act: Callable[[torch.Tensor], torch.Tensor], classes: int = 3) -> None:
        super().__init__()
        self.body = torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.Tanh())
        self.out = torch.nn.Linear(8, classes)
        self.act = act

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.act(self.out(self.body(x)))


def identity(z: torch.Tensor) -> torch.Tensor:
    return z


def softmax(z: torch.Tensor) -> torch.Tensor:
    return F.softmax(z, -1)


def data(n: int = 32) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    x = torch.randn(n, 4)
    return x, (torch.rand(n, 3) < 0.5).float(), torch.randint(3, (n,))


def svi_steps(model: Callable[..., None], *args: torch.Tensor, steps: int = 4) -> None:
    guide = AutoNormal(model)
    svi = SVI(model, guide, pyro.optim.Adam({"lr": 0.01}), Trace_ELBO())
    for _ in range(steps):
        svi.step(*args)


# ----------------------------------------------------------------------------------------------
# Real inference: SVI over a model whose network is compiled


@pytest.mark.parametrize("backend", BACKENDS)
def test_sigmoid_as_bernoulli_logits_under_check_logits(backend: str) -> None:
    net = torch.compile(Head(torch.sigmoid), backend=backend)
    lines = []

    @check_logits
    def model(x: torch.Tensor, y: torch.Tensor) -> None:
        pyro.module("net", net)
        pyro.sample("noise", dist.LogNormal(0.0, 1.0))  # a latent for the guide
        with pyro.plate("data", len(x)):
            lines.append(sys._getframe().f_lineno + 1)
            pyro.sample("y", dist.Bernoulli(logits=net(x)).to_event(1), obs=y)

    x, y, _ = data()
    caught = reported(lambda: svi_steps(model, x, y))
    category, match = SIGMOID_WARNS[backend]
    assert [w.category for w in caught] == [category]  # once over all the steps
    assert caught[0].filename == __file__ and caught[0].lineno == lines[0]
    assert re.match(
        r"sample site 'y' \(Bernoulli\(logits=\.\.\.\)\): .*" + match, str(caught[0].message)
    )


@pytest.mark.parametrize("backend", BACKENDS)
def test_sigmoid_into_observe_bernoulli(backend: str) -> None:
    net = torch.compile(Head(torch.sigmoid), backend=backend)

    def model(x: torch.Tensor, y: torch.Tensor) -> None:
        pyro.module("net", net)
        observe_bernoulli("y", net(x), y)

    x, y, _ = data()
    category, match = SIGMOID_WARNS[backend]
    with pytest.warns(category, match=r"^argument 'logits' of .*" + match) as caught:
        svi_steps(model, x, y, steps=1)
    assert all(w.filename == __file__ for w in caught if w.category is category)


@pytest.mark.parametrize("backend", BACKENDS)
def test_sigmoid_into_bce_with_logits_in_a_torch_loop(backend: str) -> None:
    net = torch.compile(Head(torch.sigmoid), backend=backend)
    optimiser = torch.optim.SGD(net.parameters(), lr=0.1)
    x, y, _ = data()

    def train() -> None:
        for _ in range(4):
            optimiser.zero_grad()
            loss = F.binary_cross_entropy_with_logits(net(x), y)
            loss.backward()
            optimiser.step()

    with check_logits():
        caught = reported(train)
    category, match = SIGMOID_WARNS[backend]
    assert [w.category for w in caught] == [category]
    assert caught[0].filename == __file__
    prefix = r"F\.binary_cross_entropy_with_logits argument 'input': .*"
    assert re.match(prefix + match, str(caught[0].message))


# ----------------------------------------------------------------------------------------------
# Categorical: the values still decide


@pytest.mark.parametrize("backend", ["aot_eager"])
def test_compiled_softmax_is_found_by_its_values(backend: str) -> None:
    net = torch.compile(Head(softmax), backend=backend)
    x, _, labels = data()

    @check_logits
    def model(x: torch.Tensor, y: torch.Tensor) -> None:
        pyro.module("net", net)
        with pyro.plate("data", len(x)):
            pyro.sample("y", dist.Categorical(logits=net(x)), obs=y)

    match = r"^sample site 'y' .*Evidence: values: all in \[0, 1\] and summing to 1"
    with pytest.warns(ProbsAsLogitsWarning, match=match):
        svi_steps(model, x, labels, steps=1)


@pytest.mark.parametrize("backend", ["eager", "aot_eager"])
def test_genuine_compiled_logits(backend: str) -> None:
    """Raw scores: silent when the graph is kept, one notice (not a LogitsWarning) when not."""
    net = torch.compile(Head(identity), backend=backend)
    x, _, labels = data()

    @check_logits
    def model(x: torch.Tensor, y: torch.Tensor) -> None:
        pyro.module("net", net)
        with pyro.plate("data", len(x)):
            pyro.sample("y", dist.Categorical(logits=net(x)), obs=y)

    caught = reported(lambda: svi_steps(model, x, labels))
    if backend == "eager":
        assert caught == []
    else:
        assert [w.category for w in caught] == [ProvenanceUnavailableWarning]
        assert not issubclass(ProvenanceUnavailableWarning, LogitsWarning)
        assert "logsigmoid output given as logits would go unseen" in str(caught[0].message)


# ----------------------------------------------------------------------------------------------
# diagnose: what the walk sees


def test_diagnose_names_the_compiled_node() -> None:
    net = torch.compile(Head(torch.sigmoid), backend="aot_eager")
    out = net(torch.randn(8, 4))
    d = diagnose(out.unsqueeze(0).expand(2, 8, 3), "bernoulli")  # shape-only steps after it
    assert d.ok and d.unchecked and d.hidden_by == "CompiledFunctionBackward"
    assert d.source is None and not d.warns
    assert d.message("argument 'logits'").startswith(f"argument 'logits': {HIDDEN}")
    assert not diagnose(out * 2.0, "bernoulli").unchecked  # a value-changing step: genuine
    assert not diagnose(out.detach(), "bernoulli").unchecked  # no graph: as under no_grad


def test_torchscript_hides_the_producer_after_its_first_call() -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # recent torch deprecates TorchScript
        scripted = torch.jit.script(Head(torch.sigmoid))
    x = torch.randn(8, 4)
    assert diagnose(scripted(x), "bernoulli").kind == "probs"  # profiling run: plain ops
    d = diagnose(scripted(x), "bernoulli")
    assert d.unchecked and d.hidden_by == "DifferentiableGraphBackward"
    assert "(DifferentiableGraphBackward, from TorchScript)" in d.evidence
