"""The AST analysis: an abstract interpreter that follows values and records findings.

Design
    A *value* (:class:`~pyro_logits_lint._engine.facts._Value`) is what the analysis knows of an
    expression: a tensor's provenance (``softmax`` output, ``log_softmax`` over dim 0 of a
    batch, raw network scores, ...), or structure: a tuple (each position), a dict (constant
    keys), a list (what every element is), an object of a project class (the class and what
    its constructor set on ``self``), a class, a function, a module, a loss, or ``either`` (a
    callable that differs by path). ``None`` is "nothing known": every rule below degrades to
    it, never to a guess.

    Evaluation: one method per kind of expression (:mod:`.expressions`) and statement
    (:mod:`.statements`), as Python evaluates them. Names resolve through the function's
    environment, then its module's scope (:class:`_ModuleScope`: definitions, imports, module
    values), with the same rule in every file: a definition of another file is analysed in that
    file's scope.

    Calls: one rule for functions, methods, constructors and ``__call__`` -> ``forward``. The
    callee is analysed once per set of known arguments (``self`` included), giving a summary of
    what it returns and what it sets on ``self``; summaries are shared by the files of a
    project. Findings are made at the sinks (:mod:`.sinks`), wherever the analysis is; one made
    in another linted file is reported there (:class:`~pyro_logits_lint._engine.project.Project`).

    Joins: tensors keep what every path agrees on (weak evidence); callables become ``either``,
    followed on every path (a mistake on one feasible path is a mistake).

    Bounds: call chains are followed :data:`MAX_CALL_DEPTH` deep, re-exports
    :data:`~pyro_logits_lint._engine.project.MAX_REEXPORTS` modules, ``either`` holds at
    most :data:`~pyro_logits_lint._engine.facts.MAX_ALTERNATIVES` callables, recursion is cut
    at the first repeat. Beyond them the analysis gives nothing rather than crash.

    Out of reach, and why: values built at run time (``getattr(m, name)`` with a computed name,
    ``importlib``, registries filled by decorators), containers mutated through aliases,
    attributes set from outside the class (``model.head = nn.Softmax()``), tensors written into
    pre-allocated buffers (``outputs[t] = ...``), and code outside the linted files (installed
    packages are not read). A softmax over dim 0 is judged only where it is consumed as logits,
    probabilities or a loss input: elsewhere (``argmax``, a return) a batch-by-batch matrix,
    as in contrastive losses, makes dim 0 legitimate.

The modules: :mod:`.statements`, :mod:`.expressions`, :mod:`.sinks` (the places that expect
logits, probabilities or log-probabilities), :mod:`.facts` (the lookup tables and the value
record) and :mod:`.project` (the files of one lint run). This module holds the driver, the
module scopes, functions analysed per set of known arguments, and classes. Findings are data
(:class:`_Report`), turned into messages by :func:`_analyse`.
"""

from __future__ import annotations

import ast
import dataclasses
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import NamedTuple

from .expressions import _Expressions, _grown
from .facts import (
    _CALLABLE_KINDS,
    _DATA,
    _DEFAULT_MODULES,
    _GLOBAL_KINDS,
    _MODULE_KINDS,
    _MUTATORS,
    _STAR_NAMES,
    _TENSOR_KINDS,
    _TORCH_NAMES,
    _TORCH_ROOTS,
    _Args,
    _bound_names,
    _ClassInfo,
    _dotted,
    _falls_through,
    _function_facts,
    _FunctionFacts,
    _merge,
    _same,
    _Value,
)
from .project import Project, real_path
from .sinks import ORIGIN_SLOT, _Sinks
from .statements import _Statements


@dataclasses.dataclass
class _ModuleScope:
    """The names a module binds at its top level, as the analysis resolves them."""

    aliases: dict[str, str]  # local name -> what it was imported as (torch, pyro, ...)
    modules: set[str]  # names whose attributes are functions, not methods
    star_torch: bool  # from torch import *
    defs: dict[str, ast.AST]  # classes and functions, defined here or imported from the project
    module_files: dict[str, Path]  # local name -> the project module it is bound to
    globals: dict[str, _Value] = dataclasses.field(default_factory=dict)  # module-level values
    # local name -> (module file, name there), for values (MODELS = {...}) imported from it
    imported: dict[str, tuple[Path, str]] = dataclasses.field(default_factory=dict)


def _module_scope(tree: ast.Module, project: Project | None, path: str) -> _ModuleScope:
    """The imports and definitions of ``tree`` (the file ``path`` of ``project``).

    Read once per file and run; each caller gets its own (empty) module-level values.
    """
    if project is None:
        return _read_scope(tree, project, path)
    key = real_path(Path(path))
    if key not in project.read_scopes:
        project.read_scopes[key] = _read_scope(tree, project, path)
    scope: _ModuleScope = project.read_scopes[key]  # type: ignore[assignment]
    return dataclasses.replace(scope, globals={})


def _read_scope(tree: ast.Module, project: Project | None, path: str) -> _ModuleScope:
    scope = _ModuleScope({}, set(_DEFAULT_MODULES), False, {}, {})
    imports: list[ast.Import | ast.ImportFrom] = []
    for node in ast.walk(tree):
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            imports.append(node)
        if isinstance(node, ast.Import):
            for alias in node.names:
                local = alias.asname or alias.name.split(".")[0]
                scope.aliases[local] = alias.name if alias.asname else local
                scope.modules.add(local)
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            for alias in node.names:
                if alias.name == "*":
                    scope.star_torch |= node.module.split(".")[0] in _TORCH_ROOTS
                    continue
                local = alias.asname or alias.name
                scope.aliases[local] = f"{node.module}.{alias.name}"
                if alias.name[:1].islower() and alias.name not in _STAR_NAMES:
                    scope.modules.add(local)  # a module, as in: from torch.nn import functional
    for stmt in tree.body:  # tfd = tfp.distributions
        dotted = _dotted(stmt.value) if isinstance(stmt, ast.Assign) else None
        if dotted and "." in dotted and dotted.split(".")[0] in scope.aliases:
            root, _, rest = dotted.partition(".")
            for target in stmt.targets:  # type: ignore[attr-defined]
                if isinstance(target, ast.Name):
                    scope.aliases[target.id] = f"{scope.aliases.get(root, root)}.{rest}"
                    scope.modules.add(target.id)
    counts: dict[str, int] = {}
    defs: dict[str, ast.AST] = {}
    for stmt in tree.body:
        for name in _bound_names([stmt], mutations=False):
            counts[name] = counts.get(name, 0) + 1
        if isinstance(stmt, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            defs[stmt.name] = stmt
    # Top-level functions and classes bound once, for calls analysed before their `def`.
    scope.defs = {name: node for name, node in defs.items() if counts[name] == 1}
    if project is None:
        return scope
    # Classes, functions and modules of the other linted files: followed, reported where they are.
    # Imports inside functions (a hook importing its helper) bind names nothing else binds.
    top = [n for n in tree.body if isinstance(n, (ast.Import, ast.ImportFrom))]
    for stmt in [*top, *(n for n in imports if n not in top)]:
        inner = stmt not in top
        taken = scope.defs.keys() | scope.module_files.keys() | scope.imported.keys()
        if isinstance(stmt, ast.ImportFrom):
            found = project.definitions(path, stmt)
            for name, (member, _) in found.items():
                if inner and name in taken:
                    continue
                if isinstance(member, Path):
                    scope.module_files[name] = member
                elif name not in scope.defs and counts.get(name, 1) == 1:
                    scope.defs[name] = member
            source = project.resolve(path, stmt.module, stmt.level)
            for alias in stmt.names:
                local = alias.asname or alias.name
                if source is not None and alias.name != "*" and local not in found.keys() | taken:
                    scope.imported[local] = (source, alias.name)
        else:
            for alias in stmt.names:
                local = alias.asname or alias.name.split(".")[0]
                file = project.module_file(path, alias.name if alias.asname else local)
                if file is not None and not (inner and local in taken):
                    scope.module_files[local] = file
    return scope


class _Analyzer(_Statements, _Expressions, _Sinks):
    """Walks one module, following provenance through names, and records findings."""

    def __init__(
        self, tree: ast.Module, project: Project | None = None, path: str = "<string>"
    ) -> None:
        self.tree = tree
        self.found: dict[tuple[int, int, str], _Report] = {}
        self.reported_means: set[ast.AST] = set()
        self.muted = False
        self.deadline = time.monotonic() + MAX_SECONDS
        self.on_path = False  # checking one of the values a network or loss chosen by path gives
        self.held_back: list[tuple[ast.AST, str, str, int]] = []  # harmless findings on a path
        self.project = project
        self.own_path = real_path(Path(path)) if project is not None else None
        self.in_foreign: Path | None = None  # the other file whose definition is analysed
        self.scope = _module_scope(tree, project, path)
        self.own_scope = self.scope
        # per call: what it returns and what it sets on self (another file's: in the project)
        self.summaries: dict[tuple[object, ...], tuple[_Value | None, dict[str, _Value | None]]]
        self.summaries = {}
        self.defaults: dict[ast.AST, dict[str, _Value]] = {}  # a function's default arguments
        # Per definition, shared by the files of a project (definitions are distinct nodes).
        self.function_facts: dict[ast.AST, _FunctionFacts] = project.facts if project else {}
        self.in_progress: set[ast.AST] = set()
        self.self_sets: dict[str, _Value | None] = {}
        self.last_sets: dict[str, _Value] = {}  # what the last method called set on self
        self.classes: dict[ast.ClassDef, _ClassInfo] = {}
        self.methods_read: set[ast.AST] = set()  # the methods of the classes read so far
        self.context: dict[ast.AST, tuple[_ClassInfo | None, str | None]] = {}
        self.pending: list[ast.FunctionDef | ast.AsyncFunctionDef] = []
        # The scope being analysed.
        self.cls: _ClassInfo | None = None
        self.self_name: str | None = None
        self.func: ast.FunctionDef | ast.AsyncFunctionDef | None = None
        self.locals: set[str] | None = None
        self.returns: list[_Value | None] | None = None

    @property
    def aliases(self) -> dict[str, str]:
        return self.scope.aliases

    @property
    def modules(self) -> set[str]:
        return self.scope.modules

    @property
    def star_torch(self) -> bool:
        return self.scope.star_torch

    @property
    def defs(self) -> dict[str, ast.AST]:
        return self.scope.defs

    @property
    def globals(self) -> dict[str, _Value]:
        return self.scope.globals

    def scope_of(self, file: Path | None) -> _ModuleScope:
        """The module scope of a linted file (this one's for ``None``)."""
        if file is None or self.project is None:
            return self.own_scope
        if file not in self.project.scopes:
            tree = self.project.tree(file)
            if tree is None:
                return self.own_scope
            scope = _module_scope(tree, self.project, str(file))
            self.project.scopes[file] = scope
            # Its module-level values (criterion = nn.CrossEntropyLoss()), nothing reported.
            saved = (self.scope, self.in_foreign, self.muted, self.locals, self.cls, self.func)
            self.scope, self.in_foreign, self.muted = scope, file, True
            self.locals = self.cls = self.func = None
            try:
                for stmt in tree.body:  # its assignments: definitions are followed when called
                    if isinstance(stmt, (ast.Assign, ast.AnnAssign)):
                        self.stmt(stmt, scope.globals)
            finally:
                self.scope, self.in_foreign, self.muted, self.locals, self.cls, self.func = saved
        return self.project.scopes[file]  # type: ignore[return-value]

    def context_file(self) -> Path | None:
        """The file whose code is being analysed."""
        return self.in_foreign or self.own_path

    def module_member(self, node: ast.Attribute) -> _Value | None:
        """``models.lenet.Net`` where ``models`` is a module of the project: the definition."""
        dotted = _dotted(node.value)
        if dotted is None or self.project is None:
            return None
        root, *rest = dotted.split(".")
        file: object = self.scope.module_files.get(root)
        for part in rest:
            file = self.project.member(file, part) if isinstance(file, Path) else None
        member = self.project.member(file, node.attr) if isinstance(file, Path) else None
        if isinstance(member, ast.ClassDef):
            return _Value("class", node=member)
        if isinstance(member, (ast.FunctionDef, ast.AsyncFunctionDef)):
            return _Value("function", node=member)
        return None

    def qualify(self, dotted: str) -> str:
        root, _, rest = dotted.partition(".")
        root = self.aliases.get(root, root)
        return f"{root}.{rest}" if rest else root

    def ours(self, func: ast.expr) -> bool:
        """Whether ``func`` names a function of this package (``pl.observe_bernoulli``)."""
        if isinstance(func, ast.Name):
            return self.aliases.get(func.id, "").startswith("pyro_logits.")
        dotted = _dotted(func.value) if isinstance(func, ast.Attribute) else None
        return dotted is not None and self.qualify(dotted).split(".")[0] == "pyro_logits"

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

    def run(self) -> list[_Report]:
        self.block(self.tree.body, self.globals)
        while self.pending:
            self.function_summary(self.pending.pop(0))
        return sorted(self.found.values())

    def report(self, node: ast.AST, code: str, message: str, origin: int = 0) -> None:
        """Record a finding at ``node``; ``origin`` is the line the offending value came from.

        A finding in another linted file, made while following a call into it, is reported
        there (once, however many files lead to it).
        """
        if self.muted:
            return
        if self.on_path and code in _HARMLESS:  # on every path, or not at all (see sinks)
            self.held_back.append((node, code, message, origin))
            return
        if self.on_path:
            message += _ON_ONE_PATH
        line, col = node.lineno, node.col_offset  # type: ignore[attr-defined]
        finding = _Report(line, col, code, message, origin)
        if self.in_foreign is None:
            self.found.setdefault((line, col, code), finding)
        elif self.project is not None:
            self.project.report(self.in_foreign, (line, col, code), finding)

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
        return self.analyse_call(node, owner, bindings)[0]

    def analyse_call(
        self,
        node: ast.FunctionDef | ast.AsyncFunctionDef,
        owner: _ClassInfo | None = None,
        bindings: dict[str, _Value] | None = None,
    ) -> tuple[_Value | None, dict[str, _Value | None]]:
        """:meth:`function_summary`, and what the call sets on ``self`` (its attributes)."""
        foreign = self.foreign_file(node)
        bindings = self.crossing(node, bindings or {})
        arguments = {**self.defaults_of(node), **bindings}
        key = (node, owner.node if owner else None, frozenset(arguments.items()))
        summaries = self.summaries if foreign is None else self.project.summaries  # type: ignore[union-attr]

        # What the caller sees: lines of another file are named by that file.
        def seen(value: _Value | None) -> _Value | None:
            if foreign is None or foreign == self.in_foreign:
                return value
            return _located(value, foreign)

        if key in summaries:
            summary, sets = summaries[key]  # type: ignore[misc]
            return seen(summary), {k: seen(v) for k, v in sets.items()}
        if node in self.in_progress or len(self.in_progress) >= MAX_CALL_DEPTH:
            return None, {}  # recursion, or a chain this deep: nothing is claimed
        self.in_progress.add(node)
        cls, self_name = self.context.get(node, (owner, None))
        cls = owner or cls  # a base class's method runs on the subclass's object
        params = [*node.args.posonlyargs, *node.args.args]
        plain = not any(_dotted(d) in ("staticmethod", "classmethod") for d in node.decorator_list)
        if cls is not None and node in self.methods_read and params and plain:
            self_name = params[0].arg  # a method of the class or of one of its bases
        saved = (self.cls, self.self_name, self.func, self.locals, self.returns, self.scope)
        saved_foreign, saved_sets = self.in_foreign, self.self_sets
        self.self_sets = {}
        scope = self.scope_of(foreign)
        self.in_foreign, self.scope = foreign, scope
        self.cls, self.self_name, self.func, self.returns = cls, self_name, node, []
        facts = self.facts(node)
        self.locals = facts.locals
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
            if summary is not None and summary.kind not in _SUMMARY_KINDS:
                summary = None
            sets = self.self_sets
            summaries[key] = (summary, sets)
        finally:
            self.in_progress.discard(node)
            self.cls, self.self_name, self.func, self.locals, self.returns, self.scope = saved
            self.in_foreign, self.self_sets = saved_foreign, saved_sets
        return seen(summary), {k: seen(v) for k, v in sets.items()}

    def constructed(self, info: _ClassInfo, args: _Args) -> _Value | None:
        """An object of the class ``info``: ``__init__`` run on the call's arguments.

        The object keeps the attributes its constructor set from known values
        (``self.criterion = criterion``); ``None`` for a class that is not a network and keeps
        nothing known.
        """
        init = info.methods.get("__init__")
        attrs: dict[str, _Value] = {}
        if isinstance(init, (ast.FunctionDef, ast.AsyncFunctionDef)):
            target = _Value("function", node=init, owner=info)
            _, sets = self.analyse_call(init, info, self.bind(target, init, args))
            attrs = {k: v for k, v in sets.items() if v is not None}
        if not attrs and not info.is_module:
            return None
        return _Value("instance", node=info.node, attrs=tuple(sorted(attrs.items())))

    def crossing(self, node: ast.AST, bindings: dict[str, _Value]) -> dict[str, _Value]:
        """Arguments given to ``node`` in another file: lines named by the calling file."""
        caller = self.context_file()
        if self.foreign_file(node) == self.in_foreign or not bindings or caller is None:
            return bindings
        located = ((k, _located(v, caller)) for k, v in bindings.items())
        return {k: v for k, v in located if v is not None}

    def defaults_of(self, node: ast.FunctionDef | ast.AsyncFunctionDef) -> dict[str, _Value]:
        """The known default arguments of ``node``, evaluated in its own module if need be."""
        foreign = self.foreign_file(node)
        if foreign is None or self.project is None:
            return self.defaults.get(node, {})
        shared = self.project.defaults  # the same for every file that calls it
        if node not in shared:
            saved = (self.scope, self.in_foreign, self.muted, self.defaults)
            self.scope, self.in_foreign, self.muted = self.scope_of(foreign), foreign, True
            self.defaults = {}
            try:
                self.record_defaults(node, dict(self.globals))
                shared[node] = self.defaults.get(node, {})
            finally:
                self.scope, self.in_foreign, self.muted, self.defaults = saved
        return shared[node]  # type: ignore[return-value]

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
            self.methods_read.update(
                s for s in node.body if isinstance(s, (ast.FunctionDef, ast.AsyncFunctionDef))
            )
            return classes[node]  # type: ignore[return-value]
        info = _ClassInfo(node)
        classes[node] = info
        bases = [b.value if isinstance(b, ast.Subscript) else b for b in node.bases]
        inherited = False
        base_attrs: dict[str, _Value] = {}
        for base in reversed(bases):  # what the bases define, the first base winning
            base_node = self.class_of(base, node)
            if base_node is not None:
                base_info = self.class_info(base_node)
                info.methods.update(base_info.methods)
                base_attrs.update(base_info.attrs)
                inherited |= base_info.is_module
        own = [s for s in node.body if isinstance(s, (ast.FunctionDef, ast.AsyncFunctionDef))]
        for stmt in own:
            info.methods[stmt.name] = stmt
            self.methods_read.add(stmt)
        info.is_module = (
            inherited
            or "forward" in info.methods
            or any(
                "Module" in name or name == "Sequential"
                for name in ((_dotted(b) or "").rsplit(".", 1)[-1] for b in bases)
            )
        )
        assigned: dict[str, list[_Value | None]] = {}
        mutated: set[str] = set()
        grown: list[tuple[int, str, str, list[_Value | None]]] = []
        saved = (self.cls, self.self_name, self.locals, self.muted, self.scope, self.in_foreign)
        file = self.foreign_file(node)
        self.scope, self.in_foreign = self.scope_of(file), file
        try:
            for method in own:  # the bases' methods were read with the bases
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
                                if value is not None and value.kind not in _ATTRIBUTE_KINDS:
                                    value = None
                                assigned.setdefault(target.attr, []).append(value)
                    elif isinstance(inner, (ast.AugAssign, ast.AnnAssign)):
                        if isinstance(inner.target, ast.Attribute):
                            mutated.add(inner.target.attr)
                    elif isinstance(inner, ast.Call) and isinstance(inner.func, ast.Attribute):
                        owner = inner.func.value
                        if inner.func.attr in _MUTATORS and isinstance(owner, ast.Attribute):
                            if _dotted(owner.value) == me:  # self.fc.add_module("sm", Softmax())
                                added = [self.ev(a, {}) for a in inner.args]
                                grown.append((inner.lineno, owner.attr, inner.func.attr, added))
                            else:
                                mutated.add(owner.attr)
                    elif (
                        isinstance(inner, ast.Subscript)
                        and isinstance(inner.ctx, ast.Store)
                        and isinstance(inner.value, ast.Attribute)
                    ):
                        mutated.add(inner.value.attr)
        finally:
            self.cls, self.self_name, self.locals, self.muted, self.scope, self.in_foreign = saved
        info.attrs.update({k: v for k, v in base_attrs.items() if k not in assigned})
        for attr, values in assigned.items():
            value = values[0]
            for other in values[1:]:
                value = _same(value, other)
            if value is not None and attr not in mutated:
                info.attrs[attr] = value
        for _, attr, how, added in sorted(grown, key=lambda g: g[0]):
            if attr in info.attrs:
                extended = _grown(info.attrs[attr], how, added)
                if extended is None:
                    del info.attrs[attr]
                else:
                    info.attrs[attr] = extended
        return info

    # -- scopes: paths, names -----------------------------------------------------------------

    def block(self, stmts: Sequence[ast.stmt], env: dict[str, _Value]) -> None:
        if time.monotonic() > self.deadline:
            raise AnalysisTimeoutError
        for stmt in stmts:
            self.stmt(stmt, env)

    def join(self, env: dict[str, _Value], envs: Sequence[dict[str, _Value]]) -> None:
        """Replace ``env`` with what all the paths ``envs`` agree on."""
        merged = _merge(envs)
        env.clear()
        env.update(merged)

    def lookup(self, name: str, env: dict[str, _Value]) -> _Value | None:
        if name in env:
            return env[name]
        if self.locals is not None and name in self.locals:
            return None
        value = self.globals.get(name)
        if value is None and name in self.scope.imported:  # from models import MODELS
            file, there = self.scope.imported[name]
            value = self.scope_of(file).globals.get(there)
            if value is not None and file != self.context_file():
                value = _located(value, file)
        if value is not None:
            return value if _kept_globally(value) else None
        node = self.defs.get(name)
        if isinstance(node, ast.ClassDef):
            return _Value("class", node=node)
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            return _Value("function", node=node)
        return None

    def class_of(self, expr: ast.expr, within: ast.ClassDef) -> ast.ClassDef | None:
        """The project class a base-class expression of ``within`` names, if any."""
        saved = self.scope
        self.scope = self.scope_of(self.foreign_file(within))
        try:
            if isinstance(expr, ast.Name):
                found = self.defs.get(expr.id)
            elif isinstance(expr, ast.Attribute):
                value = self.module_member(expr)
                found = value.node if value is not None else None
            else:
                found = None
        finally:
            self.scope = saved
        return found if isinstance(found, ast.ClassDef) and found is not within else None

    def is_self(self, node: ast.AST | None) -> bool:
        return (
            self.cls is not None
            and self.self_name is not None
            and isinstance(node, ast.Name)
            and node.id == self.self_name
        )


def _kept_globally(value: _Value) -> bool:
    """Whether a module-level value holds in functions: callables, and registries of them."""
    if value.kind == "dict":
        return all(v.kind in _CALLABLE_KINDS for _, v in value.attrs)
    return value.kind in _GLOBAL_KINDS


# One file's analysis (the other files it follows included) stops after this many seconds.
MAX_SECONDS = 20.0


class AnalysisTimeoutError(Exception):
    """The analysis of a file ran past :data:`MAX_SECONDS`."""


# Calls followed inside calls at most this deep; a deeper chain gives nothing (never a crash).
MAX_CALL_DEPTH = 24
_HARMLESS = frozenset({"PL001"})
_ON_ONE_PATH = " (on one of the paths that choose the network or the loss)"
_ATTRIBUTE_KINDS = _MODULE_KINDS | {"either"}
_SUMMARY_KINDS = _TENSOR_KINDS | _MODULE_KINDS | {"tuple", "dict", "either", "class"}


def _located(value: _Value | None, file: Path) -> _Value | None:
    """``value`` with the lines it names in ``file`` written as ``(file, line N)``.

    Lines are numbered in the file being linted; a value from another file names that file.
    """
    if value is None:
        return None
    if value.kind == "tuple":
        items = tuple(_located(item, file) for item in value.items)
        return dataclasses.replace(value, items=items, element=_located(value.element, file))
    if not value.line:
        return value
    where = f"{value.source} ({file.name}, line {value.line})"
    return dataclasses.replace(value, source=where, line=0)


def _char_col(lines: Sequence[str], line: int, col: int) -> int:
    """Convert an ast byte offset on a line into a character offset."""
    if not 1 <= line <= len(lines):
        return col
    return len(lines[line - 1].encode("utf-8")[:col].decode("utf-8", "replace"))


class _Report(NamedTuple):
    """A finding as data: where, which rule, the message, and the line its value came from."""

    line: int
    col: int
    code: str
    message: str  # may hold ORIGIN_SLOT, filled with the words for ``origin``
    origin: int


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
    try:
        reports = _Analyzer(tree, project, path).run()
    except RecursionError:
        return [(1, 0, "PL000", "too deeply nested to analyse")]
    except AnalysisTimeoutError:
        return [(1, 0, "PL000", f"not analysed: it takes over {MAX_SECONDS:.0f} s")]
    except MemoryError:
        return [(1, 0, "PL000", "not analysed: out of memory")]
    except Exception as exc:  # a defect of the linter: the file is reported, the run goes on
        return [(1, 0, "PL000", f"not analysed: internal error {type(exc).__name__}: {exc}")]
    return _rendered(reports, lines, origin)


def _rendered(
    reports: Sequence[_Report], lines: Sequence[str], origin: Callable[[int], str] | None = None
) -> list[tuple[int, int, str, str]]:
    """Findings as ``(line, 0-based character column, code, message)``."""
    name = origin or (lambda line: f"line {line}")
    return [
        (
            line,
            _char_col(lines, line, col),
            code,
            msg.replace(ORIGIN_SLOT, f" ({name(origin)})" if origin else ""),
        )
        for line, col, code, msg, origin in reports
    ]
