"""Statements: how each kind moves what is known of names (assignments, branches, loops, defs)."""

from __future__ import annotations

import ast
import dataclasses
from typing import Any

from .facts import (
    _DATA,
    _KEPT_BY_INDEXING,
    _SEQUENCES,
    _Args,
    _bound_names,
    _dict_of,
    _dotted,
    _falls_through,
    _item,
    _list_of,
    _loader_targets,
    _logits_name,
    _merge,
    _same,
    _short,
    _tuple_of,
    _Value,
)


class _Statements:
    """Mixin of :class:`~pyro_logits_lint._engine.analysis._Analyzer`: one method per statement."""

    def stmt(self, node: ast.stmt, env: dict[str, _Value]) -> None:
        """Analyse one statement (one method per kind of statement)."""
        getattr(self, _STATEMENTS.get(type(node).__name__, "other_statement"))(node, env)

    def assign_statement(self, node: Any, env: dict[str, _Value]) -> None:
        """``a = b``, also ``a, b = c, d`` and ``out, kl = model(x)``."""
        value_node = node.value
        elts = getattr(value_node, "elts", None)
        values = None
        if elts is not None and not any(isinstance(e, ast.Starred) for e in elts):
            values = [self.ev(e, env) for e in elts]
            tuple_like = isinstance(value_node, ast.Tuple)
            value = _tuple_of(values) if tuple_like else _list_of(values)
        else:
            value = self.ev(value_node, env)
        for target in node.targets:
            targets = getattr(target, "elts", None)
            if (
                values is not None
                and targets is not None
                and len(targets) == len(values)
                and not any(isinstance(e, ast.Starred) for e in targets)
            ):
                for elt, elt_value, expr in zip(targets, values, elts, strict=True):  # type: ignore[arg-type]
                    self.assign(elt, elt_value, expr, env)
            else:
                self.assign(target, value, value_node, env)

    def annotated_assign(self, node: Any, env: dict[str, _Value]) -> None:
        """``a: T = b``."""
        if node.value is not None:
            self.assign(node.target, self.ev(node.value, env), node.value, env)

    def augmented_assign(self, node: Any, env: dict[str, _Value]) -> None:
        """``a += b`` clears what ``a`` was."""
        self.ev(node.value, env)
        self.assign(node.target, None, node.value, env)

    def return_statement(self, node: Any, env: dict[str, _Value]) -> None:
        """Records what a function returns."""
        value = self.ev(node.value, env) if node.value is not None else None
        if self.returns is not None:
            self.returns.append(value)
        if node.value is not None and self.func is not None and _logits_name(self.func.name):
            self.check_log10(node.value, value, f"the return value of `{self.func.name}`")

    def if_statement(self, node: Any, env: dict[str, _Value]) -> None:
        """Both branches; after them, what both agree on."""
        self.ev(node.test, env)
        outs = [dict(env), dict(env)]
        self.block(node.body, outs[0])
        self.block(node.orelse, outs[1])
        # A branch that raises, returns, breaks or continues does not reach the next statement.
        bodies = (node.body, node.orelse)
        going_on = [o for o, b in zip(outs, bodies, strict=True) if _falls_through(b)]
        self.join(env, going_on or outs)

    def loop(self, node: Any, env: dict[str, _Value]) -> None:
        """What holds at the start of every iteration, and after the loop."""
        targets: set[str] = set()
        if isinstance(node, ast.While):
            self.ev(node.test, env)
        else:
            self.ev(node.iter, env)
            targets = _bound_names([node.target], mutations=True)
        # What holds at the start of every iteration: what the body does not touch.
        killed = _bound_names(node.body, mutations=True) | targets
        # A buffer filled in the loop (outputs[t] = ...) is followed through its writes.
        entry = {k: v for k, v in env.items() if k not in killed or _is_buffer(v)}
        inner = dict(entry)
        if not isinstance(node, ast.While):
            inner.update(dict.fromkeys(_loader_targets(node.target, node.iter), _DATA))
            items = self.ev(node.iter, dict(env)) if isinstance(node.iter, ast.Name) else None
            if isinstance(node.target, ast.Name) and items is not None:
                if items.kind in _SEQUENCES and items.element is not None:
                    inner[node.target.id] = items.element  # for out in outputs
                elif items.kind in _KEPT_BY_INDEXING:  # for p in probs: rows of probabilities
                    inner[node.target.id] = dataclasses.replace(items, dim0=False)
        self.block(node.body, inner)
        after = _merge([entry, inner])
        self.block(node.orelse, after)
        self.join(env, [after])

    def with_statement(self, node: Any, env: dict[str, _Value]) -> None:
        """``with ctx as name``."""
        for item in node.items:
            self.ev(item.context_expr, env)
            if item.optional_vars is not None:
                self.assign(item.optional_vars, None, item.context_expr, env)
        self.block(node.body, env)

    def try_statement(self, node: Any, env: dict[str, _Value]) -> None:
        """The body, the handlers (from what holds before the body) and ``finally``."""
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

    def match_statement(self, node: Any, env: dict[str, _Value]) -> None:
        """Each case from what holds before it; after, what all agree on."""
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

    def function_definition(self, node: Any, env: dict[str, _Value]) -> None:
        """Defaults are evaluated now, the body later (or at a call)."""
        for expr in node.decorator_list:
            self.ev(expr, env)
        self.record_defaults(node, env)
        self.context.setdefault(node, (self.cls, self.self_name))
        env[node.name] = _Value("function", node=node, owner=self.cls)
        self.defined(node)

    def class_definition(self, node: Any, env: dict[str, _Value]) -> None:
        """The class body; methods are analysed later (or at a call)."""
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

    def scope_declaration(self, node: Any, env: dict[str, _Value]) -> None:
        """``global``/``nonlocal`` names are not followed."""
        for name in node.names:
            env.pop(name, None)

    def unbinding(self, node: Any, env: dict[str, _Value]) -> None:
        """``del``/``import`` rebind names: what they were is gone."""
        for name in _bound_names([node], mutations=True):
            env.pop(name, None)

    def other_statement(self, node: Any, env: dict[str, _Value]) -> None:
        """``Expr``, ``Assert``, ``Raise``, ...: the expressions in it."""
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
        if isinstance(target, (ast.Tuple, ast.List)):
            self.unpack(target.elts, value, expr, env)
            return
        if isinstance(target, ast.Starred):
            self.assign(target.value, value, expr, env)
            return
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
            if self.is_self(target.value):  # self.loss = loss: kept on the object
                earlier = self.self_sets.get(target.attr, value)
                self.self_sets[target.attr] = _same(earlier, value)
            if _logits_name(target.attr):
                self.check_log10(expr, value, f"`{_short(target)}`")
        elif isinstance(target, ast.Subscript):
            self.ev(target.value, env)
            self.ev(target.slice, env)
            owner, key = target.value, target.slice
            current = env.get(owner.id) if isinstance(owner, ast.Name) else None
            if current is not None and current.kind == "buffer" and value is not None:
                # outputs[t] = softmax(...): the buffer holds rows of what is written
                env[owner.id] = dataclasses.replace(value, dim0=False)  # type: ignore[union-attr]
                return
            if (
                current is not None
                and current.kind == "dict"
                and isinstance(key, ast.Constant)
                and isinstance(key.value, str)
            ):
                entries = {**dict(current.attrs), key.value: value}  # out["out"] = ...
                env[owner.id] = _dict_of(entries)  # type: ignore[union-attr]
                return
        for name in _bound_names([target], mutations=True):
            env.pop(name, None)

    def unpack(
        self, targets: list[ast.expr], value: _Value | None, expr: ast.expr, env: dict[str, _Value]
    ) -> None:
        """``a, b = v``, ``head, *rest = v``, ``(a, b), c = v``: position by position."""
        starred = [i for i, t in enumerate(targets) if isinstance(t, ast.Starred)]
        if not starred:
            for index, target in enumerate(targets):
                self.assign(target, _item(value, index, len(targets)), expr, env)
            return
        star = starred[0]
        after = len(targets) - star - 1
        items = value.items if value is not None and value.kind == "tuple" else None
        for index, target in enumerate(targets):
            if items is None or len(items) < len(targets) - 1:
                part = _item(value, 0) if index != star else value
            elif index < star:
                part = items[index]
            elif index == star:
                part = _list_of(items[star : len(items) - after])
            else:
                part = items[len(items) - (len(targets) - index)]
            self.assign(target, part, expr, env)


def _is_buffer(value: _Value | None) -> bool:
    return value is not None and value.kind == "buffer"


# statement type -> the method that handles it
_STATEMENTS = {
    "Assign": "assign_statement",
    "AnnAssign": "annotated_assign",
    "AugAssign": "augmented_assign",
    "Return": "return_statement",
    "If": "if_statement",
    "For": "loop",
    "AsyncFor": "loop",
    "While": "loop",
    "With": "with_statement",
    "AsyncWith": "with_statement",
    "Try": "try_statement",
    "TryStar": "try_statement",
    "Match": "match_statement",
    "FunctionDef": "function_definition",
    "AsyncFunctionDef": "function_definition",
    "ClassDef": "class_definition",
    "Global": "scope_declaration",
    "Nonlocal": "scope_declaration",
    "Delete": "unbinding",
    "Import": "unbinding",
    "ImportFrom": "unbinding",
}
