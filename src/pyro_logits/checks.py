"""Tell genuine logits from log-probabilities and probabilities passed as logits.

``Categorical(logits=...)`` and ``Bernoulli(logits=...)`` accept any real tensor, so passing
``log_softmax``, ``softmax``, ``sigmoid`` or ``logsigmoid`` output where raw scores belong runs
without an error. :func:`diagnose` looks at a tensor and says what it most likely is, without
warning; :func:`warn_if_misused` turns a finding into a :class:`LogitsWarning`.

Two kinds of evidence are used, cheapest first: the autograd graph that produced the tensor
(``source="autograd"``), then, for a Categorical, its values (``source="values"``). How each
is read, what a compiled function hides, and the value test's tolerances are in
:mod:`pyro_logits.evidence`.

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

import sys
import warnings
from dataclasses import dataclass
from types import FrameType

import torch

from pyro_logits.evidence import (
    COMPILED_NODES,
    Kind,
    Source,
    from_autograd,
    from_values,
)

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
    "warn_if_misused",
]

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
    ``x``. The detection matrix is in the module docstring, the tolerances in
    :mod:`pyro_logits.evidence`.

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
    walked = from_autograd(x, base, dim - x.ndim if dim >= 0 else dim)
    hidden_by = walked if isinstance(walked, str) else None
    found = None if isinstance(walked, str) else walked
    if found is None and base == "categorical":
        found = from_values(x, dim)
    if found is None:
        if hidden_by is None:
            return Diagnosis("logits", False, _FINE, None, base)
        evidence = (
            f"autograd: produced inside a compiled function ({hidden_by}, from "
            f"{COMPILED_NODES[hidden_by]}), which hides the operations it ran"
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
