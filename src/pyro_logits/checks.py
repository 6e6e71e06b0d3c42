"""Tell genuine logits from log-probabilities and probabilities passed as logits.

``Categorical(logits=...)`` and ``Bernoulli(logits=...)`` accept any real tensor, so passing
``log_softmax``, ``softmax``, ``sigmoid`` or ``logsigmoid`` output where raw scores belong runs
without an error. :func:`diagnose` looks at a tensor and says what it most likely is, without
warning; :func:`warn_if_misused` turns a finding into a :class:`LogitsWarning`.

Two kinds of evidence are used, cheapest first.

Provenance (``source="autograd"``)
    When autograd recorded the tensor, its ``grad_fn`` names the operation that produced it
    (``LogSoftmaxBackward0``, ``SoftmaxBackward0``, ``SigmoidBackward0``, ``LogSigmoidBackward0``,
    ``log`` of a softmax or sigmoid, and ``x - x.logsumexp(d, keepdim=True)``), and for the
    softmaxes the dim. The walk passes through at most eight shape-only steps (expand, slice,
    (un)squeeze, dtype copies; for Bernoulli also views, permutes and indexing) and stops at
    anything that changes values, so temperature scaling (``log_softmax(z) / T``) or a shift is
    taken as genuine. This reads metadata only: no pass over the data, no device sync.

Compiled functions
    ``torch.compile`` (through AOTAutograd: the ``aot_eager`` and ``inductor`` backends) and
    TorchScript (from a scripted module's second call on) record a whole function as one
    autograd node, ``CompiledFunctionBackward`` or ``DifferentiableGraphBackward``, which hides
    the operations inside it. When the walk stops at such a node the values still decide for
    a Categorical (softmax and wrong-dim normalisations are found as below); when they find
    nothing, :attr:`Diagnosis.hidden_by` names the node and :func:`warn_if_misused` issues a
    :class:`ProvenanceUnavailableWarning` instead of staying silent: a ``sigmoid`` or
    ``logsigmoid`` output would go unseen. ``backend="eager"`` keeps the graph and is checked
    as uncompiled code.

Values (``source="values"``, Categorical only)
    Without a graph (``torch.no_grad()``, tensors built by hand) the numbers are tested along the
    class dim and along dim 0: slices that are all ``<= tol`` with ``sum(exp(slice))`` within
    ``tol`` of 1 are log-probabilities; slices in ``[-tol, 1 + tol]`` summing to 1 within ``tol``
    are probabilities. With ``u`` the unit roundoff of the tensor's dtype, ``w`` that of the
    float32 (float64 for float64) arithmetic of the softmax and of the test, and ``K`` the size
    of the tested dim, ``tol = 3 u (1 + ln K) + 16 w (1 + sqrt K)`` for log-probabilities
    (rounding each ``y = log p`` moves ``sum(exp)`` by at most ``u sum(p |y|) <= u ln K``) and
    ``3 u + 16 w (1 + sqrt K)`` for probabilities, plus ``K u`` times the dtype's smallest
    normal number (float16 subnormals). The ``sqrt K`` term covers torch's float32 sums over
    long dims. The largest deviation measured for torch's softmaxes (CPU and CUDA, float16 to
    float64, 2 to 100000 entries, logit scales 0.01 to 300) is 0.37 of ``tol``.
    What is normalised to within ``tol`` is reported whatever produced it: with many classes
    the logsumexp of an untrained network's rows hardly varies, so in 16 bits (``tol`` about
    0.07 for bfloat16 and 100 classes) a constant shift within ``tol`` of minus that logsumexp
    gives log-probabilities as far as the dtype can tell.
    The property must hold in every slice, and at least one slice must be informative: it
    spreads over more than ``8 tol`` and its top entry holds clearly less than all the mass.
    Slices that are one-hot to within ``tol`` (max-shifted logits of a confident network look
    exactly like log-probabilities) and near-constant slices (a uniform row means the same as
    logits, log-probabilities or probabilities) carry no evidence. 16-bit tensors, whose
    tolerance is coarse, need four informative slices whose top entries differ by ``8 tol``,
    so that a shifted untrained network whose rows are nearly all alike cannot pass by chance.
    Cost: one ``aminmax`` pass and one host sync settle most genuine logits (their range fits
    neither ``[-inf, tol]`` nor ``[-tol, 1 + tol]``); the others get ``exp`` (log-probabilities
    only), a ``sum``, an ``amin`` and an ``amax`` per tested dim, and a second sync.

Detection matrix (``diagnose`` on the tensor the user wrote; :func:`~pyro_logits.check_logits`
on the distribution, where a Bernoulli keeps that tensor but a Categorical keeps only
``logits - logits.logsumexp(-1)``, whose autograd graph still holds the tensor):

=====================================  ==========  ==========  ============  ============
pattern                                diagnose,   diagnose,   check_logits  check_logits
                                       grad        no_grad     grad          no_grad
=====================================  ==========  ==========  ============  ============
log_softmax over class dim (harmless)  yes         yes (a, d)  yes           no (c)
log_softmax over dim 0 (wrong dim)     yes         yes (a)     yes           no (c)
softmax as Categorical logits          yes         yes (a)     yes           no (c)
sigmoid as Bernoulli logits            yes         no (b)      yes           no (b)
logsigmoid as Bernoulli logits         yes         no (b)      yes           no (b)
=====================================  ==========  ==========  ============  ============

(a) when some slice is informative, as above. (b) sigmoid output lies in (0, 1) and logsigmoid
output below 0, and so do plenty of genuine logits: Bernoulli logits are never judged by values.
(c) the tensor given to the Categorical is gone; its normalised ``.logits`` are always
log-probabilities, and probabilities given as logits then look like genuine logits whose rows
spread by at most 1, which untrained networks produce too. (d) a note, not a warning
(:attr:`Diagnosis.warns` is false): rows normalised by their values alone are harmless, and
may be a model's genuine probabilities (``Categorical(logits=p.log())``), which have no raw
scores to pass instead. The output of a compiled function is judged as in the ``no_grad``
columns, and warns :class:`ProvenanceUnavailableWarning` where those say "no".
"""

from __future__ import annotations

import math
import sys
import warnings
from dataclasses import dataclass
from types import FrameType
from typing import Any, Literal

import torch

__all__ = [
    "Diagnosis",
    "LogProbsAsProbsWarning",
    "LogSigmoidAsLogitsWarning",
    "LogSoftmaxAsLogitsWarning",
    "LogitsAsLogProbsWarning",
    "LogitsAsProbsWarning",
    "LogitsWarning",
    "NormalizedOverWrongDimWarning",
    "ProbsAsLogProbsWarning",
    "ProbsAsLogitsWarning",
    "ProvenanceUnavailableWarning",
    "WarnedLocations",
    "diagnose",
    "logsumexp_of_first",
    "normalisation_tolerance",
    "warn_if_misused",
]

Kind = Literal["logits", "log_softmax", "probs", "log_sigmoid", "wrong_dim"]
Source = Literal["autograd", "values"]


# A class attribute of the distributions whose logits a helper has checked (and warned about),
# so that check_logits() does not check them twice.
CHECKED_MARK = "_pyro_logits_checked"


class LogitsWarning(UserWarning):
    """Base class of the warnings about tensors passed where logits are expected."""


class LogSoftmaxAsLogitsWarning(LogitsWarning):
    """Already-normalised log-probabilities (``log_softmax`` output) were given as logits."""


class ProbsAsLogitsWarning(LogitsWarning):
    """Probabilities (``softmax`` or ``sigmoid`` output) were given as logits."""


class LogSigmoidAsLogitsWarning(LogitsWarning):
    """``logsigmoid`` output (``log p``, not ``log p - log(1 - p)``) was given as logits."""


class NormalizedOverWrongDimWarning(LogitsWarning):
    """``log_softmax`` or ``softmax`` was taken over a dim other than the class dim."""


class LogitsAsLogProbsWarning(LogitsWarning):
    """Raw scores were given where log-probabilities are expected (e.g. ``nll_loss`` input)."""


class LogitsAsProbsWarning(LogitsWarning):
    """Raw scores were given where probabilities are expected (e.g. a ``kl_div`` target)."""


class ProbsAsLogProbsWarning(LogitsWarning):
    """Probabilities were given where log-probabilities are expected (``nll_loss(softmax(z))``)."""


class LogProbsAsProbsWarning(LogitsWarning):
    """Log-probabilities were given where probabilities are expected (a ``kl_div`` target)."""


class ProvenanceUnavailableWarning(UserWarning):
    """A compiled function hid what produced a tensor given as logits, so it was not checked.

    Not a :class:`LogitsWarning`: no mistake was found, but one would have gone unseen.
    """


_CATEGORY: dict[str, type[LogitsWarning]] = {
    "log_softmax": LogSoftmaxAsLogitsWarning,
    "probs": ProbsAsLogitsWarning,
    "log_sigmoid": LogSigmoidAsLogitsWarning,
    "wrong_dim": NormalizedOverWrongDimWarning,
}
_FAMILIES = {
    "bernoulli": "bernoulli",
    "relaxed_bernoulli": "bernoulli",
    "categorical": "categorical",
    "one_hot_categorical": "categorical",
    "relaxed_one_hot_categorical": "categorical",
}
_DISPLAY = {"bernoulli": "Bernoulli", "categorical": "Categorical"}


@dataclass(frozen=True)
class Diagnosis:
    """What a tensor given as logits most likely is.

    Attributes
    ----------
    kind : {"logits", "log_softmax", "probs", "log_sigmoid", "wrong_dim"}
        ``"logits"`` when nothing is wrong or nothing can be told.
    harmful : bool
        Whether the distribution differs from the one built from the raw scores
        (``log_softmax`` into a Categorical is redundant but harmless).
    evidence : str
        How it was found, e.g. ``"autograd: produced by softmax over dim -1"``.
    source : {"autograd", "values"} or None
        The kind of evidence; ``None`` when nothing was found.
    family : {"bernoulli", "categorical"}
        The distribution family the tensor was judged for.
    hidden_by : str or None
        The autograd node of a compiled function (``"CompiledFunctionBackward"`` of
        ``torch.compile``, ``"DifferentiableGraphBackward"`` of TorchScript) at which the
        provenance walk stopped, hiding the producing operation; ``None`` otherwise.

    Examples
    --------
    >>> import torch
    >>> d = diagnose(torch.randn(8, 3, requires_grad=True).softmax(-1), "categorical")
    >>> d.kind, d.harmful, d.source, d.category.__name__
    ('probs', True, 'autograd', 'ProbsAsLogitsWarning')
    >>> diagnose(torch.randn(8, 3), "categorical").ok
    True
    """

    kind: Kind
    harmful: bool
    evidence: str
    source: Source | None
    family: str
    hidden_by: str | None = None

    @property
    def ok(self) -> bool:
        """``True`` when the tensor looks like genuine logits (or nothing can be told)."""
        return self.kind == "logits"

    @property
    def unchecked(self) -> bool:
        """``True`` when nothing was found because a compiled function hid the producer."""
        return self.ok and self.hidden_by is not None

    @property
    def category(self) -> type[LogitsWarning] | None:
        """The warning class for this finding, ``None`` when :attr:`ok`."""
        return _CATEGORY.get(self.kind)

    @property
    def warns(self) -> bool:
        """Whether the checks warn on this finding.

        They warn on harmful findings and on a redundant ``log_softmax`` seen in the graph.
        Rows found normalised by their values alone are a note, not a warning: a model that
        holds probabilities (``Categorical(logits=p.log())``) has no raw scores to pass.
        """
        return self.category is not None and (self.harmful or self.source == "autograd")

    def message(
        self, where: str, *, distribution: str | None = None, probs_name: str | None = "probs"
    ) -> str:
        """Format the warning text: where, what, the evidence, harmful or not, the fix.

        Parameters
        ----------
        where : str
            Where the tensor was given, e.g. ``"sample site 'obs'"``.
        distribution : str, optional
            The distribution named in the text (e.g. ``"Binomial"``); defaults to the
            family's, ``"Bernoulli"`` or ``"Categorical"``.
        probs_name : str or None, default "probs"
            The distribution's keyword for probabilities, named in the fix (``"gate"`` for the
            ``gate_logits`` of a zero-inflated distribution); ``None`` when it has none.

        Returns
        -------
        str
            The message; empty when :attr:`ok`, unless :attr:`unchecked` (then the text of
            the :class:`ProvenanceUnavailableWarning`).

        Examples
        --------
        >>> import torch
        >>> x = torch.randn(4, 3, requires_grad=True).sigmoid()
        >>> diagnose(x, "bernoulli").message("argument 'logits'")[:57]
        "argument 'logits': got probabilities where raw logits are"
        """
        if self.ok and not self.unchecked:
            return ""
        if self.unchecked:
            key = "unchecked"
        elif self.source == "values" and not self.harmful:
            key = "normalised_values"
        else:
            key = self.kind
        names = {
            "dist": distribution or _DISPLAY[self.family],
            "or_probs": f", or the probabilities as {probs_name}=" if probs_name else "",
            "probs_note": f"; a model that holds probabilities can pass them as {probs_name}="
            if probs_name
            else "",
        }
        what, harm, fix = (text.format(**names) for text in _TEXT[key, self.family])
        return f"{where}: {what}. Evidence: {self.evidence}. {harm}. {fix}."


_LOGITS_FIX = "Fix: pass the raw scores as logits="
_UNCHECKED_FIX = (
    "To check it, run a step with the function uncompiled, or compiled with "
    'backend="eager", which keeps the autograd graph; or filter ProvenanceUnavailableWarning'
)
# what was found, the harm, the fix; {dist} is the distribution, {or_probs} and {probs_note} name
# its probabilities keyword
_TEXT: dict[tuple[str, str], tuple[str, str, str]] = {
    ("log_softmax", "categorical"): (
        "got normalised log-probabilities (log_softmax output) where raw logits are expected",
        "Harmless: {dist} normalises its logits again, so the distribution is the same "
        "and the log_softmax is redundant",
        f"{_LOGITS_FIX}, e.g. logits=net(x), or filter LogSoftmaxAsLogitsWarning",
    ),
    ("normalised_values", "categorical"): (
        "got rows that are already normalised log-probabilities",
        "Harmless: {dist} normalises its logits again, so the distribution is the same",
        "Nothing to fix{probs_note}",
    ),
    ("log_softmax", "bernoulli"): (
        "got normalised log-probabilities (log_softmax output) where {dist} logits are expected",
        "Wrong: a {dist} logit is log p - log(1 - p), not log p, so every probability of "
        "the model is wrong",
        f"{_LOGITS_FIX}{{or_probs}}",
    ),
    ("probs", "categorical"): (
        "got probabilities where raw logits are expected",
        "Wrong: {dist} applies softmax to its logits, so probabilities given as logits "
        "are squashed towards uniform",
        f"{_LOGITS_FIX} (before softmax){{or_probs}}",
    ),
    ("probs", "bernoulli"): (
        "got probabilities where raw logits are expected",
        "Wrong: {dist} applies sigmoid to its logits, so probabilities in [0, 1] become "
        "probabilities between 0.5 and 0.73",
        f"{_LOGITS_FIX} (before sigmoid){{or_probs}}",
    ),
    ("log_sigmoid", "bernoulli"): (
        "got logsigmoid output (log p) where {dist} logits are expected",
        "Wrong: the logit of sigmoid(x) is x = log p - log(1 - p), not log p, so "
        "every probability ends up below 0.5",
        f"{_LOGITS_FIX} (before logsigmoid)",
    ),
    ("log_sigmoid", "categorical"): (
        "got logsigmoid output where raw logits are expected",
        "Wrong: {dist} renormalises it, so the class probabilities become proportional "
        "to sigmoid(x) instead of softmax(x)",
        f"{_LOGITS_FIX} (before logsigmoid)",
    ),
    ("unchecked", "bernoulli"): (
        "could not tell what produced these logits",
        "Not a mistake found, but sigmoid or logsigmoid output given as logits would go "
        "unseen: elementwise logits are not judged by values",
        _UNCHECKED_FIX,
    ),
    ("unchecked", "categorical"): (
        "could not tell what produced these logits",
        "Not a mistake found, but logsigmoid output given as logits would go unseen, and "
        "softmax or log_softmax output only shows where its rows are clearly normalised",
        _UNCHECKED_FIX,
    ),
    ("wrong_dim", "categorical"): (
        "got a tensor normalised over a dim other than the class dim",
        "Wrong: normalising over another dim ties separate rows together, which silently "
        "changes the model",
        f"{_LOGITS_FIX} ({{dist}} normalises over the class dim itself)",
    ),
}

_FINE = "no sign of log_softmax, softmax, sigmoid or logsigmoid"


def diagnose(x: torch.Tensor, family: str, dim: int = -1) -> Diagnosis:
    """Say whether ``x`` looks like genuine logits for a distribution ``family``.

    Provenance (the autograd graph) is tried first and costs no pass over the data; the value
    test (Categorical only) runs when the graph says nothing. Never warns, never mutates
    ``x``. The detection matrix and tolerances are in the module docstring.

    Parameters
    ----------
    x : torch.Tensor
        The tensor given as logits.
    family : {"bernoulli", "categorical"}
        The distribution family (``"one_hot_categorical"``, ``"relaxed_bernoulli"`` and
        ``"relaxed_one_hot_categorical"`` are accepted as aliases).
    dim : int, default -1
        The class dim (Categorical); ignored for Bernoulli.

    Returns
    -------
    Diagnosis
        ``kind="logits"`` when nothing is wrong or nothing can be told.

    Raises
    ------
    TypeError
        If ``x`` is not a tensor.
    ValueError
        If ``family`` is unknown or ``dim`` is out of range.

    Examples
    --------
    >>> import torch
    >>> import torch.nn.functional as F
    >>> scores = torch.randn(128, 10)
    >>> diagnose(F.log_softmax(scores, dim=-1), "categorical").kind
    'log_softmax'
    >>> diagnose(F.log_softmax(scores, dim=0), "categorical").kind
    'wrong_dim'
    >>> diagnose(scores, "categorical").ok
    True
    """
    if not isinstance(x, torch.Tensor):
        raise TypeError(f"Expected x to be a torch.Tensor but got {type(x).__name__}.")
    if family not in _FAMILIES:
        raise ValueError(f"Expected family to be one of {sorted(_FAMILIES)} but got {family!r}.")
    base = _FAMILIES[family]
    if x.ndim and not -x.ndim <= dim < x.ndim:
        raise ValueError(
            f"Expected dim in [{-x.ndim}, {x.ndim - 1}] for a tensor of shape "
            f"{tuple(x.shape)} but got {dim}."
        )
    walked = _from_autograd(x, base, dim - x.ndim if dim >= 0 else dim)
    hidden_by = walked if isinstance(walked, str) else None
    found = None if isinstance(walked, str) else walked
    if found is None and base == "categorical":
        found = _from_values(x, dim)
    if found is None:
        if hidden_by is None:
            return Diagnosis("logits", False, _FINE, None, base)
        evidence = (
            f"autograd: produced inside a compiled function ({hidden_by}, from "
            f"{_OPAQUE[hidden_by]}), which hides the operations it ran"
        )
        return Diagnosis("logits", False, evidence, None, base, hidden_by)
    kind, harmful, evidence, source = found
    if kind == "wrong_dim":
        evidence += f", not over the class dim {dim}"
    return Diagnosis(kind, harmful, evidence, source, base, hidden_by)


class WarnedLocations:
    """The ``(file, line, warning class)`` of user code already warned about.

    Each mistake warns once, however many sites, steps or calls run the line: Pyro's sequence
    models name a site per time step, and helpers run on every step. As with Python's own
    ``"default"`` action, the record starts afresh when the warning filters are replaced (each
    :class:`warnings.catch_warnings` block, so each test, gets its own).
    """

    def __init__(self) -> None:
        self._seen: set[tuple[str, int, type[Warning]]] = set()
        self._filters: object = None

    def first(self, frame: FrameType | None, category: type[Warning]) -> bool:
        """Record a warning of ``category`` at ``frame``'s line; ``False`` if seen before."""
        if warnings.filters is not self._filters:
            self._seen.clear()
            self._filters = warnings.filters
        if frame is None:
            return True
        key = (frame.f_code.co_filename, frame.f_lineno, category)
        if key in self._seen:
            return False
        self._seen.add(key)
        return True


def warn_if_misused(
    x: torch.Tensor,
    family: str,
    *,
    where: str,
    dim: int = -1,
    distribution: str | None = None,
    probs_name: str | None = "probs",
    once: WarnedLocations | None = None,
) -> Diagnosis:
    """Run :func:`diagnose` and warn when ``x`` is not genuine logits.

    The warning is a :class:`LogitsWarning` subclass, issued at the first stack frame outside
    ``pyro_logits``, ``pyro`` and ``torch``, i.e. the user's line. Findings that are not
    :attr:`Diagnosis.warns` (rows normalised by their values alone) do not warn. When a
    compiled function hid the producer and nothing was found (:attr:`Diagnosis.unchecked`),
    a :class:`ProvenanceUnavailableWarning` says so.

    Parameters
    ----------
    x : torch.Tensor
        The tensor given as logits.
    family : {"bernoulli", "categorical"}
        The distribution family (aliases as in :func:`diagnose`).
    where : str
        Where ``x`` was given; starts the message, e.g.
        ``"argument 'logits' of pyro_logits.categorical"`` or ``"sample site 'obs'"``.
    dim : int, default -1
        The class dim (Categorical).
    distribution, probs_name : str, optional
        The distribution and its probabilities keyword, named in the message as in
        :meth:`Diagnosis.message`.
    once : WarnedLocations, optional
        Warn only the first time a line of user code gives each kind of finding.

    Returns
    -------
    Diagnosis
        The result of :func:`diagnose`.

    Examples
    --------
    >>> import warnings
    >>> import torch
    >>> x = torch.randn(4, 3, requires_grad=True)
    >>> with warnings.catch_warnings(record=True) as caught:
    ...     warnings.simplefilter("always")
    ...     _ = warn_if_misused(torch.sigmoid(x), "bernoulli", where="argument 'logits'")
    >>> caught[0].category.__name__
    'ProbsAsLogitsWarning'
    >>> print(str(caught[0].message)[:57])
    argument 'logits': got probabilities where raw logits are
    """
    diagnosis = diagnose(x, family, dim)
    category: type[Warning] | None = diagnosis.category if diagnosis.warns else None
    if diagnosis.unchecked:
        category = ProvenanceUnavailableWarning
    if category is not None:
        level, frame = user_frame(sys._getframe(1))
        if once is None or once.first(frame, category):
            warnings.warn(
                diagnosis.message(where, distribution=distribution, probs_name=probs_name),
                category=category,
                stacklevel=level + 1,
            )
    return diagnosis


# contextlib: the frames of context managers used as decorators (Pyro's ignore_jit_warnings)
_INTERNAL_PACKAGES = frozenset({"pyro_logits", "pyro", "torch", "contextlib"})


def user_frame(frame: FrameType | None) -> tuple[int, FrameType | None]:
    """The first frame of user code from ``frame`` out.

    User code is any module outside ``pyro_logits``, ``pyro``, ``torch`` and ``contextlib``.

    Returns
    -------
    tuple of (int, frame or None)
        The ``stacklevel`` that points at it (1 being ``frame`` itself), and the frame.
    """
    level = 1
    while frame is not None:
        module = frame.f_globals.get("__name__", "")
        if module.partition(".")[0] not in _INTERNAL_PACKAGES:
            break
        frame = frame.f_back
        level += 1
    return level, frame


# ----------------------------------------------------------------------------------------------
# Provenance


_MAX_STEPS = 8
_KEEP_DIMS = frozenset({"ToCopyBackward0", "CloneBackward0", "AliasBackward0", "SliceBackward0"})
# steps that only move or repeat elements: harmless for Bernoulli, judged elementwise
_BERNOULLI_STEPS = frozenset(
    {
        "ViewBackward0",
        "UnsafeViewBackward0",
        "ReshapeAliasBackward0",
        "PermuteBackward0",
        "TransposeBackward0",
        "TBackward0",
        "SelectBackward0",
        "IndexBackward0",
        "ExpandBackward0",
        "UnsqueezeBackward0",
        "SqueezeBackward0",
        "SqueezeBackward1",
        "SqueezeBackward2",
    }
)
_Found = tuple[Kind, bool, str, Source]
# An autograd node (torch.autograd.graph.Node): the values it saved for backward are
# attributes named by its operation (``_saved_dim``, ...), which no static type declares.
AutogradNode = Any
# autograd nodes that stand for a whole compiled function, hiding the operations inside
_OPAQUE = {
    "CompiledFunctionBackward": "torch.compile",
    "DifferentiableGraphBackward": "TorchScript",
}


def _signed(dim: int) -> int:
    # autograd stores negative dims as unsigned 64-bit integers
    return dim - 2**64 if dim >= 2**63 else dim


def _from_autograd(x: torch.Tensor, family: str, class_dim: int) -> _Found | str | None:
    """Walk up ``x.grad_fn`` through shape-only steps to the producing operation.

    Returns the finding, the name of a compiled function's node (a key of ``_OPAQUE``) when
    the walk stops at one, or ``None``.
    """
    node: AutogradNode = x.grad_fn
    shape = tuple(x.shape)
    # the class dim as a negative index into the current node's output; None for Bernoulli
    cls: int | None = class_dim if family == "categorical" else None
    try:
        for _ in range(_MAX_STEPS):
            if node is None:
                return None
            name = node.name()
            ndim = len(shape)
            produced = _producer(node, name, ndim)
            if produced is not None:
                return _from_producer(*produced, family, cls)
            if name in _KEEP_DIMS or (cls is None and name in _BERNOULLI_STEPS):
                pass  # values kept, and the class dim too (or there is none)
            elif cls is None:  # a Bernoulli step that is not only moving elements
                return _opaque(name)
            elif name == "ExpandBackward0":
                if -cls > len(node._saved_self_sym_sizes):
                    return None
            elif name == "UnsqueezeBackward0":
                where = _signed(node._saved_dim) % ndim
                pos = ndim + cls
                if pos == where:
                    return None
                shape = shape[:where] + shape[where + 1 :]
                cls = pos - (pos > where) - len(shape)
            elif name.startswith("SqueezeBackward"):
                sizes = tuple(node._saved_self_sym_sizes)
                dims = {_signed(int(d)) % len(sizes) for d in _squeezed(node, name, len(sizes))}
                kept = [i for i, s in enumerate(sizes) if not (s == 1 and i in dims)]
                cls = kept[ndim + cls] - len(sizes)
            elif name in _VIEWS:
                # a view keeps the classes when they stay the last dim, e.g. .view(-1, C)
                if cls != -1 or node._saved_self_sym_sizes[-1] != shape[-1]:
                    return None
            elif name in ("PermuteBackward0", "TransposeBackward0"):
                cls = _permuted_class_dim(node, name, ndim, cls)
            else:
                return _opaque(name)
            saved = getattr(node, "_saved_self_sym_sizes", None)
            if saved is not None:
                shape = tuple(int(s) for s in saved)
            node = node.next_functions[0][0]
    except (RuntimeError, AttributeError, IndexError):
        # saved values freed by backward(), or an autograd layout this code does not know
        return None
    return None


_VIEWS = frozenset({"ViewBackward0", "UnsafeViewBackward0", "ReshapeAliasBackward0"})


def _opaque(name: str) -> str | None:
    """The key of ``_OPAQUE`` naming a compiled function's node, or ``None``."""
    # TorchScript's node is "torch::jit::(anonymous namespace)::Differentiable..."
    return next((o for o in _OPAQUE if name.rpartition("::")[2] == o), None)


def _permuted_class_dim(node: AutogradNode, name: str, ndim: int, cls: int) -> int:
    """The class dim of the input of a permute or transpose whose output has it at ``cls``."""
    if name == "PermuteBackward0":
        perm = [_signed(int(d)) % ndim for d in node._saved_dims]
    else:
        perm = list(range(ndim))
        a = _signed(node._saved_dim0) % ndim
        b = _signed(node._saved_dim1) % ndim
        perm[a], perm[b] = perm[b], perm[a]
    return perm[ndim + cls] - ndim


def _squeezed(node: AutogradNode, name: str, ndim: int) -> tuple[int, ...]:
    if name == "SqueezeBackward0":
        return tuple(range(ndim))
    if name == "SqueezeBackward1":
        return (node._saved_dim,)
    return tuple(node._saved_dim)


def _producer(node: AutogradNode, name: str, ndim: int) -> tuple[str, int | None, str] | None:
    """Return ``(kind, dim as a negative index, description)`` for the operations looked for."""
    if name in ("LogSoftmaxBackward0", "SoftmaxBackward0"):
        kind = "log_softmax" if name.startswith("Log") else "softmax"
        return _over(kind, node._saved_dim, ndim, kind)
    if name == "SigmoidBackward0":
        return "sigmoid", None, "sigmoid"
    if name == "LogSigmoidBackward0":
        return "log_sigmoid", None, "logsigmoid"
    if name == "LogBackward0":
        inner = node.next_functions[0][0]
        inner_name = inner.name() if inner is not None else ""
        if inner_name == "SoftmaxBackward0":
            return _over("log_softmax", inner._saved_dim, ndim, "log(softmax(...))")
        if inner_name == "SigmoidBackward0":
            return "log_sigmoid", None, "log(sigmoid(...))"
        return None
    if name == "SubBackward0":
        lse = logsumexp_of_first(node)
        if lse is not None:
            return _over("log_softmax", lse._saved_dim[0], ndim, "x - x.logsumexp(...)")
    return None


def _over(kind: str, saved_dim: int, ndim: int, op: str) -> tuple[str, int, str]:
    dim = _signed(saved_dim)
    return kind, dim - ndim if dim >= 0 else dim, f"{op} over dim {dim}"


def logsumexp_of_first(node: AutogradNode) -> AutogradNode | None:
    """The ``LogsumexpBackward0`` node when ``node`` computes ``a - a.logsumexp(d, keepdim)``."""
    inputs = node.next_functions
    if len(inputs) != 2 or inputs[0][0] is None or inputs[1][0] is None:
        return None
    first, second = inputs[0][0], inputs[1][0]
    if second.name() != "LogsumexpBackward0" or second.next_functions[0][0] is not first:
        return None
    if node._saved_alpha != 1 or len(second._saved_dim) != 1:
        return None
    return second if second._saved_keepdim else None


def _from_producer(
    op_kind: str, op_dim: int | None, op: str, family: str, cls: int | None
) -> _Found:
    """Turn the producing operation into a finding for ``family``."""
    evidence = f"autograd: produced by {op}"
    if op_kind == "sigmoid":
        return "probs", True, evidence, "autograd"
    if op_kind == "log_sigmoid":
        return "log_sigmoid", True, evidence, "autograd"
    if cls is not None and op_dim != cls:
        return "wrong_dim", True, evidence, "autograd"
    if op_kind == "softmax":
        return "probs", True, evidence, "autograd"
    if family == "categorical":
        return "log_softmax", False, f"{evidence} (the class dim)", "autograd"
    return "log_softmax", True, evidence, "autograd"


# ----------------------------------------------------------------------------------------------
# Values


_SPREAD = 8.0  # an informative row spreads over more than this many tolerances
_TOP = 4.0  # ... and its top entry is this many tolerances away from holding all the mass


def normalisation_tolerance(dtype: torch.dtype, size: int, *, log: bool) -> float:
    """Bound on ``|sum - 1|`` for a normalised slice of ``size`` entries stored in ``dtype``."""
    work = torch.float64 if dtype == torch.float64 else torch.float32
    u = torch.finfo(dtype).eps / 2
    w = torch.finfo(work).eps / 2
    rounding = 3 * u * (1 + math.log(size)) if log else 3 * u
    subnormal = size * torch.finfo(dtype).tiny * u
    return rounding + 16 * w * (1 + math.sqrt(size)) + subnormal


def _from_values(x: torch.Tensor, dim: int) -> _Found | None:
    """Test whether slices along ``dim`` (or dim 0) are log-probabilities or probabilities."""
    if not x.is_floating_point() or x.ndim == 0 or x.numel() == 0:
        return None
    class_dim = dim % x.ndim
    x = x.detach()
    for d in range(x.ndim):  # an expanded (stride-0) dim repeats rows: keep one copy
        if x.stride(d) == 0 and x.shape[d] > 1:
            x = x.narrow(d, 0, 1)
    min_rows = 4 if torch.finfo(x.dtype).bits < 32 else 1
    dims = [class_dim] + ([0] if x.ndim > 1 and class_dim != 0 else [])
    dims = [d for d in dims if x.shape[d] > 1 and x.numel() // x.shape[d] >= min_rows]
    if not dims:
        return None
    loose = max(normalisation_tolerance(x.dtype, x.shape[d], log=True) for d in dims)
    work = torch.float64 if x.dtype == torch.float64 else torch.float32
    with torch.no_grad():
        c = x.to(work)
        lo, hi = torch.stack(torch.aminmax(c)).tolist()
        log = hi <= loose
        if not (log or (lo >= -loose and hi <= 1 + loose)):
            return None  # most genuine logits stop here, after one pass and one sync
        tols = [normalisation_tolerance(x.dtype, x.shape[d], log=log) for d in dims]
        summed = c.exp() if log else c
        stats: list[torch.Tensor] = []
        for d, tol in zip(dims, tols, strict=True):
            row_lo, row_hi = c.amin(d), c.amax(d)  # faster than aminmax(dim=d) on CPU
            flat = (row_lo - row_hi > -_SPREAD * tol).flatten()
            tops = row_hi.flatten()
            stats += torch.aminmax(summed.sum(d))
            low_tops = tops.masked_fill(flat, math.inf)
            stats += [low_tops.kthvalue(min_rows).values, low_tops.amin()]
            stats.append(tops.masked_fill(flat, -math.inf).amax())
        values = torch.stack(stats).tolist()
    for i, (d, tol) in enumerate(zip(dims, tols, strict=True)):
        sum_min, sum_max, kth_top, min_top, max_top = values[5 * i : 5 * i + 5]
        deviation = max(1 - sum_min, sum_max - 1)
        in_range = hi <= tol if log else lo >= -tol and hi <= 1 + tol
        # min_rows rows spread out and leave mass off their top entry (16-bit: not all alike)
        informative = kth_top <= (0 if log else 1) - _TOP * tol
        diverse = min_rows == 1 or max_top - min_top >= _SPREAD * tol
        if not (in_range and deviation <= tol and informative and diverse):
            continue
        shown = dim if d == class_dim else d
        count = x.numel() // x.shape[d]
        noun = "row" if d == class_dim else "slice"
        rows = f"all {count} {noun}s" if count > 1 else f"the only {noun}"
        if log:
            found: Kind = "log_softmax"
            evidence = (
                f"values: all <= 0 and logsumexp over dim {shown} is within "
                f"{_fmt(deviation)} of 0 in {rows}"
            )
        else:
            found = "probs"
            evidence = (
                f"values: all in [0, 1] and summing to 1 over dim {shown} "
                f"(within {_fmt(deviation)}) in {rows}"
            )
        if d == class_dim:
            return found, found == "probs", evidence, "values"
        return "wrong_dim", True, evidence, "values"
    return None


def _fmt(deviation: float) -> str:
    return f"{deviation:.0e}" if deviation else "0"
