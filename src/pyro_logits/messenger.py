"""``check_logits``: warn about misused logits in an unchanged Pyro model or PyTorch loop.

Two things are checked while the messenger is active:

- every sample site, observed or latent, whose distribution is parametrised by logits:
  Bernoulli, Binomial, Geometric, NegativeBinomial, ContinuousBernoulli, Categorical,
  Multinomial, OneHotCategorical, their relaxed and straight-through forms, the ``gate_logits``
  (and the NegativeBinomial logits) of Pyro's zero-inflated distributions. Distributions that
  wrap others are looked through, at any depth: ``Independent``, masked and expanded
  distributions (``poutine.scale`` wraps nothing), both parts of ``MixtureSameFamily``, and
  ``DiscreteHMM``'s initial and transition logits and observation distribution. Sites built
  from ``probs=`` are not checked: they do not expect logits;
- the losses of ``torch.nn.functional`` and their modules (``nn.CrossEntropyLoss``, ...), with
  or without a Pyro model around them (:mod:`pyro_logits.losses`).

Inference paths: the check sees every site a model samples while it is active, including the
sites a ``poutine.block`` hides from the handlers outside it, so ``with check_logits():``
around ``MCMC.run`` (which blocks the model), ``svi.step`` (``JitTrace_ELBO`` too),
``Importance.run`` and ``Predictive`` all check the model; the block still hides the sites
from Pyro's own handlers. ``NUTS(check_logits(model))`` works too.

What it can see: a Bernoulli keeps the tensor it was given; a Categorical keeps only
``logits - logits.logsumexp(-1, keepdim=True)``, so the given tensor is recovered from the
autograd graph of that normalisation. Under ``torch.no_grad()`` (``pyro.infer.Predictive``
included) the given Categorical tensor is gone and Bernoulli logits are never judged by values
(see :mod:`pyro_logits.checks`), so nothing is reported there: check one training step, or use
the ``pyro_logits`` likelihood helpers, which see the tensor itself.

Threads: Pyro's handler stack, and the losses and ``poutine.block`` the check extends, are
process-wide, and Pyro is not thread-safe: running models in several threads at once is not
supported (use processes). Entering ``check_logits()`` while it is active in another thread
raises a ``RuntimeError`` rather than corrupting the stack.

One warning per mistake: a line of the model warns once per kind of mistake, however many
sites it makes (Pyro's sequence models name a site per time step, ``f"y_{t}"``). Nested checks
(``with check_logits():`` around a model wrapped in another) leave every site and loss to the
outermost one, which outlives the others, so a mistake warns once however they nest; one
instance entered again while active (``with c: with c:``, a recursive function decorated with
``@check_logits``) ignores the inner entry.

Compiled networks: ``torch.compile`` hides the operations of the compiled function from the
autograd graph (``backend="eager"`` does not), so where their output is given as logits and its
values show nothing, a :class:`~pyro_logits.checks.ProvenanceUnavailableWarning` says it was not
checked (see :mod:`pyro_logits.checks`).

Cost: each site is checked on its 1st, 2nd, 4th, 8th, ... call and never again after it has
warned, so ``n`` steps cost ``log2(n)`` checks per site plus a dictionary update per call;
later checks still catch values that only become detectable as training moves on.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, NamedTuple, TypeVar, overload

import torch
from pyro.distributions import DiscreteHMM, ZeroInflatedDistribution
from pyro.distributions.torch_distribution import ExpandedDistribution, MaskedDistribution
from pyro.poutine import runtime
from pyro.poutine.block_messenger import BlockMessenger
from pyro.poutine.messenger import Messenger
from torch.distributions import (
    Bernoulli,
    Binomial,
    Categorical,
    ContinuousBernoulli,
    Geometric,
    Independent,
    MixtureSameFamily,
    Multinomial,
    NegativeBinomial,
    OneHotCategorical,
    RelaxedBernoulli,
    RelaxedOneHotCategorical,
)
from torch.distributions.relaxed_bernoulli import LogitRelaxedBernoulli
from torch.distributions.relaxed_categorical import ExpRelaxedCategorical

from pyro_logits.checks import (
    CHECKED_MARK,
    WarnedLocations,
    warn_if_misused,
)
from pyro_logits.evidence import logsumexp_of_first
from pyro_logits.losses import LossChecker

if TYPE_CHECKING:
    from pyro.poutine.runtime import Message

__all__ = ["CheckLogitsMessenger", "check_logits"]

_T = TypeVar("_T")
# thread id -> how many check_logits() contexts it has entered (Pyro's stack is process-wide)
_ACTIVE_THREADS: dict[int, int] = {}
# the active messengers, outermost first: they also see the sites a poutine.block hides
_ACTIVE: list[CheckLogitsMessenger] = []
_BLOCK_PROCESS_MESSAGE = BlockMessenger._process_message
_WRAPPERS = (Independent, MaskedDistribution, ExpandedDistribution)
# distributions whose logits are elementwise log-odds, as a Bernoulli's
_BERNOULLI_LIKE = (
    Bernoulli,
    LogitRelaxedBernoulli,
    Binomial,
    Geometric,
    NegativeBinomial,
    ContinuousBernoulli,
)


class CheckLogitsMessenger(Messenger):
    """Warn once per mistake where a sample site's logits look like probabilities.

    Log-probabilities, ``sigmoid``, ``softmax`` and ``logsigmoid`` outputs are reported.
    Warnings are :class:`~pyro_logits.LogitsWarning` subclasses pointing at the model's
    ``pyro.sample`` line, one per line and kind of mistake, however many sites the line makes
    (``f"y_{t}"`` in a loop) and steps run it: reuse one instance across steps (as a decorator
    it is reused automatically). Sites hidden by ``poutine.block`` (``MCMC.run`` runs the model
    under one) are checked too.

    Examples
    --------
    >>> import warnings
    >>> import pyro
    >>> import pyro.distributions as dist
    >>> import torch
    >>> import torch.nn.functional as F
    >>> scores = torch.randn(5, 3, requires_grad=True)
    >>> def model():
    ...     with pyro.plate("data", 5):
    ...         pyro.sample("y", dist.Categorical(logits=F.softmax(scores, -1)))
    >>> with warnings.catch_warnings(record=True) as caught:
    ...     warnings.simplefilter("always")
    ...     with CheckLogitsMessenger():
    ...         model()
    >>> caught[0].category.__name__
    'ProbsAsLogitsWarning'
    """

    def __init__(self) -> None:
        super().__init__()
        self._depth = 0  # entries of this instance that are still open (recursion)
        self._calls: dict[str, int] = {}
        self._warned_sites: set[str] = set()
        self._warned = WarnedLocations()
        self._losses = LossChecker()

    def __enter__(self) -> CheckLogitsMessenger:
        me = threading.get_ident()
        others = [t for t, n in _ACTIVE_THREADS.items() if n and t != me]
        if others:
            raise RuntimeError(
                f"check_logits() is already active in another thread ({others[0]}): Pyro's "
                f"handler stack is shared by the whole process, so handlers entered by several "
                f"threads at once corrupt it. Run one model per process (multiprocessing, "
                f"torch.multiprocessing), not per thread."
            )
        if self._depth:  # entered again inside itself: it is on the stack already
            self._depth += 1
            return self
        result = super().__enter__()
        self._depth = 1
        _ACTIVE_THREADS[me] = _ACTIVE_THREADS.get(me, 0) + 1
        if not _ACTIVE:
            BlockMessenger._process_message = _process_blocked  # type: ignore[method-assign,assignment]
        _ACTIVE.append(self)
        self._losses.activate()
        return result

    def __exit__(self, exc_type: Any, exc_value: Any, traceback: Any) -> None:
        self._depth -= 1
        if self._depth:
            return
        me = threading.get_ident()
        try:
            self._losses.deactivate()
        finally:
            _ACTIVE.remove(self)
            if not _ACTIVE:
                BlockMessenger._process_message = _BLOCK_PROCESS_MESSAGE  # type: ignore[method-assign]
            _ACTIVE_THREADS[me] -= 1
            if not _ACTIVE_THREADS[me]:
                del _ACTIVE_THREADS[me]
            super().__exit__(exc_type, exc_value, traceback)

    def _pyro_sample(self, msg: Message) -> None:
        if _ACTIVE and _ACTIVE[0] is self:  # nested checks: the outermost one checks
            self._check_site(msg)

    def _check_site(self, msg: Message) -> None:
        name = msg["name"]
        if name is None or name in self._warned_sites:
            return
        calls = self._calls.get(name, 0) + 1
        self._calls[name] = calls
        if calls & (calls - 1):  # check on calls 1, 2, 4, 8, ... only
            return
        for given in _given_logits(msg["fn"]):
            diagnosis = warn_if_misused(
                given.logits,
                given.family,
                where=f"sample site {name!r} ({given.label})",
                distribution=given.distribution,
                probs_name=given.probs_name,
                once=self._warned,
            )
            if diagnosis.warns:
                self._warned_sites.add(name)
                return


def _process_blocked(block: BlockMessenger, msg: Message) -> None:
    """``BlockMessenger._process_message``, and the check of the outermost messenger it hides."""
    _BLOCK_PROCESS_MESSAGE(block, msg)
    if not msg["stop"] or msg["type"] != "sample" or not _ACTIVE:
        return
    stack = runtime._PYRO_STACK
    below = stack[: stack.index(block)] if block in stack else stack
    if any(frame is _ACTIVE[0] for frame in below):
        _ACTIVE[0]._check_site(msg)


@overload
def check_logits(fn: None = None) -> CheckLogitsMessenger: ...


@overload
def check_logits(fn: Callable[..., _T]) -> Callable[..., _T]: ...


def check_logits(
    fn: Callable[..., _T] | None = None,
) -> CheckLogitsMessenger | Callable[..., _T]:
    """Check every logits-parametrised sample site and every torch loss called inside.

    Usable as a context manager (``with check_logits(): ...``), a decorator (``@check_logits``
    or ``@check_logits()``) and a wrapper (``check_logits(model)``), like ``pyro.poutine``
    handlers.

    Parameters
    ----------
    fn : callable, optional
        A stochastic function to wrap.

    Returns
    -------
    CheckLogitsMessenger or callable
        The messenger when ``fn`` is ``None``, else ``fn`` wrapped in one.

    Examples
    --------
    >>> import warnings
    >>> import pyro
    >>> import pyro.distributions as dist
    >>> import torch
    >>> import torch.nn.functional as F
    >>> net = torch.nn.Linear(4, 3)
    >>> @check_logits
    ... def model(x, y):
    ...     lhat = F.log_softmax(net(x), -1)
    ...     with pyro.plate("data", len(x)):
    ...         pyro.sample("obs", dist.Categorical(logits=lhat), obs=y)
    >>> with warnings.catch_warnings(record=True) as caught:
    ...     warnings.simplefilter("always")
    ...     for step in range(100):
    ...         model(torch.randn(8, 4), torch.randint(3, (8,)))
    >>> [w.category.__name__ for w in caught]
    ['LogSoftmaxAsLogitsWarning']
    """
    messenger = CheckLogitsMessenger()
    return messenger if fn is None else messenger(fn)


class _Given(NamedTuple):
    """A tensor a distribution was given as logits, and how to name it in a message."""

    logits: torch.Tensor
    family: str
    label: str  # e.g. "MixtureSameFamily(Categorical(logits=...), ...)"
    distribution: str
    probs_name: str | None  # the distribution's keyword for probabilities


def _given_logits(fn: object) -> list[_Given]:
    """Every tensor given as logits to ``fn`` or the distributions it wraps."""
    found: list[_Given] = []
    _collect(fn, "{}", found)
    return found


def _collect(fn: object, outer: str, found: list[_Given], display: str | None = None) -> None:
    """Add the logits of ``fn`` to ``found``; ``outer`` places ``fn``'s label in its wrapper's."""
    while isinstance(fn, _WRAPPERS):
        fn = fn.base_dist
    if getattr(fn, CHECKED_MARK, False):
        return  # built by a pyro_logits helper, which checked (and warned) already
    name = type(fn).__name__
    if isinstance(fn, ZeroInflatedDistribution):
        gate = vars(fn).get("gate_logits")
        if gate is not None:
            label = outer.format(f"{name}(gate_logits=...)")
            found.append(_Given(gate, "bernoulli", label, name, "gate"))
        _collect(fn.base_dist, outer, found, display=name)
        return
    if isinstance(fn, MixtureSameFamily):
        _collect(fn.mixture_distribution, outer.format(f"{name}({{}}, ...)"), found)
        _collect(fn.component_distribution, outer.format(f"{name}(..., {{}})"), found)
        return
    if isinstance(fn, DiscreteHMM):
        for param in ("initial_logits", "transition_logits"):
            given = _before_normalisation(getattr(fn, param))
            if given is not None:
                label = outer.format(f"{name}({param}=...)")
                found.append(_Given(given, "categorical", label, name, None))
        _collect(fn.observation_dist, outer.format(f"{name}(observation_dist={{}})"), found)
        return
    display = display or name
    label = outer.format(f"{display}(logits=...)")
    if isinstance(fn, (RelaxedBernoulli, RelaxedOneHotCategorical)):
        fn = fn.base_dist
    if isinstance(fn, (OneHotCategorical, ExpRelaxedCategorical, Multinomial)):
        fn = fn._categorical
    logits = vars(fn).get("logits")
    if logits is None or getattr(fn, "_param", logits) is not logits:
        return  # built from probs
    if isinstance(fn, _BERNOULLI_LIKE):
        found.append(_Given(logits, "bernoulli", label, display, "probs"))
    elif isinstance(fn, Categorical):
        logits = _before_normalisation(logits)
        if logits is not None:
            found.append(_Given(logits, "categorical", label, display, "probs"))


def _before_normalisation(stored: torch.Tensor) -> torch.Tensor | None:
    """Recover ``x`` from Categorical's ``x - x.logsumexp(-1, keepdim=True)`` (maybe expanded)."""
    node = stored.grad_fn
    try:
        while node is not None and node.name() == "ExpandBackward0":
            node = node.next_functions[0][0]
        if node is None or node.name() != "SubBackward0":
            return None
        lse = logsumexp_of_first(node)
        return lse._saved_self if lse is not None else None
    except RuntimeError:  # saved tensors freed by an earlier backward()
        return None
