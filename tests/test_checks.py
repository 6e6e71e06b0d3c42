"""Tests for pyro_logits.checks: the detection matrix, messages, edge cases, false positives."""

from __future__ import annotations

import dataclasses
import math
import re
import sys
import warnings
from collections.abc import Callable

import pytest
import torch
import torch.nn.functional as F
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from pyro_logits import (
    Diagnosis,
    LogitsWarning,
    LogSigmoidAsLogitsWarning,
    LogSoftmaxAsLogitsWarning,
    NormalizedOverWrongDimWarning,
    ProbsAsLogitsWarning,
    diagnose,
)
from pyro_logits.checks import user_frame, warn_if_misused
from pyro_logits.evidence import normalisation_tolerance

DTYPES = [torch.float16, torch.bfloat16, torch.float32, torch.float64]
LOW_PRECISION = (torch.float16, torch.bfloat16)
PROPERTY = settings(
    max_examples=40,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
)

# pattern -> (make the misused tensor, family, kind, harmful, warning, detectable by values)
PATTERNS: dict[str, tuple[Callable, str, str, bool, type[LogitsWarning], bool]] = {
    "log_softmax": (
        lambda z: F.log_softmax(z, -1),
        "categorical",
        "log_softmax",
        False,
        LogSoftmaxAsLogitsWarning,
        True,
    ),
    "log_softmax_dim0": (
        lambda z: F.log_softmax(z, 0),
        "categorical",
        "wrong_dim",
        True,
        NormalizedOverWrongDimWarning,
        True,
    ),
    "softmax": (
        lambda z: F.softmax(z, -1),
        "categorical",
        "probs",
        True,
        ProbsAsLogitsWarning,
        True,
    ),
    "sigmoid": (torch.sigmoid, "bernoulli", "probs", True, ProbsAsLogitsWarning, False),
    "logsigmoid": (
        F.logsigmoid,
        "bernoulli",
        "log_sigmoid",
        True,
        LogSigmoidAsLogitsWarning,
        False,
    ),
}


def scores(dtype: torch.dtype = torch.float32, *, grad: bool = False, shape=(64, 10)):
    """Raw scores (genuine logits) with a healthy spread, as a network would give them."""
    return (torch.randn(shape, dtype=torch.float64) * 2).to(dtype).requires_grad_(grad)


def silent_diagnose(x: torch.Tensor, family: str, dim: int = -1) -> Diagnosis:
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        return diagnose(x, family, dim)


# ----------------------------------------------------------------------------------------------
# The detection matrix


@pytest.mark.parametrize("dtype", DTYPES, ids=str)
@pytest.mark.parametrize("grad", [True, False], ids=["grad", "no_grad"])
@pytest.mark.parametrize("pattern", list(PATTERNS))
def test_detection_matrix(pattern: str, grad: bool, dtype: torch.dtype) -> None:
    make, family, kind, harmful, category, by_values = PATTERNS[pattern]
    x = make(scores(dtype, grad=grad))
    result = silent_diagnose(x, family)
    if grad or by_values:
        assert (result.kind, result.harmful, result.category) == (kind, harmful, category)
        assert result.source == ("autograd" if grad else "values")
        assert not result.ok
    else:
        assert result.ok and result.source is None and result.category is None


@pytest.mark.parametrize("dtype", DTYPES, ids=str)
@pytest.mark.parametrize("grad", [True, False], ids=["grad", "no_grad"])
@pytest.mark.parametrize("family", ["categorical", "bernoulli"])
def test_genuine_logits_are_fine(family: str, grad: bool, dtype: torch.dtype) -> None:
    net = torch.nn.Linear(5, 10).to(dtype)
    with torch.set_grad_enabled(grad):
        logits = net(torch.randn(64, 5, dtype=dtype))
    for x in (logits, scores(dtype, grad=grad), scores(dtype, grad=grad) - 30):
        result = silent_diagnose(x, family)
        assert result.ok and result.kind == "logits" and not result.harmful


def test_diagnose_warns_never_and_mutates_nothing() -> None:
    x = F.softmax(scores(), -1)
    before = x.clone()
    result = silent_diagnose(x, "categorical")
    assert result.kind == "probs"
    assert torch.equal(x, before) and not x.requires_grad


# ----------------------------------------------------------------------------------------------
# Provenance


@pytest.mark.parametrize(
    ("make", "family", "kind", "evidence"),
    [
        (lambda z: F.log_softmax(z, -1).expand(3, 64, 10), "categorical", "log_softmax", "dim -1"),
        (lambda z: F.log_softmax(z, -1).unsqueeze(-2), "categorical", "log_softmax", "dim -1"),
        (lambda z: F.log_softmax(z, 1).unsqueeze(0), "categorical", "log_softmax", "dim 1"),
        (lambda z: F.log_softmax(z, 0).unsqueeze(0), "categorical", "wrong_dim", "dim 0"),
        (lambda z: F.log_softmax(z[:, None], -1).squeeze(1), "categorical", "log_softmax", ""),
        (lambda z: F.softmax(z, -1)[:, :5], "categorical", "probs", "softmax over dim -1"),
        (lambda z: F.log_softmax(z, -1).double(), "categorical", "log_softmax", "log_softmax"),
        (lambda z: F.softmax(z, 0), "categorical", "wrong_dim", "softmax over dim 0"),
        (lambda z: torch.log(F.softmax(z, -1)), "categorical", "log_softmax", "log(softmax"),
        (lambda z: z - z.logsumexp(-1, keepdim=True), "categorical", "log_softmax", "logsumexp"),
        (lambda z: F.logsigmoid(z), "categorical", "log_sigmoid", "logsigmoid"),
        (lambda z: torch.sigmoid(z), "categorical", "probs", "sigmoid"),
        (lambda z: F.softmax(z, -1)[:, 1], "bernoulli", "probs", "softmax"),
        (lambda z: F.log_softmax(z, -1)[:, 1], "bernoulli", "log_softmax", "log_softmax"),
        (lambda z: torch.log(torch.sigmoid(z)).view(-1), "bernoulli", "log_sigmoid", "log(sig"),
        (lambda z: torch.sigmoid(z).t().expand(2, 10, 64), "bernoulli", "probs", "sigmoid"),
    ],
)
def test_provenance_through_shape_steps(make, family, kind, evidence) -> None:
    result = silent_diagnose(make(scores(grad=True)), family)
    assert (result.kind, result.source) == (kind, "autograd")
    assert result.evidence.startswith("autograd: produced by") and evidence in result.evidence


@pytest.mark.parametrize(
    ("make", "family"),
    [
        (lambda z: F.log_softmax(z, -1) / 0.5, "categorical"),  # temperature-scaled
        (lambda z: F.log_softmax(z, -1) + 3.0, "categorical"),  # shifted, not normalised
        (lambda z: F.logsigmoid(z) - F.logsigmoid(-z), "bernoulli"),  # equals z
        (lambda z: torch.logit(torch.sigmoid(z)), "bernoulli"),
        (lambda z: torch.log(z.exp() + 1.0), "categorical"),
        (lambda z: 2 * z - 1, "bernoulli"),
    ],
)
def test_provenance_stops_at_value_changes(make, family) -> None:
    assert silent_diagnose(make(scores(grad=True)), family).ok


def test_class_dim_argument() -> None:
    z = torch.randn(8, 5, 7, requires_grad=True)
    assert silent_diagnose(F.log_softmax(z, 1), "categorical", dim=1).kind == "log_softmax"
    assert silent_diagnose(F.log_softmax(z, 1), "categorical", dim=-2).kind == "log_softmax"
    wrong = silent_diagnose(F.log_softmax(z, -1), "categorical", dim=1)
    assert wrong.kind == "wrong_dim"
    assert wrong.evidence.endswith("log_softmax over dim -1, not over the class dim 1")
    with torch.no_grad():
        assert silent_diagnose(F.softmax(z, 1), "categorical", dim=1).kind == "probs"


def test_provenance_after_backward_still_works() -> None:
    z = torch.randn(16, 4, requires_grad=True)
    x = F.log_softmax(z, -1)
    x.sum().backward()  # frees saved tensors; the saved dims stay readable
    assert silent_diagnose(x, "categorical").kind == "log_softmax"


@pytest.mark.parametrize("family", ["one_hot_categorical", "relaxed_one_hot_categorical"])
def test_family_aliases(family: str) -> None:
    result = silent_diagnose(F.softmax(scores(grad=True), -1), family)
    assert result.family == "categorical" and result.kind == "probs"
    assert silent_diagnose(torch.sigmoid(scores(grad=True)), "relaxed_bernoulli").kind == "probs"


# ----------------------------------------------------------------------------------------------
# Values: what cannot be told stays silent


@pytest.mark.parametrize(
    "make",
    [
        pytest.param(lambda: F.log_softmax(torch.randn(64, 1), -1), id="single class"),
        pytest.param(lambda: torch.eye(5), id="one-hot rows as logits"),
        pytest.param(lambda: torch.eye(5).log(), id="log one-hot rows"),
        pytest.param(lambda: torch.full((8, 4), -math.log(4)), id="uniform log-probs"),
        pytest.param(lambda: torch.full((8, 4), 0.25), id="uniform probs"),
        pytest.param(lambda: torch.tensor([0.5, 0.5]), id="two halves"),
        pytest.param(lambda: torch.tensor([0.0, 1.0]), id="zero and one"),
        pytest.param(lambda: torch.full((3, 4), math.nan), id="nan"),
        pytest.param(lambda: torch.empty(0, 4), id="empty"),
        pytest.param(lambda: torch.tensor(0.3), id="scalar"),
        pytest.param(lambda: torch.arange(12).reshape(3, 4), id="integers"),
        pytest.param(lambda: F.softmax(torch.randn(3, 10), -1).half(), id="three 16-bit rows"),
        pytest.param(
            lambda: F.softmax(torch.randn(10) + torch.randn(8, 10) * 1e-3, -1).bfloat16(),
            id="16-bit rows all alike",
        ),
        pytest.param(
            lambda: F.log_softmax(torch.randn(10), -1).expand(64, 10).half(),
            id="one 16-bit row expanded",
        ),
    ],
)
def test_values_stay_silent_without_evidence(make: Callable[[], torch.Tensor]) -> None:
    assert silent_diagnose(make(), "categorical").ok


def test_values_ignore_max_shifted_confident_logits() -> None:
    z = torch.randn(128, 10) * 40
    x = z - z.amax(-1, keepdim=True)  # a confident network's logits, max-shifted per row
    assert ((x.exp().sum(-1) - 1).abs() < 1e-6).float().mean() > 0.5  # looks normalised...
    assert silent_diagnose(x, "categorical").ok  # ...but the top entry holds all the mass


@pytest.mark.parametrize(
    ("make", "kind", "evidence"),
    [
        (lambda: F.log_softmax(torch.randn(10), -1), "log_softmax", "in the only row"),
        (lambda: F.softmax(torch.randn(1, 10), -1), "probs", "in the only row"),
        (lambda: F.log_softmax(torch.randn(10), -1).expand(64, 10), "log_softmax", "only row"),
        (lambda: F.softmax(torch.randn(4, 3) * 2, -1).half(), "probs", "in all 4 rows"),
        (lambda: F.log_softmax(torch.randn(2, 3, 6), -1), "log_softmax", "in all 6 rows"),
        (lambda: F.log_softmax(torch.randn(7, 3, 6), 0), "wrong_dim", "over dim 0"),
        (lambda: torch.tensor([0.2, 0.3, 0.5]), "probs", "summing to 1 over dim -1"),
    ],
)
def test_values_detect(make: Callable[[], torch.Tensor], kind: str, evidence: str) -> None:
    result = silent_diagnose(make(), "categorical")
    assert (result.kind, result.source) == (kind, "values")
    assert evidence in result.evidence


def test_values_with_masked_classes() -> None:
    z = torch.randn(32, 6)
    z[:, :2] = -math.inf  # masked classes are genuine logits
    assert silent_diagnose(z, "categorical").ok
    assert silent_diagnose(F.log_softmax(z, -1), "categorical").kind == "log_softmax"


def test_bernoulli_is_never_judged_by_values() -> None:
    for x in (torch.rand(64, 10), F.logsigmoid(scores()), F.softmax(scores(), -1)):
        assert silent_diagnose(x, "bernoulli").ok


# ----------------------------------------------------------------------------------------------
# Warnings and messages


def test_warning_classes() -> None:
    for category in (
        LogSoftmaxAsLogitsWarning,
        ProbsAsLogitsWarning,
        LogSigmoidAsLogitsWarning,
        NormalizedOverWrongDimWarning,
    ):
        assert issubclass(category, LogitsWarning) and issubclass(category, UserWarning)
    with warnings.catch_warnings():
        warnings.simplefilter("error", LogitsWarning)
        with pytest.raises(ProbsAsLogitsWarning):
            warn_if_misused(torch.sigmoid(scores(grad=True)), "bernoulli", where="here")


def test_diagnosis_is_frozen() -> None:
    result = diagnose(scores(), "categorical")
    with pytest.raises(dataclasses.FrozenInstanceError):
        result.kind = "probs"  # type: ignore[misc]
    assert result.message("anywhere") == ""


@pytest.mark.parametrize(
    ("make", "family", "category", "match"),
    [
        (
            lambda z: F.log_softmax(z, -1),
            "categorical",
            LogSoftmaxAsLogitsWarning,
            r"^argument 'logits' of f: got normalised log-probabilities \(log_softmax output\) "
            r"where raw logits are expected\. Evidence: autograd: produced by log_softmax over "
            r"dim -1 \(the class dim\)\. Harmless: Categorical normalises its logits again.*"
            r"Fix: pass the raw scores as logits=, e\.g\. logits=net\(x\).*\.$",
        ),
        (
            lambda z: F.log_softmax(z, 0),
            "categorical",
            NormalizedOverWrongDimWarning,
            r"Evidence: autograd: produced by log_softmax over dim 0, not over the class dim -1\. "
            r"Wrong: normalising over another dim ties separate rows together, which silently "
            r"changes the model\.",
        ),
        (
            lambda z: F.softmax(z, -1),
            "categorical",
            ProbsAsLogitsWarning,
            r"got probabilities where raw logits are expected\. .* Wrong: Categorical applies "
            r"softmax .* Fix: pass the raw scores as logits= \(before softmax\), or the "
            r"probabilities as probs=\.",
        ),
        (
            torch.sigmoid,
            "bernoulli",
            ProbsAsLogitsWarning,
            r"Evidence: autograd: produced by sigmoid\. Wrong: Bernoulli applies sigmoid to its "
            r"logits, so probabilities in \[0, 1\] become probabilities between 0\.5 and 0\.73",
        ),
        (
            F.logsigmoid,
            "bernoulli",
            LogSigmoidAsLogitsWarning,
            r"got logsigmoid output \(log p\) where Bernoulli logits are expected\. Evidence: "
            r"autograd: produced by logsigmoid\. Wrong: .* below 0\.5\. Fix: pass the raw scores "
            r"as logits= \(before logsigmoid\)\.",
        ),
    ],
)
def test_messages(make, family, category, match) -> None:
    with pytest.warns(category, match=match):
        warn_if_misused(make(scores(grad=True)), family, where="argument 'logits' of f")


def test_rows_normalised_by_their_values_alone_are_a_note_not_a_warning() -> None:
    x = F.log_softmax(scores(), -1)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        found = warn_if_misused(x, "categorical", where="site")
    assert found.kind == "log_softmax" and not found.harmful and not found.warns
    assert re.fullmatch(
        r"site: got rows that are already normalised log-probabilities\. Evidence: values: all "
        r"<= 0 and logsumexp over dim -1 is within \de-\d\d of 0 in all 64 rows\. Harmless: "
        r"Categorical normalises its logits again, so the distribution is the same\. Nothing to "
        r"fix; a model that holds probabilities can pass them as probs=\.",
        found.message("site"),
    )
    with pytest.warns(
        NormalizedOverWrongDimWarning,
        match=r"over dim 0 .* in all 10 slices, not over the class dim -1\. Wrong",
    ):
        warn_if_misused(F.softmax(scores(), 0), "categorical", where="site")


def test_warning_points_at_the_caller() -> None:
    with pytest.warns(ProbsAsLogitsWarning) as record:
        line = sys._getframe().f_lineno + 1
        warn_if_misused(F.softmax(scores(grad=True), -1), "categorical", where="x")
    assert record[0].filename == __file__ and record[0].lineno == line


def test_user_frame_is_the_first_frame_outside_the_library() -> None:
    frame = sys._getframe()
    assert user_frame(frame) == (1, frame)  # a test module's frame is the user's


def test_genuine_logits_do_not_warn() -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        result = warn_if_misused(scores(grad=True), "categorical", where="x")
    assert result.ok


def test_argument_errors() -> None:
    with pytest.raises(TypeError, match=r"Expected x to be a torch\.Tensor but got list"):
        diagnose([0.1, 0.9], "categorical")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match=r"Expected family to be one of .* but got 'normal'"):
        diagnose(scores(), "normal")
    with pytest.raises(ValueError, match=r"Expected dim in \[-2, 1\] .* \(64, 10\) but got 2"):
        diagnose(scores(), "categorical", dim=2)


# ----------------------------------------------------------------------------------------------
# Properties: genuine logits never warn; misuse always does where the values allow it


@st.composite
def batch_and_classes(draw: st.DrawFn) -> tuple[int, int]:
    batch = draw(st.integers(1, 4096))
    classes = draw(st.integers(2, 1000))
    return batch, max(2, min(classes, 200_000 // batch))


@PROPERTY
@given(
    shape=batch_and_classes(),
    dtype=st.sampled_from(DTYPES),
    shift=st.floats(-60, 60),
    temperature=st.floats(0.05, 20),
    grad=st.booleans(),
    seed=st.integers(0, 2**16),
)
def test_random_init_networks_never_flagged(shape, dtype, shift, temperature, grad, seed):
    torch.manual_seed(seed)
    batch, classes = shape
    net = torch.nn.Sequential(torch.nn.Linear(8, 16), torch.nn.Tanh(), torch.nn.Linear(16, classes))
    with torch.set_grad_enabled(grad):
        logits = (net(torch.randn(batch, 8)) / temperature + shift).to(dtype)
    assert silent_diagnose(logits, "categorical").ok
    assert silent_diagnose(logits, "bernoulli").ok
    assert silent_diagnose(logits.mT, "categorical", dim=0).ok


@PROPERTY
@given(
    shape=batch_and_classes(),
    dtype=st.sampled_from(DTYPES),
    gap=st.floats(0, 60),
    seed=st.integers(0, 2**16),
)
def test_all_negative_shifts_never_flagged(shape, dtype, gap, seed):
    torch.manual_seed(seed)
    z = torch.nn.Linear(8, shape[1])(torch.randn(shape[0], 8)).detach()
    x = (z - z.amax() - gap).to(dtype)  # all <= 0, shifted by one constant: not normalised
    assert silent_diagnose(x, "categorical").ok


@pytest.fixture(scope="module")
def trained_logits() -> torch.Tensor:
    """Logits of a small MLP trained to high confidence on ten Gaussian clusters."""
    gen = torch.Generator().manual_seed(1)
    centres = torch.randn(10, 8, generator=gen) * 3
    labels = torch.randint(10, (2048,), generator=gen)
    inputs = centres[labels] + torch.randn(2048, 8, generator=gen)
    torch.manual_seed(1)
    net = torch.nn.Sequential(torch.nn.Linear(8, 32), torch.nn.ReLU(), torch.nn.Linear(32, 10))
    optim = torch.optim.Adam(net.parameters(), lr=0.02)
    for _ in range(150):
        optim.zero_grad()
        F.cross_entropy(net(inputs), labels).backward()
        optim.step()
    with torch.no_grad():
        logits = net(inputs)
    assert (logits.argmax(-1) == labels).float().mean() > 0.95
    return logits


@PROPERTY
@given(
    batch=st.integers(1, 2048),
    dtype=st.sampled_from(DTYPES),
    shift=st.floats(-60, 60),
    temperature=st.floats(0.05, 20),
    max_shift=st.booleans(),
)
def test_trained_network_never_flagged(trained_logits, batch, dtype, shift, temperature, max_shift):
    z = trained_logits[:batch] / temperature
    if max_shift:
        z = z - z.amax(-1, keepdim=True)
    x = (z + shift).to(dtype)
    assert silent_diagnose(x, "categorical").ok
    assert silent_diagnose(x, "bernoulli").ok


def informative(reference: torch.Tensor, dim: int, dtype: torch.dtype, *, log: bool) -> bool:
    """Whether the float64 reference clears the value test's evidence bar with a 2x margin."""
    tol = 2 * normalisation_tolerance(dtype, reference.shape[dim], log=log)
    top, bottom = reference.amax(dim).flatten(), reference.amin(dim).flatten()
    good = (top - bottom >= 8 * tol) & (top <= (0 if log else 1) - 4 * tol)
    if dtype not in LOW_PRECISION:
        return bool(good.any())
    tops = top[good]
    return len(tops) >= 4 and bool(tops.max() - tops.min() >= 8 * tol)


@PROPERTY
@given(
    shape=batch_and_classes(),
    dtype=st.sampled_from(DTYPES),
    scale=st.floats(0.3, 8),
    pattern=st.sampled_from(["log_softmax", "log_softmax_dim0", "softmax"]),
    seed=st.integers(0, 2**16),
)
def test_misuse_detected_by_values_whenever_informative(shape, dtype, scale, pattern, seed):
    torch.manual_seed(seed)
    z = torch.randn(shape, dtype=torch.float64) * scale
    make, _, kind, _, _, _ = PATTERNS[pattern]
    dim = 0 if pattern.endswith("dim0") else -1
    log = pattern.startswith("log")
    if dim == 0 and shape[0] == 1:
        return  # a single row normalised over dim 0 is all zeros (or ones)
    assume(informative(make(z), dim, dtype, log=log))
    with torch.no_grad():
        result = silent_diagnose(make(z.to(dtype)), "categorical")
    assert (result.kind, result.source) == (kind, "values")
