"""Check what torch's losses are fed, inside :func:`~pyro_logits.check_logits`.

While a check is active the losses of ``torch.nn.functional`` are replaced by wrappers that
check their arguments and call the original; leaving the last active check puts the originals
back, also after an error. Module losses call them at call time (``nn.CrossEntropyLoss`` calls
``F.cross_entropy``), so ``criterion(probs, y)``, ``F.cross_entropy(...)`` and
``pyro.factor("obs", -F.cross_entropy(...))`` are all seen, under ``torch.no_grad()`` too. Not
seen: a loss function bound to another name *before* the check starts
(``from torch.nn.functional import cross_entropy``, ``loss_fn=F.cross_entropy`` as a default
argument). A :class:`torch.overrides.TorchFunctionMode` would see those too, but it intercepts
every torch call, about 8% of a small MLP's training step; the wrappers cost one call per loss.
Like Pyro's handler stack, the replacement is process-wide: one check per process, not per
thread.

Each loss argument has an expectation:

==========================================  ==========  =====================================
loss (functional / module)                  argument    expects
==========================================  ==========  =====================================
``cross_entropy`` / ``CrossEntropyLoss``    ``input``   raw scores, classes on dim 1
``binary_cross_entropy_with_logits`` /      ``input``   raw scores (elementwise)
``BCEWithLogitsLoss``
``nll_loss`` / ``NLLLoss``                  ``input``   log-probabilities, classes on dim 1
``kl_div`` / ``KLDivLoss``                  ``input``   log-probabilities (last dim)
``kl_div`` / ``KLDivLoss``                  ``target``  probabilities (``log_target=True``:
                                                        log-probabilities)
``binary_cross_entropy`` / ``BCELoss``      ``input``   probabilities (elementwise)
==========================================  ==========  =====================================

Evidence is that of :mod:`pyro_logits.checks`: autograd provenance first (through views such as
``.view(-1, C)``, permutes and casts), then values where an argument is categorical (a class or
last dim). Targets of ``cross_entropy`` are not judged: class indices and probability targets
(label smoothing, soft labels, distillation) are all fine. What is reported:

- a logits argument given ``softmax``/``sigmoid`` output (:class:`ProbsAsLogitsWarning`),
  ``log_softmax`` output (:class:`LogSoftmaxAsLogitsWarning`, harmless for ``cross_entropy``),
  ``logsigmoid`` output, or a normalisation over another dim;
- a log-probability argument given raw scores, seen by values above 0
  (:class:`LogitsAsLogProbsWarning`), or probabilities (:class:`ProbsAsLogProbsWarning`);
- a probability argument given log-probabilities (:class:`LogProbsAsProbsWarning`) or, for
  ``kl_div`` targets, values outside ``[0, 1]`` (:class:`LogitsAsProbsWarning`).

Not detectable: raw scores that happen to lie where the expected kind lies (all below 0 for
``nll_loss``), Bernoulli-like arguments without a graph (values in (0, 1) are valid logits), and
raw scores into ``binary_cross_entropy``, which torch itself refuses outside ``[0, 1]``. A logits
argument made by a compiled function (``torch.compile``), whose operations autograd does not
record, gets a :class:`~pyro_logits.checks.ProvenanceUnavailableWarning` when its values show
nothing either.

Each call site (file and line of the user's code) is checked on its 1st, 2nd, 4th, ... call and
warns once (and once more at most, to say a compiled function hid its input's provenance).
"""

from __future__ import annotations

import functools
import sys
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from types import FrameType
from typing import Any, Literal

import torch
import torch.nn.functional as F

from pyro_logits.checks import (
    Diagnosis,
    LogitsAsLogProbsWarning,
    LogitsAsProbsWarning,
    LogitsWarning,
    LogProbsAsProbsWarning,
    LogSigmoidAsLogitsWarning,
    LogSoftmaxAsLogitsWarning,
    NormalizedOverWrongDimWarning,
    ProbsAsLogitsWarning,
    ProbsAsLogProbsWarning,
    ProvenanceUnavailableWarning,
    diagnose,
    user_frame,
)
from pyro_logits.evidence import normalisation_tolerance

__all__ = ["LossChecker"]

Expects = Literal["logits", "log_probs", "probs"]


@dataclass(frozen=True)
class _Argument:
    position: int
    keyword: str
    expects: Expects
    family: Literal["categorical", "bernoulli"]


@dataclass(frozen=True)
class _Loss:
    name: str
    arguments: tuple[_Argument, ...]


def _arg(position: int, keyword: str, expects: Expects, family: str = "categorical") -> _Argument:
    return _Argument(position, keyword, expects, family)  # type: ignore[arg-type]


_LOSSES: dict[Callable[..., Any], _Loss] = {
    F.cross_entropy: _Loss("cross_entropy", (_arg(0, "input", "logits"),)),
    F.binary_cross_entropy_with_logits: _Loss(
        "binary_cross_entropy_with_logits", (_arg(0, "input", "logits", "bernoulli"),)
    ),
    F.nll_loss: _Loss("nll_loss", (_arg(0, "input", "log_probs"),)),
    F.kl_div: _Loss("kl_div", (_arg(0, "input", "log_probs"), _arg(1, "target", "probs"))),
    F.binary_cross_entropy: _Loss(
        "binary_cross_entropy", (_arg(0, "input", "probs", "bernoulli"),)
    ),
}
_KL_DIV_LOG_TARGET_POSITION = 5

# (what it does to this loss, the fix), per (loss, category)
_FIXES: dict[tuple[str, type[LogitsWarning]], tuple[str, str]] = {
    ("cross_entropy", ProbsAsLogitsWarning): (
        "Wrong: cross_entropy applies log_softmax to its input, so probabilities are squashed "
        "towards uniform and the loss hardly trains",
        "pass the raw scores (before softmax); for probabilities use F.nll_loss(p.log(), y)",
    ),
    ("cross_entropy", LogSoftmaxAsLogitsWarning): (
        "Harmless: cross_entropy applies log_softmax again, which changes nothing, so the "
        "loss is the same and the log_softmax is redundant",
        "pass the raw scores, or F.nll_loss for log-probabilities, or filter "
        "LogSoftmaxAsLogitsWarning",
    ),
    ("cross_entropy", NormalizedOverWrongDimWarning): (
        "Wrong: normalising over another dim ties separate examples together, which silently "
        "changes the loss",
        "pass the raw scores: cross_entropy normalises over the class dim (dim 1) itself",
    ),
    ("cross_entropy", LogSigmoidAsLogitsWarning): (
        "Wrong: cross_entropy renormalises it, so the class probabilities become proportional "
        "to sigmoid(x) instead of softmax(x)",
        "pass the raw scores (before logsigmoid)",
    ),
    ("binary_cross_entropy_with_logits", ProbsAsLogitsWarning): (
        "Wrong: binary_cross_entropy_with_logits applies sigmoid to its input, so "
        "probabilities in [0, 1] become probabilities between 0.5 and 0.73",
        "pass the raw scores (before sigmoid), or use F.binary_cross_entropy for probabilities",
    ),
    ("binary_cross_entropy_with_logits", LogSigmoidAsLogitsWarning): (
        "Wrong: the logit of sigmoid(x) is x = log p - log(1 - p), not log p, so every "
        "probability ends up below 0.5",
        "pass the raw scores (before logsigmoid)",
    ),
    ("binary_cross_entropy_with_logits", LogSoftmaxAsLogitsWarning): (
        "Wrong: a logit is log p - log(1 - p), not log p, so every probability is wrong",
        "pass the raw scores",
    ),
    ("nll_loss", LogitsAsLogProbsWarning): (
        "Wrong: nll_loss takes -input[label] as the loss, so unnormalised scores make it "
        "unbounded below and the model does not learn probabilities",
        "pass F.log_softmax(scores, dim=1), or give the raw scores to F.cross_entropy",
    ),
    ("nll_loss", ProbsAsLogProbsWarning): (
        "Wrong: nll_loss of probabilities is -p[label], not -log p[label]",
        "pass F.log_softmax of the raw scores, or give the raw scores to F.cross_entropy",
    ),
    ("nll_loss", NormalizedOverWrongDimWarning): (
        "Wrong: normalising over another dim ties separate examples together, which silently "
        "changes the loss",
        "take log_softmax over the class dim (dim 1), or give the raw scores to F.cross_entropy",
    ),
    ("kl_div", LogitsAsLogProbsWarning): (
        "Wrong: kl_div expects its input as log-probabilities, so the divergence is wrong",
        "pass F.log_softmax(scores, dim=-1)",
    ),
    ("kl_div", ProbsAsLogProbsWarning): (
        "Wrong: kl_div expects its input as log-probabilities, so the divergence is wrong",
        "pass F.log_softmax of the raw scores",
    ),
    ("kl_div", NormalizedOverWrongDimWarning): (
        "Wrong: normalising over another dim ties separate examples together, which silently "
        "changes the divergence",
        "take log_softmax over the class dim",
    ),
    ("kl_div", LogProbsAsProbsWarning): (
        "Wrong: with log_target=False kl_div expects probabilities as its target",
        "pass log_target=True, or the target as probabilities (softmax of its scores)",
    ),
    ("kl_div", LogitsAsProbsWarning): (
        "Wrong: kl_div expects a target of probabilities (log_target=False) or "
        "log-probabilities (log_target=True), and raw scores are neither",
        "pass F.softmax(target_scores, dim=-1), or F.log_softmax(...) with log_target=True",
    ),
    ("binary_cross_entropy", LogProbsAsProbsWarning): (
        "Wrong: binary_cross_entropy expects probabilities",
        "give the raw scores to F.binary_cross_entropy_with_logits, or pass probabilities",
    ),
}
_FOUND: dict[type[LogitsWarning], str] = {
    ProbsAsLogitsWarning: "probabilities",
    LogSoftmaxAsLogitsWarning: "normalised log-probabilities (log_softmax output)",
    NormalizedOverWrongDimWarning: "a tensor normalised over a dim other than the class dim",
    LogSigmoidAsLogitsWarning: "logsigmoid output",
    LogitsAsLogProbsWarning: "raw scores",
    ProbsAsLogProbsWarning: "probabilities",
    LogProbsAsProbsWarning: "log-probabilities",
    LogitsAsProbsWarning: "raw scores",
}
_EXPECTED: dict[str, str] = {
    "logits": "raw scores (logits)",
    "log_probs": "log-probabilities",
    "probs": "probabilities",
}


class LossChecker:
    """Warn once per call site when a torch loss gets the wrong kind of tensor.

    While a checker is active (between :meth:`activate` and :meth:`deactivate`, which
    :class:`~pyro_logits.CheckLogitsMessenger` calls on entering and leaving), the losses of
    ``torch.nn.functional`` are replaced by checking wrappers; the originals are put back
    when the last active checker leaves. Only the outermost active checker checks a call, so
    nested checks warn once.
    """

    def __init__(self) -> None:
        self._calls: dict[tuple[str, int], int] = {}
        self._warned: set[tuple[str, int]] = set()
        self._unchecked: set[tuple[str, int]] = set()  # told that provenance was hidden

    def activate(self) -> None:
        """Start checking the losses called from now on (patching them if none is active)."""
        if not _ACTIVE:
            for name, original in _ORIGINALS.items():
                setattr(F, name, _checking_wrapper(original, _LOSSES[original]))
        _ACTIVE.append(self)

    def deactivate(self) -> None:
        """Stop checking; the last active checker puts the original losses back."""
        _ACTIVE.remove(self)
        if not _ACTIVE:
            for name, original in _ORIGINALS.items():
                setattr(F, name, original)

    def check(self, loss: _Loss, args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
        """Check one call of ``loss``: on a call site's 1st, 2nd, 4th, ... call, until it warns."""
        level, frame = user_frame(sys._getframe())
        site = (frame.f_code.co_filename, frame.f_lineno) if frame is not None else ("?", 0)
        if site in self._warned:
            return
        calls = self._calls.get(site, 0) + 1
        self._calls[site] = calls
        if calls & (calls - 1):  # check on calls 1, 2, 4, 8, ... only
            return
        for argument in loss.arguments:
            x = args[argument.position] if len(args) > argument.position else None
            x = kwargs.get(argument.keyword, x)
            if not isinstance(x, torch.Tensor) or not x.is_floating_point() or x.numel() == 0:
                continue
            expects = argument.expects
            if loss.name == "kl_div" and argument.keyword == "target" and _log_target(args, kwargs):
                expects = "log_probs"
            where = f"{_caller(loss.name, sys._getframe(2))} argument {argument.keyword!r}"
            found = _finding(x, argument, expects, loss.name, where)
            if found is None:
                continue
            category, text = found
            if category is ProvenanceUnavailableWarning:
                # not a mistake: keep checking, values may show one later in training
                if site not in self._unchecked:
                    self._unchecked.add(site)
                    warnings.warn(text, category=category, stacklevel=level)
                continue
            warnings.warn(text, category=category, stacklevel=level)
            self._warned.add(site)
            return


_ORIGINALS: dict[str, Callable[..., Any]] = {loss.name: fn for fn, loss in _LOSSES.items()}
_ACTIVE: list[LossChecker] = []


# Callers whose loss calls are torch's or Pyro's own business: the log_prob of a distribution,
# or a __torch_function__ override (Pyro's ProvenanceTensor under TraceGraph_ELBO) that calls the
# loss again, by its patched name, for a call already checked or made inside the library.
_INTERNAL_CALLERS = ("torch.distributions", "torch.overrides", "pyro")


def _checking_wrapper(original: Callable[..., Any], loss: _Loss) -> Callable[..., Any]:
    @functools.wraps(original)
    def checked(*args: Any, **kwargs: Any) -> Any:
        if _ACTIVE and not _called_by_the_library(sys._getframe(1)):
            _ACTIVE[0].check(loss, args, kwargs)
        return original(*args, **kwargs)

    return checked


def _called_by_the_library(frame: FrameType) -> bool:
    module = frame.f_globals.get("__name__", "")
    return module == "pyro" or module.startswith(tuple(f"{m}." for m in _INTERNAL_CALLERS))


def _log_target(args: tuple[Any, ...], kwargs: dict[str, Any]) -> bool:
    position = _KL_DIV_LOG_TARGET_POSITION
    return bool(kwargs.get("log_target", args[position] if len(args) > position else False))


def _caller(name: str, frame: FrameType | None) -> str:
    """``F.name``, and the loss module that called it from ``frame`` out, if any."""
    while frame is not None and frame.f_globals.get("__name__", "").startswith(("torch", "pyro")):
        module = frame.f_locals.get("self") if frame.f_code.co_name == "forward" else None
        if isinstance(module, torch.nn.Module):
            return f"F.{name} (called by nn.{type(module).__name__})"
        frame = frame.f_back
    return f"F.{name}"


def _class_dim(x: torch.Tensor, loss: str) -> int:
    if loss in ("cross_entropy", "nll_loss"):
        return 1 if x.dim() >= 2 else 0
    return -1


def _finding(
    x: torch.Tensor, argument: _Argument, expects: Expects, loss: str, where: str
) -> tuple[type[Warning], str] | None:
    """The warning's category and text for ``x`` given as ``argument`` of ``loss``, or ``None``."""
    d = diagnose(x, argument.family, _class_dim(x, loss))
    if expects == "logits" and d.unchecked:
        return ProvenanceUnavailableWarning, d.message(where)
    category: type[LogitsWarning] | None
    if expects == "logits":
        category = d.category if d.warns else None
    elif expects == "log_probs":
        category = _as_log_probs(x, d, loss)
    else:
        category = _as_probs(x, d, loss)
    if category is None:
        return None
    harm, fix = _FIXES[loss, category]
    evidence = d.evidence if d.source is not None else _VALUE_FINDINGS[category](x)
    return category, (
        f"{where}: got {_FOUND[category]} where {_EXPECTED[expects]} are expected. Evidence: "
        f"{evidence}. {harm}. Fix: {fix}."
    )


def _as_log_probs(x: torch.Tensor, d: Diagnosis, loss: str) -> type[LogitsWarning] | None:
    if d.kind == "wrong_dim":
        return NormalizedOverWrongDimWarning
    if d.kind == "probs":
        return ProbsAsLogProbsWarning
    if d.source is not None:  # log_softmax over the class dim, or logsigmoid: fine here
        return None
    if _normalised_probabilities(x, loss) is not None:
        return ProbsAsLogProbsWarning  # rows too flat for diagnose's evidence, e.g. near uniform
    size = x.shape[_class_dim(x, loss)] if x.dim() else 1
    tol = normalisation_tolerance(x.dtype, size, log=True)
    return LogitsAsLogProbsWarning if float(x.detach().amax()) > tol else None


def _as_probs(x: torch.Tensor, d: Diagnosis, loss: str) -> type[LogitsWarning] | None:
    if d.kind in ("log_softmax", "log_sigmoid") or (d.kind == "wrong_dim" and "log" in d.evidence):
        return LogProbsAsProbsWarning
    if d.source is not None or loss != "kl_div":
        return None  # binary_cross_entropy refuses values outside [0, 1] itself
    return LogitsAsProbsWarning if _outside_unit_interval(x) is not None else None


def _normalised_probabilities(x: torch.Tensor, loss: str) -> float | None:
    """The largest ``|sum - 1|`` over the class dim of rows of probabilities, else ``None``.

    Rows of probabilities have every value in [0, 1] and sum to 1 within the tolerance.
    """
    if x.dim() == 0:
        return None
    dim = _class_dim(x, loss)
    tol = normalisation_tolerance(x.dtype, x.shape[dim], log=False)
    values = x.detach().float()
    lo, hi = (float(v) for v in torch.aminmax(values))
    if lo < -tol or hi > 1 + tol:
        return None
    deviation = float((values.sum(dim) - 1).abs().amax())
    return deviation if deviation <= tol else None


def _outside_unit_interval(x: torch.Tensor) -> float | None:
    lo, hi = (float(v) for v in torch.aminmax(x.detach().float()))
    tol = normalisation_tolerance(x.dtype, x.shape[-1] if x.dim() else 1, log=False)
    return lo if lo < -tol else hi if hi > 1 + tol else None


_VALUE_FINDINGS: dict[type[LogitsWarning], Callable[[torch.Tensor], str]] = {
    ProbsAsLogProbsWarning: lambda x: (
        "values: all in [0, 1] and every row sums to 1 over the class dim"
    ),
    LogitsAsLogProbsWarning: lambda x: (
        f"values: the largest is {float(x.detach().amax()):.4g}, and log-probabilities are <= 0"
    ),
    LogitsAsProbsWarning: lambda x: f"values: {_outside_unit_interval(x):.4g} lies outside [0, 1]",
}
