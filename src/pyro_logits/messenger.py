"""``check_logits``: warn about misused logits at the sample sites of an unchanged Pyro model.

The messenger looks at every sample site, observed or latent, whose distribution (through
``Independent``, ``MaskedDistribution`` and ``ExpandedDistribution`` wrappers; ``poutine.scale``
wraps nothing) is a Bernoulli, Categorical, OneHotCategorical or one of their relaxed and
straight-through forms, built from ``logits=``. Sites built from ``probs=`` are not checked:
they do not expect logits.

What it can see: a Bernoulli keeps the tensor it was given; a Categorical keeps only
``logits - logits.logsumexp(-1, keepdim=True)``, so the given tensor is recovered from the
autograd graph of that normalisation. Under ``torch.no_grad()`` (``pyro.infer.Predictive``
included) the given Categorical tensor is gone and Bernoulli logits are never judged by values
(see :mod:`pyro_logits.checks`), so nothing is reported there: check one training step, or use
the ``pyro_logits`` likelihood helpers, which see the tensor itself.

Cost: each site is checked on its 1st, 2nd, 4th, 8th, ... call and never again after it has
warned, so ``n`` steps cost ``log2(n)`` checks per site plus a dictionary update per call;
later checks still catch values that only become detectable as training moves on.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, TypeVar, overload

import torch
from pyro.distributions.torch_distribution import ExpandedDistribution, MaskedDistribution
from pyro.poutine.messenger import Messenger
from torch.distributions import (
    Bernoulli,
    Categorical,
    Independent,
    OneHotCategorical,
    RelaxedBernoulli,
    RelaxedOneHotCategorical,
)
from torch.distributions.relaxed_bernoulli import LogitRelaxedBernoulli
from torch.distributions.relaxed_categorical import ExpRelaxedCategorical

from pyro_logits.checks import CHECKED_MARK, warn_if_misused

if TYPE_CHECKING:
    from pyro.poutine.runtime import Message

__all__ = ["CheckLogitsMessenger", "check_logits"]

_T = TypeVar("_T")
_WRAPPERS = (Independent, MaskedDistribution, ExpandedDistribution)


class CheckLogitsMessenger(Messenger):
    """Warn once per sample site whose logits look like log-probabilities or probabilities.

    Warnings are :class:`~pyro_logits.LogitsWarning` subclasses pointing at the model's
    ``pyro.sample`` line. Each site name warns at most once per instance: reuse one instance
    across steps (as a decorator it is reused automatically).

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
        self._calls: dict[str, int] = {}
        self._warned: set[str] = set()

    def _pyro_sample(self, msg: Message) -> None:
        name = msg["name"]
        if name is None or name in self._warned or msg["infer"].get(CHECKED_MARK):
            return  # CHECKED_MARK: an observe_* helper checked (and warned) already
        calls = self._calls.get(name, 0) + 1
        self._calls[name] = calls
        if calls & (calls - 1):  # check on calls 1, 2, 4, 8, ... only
            return
        given = _given_logits(msg["fn"])
        if given is None:
            return
        logits, family, label = given
        where = f"sample site {name!r} ({label}(logits=...))"
        if not warn_if_misused(logits, family, where=where).ok:
            self._warned.add(name)


@overload
def check_logits(fn: None = None) -> CheckLogitsMessenger: ...


@overload
def check_logits(fn: Callable[..., _T]) -> Callable[..., _T]: ...


def check_logits(
    fn: Callable[..., _T] | None = None,
) -> CheckLogitsMessenger | Callable[..., _T]:
    """Check the logits of every Bernoulli- and Categorical-like sample site of a model.

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


def _given_logits(fn: object) -> tuple[torch.Tensor, str, str] | None:
    """Return ``(logits as given, family, distribution name)`` or ``None`` if not checked."""
    while isinstance(fn, _WRAPPERS):
        fn = fn.base_dist
    if getattr(fn, CHECKED_MARK, False):
        return None  # built by a pyro_logits helper, which checked (and warned) already
    label = type(fn).__name__
    if isinstance(fn, (RelaxedBernoulli, RelaxedOneHotCategorical)):
        fn = fn.base_dist
    if isinstance(fn, (OneHotCategorical, ExpRelaxedCategorical)):
        fn = fn._categorical
    if isinstance(fn, (Bernoulli, LogitRelaxedBernoulli)):
        family = "bernoulli"
    elif isinstance(fn, Categorical):
        family = "categorical"
    else:
        return None
    logits = vars(fn).get("logits")
    if logits is None or getattr(fn, "_param", None) is not logits:
        return None  # built from probs
    if family == "categorical":
        logits = _before_normalisation(logits)
        if logits is None:
            return None
    return logits, family, label


def _before_normalisation(stored: torch.Tensor) -> torch.Tensor | None:
    """Recover ``x`` from Categorical's ``x - x.logsumexp(-1, keepdim=True)`` (maybe expanded)."""
    node = stored.grad_fn
    try:
        while node is not None and node.name() == "ExpandBackward0":
            node = node.next_functions[0][0]
        if node is None or node.name() != "SubBackward0":
            return None
        lse = node.next_functions[1][0]
        if lse is None or lse.name() != "LogsumexpBackward0":
            return None
        if lse.next_functions[0][0] is not node.next_functions[0][0]:
            return None
        return lse._saved_self
    except RuntimeError:  # saved tensors freed by an earlier backward()
        return None
