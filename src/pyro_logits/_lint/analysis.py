"""The AST analysis: follows provenance through names and calls and records findings."""

from __future__ import annotations

import ast
import dataclasses
import re
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import NamedTuple

from .facts import (
    _CALLABLE_KINDS,
    _CLAMPS,
    _DATA,
    _DEFAULT_MODULES,
    _DISTRIBUTIONS,
    _ELEMENTWISE,
    _GLOBAL_KINDS,
    _IDENTITY,
    _LN10,
    _LOG_KINDS,
    _LOG_PROB_NAMES,
    _LOSS_MODULES,
    _LOSSES,
    _MEANS,
    _MODULE_KINDS,
    _MUTATORS,
    _NET_WORDS,
    _NORMALISER_MODULES,
    _NORMALISERS,
    _PREDICTION,
    _PROB_KINDS,
    _RESHAPE,
    _STAR_NAMES,
    _TENSOR_KINDS,
    _TORCH_NAMES,
    _TORCH_ROOTS,
    _UNKNOWN,
    _batched,
    _bound_names,
    _ClassInfo,
    _dim0_message,
    _dotted,
    _falls_through,
    _function_facts,
    _FunctionFacts,
    _int,
    _is_ten,
    _keeps_batch,
    _keyword,
    _list_of,
    _loader_targets,
    _logits_expr,
    _logits_name,
    _merge,
    _number,
    _same,
    _short,
    _stacked_logits,
    _stop_positional,
    _Value,
)
from .project import Project


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

    def __init__(
        self, tree: ast.Module, project: Project | None = None, path: str = "<string>"
    ) -> None:
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
        # Classes and functions imported from other linted files: followed, never reported on.
        self.project = project
        self.own_path = Path(path).resolve() if project is not None else None
        self.in_foreign: Path | None = None  # the other file whose definition is analysed
        if project is not None:
            for stmt in tree.body:
                if isinstance(stmt, ast.ImportFrom):
                    for name, (node, _) in project.definitions(path, stmt).items():
                        if name not in self.defs and counts.get(name) == 1:
                            self.defs[name] = node
        self.summaries: dict[tuple[ast.AST, frozenset], _Value | None] = {}
        self.defaults: dict[ast.AST, dict[str, _Value]] = {}  # a function's default arguments
        # Per definition, shared by the files of a project (definitions are distinct nodes).
        self.function_facts: dict[ast.AST, _FunctionFacts] = project.facts if project else {}
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
        self,
        node: ast.FunctionDef | ast.AsyncFunctionDef,
        owner: _ClassInfo | None = None,
        bindings: dict[str, _Value] | None = None,
    ) -> _Value | None:
        """Analyse a function once per set of known arguments; return what its returns agree on.

        That is a tensor provenance, or a module for a function that builds one. ``bindings``
        are the parameters whose values a call site gave (a loss module, a network class
        instance, ...); defaults stand in for the others.
        """
        arguments = {**self.defaults.get(node, {}), **(bindings or {})}
        key = (node, frozenset(arguments.items()))
        foreign = self.foreign_file(node)
        summaries = self.summaries if foreign is None else self.project.summaries  # type: ignore[union-attr]
        if key in summaries or node in self.in_progress:
            return summaries.get(key)  # type: ignore[return-value]
        self.in_progress.add(node)
        cls, self_name = self.context.get(node, (owner, None))
        params = [*node.args.posonlyargs, *node.args.args]
        plain = not any(_dotted(d) in ("staticmethod", "classmethod") for d in node.decorator_list)
        if cls is not None and cls.methods.get(node.name) is node and params and plain:
            self_name = params[0].arg
        saved = (self.cls, self.self_name, self.func, self.locals, self.returns, self.muted)
        saved_foreign, self.in_foreign = self.in_foreign, foreign
        self.cls, self.self_name, self.func, self.returns = cls, self_name, node, []
        facts = self.facts(node)
        self.locals, self.muted = facts.locals, foreign is not None
        try:
            env = dict.fromkeys(facts.plate_sized & self.locals, _DATA)
            env.update(arguments)
            self.block(node.body, env)
            returns = self.returns
            if _falls_through(node.body) or facts.generator:
                returns.append(None)
            summary = returns[0] if returns else None
            for value in returns[1:]:
                summary = _same(summary, value)
            if summary is not None and summary.kind not in _TENSOR_KINDS | _MODULE_KINDS:
                summary = None
            if summary is not None and foreign is not None and summary.line:
                # Lines of another file: name it in the message instead.
                where = f"{summary.source} ({foreign.name}, line {summary.line})"
                summary = dataclasses.replace(summary, source=where, line=0)
            summaries[key] = summary
        finally:
            self.in_progress.discard(node)
            self.cls, self.self_name, self.func, self.locals, self.returns, self.muted = saved
            self.in_foreign = saved_foreign
        return summary

    def foreign_file(self, node: ast.AST) -> Path | None:
        """The other linted file a definition belongs to (``None`` for this file's own)."""
        if self.project is None:
            return None
        origin = self.project.origin(node)
        return origin if origin is not None and origin != self.own_path else None

    def facts(self, node: ast.FunctionDef | ast.AsyncFunctionDef) -> _FunctionFacts:
        """Locals, generator or not, plate-sized names of a function (once per definition)."""
        if node not in self.function_facts:
            self.function_facts[node] = _function_facts(node)
        return self.function_facts[node]

    def class_info(self, node: ast.ClassDef) -> _ClassInfo:
        """Methods, module-valued ``self.<attr>`` assignments, and whether it is an nn.Module."""
        foreign = self.foreign_file(node) is not None
        classes = self.project.classes if foreign else self.classes  # type: ignore[union-attr]
        if node in classes:
            return classes[node]  # type: ignore[return-value]
        info = _ClassInfo(node)
        classes[node] = info
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
                self.locals = self.facts(method).locals
                for inner in ast.walk(method):
                    if isinstance(inner, ast.Assign):
                        for target in inner.targets:
                            if isinstance(target, ast.Attribute) and _dotted(target.value) == me:
                                value = None
                                if isinstance(inner.value, (ast.Call, ast.Attribute)):
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
            if values is None:
                value = self.ev(value_node, env)
            elif any(isinstance(e, ast.Starred) for e in value_node.elts):  # type: ignore[attr-defined]
                value = None
            else:
                value = _list_of(values)
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
                items = self.ev(node.iter, dict(env)) if isinstance(node.iter, ast.Name) else None
                if (
                    isinstance(node.target, ast.Name)
                    and items is not None
                    and items.kind == "list"
                    and items.element is not None
                ):
                    inner[node.target.id] = items.element  # for out in outputs
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
            for expr in node.decorator_list:
                self.ev(expr, env)
            self.record_defaults(node, env)
            self.context.setdefault(node, (self.cls, self.self_name))
            env[node.name] = _Value("function", node=node, owner=self.cls)
            self.defined(node)
        elif isinstance(node, ast.ClassDef):
            for expr in [*node.decorator_list, *node.bases]:
                self.ev(expr, env)
            info = self.class_info(node)
            env[node.name] = _Value("class", node=node)
            saved, self.cls = self.cls, info
            class_env: dict[str, _Value] = {}
            for stmt in node.body:
                if isinstance(stmt, (ast.FunctionDef, ast.AsyncFunctionDef)):
                    for expr in stmt.decorator_list:
                        self.ev(expr, class_env)
                    self.record_defaults(stmt, class_env)
                    self.context.setdefault(stmt, (info, None))
                    self.defined(stmt)
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

    def defined(self, node: ast.FunctionDef | ast.AsyncFunctionDef) -> None:
        """Queue a nested definition for analysis; in another file's code, mark it as theirs."""
        if self.in_foreign is not None and self.project is not None:
            self.project.mark(node, self.in_foreign)
        else:
            self.pending.append(node)

    def record_defaults(
        self, node: ast.FunctionDef | ast.AsyncFunctionDef, env: dict[str, _Value]
    ) -> None:
        """Evaluate the default arguments; keep those with a known value (``loss=nn.X()``)."""
        args = node.args
        positional = [*args.posonlyargs, *args.args]
        defaulted = positional[len(positional) - len(args.defaults) :]
        pairs = list(zip(defaulted, args.defaults, strict=True))
        pairs += [
            (a, d) for a, d in zip(args.kwonlyargs, args.kw_defaults, strict=True) if d is not None
        ]
        known = {}
        for param, expr in pairs:
            value = self.ev(expr, env)
            if value is not None:
                known[param.arg] = value
        if known:
            self.defaults[node] = known

    def bind(
        self, target: _Value, node: ast.FunctionDef | ast.AsyncFunctionDef, args: _Args
    ) -> dict[str, _Value]:
        """The parameters of ``node`` that this call gives a known value."""
        params = [*node.args.posonlyargs, *node.args.args]
        plain = not any(_dotted(d) in ("staticmethod", "classmethod") for d in node.decorator_list)
        if target.owner is not None and plain:
            params = params[1:]  # a bound method: self is given
        given = zip(params, args.values[: len(params)], strict=False)  # extra ones go to *args
        bound = {param.arg: value for param, value in given if value is not None}
        names = {a.arg for a in [*params, *node.args.kwonlyargs]}
        for name, (_, value) in args.keywords.items():
            if name in names and value is not None:
                bound[name] = value
        return bound

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
            return self.function_reference(node)
        if isinstance(node, ast.Subscript) and isinstance(node.ctx, ast.Load):
            value = self.ev(node.value, env)
            self.ev(node.slice, env)
            if value is not None and value.kind == "list":
                return value.element
            # Entries of probabilities are probabilities; a slice of log_softmax output is no
            # longer normalised, so it is not reported as redundant.
            return value if value is not None and value.kind in _KEPT_BY_INDEXING else None
        if isinstance(node, (ast.List, ast.Tuple)) and isinstance(node.ctx, ast.Load):
            values = [self.ev(e, env) for e in node.elts]
            if any(isinstance(e, ast.Starred) for e in node.elts):
                return None
            return _list_of(values)
        if isinstance(node, (ast.ListComp, ast.GeneratorExp)):
            return self.comprehension(node, env)
        if isinstance(node, (ast.Lambda, ast.SetComp, ast.DictComp)):
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

    def function_reference(self, node: ast.Attribute) -> _Value | None:
        """``F.cross_entropy`` or ``torch.softmax`` named, not called (``loss_fn = F.nll_loss``)."""
        if not self.torch_like(node):
            return None
        if node.attr in _LOSSES:
            return _Value("loss", node.attr, loss=node.attr)
        if node.attr in _NORMALISERS:
            source = f"`{_short(node)}`"
            return _Value("module", source, node.lineno, returns=_NORMALISERS[node.attr])
        return None

    def comprehension(
        self, node: ast.ListComp | ast.GeneratorExp, env: dict[str, _Value]
    ) -> _Value:
        """A list of what ``elt`` is, with the loop targets bound (elements, networks, data)."""
        hidden = _bound_names(ast.iter_child_nodes(node), mutations=False)
        inner = {k: v for k, v in env.items() if k not in hidden}
        for generator in node.generators:
            items = self.ev(generator.iter, inner)
            target = generator.target
            if isinstance(target, ast.Name):
                if items is not None and items.kind == "list" and items.element is not None:
                    inner[target.id] = items.element
                elif isinstance(generator.iter, ast.Name) and _net_name(generator.iter.id):
                    inner[target.id] = _Value("module")  # for model in models
            inner.update(dict.fromkeys(_loader_targets(target, generator.iter), _DATA))
            for condition in generator.ifs:
                self.ev(condition, inner)
        return _Value("list", element=self.ev(node.elt, inner))

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
        if isinstance(node.op, ast.Div) and left is not None and left.kind == "stacked_sum":
            return _Value("logit_mean", left.source, node.lineno, node=node)
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
        if (
            isinstance(func, ast.Attribute)
            and func.attr in ("forward", "__call__")
            and receiver is not None
            and receiver.kind in _CALLABLE_KINDS
        ):
            return self.call_value(node, receiver, args)  # model.forward(x) is model(x)
        if name is None:
            if isinstance(func, ast.Name) and any(w in func.id.lower() for w in _NET_WORDS):
                return _scores(args.get(0)[1])  # net(x): raw scores, and it keeps the batch
            if isinstance(func, ast.Name) and func.id == "sum" and func.id not in self.defs:
                return self.sum_of(node, args)
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
        if name in _SHAPE_ONLY and in_value is not None and in_value.kind in _KEPT_BY_SHAPE:
            return in_value  # probs.view(-1, C) are still probabilities
        if name == "exp" and in_value is not None and in_value.kind in _LOG_KINDS:
            kind = "softmax" if in_value.kind == "log_softmax" else "sigmoid"
            source = f"`{_short(node)}` (exp of {in_value.kind})"
            return _Value(kind, source, line, in_value.dim0, in_value.batched)
        if name in _CLAMPS and in_value is not None and in_value.kind in _PROB_KINDS:
            return in_value
        if name in _MEANS:
            source = _stacked_logits(in_expr)
            if source is not None and _int(dim) == 0:
                return _Value("logit_mean", source, line, node=node)
            if in_value is not None and in_value.kind == "stacked" and _int(dim) == in_value.dim:
                return _Value("logit_mean", in_value.source, line, node=node, dim=in_value.dim)
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
        """Constructors of modules and losses, containers, in-place methods, submodules."""
        func = node.func
        if function_form and name in ("cat", "concat", "concatenate", "stack", "vstack"):
            return self.joined(node, name, args)
        owner = getattr(func, "value", None)
        current = env.get(owner.id) if isinstance(owner, ast.Name) else None
        if not function_form and current is not None and name in _GROWERS:
            assert isinstance(owner, ast.Name)
            env[owner.id] = _grown(current, name, args.values)
            return None
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

    def joined(self, node: ast.Call, name: str, args: _Args) -> _Value | None:
        """``torch.cat(list)`` keeps what the elements are.

        ``torch.stack`` of network outputs stacks samples along its dim, which a mean over that
        dim averages.
        """
        items = args.values[0] if args.values else None
        element = items.element if items is not None and items.kind == "list" else None
        if element is None:
            return None
        if element.kind in _KEPT_BY_SHAPE:
            return element
        if name == "stack" and element.scores:
            dim = args.get(1, "dim")[0]
            stacked_dim = _int(dim) if dim is not None else 0
            if stacked_dim is not None:
                source = f"`{_short(node)}` (network outputs)"
                return _Value("stacked", source, node.lineno, dim=stacked_dim)
        return _DATA if element.batched else None

    def sum_of(self, node: ast.Call, args: _Args) -> _Value | None:
        """``sum(outputs)`` of network outputs: divided by a count, it averages them."""
        items = args.values[0] if args.values else None
        element = items.element if items is not None and items.kind == "list" else None
        if element is not None and element.scores:
            return _Value("stacked_sum", f"`{_short(node)}` (network outputs)", node.lineno)
        return None

    def call_value(self, node: ast.Call, target: _Value, args: _Args) -> _Value | None:
        """A call of something whose value is known: a module, a loss, a class or a function."""
        in_expr, in_value = args.get(0, "input")
        if target.kind == "module":
            if not target.returns:
                return _scores(in_value)
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
            bindings = self.bind(target, target.node, args)
            summary = self.function_summary(target.node, target.owner, bindings)
        if summary is not None and _batched(in_value) and not summary.batched:
            # A network keeps the batch dim of its input.
            return _Value(summary.kind, summary.source, summary.line, summary.dim0, True)
        if summary is None and target.kind == "instance":
            return _scores(in_value)
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
        elif (value is None or value.kind == "data") and _log_prob_expr(expr) is not None:
            self.report(
                expr,
                "PL008",
                f"`{_short(expr)}` is named like log-probabilities but is used as {target}; "
                f"pass them as `{dist}(logits={_short(expr)})` (or exp() them first)",
            )
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
                f"{value.source} averaged over dim {value.dim or 0} (the samples) and then used "
                f"in {target}: "
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


_SHAPE_ONLY = _RESHAPE | {"resize", "resize_as", "narrow", "select", "movedim", "swapaxes"}
_KEPT_BY_SHAPE = frozenset({"log_softmax", "softmax", "sigmoid", "logsigmoid", "log10"})
_KEPT_BY_INDEXING = _KEPT_BY_SHAPE - {"log_softmax"}
_GROWERS = frozenset({"append", "extend", "insert", "add_module"})


def _scores(x: _Value | None) -> _Value:
    """What calling a network on ``x`` gives: raw scores, batched if ``x`` is."""
    return _Value("data", batched=_batched(x), scores=True)


def _grown(current: _Value, method: str, values: Sequence[_Value | None]) -> _Value | None:
    """A list after ``.append(v)``/``.extend(vs)``, or an nn.Sequential after ``.add_module``."""
    if current.kind == "module" and method in ("add_module", "append"):
        added = values[-1] if values else None
        return added if added is not None and added.kind == "module" else _Value("module")
    if current.kind != "list":
        return current
    if method == "extend":
        extra = values[0] if values else None
        new = [extra.element] if extra is not None and extra.kind == "list" else [None]
    else:
        new = [values[-1] if values else None]
    old = [] if current.source == "empty" else [current.element]
    return _list_of([*old, *new])


def _net_name(name: str) -> bool:
    return any(word in name.lower() for word in _NET_WORDS)


def _log_prob_expr(node: ast.AST) -> str | None:
    """A name read as log-probabilities (``log_probs``, ``self.logp``), else ``None``."""
    name = node.id if isinstance(node, ast.Name) else getattr(node, "attr", None)
    return name if isinstance(name, str) and _LOG_PROB_NAMES.search(name.lower()) else None


def _char_col(lines: Sequence[str], line: int, col: int) -> int:
    """Convert an ast byte offset on a line into a character offset."""
    if not 1 <= line <= len(lines):
        return col
    return len(lines[line - 1].encode("utf-8")[:col].decode("utf-8", "replace"))


_ORIGIN = re.compile("\x00([0-9]+)\x00")


def _analyse(
    tree: ast.Module,
    lines: Sequence[str],
    *,
    origin: Callable[[int], str] | None = None,
    project: Project | None = None,
    path: str = "<string>",
) -> list[tuple[int, int, str, str]]:
    """Findings as ``(line, 0-based character column, code, message)``.

    ``origin`` turns the line a value came from into the words put in the message; ``project``
    (with the file's ``path``) lets imports from other linted files be followed.
    """
    name = origin or (lambda line: f"line {line}")
    return [
        (
            line,
            _char_col(lines, line, col),
            code,
            _ORIGIN.sub(lambda m: f" ({name(int(m[1]))})", msg),
        )
        for line, col, code, msg in _Analyzer(tree, project, path).run()
    ]
