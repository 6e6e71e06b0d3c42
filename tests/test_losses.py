"""check_logits() around plain PyTorch losses and every logits-parametrised distribution."""

from __future__ import annotations

import warnings

import pyro
import pyro.distributions as dist
import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F
from pyro import poutine
from pyro.infer import SVI, Trace_ELBO
from pyro.optim import Adam

import pyro_logits as pl

net = nn.Sequential(nn.Linear(20, 32), nn.ReLU(), nn.Linear(32, 5))
X, Y = torch.randn(64, 20), torch.randint(0, 5, (64,))
Z = torch.randn(64, 3, requires_grad=True)
T = torch.bernoulli(torch.full((64, 3), 0.5))
TEACHER = torch.randn(64, 5)


def scores() -> torch.Tensor:
    return net(X)


def caught(fn) -> list[warnings.WarningMessage]:
    with warnings.catch_warnings(record=True) as found:
        warnings.simplefilter("always")
        with pl.check_logits():
            fn()
    return [w for w in found if issubclass(w.category, pl.LogitsWarning)]


# (id, call, category, message pattern, detectable without a graph): no_grad leaves values
# only, which are judged for categorical arguments alone (see pyro_logits.losses).
MISUSE = [
    (
        "CrossEntropyLoss(softmax)",
        lambda: nn.CrossEntropyLoss()(F.softmax(scores(), -1), Y),  # noqa: PL003
        pl.ProbsAsLogitsWarning,
        r"^F\.cross_entropy \(called by nn\.CrossEntropyLoss\) argument 'input': got "
        r"probabilities where raw scores \(logits\) are expected\. Evidence: .* Wrong: "
        r"cross_entropy applies log_softmax .* Fix: pass the raw scores",
        True,
    ),
    (
        "cross_entropy(softmax.view(-1, C))",
        lambda: F.cross_entropy(
            F.softmax(torch.randn(4, 7, 5, requires_grad=True), -1).view(-1, 5),  # noqa: PL003
            torch.randint(0, 5, (28,)),
        ),
        pl.ProbsAsLogitsWarning,
        r"F\.cross_entropy argument 'input': got probabilities",
        False,
    ),
    (
        "cross_entropy(log_softmax)",
        lambda: F.cross_entropy(F.log_softmax(scores(), 1), Y),  # noqa: PL001
        pl.LogSoftmaxAsLogitsWarning,
        r"Harmless: cross_entropy applies log_softmax again",
        False,  # without a graph, rows normalised by their values alone are a note only
    ),
    (
        "cross_entropy(softmax over the batch)",
        lambda: F.cross_entropy(F.softmax(scores(), 0), Y),  # noqa: PL003
        pl.NormalizedOverWrongDimWarning,
        r"normalised over a dim other than the class dim.*softmax over dim 0",
        False,
    ),
    (
        "cross_entropy(softmax, permuted sequence)",
        lambda: F.cross_entropy(
            F.softmax(torch.randn(4, 7, 5, requires_grad=True), -1).permute(0, 2, 1),  # noqa: PL003
            torch.randint(0, 5, (4, 7)),
        ),
        pl.ProbsAsLogitsWarning,
        r"got probabilities",
        False,
    ),
    (
        "BCEWithLogitsLoss(sigmoid)",
        lambda: nn.BCEWithLogitsLoss()(torch.sigmoid(Z), T),  # noqa: PL003
        pl.ProbsAsLogitsWarning,
        r"^F\.binary_cross_entropy_with_logits \(called by nn\.BCEWithLogitsLoss\) argument "
        r"'input': got probabilities .* applies sigmoid to its input",
        False,
    ),
    (
        "binary_cross_entropy_with_logits(logsigmoid)",
        lambda: F.binary_cross_entropy_with_logits(F.logsigmoid(Z), T),  # noqa: PL004
        pl.LogSigmoidAsLogitsWarning,
        r"got logsigmoid output where raw scores \(logits\) are expected",
        False,
    ),
    (
        "NLLLoss(raw scores)",
        lambda: nn.NLLLoss()(scores(), Y),
        pl.LogitsAsLogProbsWarning,
        r"^F\.nll_loss \(called by nn\.NLLLoss\) argument 'input': got raw scores where "
        r"log-probabilities are expected\. Evidence: values: the largest is [0-9.]+, and "
        r"log-probabilities are <= 0\. Wrong: .* Fix: pass F\.log_softmax\(scores, dim=1\)",
        True,
    ),
    (
        "nll_loss(softmax)",
        lambda: F.nll_loss(F.softmax(scores(), 1), Y),  # noqa: PL003
        pl.ProbsAsLogProbsWarning,
        r"got probabilities where log-probabilities are expected.* -p\[label\], not -log",
        True,
    ),
    (
        "kl_div(softmax input)",
        lambda: F.kl_div(F.softmax(scores(), -1), F.softmax(TEACHER, -1), reduction="batchmean"),
        pl.ProbsAsLogProbsWarning,
        r"F\.kl_div argument 'input': got probabilities where log-probabilities",
        True,
    ),
    (
        "kl_div(raw teacher scores as target)",
        lambda: F.kl_div(F.log_softmax(scores(), -1), TEACHER, reduction="batchmean"),
        pl.LogitsAsProbsWarning,
        r"argument 'target': got raw scores where probabilities are expected\. Evidence: "
        r"values: -?[0-9.]+ lies outside \[0, 1\]",
        True,
    ),
    (
        "KLDivLoss(log-probability target, log_target=False)",
        lambda: nn.KLDivLoss(reduction="batchmean")(
            F.log_softmax(scores(), -1), F.log_softmax(TEACHER, -1)
        ),
        pl.LogProbsAsProbsWarning,
        r"\(called by nn\.KLDivLoss\) argument 'target': got log-probabilities where "
        r"probabilities are expected.*log_target=True",
        True,
    ),
    (
        "binary_cross_entropy(exp of logsigmoid... as logsigmoid)",
        lambda: F.binary_cross_entropy(F.logsigmoid(Z).clamp(min=0.0), T),
        None,  # a clamp changes values: not a shape-only step, so nothing is claimed
        "",
        False,
    ),
]


MISUSE_CASES = [
    pytest.param(call, category, match, grad, id=f"{label}-{'grad' if grad else 'no_grad'}")
    for label, call, category, match, by_values in MISUSE
    if category is not None
    for grad in ((True, False) if by_values else (True,))
]


@pytest.mark.parametrize(("call", "category", "match", "grad"), MISUSE_CASES)
def test_misuse_of_a_loss_warns_at_the_users_line(call, category, match, grad) -> None:
    with torch.set_grad_enabled(grad):
        found = caught(call)
    assert [w.category for w in found] == [category]
    assert found[0].filename == __file__
    with pytest.warns(category, match=match), pl.check_logits(), torch.set_grad_enabled(grad):
        call()


def test_log_softmax_into_cross_entropy_without_a_graph_is_a_note_not_a_warning() -> None:
    with torch.no_grad():
        assert caught(lambda: F.cross_entropy(F.log_softmax(scores(), 1), Y)) == []  # noqa: PL001


def test_a_clamp_is_not_looked_through() -> None:
    assert caught(MISUSE[-1][1]) == []


GENUINE = {
    "cross_entropy(logits)": lambda: F.cross_entropy(scores(), Y),
    "soft targets": lambda: F.cross_entropy(scores(), F.softmax(torch.randn(64, 5), -1)),
    "label smoothing": lambda: nn.CrossEntropyLoss(label_smoothing=0.1)(scores(), Y),
    "temperature-scaled": lambda: F.cross_entropy(scores() / 0.1, Y),
    "max-shifted": lambda: F.cross_entropy(scores() - scores().amax(-1, keepdim=True).detach(), Y),
    "1000 classes": lambda: F.cross_entropy(
        torch.randn(32, 1000) * 3, torch.randint(0, 1000, (32,))
    ),
    "float16": lambda: F.cross_entropy(torch.randn(64, 10, dtype=torch.float16), Y % 10),
    "bfloat16": lambda: F.cross_entropy(torch.randn(64, 10, dtype=torch.bfloat16), Y % 10),
    "batch 1": lambda: F.cross_entropy(torch.randn(1, 5), Y[:1]),
    "(N, C, d) segmentation": lambda: F.cross_entropy(
        torch.randn(2, 5, 8, 8), torch.randint(0, 5, (2, 8, 8))
    ),
    "nll_loss(log_softmax)": lambda: nn.NLLLoss()(F.log_softmax(scores(), 1), Y),
    "nll_loss(log_softmax) float16 no graph": lambda: F.nll_loss(
        F.log_softmax(torch.randn(64, 5), 1).half(), Y
    ),
    "BCEWithLogits(z)": lambda: nn.BCEWithLogitsLoss()(Z, T),
    "BCEWithLogits(z) soft targets": lambda: F.binary_cross_entropy_with_logits(
        Z, torch.rand(64, 3)
    ),
    "BCELoss(sigmoid)": lambda: nn.BCELoss()(torch.sigmoid(Z), T),
    "distillation": lambda: F.kl_div(
        F.log_softmax(scores() / 4, -1), F.softmax(TEACHER / 4, -1), reduction="batchmean"
    ),
    "kl_div log_target": lambda: F.kl_div(
        F.log_softmax(scores(), -1), F.log_softmax(TEACHER, -1), log_target=True
    ),
    "kl_div uniform targets": lambda: F.kl_div(
        F.log_softmax(scores(), -1), torch.full((64, 5), 0.2), reduction="batchmean"
    ),
}


@pytest.mark.parametrize("call", list(GENUINE.values()), ids=list(GENUINE))
@pytest.mark.parametrize("grad", [True, False], ids=["grad", "no_grad"])
def test_genuine_use_of_a_loss_is_silent(call, grad) -> None:
    with torch.set_grad_enabled(grad):
        assert caught(call) == []


def test_trained_network_logits_are_silent() -> None:
    model = nn.Sequential(nn.Linear(20, 64), nn.ReLU(), nn.Linear(64, 5))
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-2)
    labels = (X[:, 0] > 0).long() + (X[:, 1] > 0).long()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with pl.check_logits():
            for _ in range(300):
                optimizer.zero_grad()
                loss = nn.CrossEntropyLoss()(model(X), labels)
                loss.backward()
                optimizer.step()
            with torch.no_grad():
                F.cross_entropy(model(X), labels)
    assert loss.item() < 0.2


def test_each_call_site_warns_once() -> None:
    def train() -> None:
        for _ in range(20):
            F.cross_entropy(F.softmax(scores(), -1), Y)  # noqa: PL003
        F.cross_entropy(F.softmax(scores(), -1), Y)  # another line: its own warning  # noqa: PL003

    found = caught(train)
    assert [w.category for w in found] == [pl.ProbsAsLogitsWarning] * 2
    assert found[0].lineno != found[1].lineno


def test_nested_checks_and_pyro_handlers_warn_once() -> None:
    def model() -> None:
        pyro.factor("obs", -F.cross_entropy(F.softmax(scores(), -1), Y, reduction="sum"))  # noqa: PL003

    def nested() -> None:
        with pl.check_logits(), poutine.trace():
            model()

    found = caught(nested)
    assert [w.category for w in found] == [pl.ProbsAsLogitsWarning]


def test_svi_with_a_factor_likelihood_is_checked() -> None:
    def model(x, y):
        w = pyro.sample("w", dist.Normal(0.0, 1.0).expand([20, 5]).to_event(2))
        pyro.factor("obs", -F.nll_loss(x @ w, y, reduction="sum"))

    def guide(x, y):
        loc = pyro.param("loc", torch.zeros(20, 5))
        pyro.sample("w", dist.Normal(loc, 0.1).to_event(2))

    svi = SVI(model, guide, Adam({"lr": 0.01}), Trace_ELBO())
    checked = pl.check_logits(svi.step)
    with pytest.warns(pl.LogitsAsLogProbsWarning, match=r"F\.nll_loss argument 'input'"):
        for _ in range(3):
            checked(X, Y)


def test_the_losses_are_restored_on_leaving_even_after_an_error() -> None:
    original = F.cross_entropy
    with pl.check_logits():
        assert F.cross_entropy is not original
        assert F.cross_entropy.__name__ == "cross_entropy"
        with pl.check_logits():
            pass
        assert F.cross_entropy is not original  # the outer context still checks
    assert F.cross_entropy is original
    with pytest.raises(RuntimeError, match="boom"), pl.check_logits():
        raise RuntimeError("boom")
    assert F.cross_entropy is original and F.nll_loss.__module__ == "torch.nn.functional"
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        F.cross_entropy(F.softmax(scores(), -1), Y)  # noqa: PL003


def test_a_loss_bound_before_the_context_is_not_seen() -> None:
    """The documented limit: a reference taken before entering calls the original."""
    loss_fn = F.cross_entropy
    assert caught(lambda: loss_fn(F.softmax(scores(), -1), Y)) == []  # noqa: PL003  # noqa: PL003


# ------------------------------------------------------------------------------ distributions
SOFTMAX = F.softmax(torch.randn(64, 5, requires_grad=True), -1)
SIGMOID = torch.sigmoid(Z)
DISTRIBUTIONS = {
    "Binomial": (lambda: dist.Binomial(10, logits=SIGMOID), lambda: dist.Binomial(10, logits=Z)),  # noqa: PL003
    "Multinomial": (
        lambda: dist.Multinomial(10, logits=SOFTMAX),  # noqa: PL003
        lambda: dist.Multinomial(10, logits=scores()),
    ),
    "Geometric": (lambda: dist.Geometric(logits=SIGMOID), lambda: dist.Geometric(logits=Z)),  # noqa: PL003
    "NegativeBinomial": (
        lambda: dist.NegativeBinomial(5.0, logits=SIGMOID),  # noqa: PL003
        lambda: dist.NegativeBinomial(5.0, logits=Z),
    ),
    "ContinuousBernoulli": (
        lambda: dist.ContinuousBernoulli(logits=SIGMOID),  # noqa: PL003
        lambda: dist.ContinuousBernoulli(logits=Z),
    ),
    "OneHotCategoricalStraightThrough": (
        lambda: dist.OneHotCategoricalStraightThrough(logits=SOFTMAX),  # noqa: PL003
        lambda: dist.OneHotCategoricalStraightThrough(logits=scores()),
    ),
    "RelaxedBernoulliStraightThrough": (
        lambda: dist.RelaxedBernoulliStraightThrough(torch.tensor(0.5), logits=SIGMOID),  # noqa: PL003
        lambda: dist.RelaxedBernoulliStraightThrough(torch.tensor(0.5), logits=Z),
    ),
    "ZeroInflatedPoisson(gate_logits": (
        lambda: dist.ZeroInflatedPoisson(torch.ones(64, 3), gate_logits=SIGMOID),  # noqa: PL003
        lambda: dist.ZeroInflatedPoisson(torch.ones(64, 3), gate_logits=Z),
    ),
    "ZeroInflatedNegativeBinomial(logits": (
        lambda: dist.ZeroInflatedNegativeBinomial(5.0, logits=SIGMOID, gate_logits=Z),  # noqa: PL003
        lambda: dist.ZeroInflatedNegativeBinomial(5.0, logits=Z, gate_logits=Z),
    ),
    "ZeroInflatedDistribution(gate_logits": (
        lambda: dist.ZeroInflatedDistribution(dist.Poisson(torch.ones(64, 3)), gate_logits=SIGMOID),
        lambda: dist.ZeroInflatedDistribution(dist.Poisson(torch.ones(64, 3)), gate_logits=Z),
    ),
    "MixtureSameFamily(Categorical": (
        lambda: dist.MixtureSameFamily(
            dist.Categorical(logits=SOFTMAX),  # noqa: PL003
            dist.Normal(torch.zeros(64, 5), 1.0),
        ),
        lambda: dist.MixtureSameFamily(
            dist.Categorical(logits=scores()), dist.Normal(torch.zeros(64, 5), 1.0)
        ),
    ),
}


@pytest.mark.parametrize("label", list(DISTRIBUTIONS))
def test_every_logits_distribution_is_checked(label: str) -> None:
    wrong, right = DISTRIBUTIONS[label]
    found = caught(lambda: pyro.sample("site", wrong().to_event(1)))
    assert [w.category for w in found] == [pl.ProbsAsLogitsWarning]
    assert f"sample site 'site' ({label}" in str(found[0].message)
    assert found[0].filename == __file__
    assert caught(lambda: pyro.sample("site", right().to_event(1))) == []
