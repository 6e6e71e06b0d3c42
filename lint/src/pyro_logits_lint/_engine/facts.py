"""What the analysis knows about names and calls: lookup tables, the value record, AST helpers."""

from __future__ import annotations

import ast
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import NamedTuple

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
    examples, or the raw output of a network, nothing else known); ``ln10`` (the constant
    log(10)); ``module``, ``loss``, ``instance``, ``function``, ``class`` (callables); ``list``
    (a list, tuple or comprehension whose elements are all ``element``; ``source="empty"`` for
    ``[]``); ``stacked`` (network outputs stacked along ``dim``, the samples dim) and
    ``stacked_sum`` (``sum()`` of network outputs); ``tuple`` (a tuple literal, or what a function
    returns as one: each position is known on its own, in ``items``, and ``element`` is what all
    of them are); ``instance`` (an object of a class of the project: ``node`` is the class,
    ``attrs`` what its constructor set from the arguments it was given); ``dict`` (constant keys,
    their values in ``attrs``); ``either`` (a callable that differs by path: any of ``items``);
    ``buffer`` (a tensor just allocated, ``torch.zeros(...)``: it becomes what is written in).
    ``batched``: dim 0
    indexes examples (seen from a data loader, a ``pyro.plate`` sized by the tensor, or
    ``x.view(batch_size, -1)``).
    ``scores``: the raw output of a network call (logits, as far as the code says).
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
    element: _Value | None = None  # list: what every element is
    scores: bool = False
    dim: int | None = None  # stacked: the dim along which network outputs were stacked
    items: tuple[_Value | None, ...] = ()  # tuple: what each position holds
    attrs: tuple[tuple[str, _Value], ...] = ()  # instance: attributes its constructor set


@dataclass(eq=False)
class _ClassInfo:
    node: ast.ClassDef
    attrs: dict[str, _Value] = field(default_factory=dict)
    methods: dict[str, ast.FunctionDef | ast.AsyncFunctionDef] = field(default_factory=dict)
    is_module: bool = False


def _same(a: _Value | None, b: _Value | None) -> _Value | None:
    """The value both paths agree on, or ``None``.

    Callables are the exception: a loss, a network or a class that differs by path is any of
    them (``either``), since calling it runs one of them, and a mistake on one feasible path is
    still a mistake. Tensors keep what every path agrees on: their evidence is weaker.
    """
    if a is None or b is None:
        known = b if a is None else a
        if known is not None and known.kind in _CALLABLE_KINDS:
            return _either([known, UNKNOWN_PATH])  # a network on one path, nothing known on another
        return None
    if a == b:
        return a
    if a.kind == "buffer" or b.kind == "buffer":  # written on one path only, like a list
        return b if a.kind == "buffer" else a
    if a.kind == b.kind == "tuple" and len(a.items) == len(b.items):
        return _tuple_of(_same(x, y) for x, y in zip(a.items, b.items, strict=True))
    if a.kind == b.kind == "list":
        if a.source == "empty" or b.source == "empty":  # appended to on one path only
            return b if a.source == "empty" else a
        element = _same(a.element, b.element)
        return _Value("list", element=element) if element is not None else None
    if a.kind == b.kind == "dict":
        keys = dict(a.attrs).keys() & dict(b.attrs).keys()
        both = {k: _same(dict(a.attrs)[k], dict(b.attrs)[k]) for k in sorted(keys)}
        return _dict_of(both)
    if (a.kind, a.dim0, a.returns, a.loss, a.node) == (b.kind, b.dim0, b.returns, b.loss, b.node):
        return _Value(
            a.kind,
            a.source,
            a.line,
            a.dim0,
            a.batched and b.batched,
            a.returns,
            a.loss,
            scores=a.scores and b.scores,
        )
    if a.kind in _CALLABLE_KINDS and b.kind in _CALLABLE_KINDS:
        return _either([a, b])
    return None


MAX_ALTERNATIVES = 8
UNKNOWN_PATH = _Value("unknown", "a path on which nothing is known")


def _either(values: Iterable[_Value | None]) -> _Value | None:
    """Any one of the callables ``values`` (at most :data:`MAX_ALTERNATIVES` of them).

    :data:`UNKNOWN_PATH` stands for a path on which nothing is known: the others are still
    followed (a mistake on one feasible path is a mistake).
    """
    alternatives: list[_Value | None] = []
    for value in values:
        if value is None or (value.kind not in _CALLABLE_KINDS and value != UNKNOWN_PATH):
            return None
        alternatives += value.items if value.kind == "either" else (value,)
    return _paths(alternatives)


def _paths(values: Iterable[_Value | None]) -> _Value | None:
    """What each path gives (``either``), once a callable chosen by path has run.

    Unlike :func:`_either` the values may be tensors: each is judged on its own at a sink. A
    path that gives nothing known stays an unknown path.
    """
    given = list(dict.fromkeys(v if v is not None else UNKNOWN_PATH for v in values))
    known = [v for v in given if v != UNKNOWN_PATH]
    if not known or len(given) > MAX_ALTERNATIVES:
        return None
    return given[0] if len(given) == 1 else _Value("either", items=tuple(given))


def _dict_of(entries: dict[str, _Value | None]) -> _Value:
    """A dict with constant keys (the entries known so far; others may be added later)."""
    return _Value("dict", attrs=tuple((k, v) for k, v in entries.items() if v is not None))


_EMPTY_LIST = _Value("list", "empty")


def _tuple_of(values: Iterable[_Value | None]) -> _Value | None:
    """A tuple of ``values`` position by position; ``None`` when nothing is known of any."""
    items = tuple(values)
    if all(v is None for v in items):
        return None
    return _Value("tuple", items=items, element=_list_of(items).element)


def _item(value: _Value | None, index: int, length: int | None = None) -> _Value | None:
    """Position ``index`` (negative counts from the end) of a tuple, or an element of a list.

    ``length`` is the number of positions the code expects (unpacking): a tuple of another
    length gives nothing.
    """
    if value is None:
        return None
    if value.kind == "either":  # a network chosen by path: this position on each path
        return _paths(_item(v, index, length) for v in value.items)
    if value.kind == "tuple":
        if length is not None and length != len(value.items):
            return None
        return value.items[index] if -len(value.items) <= index < len(value.items) else None
    return value.element if value.kind == "list" else None


def _list_of(values: Iterable[_Value | None]) -> _Value:
    """A list whose elements are ``values`` (all alike, or nothing is known of them)."""
    element: _Value | None = _EMPTY_LIST
    for value in values:
        element = value if element is _EMPTY_LIST else _same(element, value)
    return _EMPTY_LIST if element is _EMPTY_LIST else _Value("list", element=element)


# log_prob, log_probs, logprobs, logp, log_p, y_log_probs: log-probabilities by name
_LOG_PROB_NAMES = re.compile(r"(^|_)(log_?probs?|logp|log_p)$")


def _merge(envs: Sequence[dict[str, _Value]]) -> dict[str, _Value]:
    """The names every path leaves known the same way (a callable: known on some path)."""
    first, *rest = envs
    merged = {}
    names = dict.fromkeys(name for env in envs for name in env)
    for name in names:
        value = first.get(name)
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
        try:
            return float(node.value)  # type: ignore[arg-type]
        except OverflowError:  # an integer literal of 2**1024 or more: no float says it
            return None
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
            stored = isinstance(node, (ast.Subscript, ast.Attribute)) and isinstance(
                node.ctx, ast.Store
            )
            # x[i] = ... and x.data = ... change a tensor; model.name = ... leaves what model is
            if stored and (isinstance(node, ast.Subscript) or node.attr == "data"):  # type: ignore[attr-defined]
                root = node.value  # type: ignore[attr-defined]
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


class _FunctionFacts(NamedTuple):
    locals: set[str]  # names local to the function
    generator: bool  # it yields
    plate_sized: set[str]  # names x in pyro.plate(name, len(x)): their dim 0 indexes the data


def _function_facts(node: ast.FunctionDef | ast.AsyncFunctionDef) -> _FunctionFacts:
    """What the analysis needs of a function's body, in one walk over it."""
    args = node.args
    params = [*args.posonlyargs, *args.args, *args.kwonlyargs, args.vararg, args.kwarg]
    names = _bound_names(node.body, mutations=False)
    names.update(a.arg for a in params if a is not None)
    generator = False
    plate_sized = set()
    for inner in ast.walk(node):
        if isinstance(inner, (ast.Global, ast.Nonlocal)):
            names.difference_update(inner.names)
        elif isinstance(inner, (ast.Import, ast.ImportFrom)):
            # resolved through the module's scope, which reads imports wherever they are
            names.difference_update((a.asname or a.name).split(".")[0] for a in inner.names)
        elif isinstance(inner, (ast.Yield, ast.YieldFrom)):
            generator = True
        elif isinstance(inner, ast.Call) and _dotted(inner.func) in ("plate", "pyro.plate"):
            size = inner.args[1] if len(inner.args) > 1 else _keyword(inner, "size")
            source = _size_source(size) if size is not None else None
            if isinstance(source, ast.Name):
                plate_sized.add(source.id)
    return _FunctionFacts(names, generator, plate_sized)


def _falls_through(body: Sequence[ast.stmt]) -> bool:
    """Whether a block may reach the statement after it (it does not end in a jump)."""
    return not body or not isinstance(body[-1], (ast.Return, ast.Raise, ast.Continue, ast.Break))


_DATA = _Value("data", batched=True)
_UNKNOWN = _Value("unknown")
_LN10 = 2.302585092994046
_TENSOR_KINDS = frozenset(
    {"log_softmax", "softmax", "sigmoid", "logsigmoid", "log10", "logit_mean"}
)
_SEQUENCES = frozenset({"list", "tuple"})
# Provenances kept by shape-only steps (view, reshape, squeeze); by indexing, which un-normalises
# a slice of log_softmax output (and gives the rows of a tensor when it is iterated over).
_KEPT_BY_SHAPE = frozenset({"log_softmax", "softmax", "sigmoid", "logsigmoid", "log10"})
_KEPT_BY_INDEXING = _KEPT_BY_SHAPE - {"log_softmax"}
_CALLABLE_KINDS = frozenset({"module", "loss", "instance", "function", "class", "either"})
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


def _log_prob_expr(node: ast.AST) -> str | None:
    """A name read as log-probabilities (``log_probs``, ``self.logp``), else ``None``."""
    name = node.id if isinstance(node, ast.Name) else getattr(node, "attr", None)
    return name if isinstance(name, str) and _LOG_PROB_NAMES.search(name.lower()) else None
