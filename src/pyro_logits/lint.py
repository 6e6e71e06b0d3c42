"""Find logits mistakes in source code before it runs: ``pyro-logits lint PATH...``.

A static checker built on the standard library's :mod:`ast` only (it never imports torch). It
reads ``.py`` files and the code cells of ``.ipynb`` notebooks and reports findings in the usual
linter form ``path:line:col: CODE message`` (for notebooks ``path:cell N:line:col: ...``, where
``N`` counts every cell from the top, starting at 1, and ``line`` is the line inside that cell).

Rules (see :data:`RULES` for the rationale and the fix of each):

=======  ==========================================================================
PL000    file could not be read, decoded or parsed
PL001    log_softmax output as Categorical logits or cross_entropy input (redundant)
PL002    log_softmax / softmax over dim 0 of a batch of examples
PL003    softmax / sigmoid output where logits (or, for nll_loss, log-probs) belong
PL004    log-probabilities (logsigmoid, log_softmax) as Bernoulli-type logits
PL005    base-10 log where a logit is meant
PL006    BCELoss / binary_cross_entropy fed logits
PL007    logits averaged over samples (dim 0) before softmax / argmax
PL008    log-probabilities passed as ``probs``
PL009    logits passed as ``probs`` (the first positional argument is ``probs``)
=======  ==========================================================================

How values are followed
    Within one function (or the module body) a name assigned from ``log_softmax``, ``softmax``,
    ``sigmoid``, ``logsigmoid``, a base-10 log or ``logits.mean(0)`` keeps that provenance until it
    is reassigned; any other expression (``lhat * 2``, ``lhat / T``), an in-place method
    (``lhat.mul_(2)``) or an item assignment (``lhat[0] = 0``) clears it. Value-preserving methods
    (``.detach()``, ``.to()``, ``.float()``, ...) keep it. After ``if``/``else``, loops and
    ``try`` a provenance survives only if every path agrees, so a finding means the value has
    that provenance on every path. Calls are followed through ``nn.LogSoftmax``/``nn.Softmax``/
    ``nn.Sigmoid``/``nn.LogSigmoid`` modules and an ``nn.Sequential`` ending in one (assigned to a
    local name or to ``self.<attr>``), loss modules (``nn.CrossEntropyLoss()`` and friends), and
    functions, methods and ``nn.Module`` classes of the same file whose every ``return`` gives the
    same provenance.

Wrong dim (PL002)
    ``dim=0`` is only wrong when dim 0 indexes examples, which a static checker cannot see in
    general: ``softmax(weights, dim=0)`` over a 1-D weight vector, or a policy network applied to
    one state, is right. PL002 therefore needs evidence that dim 0 is a batch dim: the tensor
    comes (through network calls, elementwise functions and arithmetic) from a loop over a data
    loader (``for x, y in train_loader``), from a tensor that sizes a ``pyro.plate``
    (``pyro.plate("data", len(x))``), or from a reshape that keeps the batch dim
    (``x.view(-1, 784)``, ``x.view(x.size(0), -1)``, ``x.flatten(1)``). Without such evidence a
    log_softmax over dim 0 used as Categorical logits is reported as PL001, with a note on the dim.

Positions (PL008, PL009)
    Only for classes of torch, pyro and numpyro (known from the imports, or written as
    ``dist.``/``D.``/``td.``/``torch.``), whose first positional parameter is ``probs``;
    TensorFlow Probability and distrax take ``logits`` first. Keyword arguments are checked
    whatever the library. Loss functions and loss modules (``cross_entropy``, ``BCELoss``, ...)
    are recognised from torch only (MLX's ``binary_cross_entropy`` takes logits by default).

Logits averaged over samples (PL007)
    Fires on ``X.mean(0)``, ``X.mean(dim=0)``, ``X.mean(axis=0)``, ``torch.mean(X, 0)`` where
    ``X`` is named like logits (``logits``, ``*_logits``, ``samples["logits"]``,
    ``torch.stack(logits_list)``) and the mean then reaches ``softmax``/``log_softmax``/
    ``sigmoid``, ``argmax``/``max``/``topk``, a ``logits=`` argument or a classification loss,
    directly or through a local name. Averaging logits for any other purpose is not reported.

Suppression
    ``# noqa`` on the reported line silences every finding there; ``# noqa: PL001`` or
    ``# noqa: PL001,PL003`` only the codes listed. The reported line is the line of the
    offending argument (for PL007 the line of the ``.mean``).

Notebooks
    Code cells are analysed in order as one program (a name assigned in one cell is followed into
    later cells). Lines that are IPython syntax (``%magic``, ``!shell``, ``x = !cmd``, ``obj?``)
    are skipped, as are cells starting with a non-Python cell magic (``%%bash``, ...). A cell that
    does not parse gives a PL000 finding for that cell and is left out of the analysis.

Examples
--------
>>> source = '''
... import torch.nn.functional as F
... import pyro.distributions as dist
... lhat = F.log_softmax(net(x), dim=-1)
... d = dist.Categorical(logits=lhat)
... '''
>>> [f.code for f in lint_source(source)]
['PL001']
>>> print(lint_source("dist.Bernoulli(logits=z.sigmoid())", path="m.py")[0])  # doctest: +ELLIPSIS
m.py:1:23: PL003 `z.sigmoid` output used as `Bernoulli` logits, which expects raw scores...
"""

from __future__ import annotations

import argparse
import ast
import io
import json
import os
import re
import sys
import tokenize
import warnings
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import NamedTuple

__all__ = [
    "RULES",
    "Finding",
    "Flake8Checker",
    "Rule",
    "cli",
    "iter_source_files",
    "lint_file",
    "lint_notebook",
    "lint_paths",
    "lint_source",
    "main",
]


@dataclass(frozen=True)
class Rule:
    """One lint rule: its stable code, what it finds, why that is wrong and how to fix it."""

    code: str
    summary: str
    why: str
    fix: str


RULES: dict[str, Rule] = {
    rule.code: rule
    for rule in (
        Rule(
            "PL000",
            "file could not be read, decoded or parsed",
            "nothing in the file was checked",
            "fix the syntax error or the encoding, or exclude the file",
        ),
        Rule(
            "PL001",
            "log_softmax output as Categorical/OneHotCategorical/Multinomial logits, or as the "
            "input of cross_entropy/CrossEntropyLoss",
            "redundant: these normalise the logits themselves, and log_softmax of "
            "log-probabilities changes nothing; the extra pass costs time and hides intent",
            "pass the raw scores (`Categorical(logits=net(x))`)",
        ),
        Rule(
            "PL002",
            "log_softmax/softmax over dim 0 of a batch (seen from a data loader, a plate or a "
            "reshape), used as class logits, probs or a loss input",
            "dim 0 of a network output is the batch dim: each class is normalised across the "
            "examples of the batch instead of each example across its classes",
            "normalise over the class dim (`dim=-1`), or pass the raw scores as logits",
        ),
        Rule(
            "PL003",
            "softmax/sigmoid output as `logits=` (Bernoulli, Categorical, ...) or as the input of "
            "binary_cross_entropy_with_logits/BCEWithLogitsLoss/cross_entropy/CrossEntropyLoss "
            "(raw scores expected) or nll_loss/NLLLoss (log-probabilities expected)",
            "probabilities are not logits: the distribution or loss applies softmax/sigmoid again "
            "and squashes every prediction towards uniform; training still runs",
            "pass the raw scores; or keep the probabilities and use `probs=`",
        ),
        Rule(
            "PL004",
            "log-probabilities (logsigmoid, log_softmax, log of sigmoid) as Bernoulli-type logits "
            "or binary_cross_entropy_with_logits input",
            "a logit is log(p) - log(1 - p), not log(p): logsigmoid(z) as logits gives "
            "sigmoid(logsigmoid(z)) < 1/2 for every z",
            "pass the raw scores z",
        ),
        Rule(
            "PL005",
            "base-10 log (`log10`, `log(p) / log(10)`, `/ 2.3026`) assigned to a name with "
            "`logit` in it, returned by a function so named, or passed as `logits=`",
            "logits are natural-log odds; base-10 values are 2.3 times too small, so every "
            "probability derived from them is pulled towards 1/2",
            "use `torch.log`/`torch.logit` (natural log)",
        ),
        Rule(
            "PL006",
            "BCELoss/binary_cross_entropy fed a value or module output named like logits "
            "(`logits`, `*_logits`, `scores`, `self.logits(h)`)",
            "BCELoss expects probabilities in [0, 1]; raw scores are rejected at run time at best",
            "use `binary_cross_entropy_with_logits`/`BCEWithLogitsLoss` on the raw scores "
            "(also more stable than sigmoid followed by BCELoss)",
        ),
        Rule(
            "PL007",
            "logits averaged over dim 0 (samples) and then fed to softmax/argmax/logits=",
            "the posterior predictive averages probabilities: softmax(mean(logits)) is not "
            "mean(softmax(logits)) and is over-confident",
            "average probabilities: `logits.softmax(-1).mean(0)`, or "
            "`pyro_logits.predictive_log_probs(logits)` for log-probabilities",
        ),
        Rule(
            "PL008",
            "log-probabilities (log_softmax, logsigmoid) passed as probs (positionally or "
            "`probs=`)",
            "the first positional argument of Categorical/Bernoulli/... is `probs`: "
            "log-probabilities are negative, so the distribution is invalid (or, with "
            "validation off, silently wrong)",
            "pass them as `logits=` (or the raw scores as `logits=`)",
        ),
        Rule(
            "PL009",
            "a value named like logits passed as probs (positionally or `probs=`)",
            "the first positional argument of Categorical/Bernoulli/... is `probs`, so "
            "`Categorical(logits)` treats raw scores as probabilities",
            "write `Categorical(logits=logits)`",
        ),
    )
}

_NOQA = re.compile(
    r"#\s*noqa(?::[\s]?(?P<codes>[A-Z]+[0-9]+(?:[,\s]+[A-Z]+[0-9]+)*))?", re.IGNORECASE
)
_SKIPPED_DIRS = frozenset({"__pycache__", "build", "dist", "node_modules", "venv"})


@dataclass(frozen=True, order=True)
class Finding:
    """One finding, printed as ``path:line:col: CODE message``.

    ``line`` and ``col`` are 1-based; for notebooks ``cell`` is the 1-based cell number and
    ``line`` counts within that cell.
    """

    path: str
    cell: int
    line: int
    col: int
    code: str
    message: str

    def __str__(self) -> str:
        where = f"cell {self.cell}:" if self.cell else ""
        return f"{self.path}:{where}{self.line}:{self.col}: {self.code} {self.message}"


# --------------------------------------------------------------------------------------------
# What the analysis knows about names and calls.

_NORMALISERS = {
    "log_softmax": "log_softmax",
    "softmax": "softmax",
    "sigmoid": "sigmoid",
    "expit": "sigmoid",
    "logsigmoid": "logsigmoid",
    "log_sigmoid": "logsigmoid",
    "log_expit": "logsigmoid",
}
_NORMALISER_MODULES = {
    "LogSoftmax": "log_softmax",
    "Softmax": "softmax",
    "Softmax2d": "softmax",
    "Sigmoid": "sigmoid",
    "LogSigmoid": "logsigmoid",
}
_LOSS_MODULES = {
    "CrossEntropyLoss": "cross_entropy",
    "BCEWithLogitsLoss": "binary_cross_entropy_with_logits",
    "BCELoss": "binary_cross_entropy",
    "NLLLoss": "nll_loss",
}
_LOSSES = frozenset(_LOSS_MODULES.values())
_LOG_KINDS = frozenset({"log_softmax", "logsigmoid"})
_PROB_KINDS = frozenset({"softmax", "sigmoid"})
# Methods that return the same values (dtype, device, autograd or memory changes only).
_IDENTITY = frozenset(
    {"detach", "clone", "contiguous", "to", "float", "double", "half", "bfloat16", "cpu", "cuda"}
    | {"type", "type_as", "requires_grad_"}
)
# Methods that keep a tensor's name meaning (logits stay logits) though they change its shape.
_RESHAPE = _IDENTITY | {
    "squeeze",
    "unsqueeze",
    "view",
    "view_as",
    "reshape",
    "reshape_as",
    "flatten",
    "expand",
    "expand_as",
    "permute",
    "transpose",
    "t",
}
_ELEMENTWISE = frozenset(
    {"relu", "tanh", "gelu", "elu", "selu", "silu", "leaky_relu", "softplus", "dropout"}
    | {"exp", "abs", "neg", "sqrt", "square", "clamp", "clip"}
)
_PREDICTION = frozenset({"argmax", "argmin", "max", "min", "topk", "sort", "argsort"})
_MEANS = frozenset({"mean", "nanmean"})
_NET_WORDS = ("net", "model", "layer", "fc", "linear", "encoder", "decoder", "classifier", "mlp")
_DEFAULT_MODULES = frozenset(
    {"torch", "F", "nn", "functional", "np", "numpy", "jnp", "jax", "scipy", "special", "math"}
    | {"tf", "dist", "D", "td", "tdist", "pyro", "numpyro"}
)
_CELL_MAGICS_PYTHON = frozenset({"time", "timeit", "capture", "prun", "debug", "memit"})
_PROB_WORDS = frozenset(
    {"prob", "probs", "probability", "probabilities", "sigmoid", "softmax", "normalized"}
)


class _Dist(NamedTuple):
    family: str  # "categorical" or "binary"
    probs_pos: int | None
    logits_pos: int | None = None


_DISTRIBUTIONS: dict[str, _Dist] = {
    "Categorical": _Dist("categorical", 0),
    "OneHotCategorical": _Dist("categorical", 0),
    "OneHotCategoricalStraightThrough": _Dist("categorical", 0),
    "CategoricalProbs": _Dist("categorical", 0),
    "CategoricalLogits": _Dist("categorical", None, 0),
    "Multinomial": _Dist("categorical", 1),
    "MultinomialProbs": _Dist("categorical", 0),
    "MultinomialLogits": _Dist("categorical", None, 0),
    "RelaxedOneHotCategorical": _Dist("categorical", 1),
    "RelaxedOneHotCategoricalStraightThrough": _Dist("categorical", 1),
    "ExpRelaxedCategorical": _Dist("categorical", 1),
    "Bernoulli": _Dist("binary", 0),
    "BernoulliProbs": _Dist("binary", 0),
    "BernoulliLogits": _Dist("binary", None, 0),
    "ContinuousBernoulli": _Dist("binary", 0),
    "RelaxedBernoulli": _Dist("binary", 1),
    "RelaxedBernoulliStraightThrough": _Dist("binary", 1),
    "LogitRelaxedBernoulli": _Dist("binary", 1),
    "Binomial": _Dist("binary", 1),
    "BinomialProbs": _Dist("binary", 0),
    "BinomialLogits": _Dist("binary", None, 0),
    "ExtendedBinomial": _Dist("binary", 1),
    "Geometric": _Dist("binary", 0),
    "GeometricProbs": _Dist("binary", 0),
    "GeometricLogits": _Dist("binary", None, 0),
    "NegativeBinomial": _Dist("binary", 1),
    "NegativeBinomialProbs": _Dist("binary", 1),
    "NegativeBinomialLogits": _Dist("binary", None, 1),
    "ZeroInflatedNegativeBinomial": _Dist("binary", None),
    "ZeroInflatedPoisson": _Dist("binary", None),
}


@dataclass(frozen=True)
class _Value:
    """What the analysis knows about the value of an expression.

    ``kind`` is one of: ``log_softmax``, ``softmax``, ``sigmoid``, ``logsigmoid``, ``log10``,
    ``logit_mean`` (tensor values with a provenance); ``data`` (a tensor whose dim 0 indexes
    examples, nothing else known); ``ln10`` (the constant log(10)); ``module``, ``loss``,
    ``instance``, ``function``, ``class`` (callables). ``batched``: dim 0 indexes examples (seen
    from a data loader, a ``pyro.plate`` sized by the tensor, or ``x.view(batch_size, -1)``).
    """

    kind: str
    source: str = ""
    line: int = 0
    dim0: bool = False
    batched: bool = False
    returns: str = ""  # module: the kind its output has ("" for a raw network output)
    loss: str = ""  # loss: the functional name
    node: ast.AST | None = None  # logit_mean: the .mean call; function/class: the definition
    owner: _ClassInfo | None = None  # function: the class of a method


@dataclass(eq=False)
class _ClassInfo:
    node: ast.ClassDef
    attrs: dict[str, _Value] = field(default_factory=dict)
    methods: dict[str, ast.FunctionDef | ast.AsyncFunctionDef] = field(default_factory=dict)
    is_module: bool = False


def _same(a: _Value | None, b: _Value | None) -> _Value | None:
    """The value both paths agree on, or ``None``."""
    if a is None or b is None:
        return None
    if a == b:
        return a
    if (a.kind, a.dim0, a.returns, a.loss, a.node) == (b.kind, b.dim0, b.returns, b.loss, b.node):
        return _Value(a.kind, a.source, a.line, a.dim0, a.batched and b.batched, a.returns, a.loss)
    return None


def _merge(envs: Sequence[dict[str, _Value]]) -> dict[str, _Value]:
    first, *rest = envs
    merged = {}
    for name, value in first.items():
        for other in rest:
            value = _same(value, other.get(name))
            if value is None:
                break
        if value is not None:
            merged[name] = value
    return merged


def _dotted(node: ast.AST) -> str | None:
    """``a.b.c`` for a chain of attributes on a name, else ``None``."""
    parts = []
    while isinstance(node, ast.Attribute):
        parts.append(node.attr)
        node = node.value
    if isinstance(node, ast.Name):
        parts.append(node.id)
        return ".".join(reversed(parts))
    return None


def _int(node: ast.AST | None) -> int | None:
    if isinstance(node, ast.Constant) and type(node.value) is int:
        return node.value
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub):
        inner = _int(node.operand)
        return None if inner is None else -inner
    return None


def _number(node: ast.AST) -> float | None:
    if isinstance(node, ast.Constant) and type(node.value) in (int, float):
        return float(node.value)
    return None


def _short(node: ast.AST, limit: int = 40) -> str:
    try:
        text = ast.unparse(node)
    except RecursionError:
        return "..."
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _words(name: str) -> list[str]:
    snake = re.sub(r"(?<=[a-z0-9])(?=[A-Z])", "_", name).lower()
    return [w.rstrip("0123456789") for w in snake.split("_") if w]


def _logits_name(name: str, *, scores: bool = False) -> bool:
    """``logits``, ``y_logits``, ``logitsHat``, ``logit_p``; optionally ``scores``."""
    words = _words(name)
    if scores and words in (["scores"], ["score"]):
        return True
    return any(w in ("logit", "logits") for w in words) and not _PROB_WORDS.intersection(words)


def _logits_expr(node: ast.AST, *, scores: bool = False) -> str | None:
    """The logits-like name an expression reads (through reshapes and indexing), or ``None``."""
    while True:
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):
            if node.func.attr in _RESHAPE:
                node = node.func.value
                continue
            name = node.func.attr  # a call of a module named like logits: self.logits(h)
            return name if _logits_name(name) else None
        if isinstance(node, ast.Subscript):
            key = node.slice
            if isinstance(key, ast.Constant) and isinstance(key.value, str):
                return key.value if _logits_name(key.value, scores=scores) else None
            node = node.value
            continue
        break
    if isinstance(node, ast.Name):
        name = node.id
    elif isinstance(node, ast.Attribute):
        name = node.attr
    elif isinstance(node, ast.Call) and isinstance(node.func, ast.Name):
        name = node.func.id
    else:
        return None
    return name if _logits_name(name, scores=scores) else None


def _stop_positional(args: Sequence[ast.expr]) -> list[ast.expr]:
    """Positional arguments up to the first ``*args`` (whose positions are unknown after it)."""
    out = []
    for arg in args:
        if isinstance(arg, ast.Starred):
            break
        out.append(arg)
    return out


def _bound_names(nodes: Iterable[ast.AST], *, mutations: bool) -> set[str]:
    """Names bound in these statements outside nested scopes (and, optionally, mutated)."""
    out: set[str] = set()
    stack = list(nodes)
    while stack:
        node = stack.pop()
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            out.add(node.name)
            continue
        if isinstance(node, ast.Lambda):
            continue
        if isinstance(node, ast.Name) and isinstance(node.ctx, (ast.Store, ast.Del)):
            out.add(node.id)
        elif isinstance(node, (ast.Import, ast.ImportFrom)):
            out.update((a.asname or a.name).split(".")[0] for a in node.names)
        elif isinstance(node, (ast.ExceptHandler, ast.MatchAs, ast.MatchStar)) and node.name:
            out.add(node.name)
        elif isinstance(node, ast.MatchMapping) and node.rest:
            out.add(node.rest)
        elif mutations:
            root = None
            if isinstance(node, (ast.Subscript, ast.Attribute)) and isinstance(node.ctx, ast.Store):
                root = node.value
            elif (
                isinstance(node, ast.Call)
                and isinstance(node.func, ast.Attribute)
                and node.func.attr.endswith("_")
                and not node.func.attr.startswith("_")
            ):
                root = node.func.value
            if isinstance(root, ast.Name):
                out.add(root.id)
        stack.extend(ast.iter_child_nodes(node))
    return out


def _function_locals(node: ast.FunctionDef | ast.AsyncFunctionDef) -> set[str]:
    args = node.args
    params = [*args.posonlyargs, *args.args, *args.kwonlyargs, args.vararg, args.kwarg]
    names = _bound_names(node.body, mutations=False)
    names.update(a.arg for a in params if a is not None)
    for inner in ast.walk(node):
        if isinstance(inner, (ast.Global, ast.Nonlocal)):
            names.difference_update(inner.names)
    return names


def _falls_through(body: Sequence[ast.stmt]) -> bool:
    return not body or not isinstance(body[-1], (ast.Return, ast.Raise))


# --------------------------------------------------------------------------------------------
# The analysis.


class _Args(NamedTuple):
    """A call's arguments (up to any ``*args``) and keywords, with their values."""

    positional: list[ast.expr]
    values: list[_Value | None]
    keywords: dict[str, tuple[ast.expr, _Value | None]]

    def get(self, index: int | None, *names: str) -> tuple[ast.expr | None, _Value | None]:
        if index is not None and index < len(self.positional):
            return self.positional[index], self.values[index]
        for name in names:
            if name in self.keywords:
                return self.keywords[name]
        return None, None


class _Analyzer:
    """Walks one module, following provenance through names, and records findings."""

    def __init__(self, tree: ast.Module) -> None:
        self.tree = tree
        self.found: dict[tuple[int, int, str], tuple[int, int, str, str]] = {}
        self.reported_means: set[ast.AST] = set()
        self.muted = False
        self.aliases: dict[str, str] = {}  # local name -> what it was imported as
        self.modules = set(_DEFAULT_MODULES)  # names whose attributes are functions, not methods
        self.star_torch = False
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                for alias in node.names:
                    local = alias.asname or alias.name.split(".")[0]
                    self.aliases[local] = alias.name if alias.asname else local
                    self.modules.add(local)
            elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
                for alias in node.names:
                    if alias.name == "*":
                        self.star_torch |= node.module.split(".")[0] in _TORCH_ROOTS
                        continue
                    local = alias.asname or alias.name
                    self.aliases[local] = f"{node.module}.{alias.name}"
                    if alias.name[:1].islower() and alias.name not in _STAR_NAMES:
                        self.modules.add(local)  # a module, as in: from torch.nn import functional
        for stmt in tree.body:  # tfd = tfp.distributions
            dotted = _dotted(stmt.value) if isinstance(stmt, ast.Assign) else None
            if dotted and "." in dotted and dotted.split(".")[0] in self.aliases:
                for target in stmt.targets:  # type: ignore[attr-defined]
                    if isinstance(target, ast.Name):
                        self.aliases[target.id] = self.qualify(dotted)
                        self.modules.add(target.id)
        counts: dict[str, int] = {}
        defs: dict[str, ast.AST] = {}
        for stmt in tree.body:
            for name in _bound_names([stmt], mutations=False):
                counts[name] = counts.get(name, 0) + 1
            if isinstance(stmt, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                defs[stmt.name] = stmt
        # Top-level functions and classes bound once, for calls analysed before their `def`.
        self.defs = {name: node for name, node in defs.items() if counts[name] == 1}
        self.summaries: dict[ast.AST, _Value | None] = {}
        self.in_progress: set[ast.AST] = set()
        self.classes: dict[ast.ClassDef, _ClassInfo] = {}
        self.context: dict[ast.AST, tuple[_ClassInfo | None, str | None]] = {}
        self.pending: list[ast.FunctionDef | ast.AsyncFunctionDef] = []
        self.globals: dict[str, _Value] = {}
        # The scope being analysed.
        self.cls: _ClassInfo | None = None
        self.self_name: str | None = None
        self.func: ast.FunctionDef | ast.AsyncFunctionDef | None = None
        self.locals: set[str] | None = None
        self.returns: list[_Value | None] | None = None

    def qualify(self, dotted: str) -> str:
        root, _, rest = dotted.partition(".")
        root = self.aliases.get(root, root)
        return f"{root}.{rest}" if rest else root

    def torch_like(self, func: ast.expr) -> bool:
        """Whether a callee comes from torch, pyro or numpyro (where ``probs`` comes first)."""
        if isinstance(func, ast.Name):
            path = self.aliases.get(func.id)
            return path.split(".")[0] in _TORCH_ROOTS if path else self.star_torch
        dotted = _dotted(func.value) if isinstance(func, ast.Attribute) else None
        if dotted is None:
            return False
        root = dotted.split(".")[0]
        if root in self.aliases:
            return self.aliases[root].split(".")[0] in _TORCH_ROOTS
        return root in _TORCH_NAMES

    # -- driver -------------------------------------------------------------------------------

    def run(self) -> list[tuple[int, int, str, str]]:
        self.block(self.tree.body, self.globals)
        while self.pending:
            self.function_summary(self.pending.pop(0))
        return sorted(self.found.values())

    def report(self, node: ast.AST, code: str, message: str) -> None:
        if not self.muted:
            line, col = node.lineno, node.col_offset  # type: ignore[attr-defined]
            self.found.setdefault((line, col, code), (line, col, code, message))

    def function_summary(
        self, node: ast.FunctionDef | ast.AsyncFunctionDef, owner: _ClassInfo | None = None
    ) -> _Value | None:
        """Analyse a function once; return the provenance that all its ``return``s agree on."""
        if node in self.summaries or node in self.in_progress:
            return self.summaries.get(node)
        self.in_progress.add(node)
        cls, self_name = self.context.get(node, (owner, None))
        params = [*node.args.posonlyargs, *node.args.args]
        plain = not any(_dotted(d) in ("staticmethod", "classmethod") for d in node.decorator_list)
        if cls is not None and cls.methods.get(node.name) is node and params and plain:
            self_name = params[0].arg
        saved = (self.cls, self.self_name, self.func, self.locals, self.returns, self.muted)
        self.cls, self.self_name, self.func, self.returns = cls, self_name, node, []
        self.locals, self.muted = _function_locals(node), False
        try:
            env = dict.fromkeys(_plate_sized(node) & self.locals, _DATA)
            self.block(node.body, env)
            returns = self.returns
            if _falls_through(node.body) or any(
                isinstance(n, (ast.Yield, ast.YieldFrom)) for n in ast.walk(node)
            ):
                returns.append(None)
            summary = returns[0] if returns else None
            for value in returns[1:]:
                summary = _same(summary, value)
            if summary is not None and summary.kind not in _TENSOR_KINDS:
                summary = None
            self.summaries[node] = summary
        finally:
            self.in_progress.discard(node)
            self.cls, self.self_name, self.func, self.locals, self.returns, self.muted = saved
        return summary

    def class_info(self, node: ast.ClassDef) -> _ClassInfo:
        """Methods, module-valued ``self.<attr>`` assignments, and whether it is an nn.Module."""
        if node in self.classes:
            return self.classes[node]
        info = _ClassInfo(node)
        self.classes[node] = info
        for stmt in node.body:
            if isinstance(stmt, (ast.FunctionDef, ast.AsyncFunctionDef)):
                info.methods[stmt.name] = stmt
        bases = [b.value if isinstance(b, ast.Subscript) else b for b in node.bases]
        info.is_module = "forward" in info.methods or any(
            "Module" in name or name == "Sequential"
            for name in ((_dotted(b) or "").rsplit(".", 1)[-1] for b in bases)
        )
        assigned: dict[str, list[_Value | None]] = {}
        mutated: set[str] = set()
        saved = (self.cls, self.self_name, self.locals, self.muted)
        try:
            for method in info.methods.values():
                params = [*method.args.posonlyargs, *method.args.args]
                me = params[0].arg if params else None
                self.cls, self.self_name, self.muted = info, me, True
                self.locals = _function_locals(method)
                for inner in ast.walk(method):
                    if isinstance(inner, ast.Assign):
                        for target in inner.targets:
                            if isinstance(target, ast.Attribute) and _dotted(target.value) == me:
                                value = None
                                if isinstance(inner.value, ast.Call):
                                    value = self.ev(inner.value, {})
                                if value is not None and value.kind not in _MODULE_KINDS:
                                    value = None
                                assigned.setdefault(target.attr, []).append(value)
                    elif isinstance(inner, (ast.AugAssign, ast.AnnAssign)):
                        if isinstance(inner.target, ast.Attribute):
                            mutated.add(inner.target.attr)
                    elif isinstance(inner, ast.Call) and isinstance(inner.func, ast.Attribute):
                        owner = inner.func.value
                        if inner.func.attr in _MUTATORS and isinstance(owner, ast.Attribute):
                            mutated.add(owner.attr)
                    elif (
                        isinstance(inner, ast.Subscript)
                        and isinstance(inner.ctx, ast.Store)
                        and isinstance(inner.value, ast.Attribute)
                    ):
                        mutated.add(inner.value.attr)
        finally:
            self.cls, self.self_name, self.locals, self.muted = saved
        for attr, values in assigned.items():
            value = values[0]
            for other in values[1:]:
                value = _same(value, other)
            if value is not None and attr not in mutated:
                info.attrs[attr] = value
        return info

    # -- statements ---------------------------------------------------------------------------

    def block(self, stmts: Sequence[ast.stmt], env: dict[str, _Value]) -> None:
        for stmt in stmts:
            self.stmt(stmt, env)

    def join(self, env: dict[str, _Value], envs: Sequence[dict[str, _Value]]) -> None:
        """Replace ``env`` with what all the paths ``envs`` agree on."""
        merged = _merge(envs)
        env.clear()
        env.update(merged)

    def stmt(self, node: ast.stmt, env: dict[str, _Value]) -> None:
        if isinstance(node, ast.Assign):
            value_node = node.value
            values = None
            if isinstance(value_node, (ast.Tuple, ast.List)):
                values = [self.ev(e, env) for e in value_node.elts]
            value = None if values is not None else self.ev(value_node, env)
            for target in node.targets:
                elts = getattr(target, "elts", None)
                if values is None or elts is None:
                    self.assign(target, value, value_node, env)
                elif len(elts) == len(values) and not any(
                    isinstance(e, ast.Starred)
                    for e in [*elts, *value_node.elts]  # type: ignore[attr-defined]
                ):
                    for elt, elt_value, expr in zip(elts, values, value_node.elts, strict=True):  # type: ignore[attr-defined]
                        self.assign(elt, elt_value, expr, env)
                else:
                    self.assign(target, None, value_node, env)
        elif isinstance(node, ast.AnnAssign):
            if node.value is not None:
                self.assign(node.target, self.ev(node.value, env), node.value, env)
        elif isinstance(node, ast.AugAssign):
            self.ev(node.value, env)
            self.assign(node.target, None, node.value, env)
        elif isinstance(node, ast.Return):
            value = self.ev(node.value, env) if node.value is not None else None
            if self.returns is not None:
                self.returns.append(value)
            if node.value is not None and self.func is not None and _logits_name(self.func.name):
                self.check_log10(node.value, value, f"the return value of `{self.func.name}`")
        elif isinstance(node, ast.If):
            self.ev(node.test, env)
            outs = [dict(env), dict(env)]
            self.block(node.body, outs[0])
            self.block(node.orelse, outs[1])
            self.join(env, outs)
        elif isinstance(node, (ast.For, ast.AsyncFor, ast.While)):
            targets: set[str] = set()
            if isinstance(node, ast.While):
                self.ev(node.test, env)
            else:
                self.ev(node.iter, env)
                targets = _bound_names([node.target], mutations=True)
            # What holds at the start of every iteration: what the body does not touch.
            killed = _bound_names(node.body, mutations=True) | targets
            entry = {k: v for k, v in env.items() if k not in killed}
            inner = dict(entry)
            if not isinstance(node, ast.While):
                inner.update(dict.fromkeys(_loader_targets(node.target, node.iter), _DATA))
            self.block(node.body, inner)
            after = _merge([entry, inner])
            self.block(node.orelse, after)
            self.join(env, [after])
        elif isinstance(node, (ast.With, ast.AsyncWith)):
            for item in node.items:
                self.ev(item.context_expr, env)
                if item.optional_vars is not None:
                    self.assign(item.optional_vars, None, item.context_expr, env)
            self.block(node.body, env)
        elif isinstance(node, ast.Try) or type(node).__name__ == "TryStar":
            body: list[ast.stmt] = node.body  # type: ignore[attr-defined]
            killed = _bound_names(body, mutations=True)
            main_env = dict(env)
            self.block(body, main_env)
            self.block(node.orelse, main_env)  # type: ignore[attr-defined]
            outs = [main_env]
            for handler in node.handlers:  # type: ignore[attr-defined]
                handler_env = {k: v for k, v in env.items() if k not in killed}
                if handler.type is not None:
                    self.ev(handler.type, handler_env)
                if handler.name:
                    handler_env.pop(handler.name, None)
                self.block(handler.body, handler_env)
                outs.append(handler_env)
            self.join(env, outs)
            self.block(node.finalbody, env)  # type: ignore[attr-defined]
        elif isinstance(node, ast.Match):
            self.ev(node.subject, env)
            outs = [dict(env)]
            for case in node.cases:
                case_env = dict(env)
                for name in _bound_names([case.pattern], mutations=False):
                    case_env.pop(name, None)
                if case.guard is not None:
                    self.ev(case.guard, case_env)
                self.block(case.body, case_env)
                outs.append(case_env)
            self.join(env, outs)
        elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            for expr in [*node.decorator_list, *node.args.defaults, *node.args.kw_defaults]:
                if expr is not None:
                    self.ev(expr, env)
            self.context.setdefault(node, (self.cls, self.self_name))
            env[node.name] = _Value("function", node=node, owner=self.cls)
            self.pending.append(node)
        elif isinstance(node, ast.ClassDef):
            for expr in [*node.decorator_list, *node.bases]:
                self.ev(expr, env)
            info = self.class_info(node)
            env[node.name] = _Value("class", node=node)
            saved, self.cls = self.cls, info
            class_env: dict[str, _Value] = {}
            for stmt in node.body:
                if isinstance(stmt, (ast.FunctionDef, ast.AsyncFunctionDef)):
                    for expr in [*stmt.decorator_list, *stmt.args.defaults]:
                        self.ev(expr, class_env)
                    self.context.setdefault(stmt, (info, None))
                    self.pending.append(stmt)
                else:
                    self.stmt(stmt, class_env)
            self.cls = saved
        elif isinstance(node, (ast.Global, ast.Nonlocal)):
            for name in node.names:
                env.pop(name, None)
        elif isinstance(node, (ast.Delete, ast.Import, ast.ImportFrom)):
            for name in _bound_names([node], mutations=True):
                env.pop(name, None)
        else:  # Expr, Assert, Raise, ...
            for child in ast.iter_child_nodes(node):
                if isinstance(child, ast.stmt):
                    self.stmt(child, env)
                else:
                    self.ev(child, env)

    def assign(
        self, target: ast.expr, value: _Value | None, expr: ast.expr, env: dict[str, _Value]
    ) -> None:
        if isinstance(target, ast.Name):
            if value is None:
                env.pop(target.id, None)
            else:
                env[target.id] = value
            if _logits_name(target.id):
                self.check_log10(expr, value, f"`{target.id}`")
            return
        if isinstance(target, ast.Attribute):
            self.ev(target.value, env)
            if _logits_name(target.attr):
                self.check_log10(expr, value, f"`{_short(target)}`")
        elif isinstance(target, ast.Subscript):
            self.ev(target.value, env)
            self.ev(target.slice, env)
        for name in _bound_names([target], mutations=True):
            env.pop(name, None)

    # -- expressions --------------------------------------------------------------------------

    def lookup(self, name: str, env: dict[str, _Value]) -> _Value | None:
        if name in env:
            return env[name]
        if self.locals is not None and name in self.locals:
            return None
        value = self.globals.get(name)
        if value is not None:
            return value if value.kind in _GLOBAL_KINDS else None
        node = self.defs.get(name)
        if isinstance(node, ast.ClassDef):
            return _Value("class", node=node)
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            return _Value("function", node=node)
        return None

    def is_self(self, node: ast.AST | None) -> bool:
        return (
            self.cls is not None
            and self.self_name is not None
            and isinstance(node, ast.Name)
            and node.id == self.self_name
        )

    def ev(self, node: ast.AST, env: dict[str, _Value]) -> _Value | None:
        """Evaluate an expression: check the calls in it; return what is known of its value."""
        if isinstance(node, ast.Name):
            return self.lookup(node.id, env) if isinstance(node.ctx, ast.Load) else None
        if isinstance(node, ast.Call):
            return self.call(node, env)
        if isinstance(node, ast.BinOp):
            spine = []  # a + b + c + ... nests to the left: walk it without recursion
            while isinstance(node, ast.BinOp):
                spine.append(node)
                node = node.left
            value = self.ev(node, env)
            for binop in reversed(spine):
                value = self.binop(binop, value, self.ev(binop.right, env))
            return value
        if isinstance(node, ast.UnaryOp):
            return _DATA if _batched(self.ev(node.operand, env)) else None
        if isinstance(node, ast.IfExp):
            self.ev(node.test, env)
            return _same(self.ev(node.body, env), self.ev(node.orelse, env))
        if isinstance(node, ast.NamedExpr):
            value = self.ev(node.value, env)
            self.assign(node.target, value, node.value, env)
            return value
        if isinstance(node, ast.Attribute):
            self.ev(node.value, env)
            if self.is_self(node.value):
                assert self.cls is not None
                method = self.cls.methods.get(node.attr)
                if node.attr in self.cls.attrs:
                    return self.cls.attrs[node.attr]
                if method is not None and any(
                    (_dotted(d) or "").endswith("property") for d in method.decorator_list
                ):
                    return self.function_summary(method, self.cls)
                if method is not None:
                    return _Value("function", node=method, owner=self.cls)
            return None
        if isinstance(
            node, (ast.Lambda, ast.ListComp, ast.SetComp, ast.GeneratorExp, ast.DictComp)
        ):
            # A new scope: the names it binds hide the enclosing ones.
            hidden = _bound_names(ast.iter_child_nodes(node), mutations=False)
            if isinstance(node, ast.Lambda):
                args = node.args
                params = [*args.posonlyargs, *args.args, *args.kwonlyargs, args.vararg, args.kwarg]
                hidden.update(a.arg for a in params if a is not None)
            inner = {k: v for k, v in env.items() if k not in hidden}
            for child in ast.iter_child_nodes(node):
                self.ev(child, inner)
            return None
        for child in ast.iter_child_nodes(node):
            self.ev(child, env)
        return None

    def binop(self, node: ast.BinOp, left: _Value | None, right: _Value | None) -> _Value | None:
        numbers = _number(node.left), _number(node.right)

        def log10() -> _Value:
            return _Value("log10", f"`{_short(node)}`", node.lineno)

        if isinstance(node.op, ast.Div) and (
            (right is not None and right.kind == "ln10")
            or (numbers[1] is not None and abs(numbers[1] - _LN10) < 1e-4)
        ):
            return log10()  # log(p) / log(10)
        if isinstance(node.op, ast.Mult) and any(
            n is not None and abs(n - 1 / _LN10) < 1e-5 for n in numbers
        ):
            return log10()  # log(p) * log10(e)
        if isinstance(node.op, (ast.Add, ast.Sub)) and left and right and left.kind == "log10":
            return log10() if right.kind == "log10" else None  # log10(p) - log10(1 - p)
        if isinstance(node.op, ast.Sub) and isinstance(node.right, ast.Call):
            # x - x.logsumexp(dim, keepdim=True) is a log_softmax written out.
            name, recv, function_form = self.callee(node.right)
            args = _stop_positional(node.right.args)
            operand = (args[0] if args else None) if function_form else recv
            dims = args[1:2] if function_form else args[:1]
            dim = dims[0] if dims else _keyword(node.right, "dim", "axis")
            if name == "logsumexp" and operand and ast.dump(operand) == ast.dump(node.left):
                source = f"`{_short(node)}` (a log_softmax)"
                return _Value("log_softmax", source, node.lineno, _int(dim) == 0, _batched(left))
        if isinstance(node.op, ast.Add):
            # p + eps is still a probability, as in log(p + 1e-8).
            for value, number in ((left, numbers[1]), (right, numbers[0])):
                if (
                    value
                    and value.kind in _PROB_KINDS
                    and number is not None
                    and 0 <= number < 1e-3
                ):
                    return value
        return _DATA if _batched(left) or _batched(right) else None

    def callee(self, node: ast.Call) -> tuple[str | None, ast.expr | None, bool]:
        """The called name, the receiver of a method call, and whether it is a function form.

        ``F.softmax(x)``, ``torch.softmax(x)`` and ``self.softmax(x)`` are function forms (the
        tensor is the first argument); ``x.softmax()`` is a method form (the tensor is the
        receiver). A bare name is known if it was imported (``from torch.nn.functional import
        softmax as sm`` gives ``softmax``), is capitalised (a class such as ``Categorical``) and
        not defined in the file, or comes from a star import of torch, pyro or numpyro.
        """
        func = node.func
        if isinstance(func, ast.Attribute):
            dotted = _dotted(func.value)
            if (dotted and dotted.split(".")[0] in self.modules) or self.is_self(func.value):
                return func.attr, None, True
            return func.attr, func.value, False
        if isinstance(func, ast.Name) and func.id not in self.defs:
            if func.id in self.aliases:
                return self.aliases[func.id].rsplit(".", 1)[-1], None, True
            if func.id[:1].isupper() or (self.star_torch and func.id in _STAR_NAMES):
                return func.id, None, True
        return None, None, True

    def call(self, node: ast.Call, env: dict[str, _Value]) -> _Value | None:
        func = node.func
        receiver = target = None
        if isinstance(func, ast.Attribute):
            receiver = self.ev(func.value, env)
            if self.is_self(func.value):
                target = self.ev(func, {})
        elif self.is_self(func):
            assert self.cls is not None
            target = _Value("instance", node=self.cls.node)  # self(x) runs forward
        elif isinstance(func, ast.Name):
            target = self.lookup(func.id, env)
        else:
            target = self.ev(func, env)
        values = [self.ev(a, env) for a in node.args]
        keywords: dict[str, tuple[ast.expr, _Value | None]] = {}
        for kw in node.keywords:
            value = self.ev(kw.value, env)
            if kw.arg is not None:
                keywords[kw.arg] = (kw.value, value)
        positional = _stop_positional(node.args)
        args = _Args(positional, values[: len(positional)], keywords)

        name, recv, function_form = self.callee(node)
        if name in _DISTRIBUTIONS and (target is None or target.kind not in ("class", "function")):
            self.check_distribution(name, args, positional=self.torch_like(func))
            return None
        if "logits" in keywords:
            expr, value = keywords["logits"]
            self.check_logits(expr, value, None, f"`logits=` of `{_short(func)}`")
        if target is not None and target.kind in _CALLABLE_KINDS:
            return self.call_value(node, target, args)
        if name is None:
            if isinstance(func, ast.Name) and any(w in func.id.lower() for w in _NET_WORDS):
                return _DATA if _batched(args.get(0)[1]) else None  # net(x) keeps the batch
            return None
        if function_form:
            in_expr, in_value = args.get(0, "input")
            dim = args.get(1, "dim", "axis")[0]
        else:
            in_expr, in_value = recv, receiver
            dim = args.get(0, "dim", "axis")[0]
        if in_expr is not None:
            value = self.tensor_call(node, name, function_form, in_expr, in_value, dim, args)
            if value is not _UNKNOWN:
                return value
        return self.other_call(node, name, function_form, args, env)

    def tensor_call(
        self,
        node: ast.Call,
        name: str,
        function_form: bool,
        in_expr: ast.expr,
        in_value: _Value | None,
        dim: ast.expr | None,
        args: _Args,
    ) -> _Value | None:
        """A call on a tensor ``in_expr``: normalisers, logs, means, losses, reshapes."""
        func = node.func
        line = node.lineno
        if name in _NORMALISERS:
            self.check_mean(in_value, f"`{_short(func)}`")
            return _Value(
                _NORMALISERS[name],
                f"`{_short(func)}` output",
                line,
                _int(dim) == 0,
                _batched(in_value),
            )
        if name == "log10":
            return _Value("log10", f"`{_short(node)}`", line)
        if name == "log":
            base = args.get(1, "base")[0] if function_form else None
            if base is not None and _number(base) == 10:
                return _Value("log10", f"`{_short(node)}`", line)
            if _is_ten(in_expr):
                return _Value("ln10")
            if in_value is not None and in_value.kind in _PROB_KINDS:
                kind = "log_softmax" if in_value.kind == "softmax" else "logsigmoid"
                source = f"`{_short(node)}` (log of {in_value.kind})"
                return _Value(kind, source, line, in_value.dim0, in_value.batched)
            return None
        if name in _IDENTITY and not function_form:
            return in_value
        if name in _CLAMPS and in_value is not None and in_value.kind in _PROB_KINDS:
            return in_value
        if name in _MEANS:
            source = _stacked_logits(in_expr)
            if source is not None and _int(dim) == 0:
                return _Value("logit_mean", source, line, node=node)
            return None
        if name in _PREDICTION:
            self.check_mean(in_value, f"`{name}`")
            return None
        if name in _LOSSES and function_form and self.torch_like(func):
            self.check_loss(name, f"`{_short(func)}`", in_expr, in_value)
            return None
        if name in _ELEMENTWISE:
            return _DATA if _batched(in_value) else None
        if name in ("view", "reshape", "flatten") and _keeps_batch(node, name, function_form):
            return _DATA
        return _UNKNOWN

    def other_call(
        self, node: ast.Call, name: str, function_form: bool, args: _Args, env: dict[str, _Value]
    ) -> _Value | None:
        """Constructors of modules and losses, in-place methods, unknown submodules of self."""
        func = node.func
        if function_form and name in _NORMALISER_MODULES:
            dim0 = _int(args.get(0, "dim")[0]) == 0
            kind = _NORMALISER_MODULES[name]
            return _Value("module", f"`{_short(func)}`", node.lineno, dim0, returns=kind)
        if function_form and name in _LOSS_MODULES and self.torch_like(func):
            return _Value("loss", name, loss=_LOSS_MODULES[name])
        if function_form and name == "Sequential":
            last = args.values[-1] if args.values else None
            if last is not None and last.kind == "module" and last.returns:
                source = f"`{_short(func)}` ending in {last.source}"
                return _Value("module", source, node.lineno, last.dim0, returns=last.returns)
            return _Value("module")
        if function_form and name[:1].isupper() and isinstance(func, ast.Attribute):
            layer = (_dotted(func.value) or "").endswith("nn")
            return _Value("module") if layer else None  # another torch.nn layer
        if not function_form and name.endswith("_") and not name.startswith("_"):
            recv = getattr(func, "value", None)
            if isinstance(recv, ast.Name):
                env.pop(recv.id, None)  # an in-place method changes the tensor's values
            return None
        if function_form and self.is_self(getattr(func, "value", None)):
            return _DATA if _batched(args.get(0)[1]) else None  # a submodule of self
        return None

    def call_value(self, node: ast.Call, target: _Value, args: _Args) -> _Value | None:
        """A call of something whose value is known: a module, a loss, a class or a function."""
        in_expr, in_value = args.get(0, "input")
        if target.kind == "module":
            if not target.returns:
                return _DATA if _batched(in_value) else None
            self.check_mean(in_value, f"`{_short(node.func)}`")
            source = f"{target.source} output"
            return _Value(target.returns, source, node.lineno, target.dim0, _batched(in_value))
        if target.kind == "loss":
            label = f"`{_short(node.func)}` ({target.source})"
            self.check_loss(target.loss, label, in_expr, in_value)
            return None
        if target.kind == "class" and isinstance(target.node, ast.ClassDef):
            info = self.class_info(target.node)
            return _Value("instance", node=target.node) if info.is_module else None
        summary = None
        if target.kind == "instance" and isinstance(target.node, ast.ClassDef):
            info = self.class_info(target.node)
            forward = info.methods.get("forward") or info.methods.get("__call__")
            if forward is not None:
                summary = self.function_summary(forward, info)
        elif target.kind == "function" and isinstance(
            target.node, (ast.FunctionDef, ast.AsyncFunctionDef)
        ):
            summary = self.function_summary(target.node, target.owner)
        if summary is not None and _batched(in_value) and not summary.batched:
            # A network keeps the batch dim of its input.
            return _Value(summary.kind, summary.source, summary.line, summary.dim0, True)
        if summary is None and target.kind == "instance":
            return _DATA if _batched(in_value) else None
        return summary

    # -- checks -------------------------------------------------------------------------------

    def check_distribution(self, name: str, args: _Args, *, positional: bool) -> None:
        """Check a distribution's arguments; positions only for torch/pyro/numpyro classes."""
        spec = _DISTRIBUTIONS[name]
        for index, expr in enumerate(args.positional if positional else []):
            value = args.values[index]
            if index == spec.probs_pos:
                ordinal = ("first", "second")[index]
                target = f"`{name}` probs (its {ordinal} positional argument is probs)"
                self.check_probs(expr, value, spec.family, target, name)
            elif index == spec.logits_pos:
                self.check_logits(expr, value, spec.family, f"`{name}` logits", f"`{name}`")
        for keyword, family in (("logits", spec.family), ("gate_logits", "binary")):
            if keyword in args.keywords:
                expr, value = args.keywords[keyword]
                self.check_logits(expr, value, family, f"`{name}` {keyword}", f"`{name}`")
        for keyword, family in (("probs", spec.family), ("gate", "binary")):
            if keyword in args.keywords:
                expr, value = args.keywords[keyword]
                self.check_probs(expr, value, family, f"`{name}` {keyword}=", name)

    @staticmethod
    def where(value: _Value, expr: ast.AST) -> str:
        """A marker for " (line N)", where the value was made, if not on this line."""
        line = value.line
        return f"\x00{line}\x00" if line and line != expr.lineno else ""  # type: ignore[attr-defined]

    def check_logits(
        self,
        expr: ast.expr,
        value: _Value | None,
        family: str | None,
        target: str,
        owner: str = "",
    ) -> None:
        """A place that expects raw scores: ``logits=``, cross_entropy, ..._with_logits."""
        if value is None:
            return
        kind, source, where = value.kind, value.source, self.where(value, expr)
        if kind == "logit_mean":
            self.check_mean(value, target)
        elif kind in _PROB_KINDS:
            self.report(
                expr,
                "PL003",
                f"{source}{where} used as {target}, which expects raw scores (logits), not "
                f"probabilities; pass the scores from before the {kind}",
            )
        elif kind == "logsigmoid" or (kind == "log_softmax" and family == "binary"):
            self.report(
                expr,
                "PL004",
                f"{source}{where} (log-probabilities) used as {target}: a logit is "
                "log(p) - log(1 - p), not log(p); pass the raw scores",
            )
        elif kind == "log_softmax" and family == "categorical":
            if value.dim0 and value.batched:
                self.report(expr, "PL002", _dim0_message(value, where, target))
            else:
                note = " (it also normalises over dim 0: wrong if dim 0 is a batch dim)"
                self.report(
                    expr,
                    "PL001",
                    f"{source}{where} used as {target}: redundant, {owner} applies log_softmax "
                    f"itself; pass the raw scores{note if value.dim0 else ''}",
                )
        elif kind == "log10":
            self.check_log10(expr, value, target)

    def check_probs(
        self, expr: ast.expr, value: _Value | None, family: str, target: str, dist: str
    ) -> None:
        """A place that expects probabilities: ``probs=`` or a positional probs argument."""
        if value is not None and value.kind in _LOG_KINDS:
            self.report(
                expr,
                "PL008",
                f"{value.source}{self.where(value, expr)} (log-probabilities) used as {target}; "
                f"pass them as `{dist}(logits=...)`",
            )
        elif value is not None and value.kind == "logit_mean":
            self.check_mean(value, target)
        elif value is not None and value.kind == "softmax" and family == "categorical":
            if value.dim0 and value.batched:
                self.report(expr, "PL002", _dim0_message(value, self.where(value, expr), target))
        elif (value is None or value.kind == "data") and _logits_expr(expr) is not None:
            self.report(
                expr,
                "PL009",
                f"`{_short(expr)}` looks like logits but is used as {target}; "
                f"write `{dist}(logits={_short(expr)})`",
            )

    def check_loss(
        self, loss: str, label: str, expr: ast.expr | None, value: _Value | None
    ) -> None:
        if expr is None:
            return
        target = f"the input of {label}"
        if loss == "cross_entropy":
            self.check_logits(expr, value, "categorical", target, label)
        elif loss == "binary_cross_entropy_with_logits":
            self.check_logits(expr, value, "binary", target, label)
        elif loss == "nll_loss" and value is not None:
            where = self.where(value, expr)
            if value.kind in _PROB_KINDS:
                self.report(
                    expr,
                    "PL003",
                    f"{value.source}{where} used as {target}, which expects log-probabilities; "
                    "use log_softmax, or cross_entropy on the raw scores",
                )
            elif value.kind == "log_softmax" and value.dim0 and value.batched:
                self.report(expr, "PL002", _dim0_message(value, where, target))
        elif (
            loss == "binary_cross_entropy"
            and (value is None or value.kind == "data")
            and _logits_expr(expr, scores=True) is not None
        ):
            self.report(
                expr,
                "PL006",
                f"`{_short(expr)}` looks like logits but goes to {label}, which expects "
                "probabilities; use binary_cross_entropy_with_logits (BCEWithLogitsLoss) "
                "on the raw scores",
            )

    def check_mean(self, value: _Value | None, target: str) -> None:
        if value is None or value.kind != "logit_mean" or value.node is None or self.muted:
            return
        if value.node not in self.reported_means:
            self.reported_means.add(value.node)
            self.report(
                value.node,
                "PL007",
                f"{value.source} averaged over dim 0 (the samples) and then used in {target}: "
                "average probabilities instead (softmax, then mean(0)), "
                "e.g. pyro_logits.predictive_log_probs",
            )

    def check_log10(self, expr: ast.expr, value: _Value | None, target: str) -> None:
        if value is not None and value.kind == "log10":
            self.report(
                expr,
                "PL005",
                f"base-10 log {value.source}{self.where(value, expr)} used as {target}: logits "
                "are natural-log odds (base-10 values are 2.3 times too small); "
                "use torch.log or torch.logit",
            )


_DATA = _Value("data", batched=True)
_UNKNOWN = _Value("unknown")
_LN10 = 2.302585092994046
_TENSOR_KINDS = frozenset(
    {"log_softmax", "softmax", "sigmoid", "logsigmoid", "log10", "logit_mean"}
)
_CALLABLE_KINDS = frozenset({"module", "loss", "instance", "function", "class"})
_GLOBAL_KINDS = _CALLABLE_KINDS | {"ln10"}
_MODULE_KINDS = frozenset({"module", "loss", "instance"})
_CLAMPS = frozenset({"clamp", "clip", "clamp_min", "clamp_max"})
_MUTATORS = frozenset({"append", "extend", "insert", "add_module", "register_module"})
_STAR_NAMES = frozenset(
    {*_NORMALISERS, *_LOSSES, "log", "log10", "mean", "logsumexp", *_PREDICTION}
)
_TORCH_ROOTS = frozenset({"torch", "pyro", "numpyro"})
_TORCH_NAMES = frozenset({"torch", "pyro", "numpyro", "dist", "D", "td", "tdist", "F", "nn"})


def _batched(value: _Value | None) -> bool:
    return value is not None and value.batched


def _dim0_message(value: _Value, where: str, target: str) -> str:
    return (
        f"{value.source}{where} normalises over dim 0, which is the batch dim here, and is used "
        f"as {target}; normalise over the class dim (dim=-1)"
    )


def _keyword(node: ast.Call, *names: str) -> ast.expr | None:
    for kw in node.keywords:
        if kw.arg in names:
            return kw.value
    return None


def _is_ten(node: ast.expr) -> bool:
    """``10``, ``10.0``, ``torch.tensor(10.0)``."""
    if _number(node) == 10:
        return True
    return isinstance(node, ast.Call) and len(node.args) >= 1 and _number(node.args[0]) == 10


def _size_source(node: ast.expr) -> ast.expr | None:
    """``x`` in ``len(x)``, ``x.size(0)``, ``x.shape[0]``."""
    if isinstance(node, ast.Call) and node.args:
        func = node.func
        if isinstance(func, ast.Name) and func.id == "len":
            return node.args[0]
        if isinstance(func, ast.Attribute) and func.attr == "size" and _int(node.args[0]) == 0:
            return func.value
    shape = node.value if isinstance(node, ast.Subscript) else None
    if isinstance(shape, ast.Attribute) and shape.attr == "shape" and _int(node.slice) == 0:  # type: ignore[attr-defined]
        return shape.value
    return None


def _is_batch_size(node: ast.expr) -> bool:
    """``-1``, ``len(x)``, ``x.size(0)``, ``x.shape[0]`` or ``batch_size`` as a leading dim."""
    if isinstance(node, ast.Name):
        return "batch" in node.id.lower()
    return _int(node) == -1 or _size_source(node) is not None


def _keeps_batch(node: ast.Call, name: str, function_form: bool) -> bool:
    """Whether a reshape keeps dim 0: ``x.view(-1, 784)``, ``x.flatten(1)``, ``x.view(n, -1)``."""
    args = node.args[1:] if function_form else node.args
    if name == "flatten":
        start = args[0] if args else _keyword(node, "start_dim")
        return _int(start) == 1
    if len(args) == 1 and isinstance(args[0], (ast.Tuple, ast.List)):
        args = args[0].elts
    return len(args) >= 2 and _is_batch_size(args[0])


def _plate_sized(node: ast.FunctionDef | ast.AsyncFunctionDef) -> set[str]:
    """Names ``x`` in ``pyro.plate(name, len(x))`` and the like: their dim 0 indexes the data."""
    names = set()
    for call in ast.walk(node):
        if isinstance(call, ast.Call) and _dotted(call.func) in ("plate", "pyro.plate"):
            size = call.args[1] if len(call.args) > 1 else _keyword(call, "size")
            source = _size_source(size) if size is not None else None
            if isinstance(source, ast.Name):
                names.add(source.id)
    return names


def _loader_targets(target: ast.expr, iterable: ast.expr) -> set[str]:
    """Names bound by ``for x, y in train_loader`` (or ``enumerate(loader)``): data batches."""
    names = (getattr(n, "id", None) or getattr(n, "attr", "") for n in ast.walk(iterable))
    if not any("loader" in name.lower() for name in names):
        return set()
    if (
        isinstance(iterable, ast.Call)
        and getattr(iterable.func, "id", None) == "enumerate"
        and isinstance(target, ast.Tuple)
        and len(target.elts) == 2
    ):
        target = target.elts[1]
    return _bound_names([target], mutations=False)


def _stacked_logits(node: ast.expr) -> str | None:
    """The logits-like name of ``logits``, ``logits.detach()``, ``torch.stack(logit_list)``."""
    while isinstance(node, ast.Call):
        func = node.func
        if isinstance(func, ast.Attribute) and func.attr in _IDENTITY:
            node = func.value
        elif (
            isinstance(func, (ast.Attribute, ast.Name))
            and node.args
            and (
                getattr(func, "attr", None)
                in ("stack", "cat", "vstack", "array", "asarray", "tensor")
                or getattr(func, "id", None) in ("stack", "cat")
            )
        ):
            node = node.args[0]
        else:
            return None
    if isinstance(node, (ast.Name, ast.Attribute, ast.Subscript)):
        name = _logits_expr(node)
        return f"`{_short(node)}`" if name is not None else None
    return None


def _char_col(lines: Sequence[str], line: int, col: int) -> int:
    """Convert an ast byte offset on a line into a character offset."""
    if not 1 <= line <= len(lines):
        return col
    return len(lines[line - 1].encode("utf-8")[:col].decode("utf-8", "replace"))


_ORIGIN = re.compile("\x00([0-9]+)\x00")


def _analyse(
    tree: ast.Module, lines: Sequence[str], *, origin: Callable[[int], str] | None = None
) -> list[tuple[int, int, str, str]]:
    """Findings as ``(line, 0-based character column, code, message)``.

    ``origin`` turns the line a value came from into the words put in the message.
    """
    name = origin or (lambda line: f"line {line}")
    return [
        (
            line,
            _char_col(lines, line, col),
            code,
            _ORIGIN.sub(lambda m: f" ({name(int(m[1]))})", msg),
        )
        for line, col, code, msg in _Analyzer(tree).run()
    ]


# --------------------------------------------------------------------------------------------
# Files, notebooks, suppression.


def _split_lines(source: str) -> list[str]:
    return re.split(r"\r\n|\r|\n", source)


def _parse(source: str, path: str, *, notebook: bool = False) -> ast.Module:
    flags = ast.PyCF_ONLY_AST | (ast.PyCF_ALLOW_TOP_LEVEL_AWAIT if notebook else 0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # invalid escape sequences and the like are not ours
        return compile(source, path, "exec", flags, dont_inherit=True)  # type: ignore[no-any-return]


_PARSE_ERRORS = (SyntaxError, ValueError, MemoryError, RecursionError)
_TOO_DEEP = "too deeply nested to analyse"


def _describe(exc: BaseException) -> tuple[int, int, str]:
    """Line, column and message of a PL000 for code that could not be parsed."""
    if isinstance(exc, RecursionError):
        return 1, 1, _TOO_DEEP
    version = f"Python {sys.version_info.major}.{sys.version_info.minor}"
    if isinstance(exc, SyntaxError):
        return exc.lineno or 1, exc.offset or 1, f"cannot parse as {version}: {exc.msg}"
    return 1, 1, f"cannot parse as {version}: {exc}"


def _parse_error(source: str, path: str) -> tuple[int, int, str] | None:
    """Why a notebook cell does not parse, or ``None``."""
    try:
        _parse(source, path, notebook=True)
    except _PARSE_ERRORS as exc:
        return _describe(exc)
    return None


def _suppressed(line: str, code: str) -> bool:
    match = _NOQA.search(line)
    if match is None:
        return False
    codes = match.group("codes")
    return codes is None or code in {c.upper() for c in re.split(r"[,\s]+", codes) if c}


def _findings(
    path: str, lines: Sequence[str], raw: Iterable[tuple[int, int, str, str]]
) -> list[Finding]:
    out = []
    for line, col, code, message in raw:
        text = lines[line - 1] if 1 <= line <= len(lines) else ""
        if not _suppressed(text, code):
            out.append(Finding(path, 0, line, col + 1, code, message))
    return sorted(out)


def lint_source(source: str, *, path: str = "<string>") -> list[Finding]:
    """Lint Python source code.

    Parameters
    ----------
    source : str
        The code.
    path : str, optional
        The name to report the findings under.

    Returns
    -------
    list of Finding
        Sorted by position, ``# noqa`` comments applied. Code that does not parse gives one
        ``PL000`` finding.

    Examples
    --------
    >>> [str(f) for f in lint_source("F.binary_cross_entropy(logits, y)", path="t.py")]
    ... # doctest: +ELLIPSIS
    ['t.py:1:24: PL006 `logits` looks like logits but goes to `F.binary_cross_entropy`...']
    >>> lint_source("F.binary_cross_entropy(logits, y)  # noqa: PL006")
    []
    """
    lines = _split_lines(source)
    try:
        tree = _parse(source, path)
    except _PARSE_ERRORS as exc:
        line, col, message = _describe(exc)
        return [Finding(path, 0, line, col, "PL000", message)]
    try:
        raw = _analyse(tree, lines)
    except RecursionError:
        return [Finding(path, 0, 1, 1, "PL000", _TOO_DEEP)]
    return _findings(path, lines, raw)


def _strip_magics(text: str) -> str | None:
    """A code cell's source with IPython syntax blanked out (``None`` for non-Python cells)."""
    lines = _split_lines(text)
    first = lines[0].strip()
    if first.startswith("%%"):
        magic = first[2:].split(maxsplit=1)[0] if first[2:].strip() else ""
        if magic not in _CELL_MAGICS_PYTHON:
            return None
        lines[0] = ""
    out = []
    for line in lines:
        stripped = line.strip()
        if stripped.startswith(("%", "!")) or _HELP.match(stripped) or _SHELL.match(stripped):
            out.append(line[: len(line) - len(line.lstrip())] + "pass")
        else:
            out.append(line)
    return "\n".join(out)


def _notebook_language(notebook: dict[str, object]) -> str:
    metadata = notebook.get("metadata")
    if isinstance(metadata, dict):
        for key, name in (("kernelspec", "language"), ("language_info", "name")):
            entry = metadata.get(key)
            if isinstance(entry, dict) and isinstance(entry.get(name), str):
                return entry[name].lower()
    return "python"


_HELP = re.compile(r"^\??[\w.\[\]]+\?{1,2}$|^\?\??[\w.\[\]]+$")
_SHELL = re.compile(r"^[\w.,\s\[\]()]+=\s*[%!]")  # files = !ls


def lint_notebook(text: str, *, path: str = "<notebook>") -> list[Finding]:
    r"""Lint the code cells of a Jupyter notebook (the JSON text of an ``.ipynb`` file).

    Code cells are analysed in order as one program; findings carry the 1-based number of the
    cell (counting every cell from the top) and the line within that cell.

    Parameters
    ----------
    text : str
        The notebook file's contents.
    path : str, optional
        The name to report the findings under.

    Returns
    -------
    list of Finding
        Sorted by cell and position, ``# noqa`` comments applied.

    Examples
    --------
    >>> nb = {"cells": [
    ...     {"cell_type": "markdown", "source": "# Model"},
    ...     {"cell_type": "code", "source": ["%matplotlib inline\n", "import torch\n"]},
    ...     {"cell_type": "code", "source": "p = torch.sigmoid(z)\nd = Bernoulli(logits=p)"},
    ... ]}
    >>> print(lint_notebook(json.dumps(nb), path="nb.ipynb")[0])  # doctest: +ELLIPSIS
    nb.ipynb:cell 3:2:22: PL003 `torch.sigmoid` output (cell 3, line 1) used as `Bernoulli`...
    """
    try:
        notebook = json.loads(text)
    except ValueError as exc:
        return [Finding(path, 0, 1, 1, "PL000", f"cannot read the notebook: {exc}")]
    cells = notebook.get("cells") if isinstance(notebook, dict) else None
    if not isinstance(cells, list):
        return [Finding(path, 0, 1, 1, "PL000", "not a Jupyter notebook (nbformat 4): no cells")]
    if _notebook_language(notebook) != "python":
        return []
    lines: list[str] = []
    starts: list[tuple[int, int]] = []  # (first line in the joined cells, cell number)
    errors: list[Finding] = []
    for number, cell in enumerate(cells, start=1):
        if not isinstance(cell, dict) or cell.get("cell_type") != "code":
            continue
        text = cell.get("source", "")
        text = "".join(map(str, text)) if isinstance(text, list) else str(text)
        source = _strip_magics(text)
        if source is None:
            continue
        error = _parse_error(source, path)
        if error is not None and _parse_error(text, path) is None:
            source, error = text, None  # a `%` or `!` that continues an expression
        if error is not None:
            line, col, message = error
            errors.append(Finding(path, number, line, col, "PL000", message))
            continue
        starts.append((len(lines) + 1, number))
        lines.extend(_split_lines(source))

    def cell_of(line: int) -> tuple[int, int]:
        start, number = next((s, n) for s, n in reversed(starts) if s <= line)
        return number, line - start + 1

    def origin(line: int) -> str:
        number, within = cell_of(line)
        return f"cell {number}, line {within}"

    try:
        raw = _analyse(_parse("\n".join(lines), path, notebook=True), lines, origin=origin)
    except RecursionError:
        return [*errors, Finding(path, 0, 1, 1, "PL000", _TOO_DEEP)]
    out = errors
    for finding in _findings(path, lines, raw):
        number, within = cell_of(finding.line)
        out.append(Finding(path, number, within, finding.col, finding.code, finding.message))
    return sorted(out)


def lint_file(path: str | os.PathLike[str]) -> list[Finding]:
    r"""Lint one ``.py`` file or ``.ipynb`` notebook (any other name is read as Python).

    Parameters
    ----------
    path : str or os.PathLike
        The file.

    Returns
    -------
    list of Finding
        The findings; a file that cannot be read, decoded or parsed gives one ``PL000``.

    Examples
    --------
    >>> import tempfile
    >>> with tempfile.TemporaryDirectory() as tmp:
    ...     file = Path(tmp) / "bad.py"
    ...     _ = file.write_text("def f(:\n")
    ...     [f.code for f in lint_file(file)]
    ['PL000']
    """
    name = str(path)
    try:
        data = Path(path).read_bytes()
    except OSError as exc:
        return [Finding(name, 0, 1, 1, "PL000", f"cannot read: {exc.strerror or exc}")]
    try:
        if name.endswith(".ipynb"):
            return lint_notebook(data.decode("utf-8-sig"), path=name)
        encoding = tokenize.detect_encoding(io.BytesIO(data).readline)[0]
        text = data.decode(encoding)
    except (SyntaxError, LookupError, UnicodeDecodeError) as exc:
        return [Finding(name, 0, 1, 1, "PL000", f"cannot decode: {exc}")]
    return lint_source(text, path=name)


def iter_source_files(paths: Iterable[str | os.PathLike[str]]) -> Iterator[Path]:
    """Files to lint: each file given, and the ``.py``/``.ipynb`` files under each directory.

    Directories are walked recursively in sorted order, skipping hidden directories and
    ``__pycache__``, ``build``, ``dist``, ``node_modules``, ``venv``.

    Parameters
    ----------
    paths : iterable of str or os.PathLike
        Files and directories.

    Yields
    ------
    pathlib.Path
        Each file to lint.

    Raises
    ------
    FileNotFoundError
        If a path does not exist.

    Examples
    --------
    >>> import tempfile
    >>> with tempfile.TemporaryDirectory() as tmp:
    ...     for name in ("a.py", "b.ipynb", "c.txt", ".hidden/d.py", "build/e.py", "pkg/f.py"):
    ...         (Path(tmp) / name).parent.mkdir(exist_ok=True)
    ...         _ = (Path(tmp) / name).write_text("")
    ...     [p.relative_to(tmp).as_posix() for p in iter_source_files([tmp])]
    ['a.py', 'b.ipynb', 'pkg/f.py']
    """
    for path in map(Path, paths):
        if path.is_dir():
            for root, dirs, files in os.walk(path):
                dirs[:] = sorted(
                    d for d in dirs if not d.startswith(".") and d not in _SKIPPED_DIRS
                )
                for name in sorted(files):
                    if name.endswith((".py", ".ipynb")):
                        yield Path(root, name)
        elif path.exists():
            yield path
        else:
            raise FileNotFoundError(f"{path}: no such file or directory")


def lint_paths(
    paths: Iterable[str | os.PathLike[str]],
    *,
    select: Iterable[str] | None = None,
    ignore: Iterable[str] = (),
) -> list[Finding]:
    r"""Lint files and directories.

    Parameters
    ----------
    paths : iterable of str or os.PathLike
        Files and directories (see :func:`iter_source_files`).
    select : iterable of str, optional
        Report only these codes (default: all).
    ignore : iterable of str, optional
        Do not report these codes.

    Returns
    -------
    list of Finding
        File by file, in walking order.

    Raises
    ------
    FileNotFoundError
        If a path does not exist.

    Examples
    --------
    >>> import tempfile
    >>> with tempfile.TemporaryDirectory() as tmp:
    ...     _ = (Path(tmp) / "m.py").write_text("d = dist.Categorical(F.log_softmax(z, -1))\n")
    ...     [f.code for f in lint_paths([tmp])], lint_paths([tmp], ignore=["PL008"])
    (['PL008'], [])
    """
    selected = None if select is None else set(select)
    ignored = set(ignore)
    out = []
    for file in iter_source_files(paths):
        for finding in lint_file(file):
            if (selected is None or finding.code in selected) and finding.code not in ignored:
                out.append(finding)
    return out


# --------------------------------------------------------------------------------------------
# Command line and flake8.


def _codes(text: str | None) -> list[str] | None:
    if text is None:
        return None
    codes = [c.strip().upper() for c in text.split(",") if c.strip()]
    unknown = [c for c in codes if c not in RULES]
    if unknown:
        raise ValueError(f"unknown rule code {unknown[0]!r}; expected one of {', '.join(RULES)}")
    return codes


def _parser(prog: str) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=prog,
        description="Find logits mistakes (softmax as logits, log_softmax over dim 0, BCELoss "
        "on logits, ...) in .py files and .ipynb notebooks, without running them.",
        epilog="Exit status: 0 clean, 1 findings, 2 usage error. "
        "Silence a line with `# noqa` or `# noqa: PL001,PL003`.",
    )
    parser.add_argument("paths", nargs="*", metavar="PATH", help="files or directories")
    parser.add_argument(
        "--select", metavar="CODES", help="report only these codes (comma-separated)"
    )
    parser.add_argument(
        "--ignore", metavar="CODES", help="do not report these codes (comma-separated)"
    )
    parser.add_argument("--list-rules", action="store_true", help="print the rules and exit")
    return parser


def main(argv: Sequence[str] | None = None, *, prog: str = "python -m pyro_logits.lint") -> int:
    """Run the linter from the command line.

    Parameters
    ----------
    argv : sequence of str, optional
        The arguments (default: ``sys.argv[1:]``): ``PATH...`` and options.
    prog : str, optional
        The program name shown in messages.

    Returns
    -------
    int
        0 when clean, 1 when there are findings, 2 on a usage error (no path, a missing path,
        an unknown option or rule code).

    Examples
    --------
    >>> main(["--list-rules"])  # doctest: +ELLIPSIS
    PL000  file could not be read, decoded or parsed
    ...
    0
    """
    parser = _parser(prog)
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # argparse exits 2 on usage errors and 0 after --help
        return exc.code if isinstance(exc.code, int) else 2
    if args.list_rules:
        for rule in RULES.values():
            print(f"{rule.code}  {rule.summary}")
        return 0
    try:
        select, ignore = _codes(args.select), _codes(args.ignore) or []
        if not args.paths:
            raise ValueError("no paths given")
        findings = lint_paths(args.paths, select=select, ignore=ignore)
    except (ValueError, FileNotFoundError) as exc:
        parser.print_usage(sys.stderr)
        print(f"{prog}: error: {exc}", file=sys.stderr)
        return 2
    for finding in findings:
        print(finding)
    return 1 if findings else 0


def cli(argv: Sequence[str] | None = None) -> int:
    """The ``pyro-logits`` console script: ``pyro-logits lint PATH...``.

    Parameters
    ----------
    argv : sequence of str, optional
        The arguments (default: ``sys.argv[1:]``), starting with the command ``lint``.

    Returns
    -------
    int
        The exit status of :func:`main`, or 2 without a known command.

    Examples
    --------
    >>> cli(["lint", "--list-rules"])  # doctest: +ELLIPSIS
    PL000  file could not be read, decoded or parsed
    ...
    0
    """
    argv = list(sys.argv[1:] if argv is None else argv)
    usage = "usage: pyro-logits lint [-h] [--select CODES] [--ignore CODES] [--list-rules] PATH..."
    if argv[:1] == ["lint"]:
        return main(argv[1:], prog="pyro-logits lint")
    if argv[:1] in (["-h"], ["--help"]):
        print(f"{usage}\n\ncommands:\n  lint  find logits mistakes in source code (see lint -h)")
        return 0
    print(usage, file=sys.stderr)
    print("pyro-logits: error: expected the command 'lint'", file=sys.stderr)
    return 2


def _version() -> str:
    try:
        return metadata.version("pyro-logits")
    except metadata.PackageNotFoundError:
        return "unknown"


class Flake8Checker:
    r"""The same rules as a flake8 plugin (codes ``PL001``-``PL009``).

    flake8 handles ``# noqa`` itself and reports syntax errors as ``E999``.

    Parameters
    ----------
    tree : ast.AST
        The parsed module, given by flake8.
    lines : sequence of str
        The physical lines of the file, given by flake8.

    Examples
    --------
    >>> source = "d = Bernoulli(logits=F.logsigmoid(z))\n"
    >>> checker = Flake8Checker(ast.parse(source), source.splitlines(True))
    >>> [(line, col, text[:5]) for line, col, text, _ in checker.run()]
    [(1, 21, 'PL004')]
    """

    name = "pyro-logits"
    version = _version()

    def __init__(self, tree: ast.AST, lines: Sequence[str]) -> None:
        self.tree = tree
        self.lines = [line.rstrip("\r\n") for line in lines]

    def run(self) -> Iterator[tuple[int, int, str, type[Flake8Checker]]]:
        """Yield ``(line, column, "CODE message", type)`` per finding, as flake8 expects."""
        if not isinstance(self.tree, ast.Module):
            return
        for line, col, code, message in _analyse(self.tree, self.lines):
            yield line, col, f"{code} {message}", type(self)


if __name__ == "__main__":
    sys.exit(main())
