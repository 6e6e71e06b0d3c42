"""Tests for pyro_logits.messenger: check_logits on unchanged Pyro models."""

from __future__ import annotations

import sys
import warnings
from collections.abc import Callable

import pyro
import pyro.distributions as dist
import pytest
import torch
import torch.nn.functional as F
from pyro.distributions.torch_distribution import ExpandedDistribution
from pyro.infer import SVI, Predictive, Trace_ELBO
from pyro.infer.autoguide import AutoNormal

import pyro_logits.messenger
from pyro_logits import (
    CheckLogitsMessenger,
    LogitsWarning,
    LogSigmoidAsLogitsWarning,
    LogSoftmaxAsLogitsWarning,
    NormalizedOverWrongDimWarning,
    ProbsAsLogitsWarning,
    check_logits,
)

DTYPES = [torch.float16, torch.bfloat16, torch.float32, torch.float64]

# pattern -> (make the misused tensor, build the distribution, warning)
PATTERNS: dict[str, tuple[Callable, Callable, type[LogitsWarning]]] = {
    "log_softmax": (
        lambda z: F.log_softmax(z, -1),
        lambda x: dist.Categorical(logits=x),
        LogSoftmaxAsLogitsWarning,
    ),
    "log_softmax_dim0": (
        lambda z: F.log_softmax(z, 0),
        lambda x: dist.Categorical(logits=x),
        NormalizedOverWrongDimWarning,
    ),
    "softmax": (
        lambda z: F.softmax(z, -1),
        lambda x: dist.Categorical(logits=x),
        ProbsAsLogitsWarning,
    ),
    "sigmoid": (
        torch.sigmoid,
        lambda x: dist.Bernoulli(logits=x).to_event(1),
        ProbsAsLogitsWarning,
    ),
    "logsigmoid": (
        F.logsigmoid,
        lambda x: dist.Bernoulli(logits=x).to_event(1),
        LogSigmoidAsLogitsWarning,
    ),
}


def run_quietly(fn: Callable, *args):
    """Run ``fn`` with every warning turned into an error."""
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        return fn(*args)


def record(fn: Callable, *args) -> list[warnings.WarningMessage]:
    """Run ``fn`` and return every warning it issued (no deduplication by location)."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        fn(*args)
    return caught


def site_model(make_dist: Callable, x: torch.Tensor) -> Callable[[], None]:
    def model() -> None:
        with pyro.plate("data", x.shape[0]):
            pyro.sample("obs", make_dist(x), obs=make_dist(x.detach().float()).sample())

    return model


# ----------------------------------------------------------------------------------------------
# The detection matrix, seen through a model


@pytest.mark.parametrize("dtype", DTYPES, ids=str)
@pytest.mark.parametrize("grad", [True, False], ids=["grad", "no_grad"])
@pytest.mark.parametrize("pattern", list(PATTERNS))
def test_detection_matrix(pattern: str, grad: bool, dtype: torch.dtype) -> None:
    make, make_dist, category = PATTERNS[pattern]
    z = (torch.randn(64, 10, dtype=torch.float64) * 2).to(dtype).requires_grad_(grad)
    model = site_model(make_dist, make(z))
    if grad:
        with pytest.warns(category, match=r"^sample site 'obs' \((Categorical|Bernoulli)\("):
            check_logits(model)()
    else:
        # the Categorical's given tensor is gone, Bernoulli logits are not judged by values
        run_quietly(check_logits(model))


@pytest.mark.parametrize("grad", [True, False], ids=["grad", "no_grad"])
@pytest.mark.parametrize("make_dist", [PATTERNS["softmax"][1], PATTERNS["sigmoid"][1]])
def test_genuine_logits_are_silent(make_dist: Callable, grad: bool) -> None:
    net = torch.nn.Linear(5, 10)
    with torch.set_grad_enabled(grad):
        model = site_model(make_dist, net(torch.randn(64, 5)))
        run_quietly(check_logits(model))


def test_probs_sites_are_not_checked() -> None:
    z = torch.randn(64, 10, requires_grad=True)

    def model() -> None:
        with pyro.plate("data", 64):
            pyro.sample("c", dist.Categorical(probs=F.softmax(z, -1)))
            pyro.sample("b", dist.Bernoulli(probs=torch.sigmoid(z)).to_event(1))
            pyro.sample("n", dist.Normal(F.softmax(z, -1), 1.0).to_event(1))

    run_quietly(check_logits(model))


# ----------------------------------------------------------------------------------------------
# Wrappers and distribution families


@pytest.mark.parametrize(
    "make_dist",
    [
        pytest.param(
            lambda x: dist.Categorical(logits=x).expand([3, 64]).to_event(1).mask(True),
            id="expand-to_event-mask",
        ),
        pytest.param(
            lambda x: ExpandedDistribution(dist.Categorical(logits=x), torch.Size([2, 64])),
            id="ExpandedDistribution",
        ),
        pytest.param(lambda x: dist.OneHotCategorical(logits=x), id="OneHotCategorical"),
        pytest.param(
            lambda x: dist.RelaxedOneHotCategorical(torch.tensor(0.5), logits=x),
            id="RelaxedOneHotCategorical",
        ),
        pytest.param(
            lambda x: dist.RelaxedOneHotCategoricalStraightThrough(torch.tensor(0.5), logits=x),
            id="RelaxedOneHotCategoricalStraightThrough",
        ),
    ],
)
def test_categorical_family_through_wrappers(make_dist: Callable) -> None:
    z = torch.randn(64, 10, requires_grad=True)

    def model() -> None:
        pyro.sample("y", make_dist(F.softmax(z, -1)))

    with pytest.warns(ProbsAsLogitsWarning, match=r"^sample site 'y' .*produced by softmax"):
        check_logits(model)()


@pytest.mark.parametrize(
    "make_dist",
    [
        pytest.param(lambda x: dist.Bernoulli(logits=x).to_event(2).mask(True), id="Bernoulli"),
        pytest.param(
            lambda x: dist.RelaxedBernoulli(torch.tensor(0.5), logits=x), id="RelaxedBernoulli"
        ),
        pytest.param(
            lambda x: dist.RelaxedBernoulliStraightThrough(torch.tensor(0.5), logits=x),
            id="RelaxedBernoulliStraightThrough",
        ),
    ],
)
def test_bernoulli_family(make_dist: Callable) -> None:
    z = torch.randn(64, 10, requires_grad=True)

    def model() -> None:
        with pyro.plate("rows", 64, dim=-2), pyro.plate("cols", 10, dim=-1):
            pyro.sample("b", make_dist(F.logsigmoid(z)))

    with pytest.warns(LogSigmoidAsLogitsWarning, match=r"^sample site 'b' \(.*logsigmoid"):
        check_logits(model)()


def test_leaf_parameter_is_judged_by_values() -> None:
    probs = pyro.param("probs", F.softmax(torch.randn(8, 4) * 2, -1))  # a leaf: no producer

    def model() -> None:
        with pyro.plate("data", 8):
            pyro.sample("y", dist.Categorical(logits=pyro.param("probs")))

    with pytest.warns(ProbsAsLogitsWarning, match=r"values: all in \[0, 1\] and summing to 1"):
        check_logits(model)()
    assert probs.requires_grad


def test_sites_built_before_a_backward_are_skipped() -> None:
    z = torch.randn(64, 10, requires_grad=True)
    fn = dist.Categorical(logits=F.softmax(z, -1))  # noqa: PL003
    fn.logits.sum().backward()  # frees the tensors the messenger would read

    def model() -> None:
        pyro.sample("y", fn)

    run_quietly(check_logits(model))


# ----------------------------------------------------------------------------------------------
# Usage forms, warn-once and the check schedule


def test_usage_forms() -> None:
    z = torch.randn(16, 3, requires_grad=True)

    def model() -> None:
        with pyro.plate("data", 16):
            pyro.sample("y", dist.Categorical(logits=F.log_softmax(z, -1)))  # noqa: PL001

    decorated = check_logits()(model)
    for run in (decorated, check_logits(model), CheckLogitsMessenger()(model)):
        assert len(record(run)) == 1
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        with check_logits():
            model()
    assert [w.category for w in caught] == [LogSoftmaxAsLogitsWarning]
    assert isinstance(check_logits(), CheckLogitsMessenger)


def test_warns_once_per_site_over_many_steps() -> None:
    net = torch.nn.Linear(4, 3)

    @check_logits
    def model(x: torch.Tensor) -> None:
        with pyro.plate("data", len(x)):
            pyro.sample("a", dist.Categorical(logits=F.log_softmax(net(x), -1)))  # noqa: PL001
            pyro.sample("b", dist.Bernoulli(logits=torch.sigmoid(net(x))).to_event(1))  # noqa: PL003
            pyro.sample("c", dist.Categorical(logits=net(x)))

    caught = record(lambda: [model(torch.randn(8, 4)) for _ in range(200)])
    assert sorted(w.category.__name__ for w in caught) == [
        "LogSoftmaxAsLogitsWarning",
        "ProbsAsLogitsWarning",
    ]


def test_each_instance_warns_on_its_own() -> None:
    z = torch.randn(16, 3, requires_grad=True)

    def model() -> None:
        pyro.sample("y", dist.Categorical(logits=F.softmax(z, -1)))  # noqa: PL003

    def two_steps() -> None:
        for _ in range(2):
            with check_logits():
                model()

    assert len(record(two_steps)) == 2


def test_checks_on_calls_1_2_4_8(monkeypatch: pytest.MonkeyPatch) -> None:
    seen: list[int] = []
    real = pyro_logits.messenger._given_logits
    step = 0

    def counting(fn):
        seen.append(step)
        return real(fn)

    monkeypatch.setattr(pyro_logits.messenger, "_given_logits", counting)
    z = torch.randn(16, 3, requires_grad=True)

    @check_logits
    def model(misuse: bool) -> None:
        logits = F.softmax(z, -1) if misuse else z
        pyro.sample("y", dist.Categorical(logits=logits).to_event(1))

    warned_at = []
    for step in range(1, 101):  # `counting` reads `step`
        if record(model, step >= 3):
            warned_at.append(step)
    # checked on calls 1, 2, 4: misuse from call 3 is caught on call 4, then never checked again
    assert seen == [1, 2, 4] and warned_at == [4]


def test_steady_state_checks_are_logarithmic(monkeypatch: pytest.MonkeyPatch) -> None:
    calls = []
    real = pyro_logits.messenger._given_logits
    monkeypatch.setattr(
        pyro_logits.messenger, "_given_logits", lambda fn: calls.append(1) or real(fn)
    )
    net = torch.nn.Linear(4, 3)

    @check_logits
    def model() -> None:
        pyro.sample("y", dist.Categorical(logits=net(torch.randn(8, 4))).to_event(1))

    for _ in range(1000):
        run_quietly(model)
    assert len(calls) == 10  # calls 1, 2, 4, ..., 512


# ----------------------------------------------------------------------------------------------
# Whole runs: the log_softmax seed model, SVI, Predictive


def test_warning_points_at_the_sample_line() -> None:
    net = torch.nn.Linear(4, 3)
    lines = []

    @check_logits
    def model(x: torch.Tensor, y: torch.Tensor) -> None:
        lhat = F.log_softmax(net(x), -1)
        with pyro.plate("data", len(x)):
            lines.append(sys._getframe().f_lineno + 1)
            pyro.sample("obs", dist.Categorical(logits=lhat), obs=y)  # noqa: PL001

    match = (
        r"^sample site 'obs' \(Categorical\(logits=\.\.\.\)\): got normalised log-probabilities "
        r"\(log_softmax output\) where raw logits are expected\. Evidence: autograd: produced "
        r"by log_softmax over dim -1 \(the class dim\)\. Harmless: .* redundant\. Fix: "
    )
    with pytest.warns(LogSoftmaxAsLogitsWarning, match=match) as caught:
        model(torch.randn(8, 4), torch.randint(3, (8,)))
    assert caught[0].filename == __file__ and caught[0].lineno == lines[0]


def make_svi_model(misuse: bool) -> tuple[Callable, Callable]:
    net = torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.Tanh(), torch.nn.Linear(8, 3))

    def model(x: torch.Tensor, y: torch.Tensor | None = None) -> None:
        pyro.module("net", net)
        w = pyro.sample("w", dist.Normal(0.0, 1.0).expand([4, 3]).to_event(2))
        logits = net(x) + x @ w
        lhat = F.log_softmax(logits, -1) if misuse else logits
        with pyro.plate("data", len(x)):
            pyro.sample("obs", dist.Categorical(logits=lhat), obs=y)

    return model, AutoNormal(model)


@pytest.mark.parametrize("misuse", [False, True], ids=["genuine", "log_softmax"])
def test_svi_run(misuse: bool) -> None:
    x, y = torch.randn(32, 4), torch.randint(3, (32,))
    model, guide = make_svi_model(misuse)
    svi = SVI(check_logits(model), guide, pyro.optim.Adam({"lr": 0.01}), Trace_ELBO())
    caught = record(lambda: [svi.step(x, y) for _ in range(5)])
    ours = [w for w in caught if issubclass(w.category, LogitsWarning)]
    assert [w.category for w in ours] == ([LogSoftmaxAsLogitsWarning] if misuse else [])
    assert all(w.filename == __file__ for w in ours)
    if not misuse:
        run_quietly(lambda: [svi.step(x, y) for _ in range(3)])


@pytest.mark.parametrize("misuse", [False, True], ids=["genuine", "log_softmax"])
def test_predictive_run(misuse: bool) -> None:
    x, y = torch.randn(32, 4), torch.randint(3, (32,))
    model, guide = make_svi_model(misuse)
    svi = SVI(model, guide, pyro.optim.Adam({"lr": 0.01}), Trace_ELBO())
    svi.step(x, y)
    predictive = Predictive(model, guide=guide, num_samples=20, return_sites=["obs"])
    with check_logits():
        # Predictive runs under torch.no_grad(): the Categorical's given tensor is gone, so
        # even the log_softmax model is (documented to be) silent here
        samples = run_quietly(predictive, x)
    assert samples["obs"].shape == (20, 32)


def test_entering_from_a_second_thread_is_refused_and_leaves_the_stack_clean() -> None:
    import threading

    from pyro.poutine.runtime import _PYRO_STACK

    before = list(_PYRO_STACK)
    errors: list[BaseException] = []
    entered, release = threading.Event(), threading.Event()

    def hold() -> None:
        with check_logits():
            entered.set()
            release.wait(10)

    holder = threading.Thread(target=hold)
    holder.start()
    entered.wait(10)
    try:
        with check_logits():
            pass
    except RuntimeError as error:
        errors.append(error)
    finally:
        release.set()
        holder.join(10)
    assert len(errors) == 1 and "another thread" in str(errors[0])
    assert "one model per process" in str(errors[0])
    assert list(_PYRO_STACK) == before


# ----------------------------------------------------------------------------------------------
# Re-entering one instance, nesting distinct ones


def log_softmax_model() -> Callable[[], None]:
    z = torch.randn(16, 3, requires_grad=True)

    def model() -> None:
        with pyro.plate("data", 16):
            pyro.sample("y", dist.Categorical(logits=F.log_softmax(z, -1)))  # noqa: PL001

    return model


def test_one_instance_entered_twice() -> None:
    from pyro.poutine.runtime import _PYRO_STACK

    before = list(_PYRO_STACK)
    model = log_softmax_model()
    check = check_logits()

    def twice() -> None:
        with check:
            with check:  # the inner entry is a no-op
                model()
            assert check in _PYRO_STACK
            model()

    assert [w.category for w in record(twice)] == [LogSoftmaxAsLogitsWarning]
    assert list(_PYRO_STACK) == before
    with pytest.raises(ValueError, match="boom"), check, check:
        raise ValueError("boom")
    assert list(_PYRO_STACK) == before
    assert pyro_logits.messenger._ACTIVE == [] and pyro_logits.messenger._ACTIVE_THREADS == {}
    assert F.cross_entropy is pyro_logits.losses._ORIGINALS["cross_entropy"]


def test_recursive_decorated_function_in_svi() -> None:
    net = torch.nn.Linear(4, 3)

    @check_logits
    def model(x: torch.Tensor, y: torch.Tensor, depth: int = 3) -> None:
        pyro.module("net", net)
        w = pyro.sample(f"w_{depth}", dist.Normal(0.0, 1.0))
        with pyro.plate(f"data_{depth}", len(x)):
            lhat = F.log_softmax(net(x) * w.exp(), -1)
            pyro.sample(f"y_{depth}", dist.Categorical(logits=lhat), obs=y)  # noqa: PL001
        if depth:
            model(x, y, depth - 1)

    x, y = torch.randn(8, 4), torch.randint(3, (8,))
    with pyro.validation_enabled(True):
        svi = SVI(model, AutoNormal(model), pyro.optim.Adam({"lr": 0.01}), Trace_ELBO())
        caught = record(lambda: [svi.step(x, y) for _ in range(3)])
    ours = [w for w in caught if issubclass(w.category, LogitsWarning)]
    assert [w.category for w in ours] == [LogSoftmaxAsLogitsWarning]  # 4 sites, one line
    assert ours[0].filename == __file__


@pytest.mark.parametrize(
    "arrange",
    [
        pytest.param(lambda model: check_logits(check_logits(model)), id="nested"),
        pytest.param(
            lambda model: check_logits(pyro.poutine.block(check_logits(model))),
            id="block-between",
        ),
        pytest.param(
            lambda model: check_logits(check_logits(pyro.poutine.block(model))),
            id="block-inside",
        ),
    ],
)
def test_nested_instances_warn_once(arrange: Callable) -> None:
    assert len(record(arrange(log_softmax_model()))) == 1


def test_nested_instances_warn_once_in_svi() -> None:
    x, y = torch.randn(32, 4), torch.randint(3, (32,))
    model, guide = make_svi_model(misuse=True)
    svi = SVI(check_logits(model), guide, pyro.optim.Adam({"lr": 0.01}), Trace_ELBO())

    def steps() -> None:
        with pyro.validation_enabled(True), check_logits():
            for _ in range(3):
                svi.step(x, y)

    caught = [w for w in record(steps) if issubclass(w.category, LogitsWarning)]
    assert [w.category for w in caught] == [LogSoftmaxAsLogitsWarning]


def test_fresh_inner_checks_inside_one_outer_warn_once() -> None:
    model = log_softmax_model()
    z, y = torch.randn(16, 3, requires_grad=True), torch.randint(3, (16,))

    def steps() -> None:
        with check_logits():
            for _ in range(3):
                with check_logits():  # a fresh instance per step, inside the outer one
                    model()
                    F.cross_entropy(F.softmax(z, -1), y)  # noqa: PL003

    caught = record(steps)
    assert sorted(w.category.__name__ for w in caught) == [
        "LogSoftmaxAsLogitsWarning",
        "ProbsAsLogitsWarning",
    ]
