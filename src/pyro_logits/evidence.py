"""What a tensor given as logits is, told by the autograd graph that produced it or by its values.

:func:`pyro_logits.checks.diagnose` tries the graph first, then (Categorical only) the values.

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
    nothing, :attr:`~pyro_logits.checks.Diagnosis.hidden_by` names the node and
    :func:`~pyro_logits.checks.warn_if_misused` issues a
    :class:`~pyro_logits.checks.ProvenanceUnavailableWarning` instead of staying silent: a
    ``sigmoid`` or ``logsigmoid`` output would go unseen. ``backend="eager"`` keeps the graph
    and is checked as uncompiled code.

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
"""

from __future__ import annotations

import math
from typing import Any, Literal

import torch

__all__ = [
    "COMPILED_NODES",
    "Found",
    "Kind",
    "Source",
    "from_autograd",
    "from_values",
    "logsumexp_of_first",
    "normalisation_tolerance",
]

Kind = Literal["logits", "log_softmax", "probs", "log_sigmoid", "wrong_dim"]
Source = Literal["autograd", "values"]

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
# A finding: its kind, whether it is harmful, the evidence in words, and the kind of evidence
Found = tuple[Kind, bool, str, Source]
# An autograd node (torch.autograd.graph.Node): the values it saved for backward are
# attributes named by its operation (``_saved_dim``, ...), which no static type declares.
AutogradNode = Any
# autograd nodes that stand for a whole compiled function, hiding the operations inside
COMPILED_NODES = {
    "CompiledFunctionBackward": "torch.compile",
    "DifferentiableGraphBackward": "TorchScript",
}


def _signed(dim: int) -> int:
    # autograd stores negative dims as unsigned 64-bit integers
    return dim - 2**64 if dim >= 2**63 else dim


def from_autograd(x: torch.Tensor, family: str, class_dim: int) -> Found | str | None:
    """Walk up ``x.grad_fn`` through shape-only steps to the producing operation.

    Returns the finding, the name of a compiled function's node (a key of ``COMPILED_NODES``) when
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
    """The key of ``COMPILED_NODES`` naming a compiled function's node, or ``None``."""
    # TorchScript's node is "torch::jit::(anonymous namespace)::Differentiable..."
    return next((o for o in COMPILED_NODES if name.rpartition("::")[2] == o), None)


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
) -> Found:
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


def from_values(x: torch.Tensor, dim: int) -> Found | None:
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
