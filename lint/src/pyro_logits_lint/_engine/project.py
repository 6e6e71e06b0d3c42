"""The files linted together, so that ``from model import Net`` is followed into ``model.py``.

A module's names are followed the way Python binds them: a ``def`` or ``class`` of the file, a
name imported from another module (a package ``__init__`` that re-exports a class, ``from .x
import *``), or a module itself (``import models.lenet``, ``from models import lenet``). The
chain is followed through at most :data:`MAX_REEXPORTS` modules; a cycle gives nothing.
"""

from __future__ import annotations

import ast
from collections.abc import Iterable
from pathlib import Path

from .sources import _PARSE_ERRORS, _parse

MAX_REEXPORTS = 16
MAX_FOLLOWED_BYTES = 10 * 2**20  # a larger imported file is not read


def real_path(path: Path) -> Path:
    """``path`` with its symbolic links resolved; as given when they loop."""
    try:
        return path.resolve()
    except (OSError, RuntimeError):  # a symlink loop (RuntimeError before Python 3.13)
        return path.absolute()


Member = ast.AST | Path  # a class or function definition, or a module's file


class Project:
    """The ``.py`` files of one lint run, and the modules they import from one another.

    Parameters
    ----------
    files : iterable of pathlib.Path
        The files linted together.
    roots : iterable of pathlib.Path
        The directories given on the command line (modules are also resolved from them).
    """

    def __init__(self, files: Iterable[Path], roots: Iterable[Path] = ()) -> None:
        self.files = {real_path(f) for f in files if f.suffix == ".py"}
        self.roots = [real_path(r) for r in roots]
        self._trees: dict[Path, ast.Module | None] = {}
        self._defs: dict[Path, dict[str, ast.AST]] = {}
        self._origin: dict[ast.AST, Path] = {}  # definition -> the file it is in
        # What the analysis learnt of imported definitions, shared by the files importing them.
        self.summaries: dict[object, object] = {}
        self.classes: dict[ast.AST, object] = {}
        self.facts: dict[ast.AST, object] = {}
        self.defaults: dict[ast.AST, object] = {}  # a function's known default arguments
        self.scopes: dict[Path, object] = {}  # a linted file's names, as the analysis follows them
        self.read_scopes: dict[Path, object] = {}  # ... its imports and definitions, read once
        self._resolved: dict[tuple[str, str | None, int], Path | None] = {}
        self._real: dict[Path, Path] = {}  # a path as given -> the file it names
        self._members: dict[tuple[Path, str], Member | None] = {}
        # Findings in a linted file made while following a call from another file.
        self.found: dict[Path, dict[object, object]] = {}

    def resolve(self, importer: str, module: str | None, level: int) -> Path | None:
        """The file that ``from <level dots><module> import ...`` in ``importer`` reads, if any.

        Looked for beside ``importer`` (or up ``level`` packages), then under the roots.
        """
        key = (str(Path(importer).parent), module, level)
        if key not in self._resolved:
            self._resolved[key] = self._resolve(importer, module, level)
        return self._resolved[key]

    def _resolve(self, importer: str, module: str | None, level: int) -> Path | None:
        here = real_path(Path(importer)).parent
        parts = module.split(".") if module else []
        if level:
            base = here
            for _ in range(level - 1):
                base = base.parent
            bases = [base]
        else:
            bases = [here, *self.roots]
        for base in bases:
            target = base.joinpath(*parts)
            for candidate in (target.with_suffix(".py"), target / "__init__.py"):
                if parts and (candidate in self.files or candidate.is_file()):
                    return candidate
        return None

    def tree(self, path: Path, source: str | None = None) -> ast.Module | None:
        """The parsed module (``None`` if it does not parse), parsed once per run.

        ``source`` is the file's text when the caller has read it already.
        """
        if path not in self._real:
            self._real[path] = real_path(path)
        path = self._real[path]
        if path not in self._trees:
            try:
                if source is None and path.stat().st_size > MAX_FOLLOWED_BYTES:
                    raise MemoryError  # generated data, not code to follow
                text = source if source is not None else path.read_text(encoding="utf-8")
                tree = _parse(text, str(path))
            except (*_PARSE_ERRORS, OSError, UnicodeDecodeError):
                tree = None
            self._trees[path] = tree
            defs: dict[str, ast.AST] = {}
            for stmt in tree.body if tree is not None else []:
                if isinstance(stmt, (ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)):
                    defs[stmt.name] = stmt
                    self.mark(stmt, path)
                    for inner in stmt.body if isinstance(stmt, ast.ClassDef) else []:
                        if isinstance(inner, (ast.FunctionDef, ast.AsyncFunctionDef)):
                            self.mark(inner, path)
            self._defs[path] = defs
        return self._trees[path]

    def mark(self, node: ast.AST, path: Path) -> None:
        """Record that a definition belongs to the file ``path``."""
        self._origin[node] = path

    def origin(self, node: ast.AST) -> Path | None:
        """The file a definition comes from, if it was parsed here."""
        return self._origin.get(node)

    def definitions(self, importer: str, node: ast.ImportFrom) -> dict[str, tuple[Member, str]]:
        """What ``node`` imports: local name -> (definition or module file, file name).

        ``from m import *`` imports every public name of ``m`` (its ``__all__`` when it is a
        list of strings).
        """
        path = self.resolve(importer, node.module, node.level)
        out: dict[str, tuple[Member, str]] = {}
        for alias in node.names:
            if alias.name == "*":
                for name in self.public_names(path) if path is not None else []:
                    member = self.member(path, name)  # type: ignore[arg-type]
                    if member is not None:
                        out[name] = (member, path.name)  # type: ignore[union-attr]
                continue
            found = self.member(path, alias.name) if path is not None else None
            if found is None:  # from package import module
                dotted = f"{node.module}.{alias.name}" if node.module else alias.name
                found = self.resolve(importer, dotted, node.level)
            if found is not None:
                where = path.name if path is not None else alias.name
                out[alias.asname or alias.name] = (found, where)
        return out

    def module_file(self, importer: str, dotted: str) -> Path | None:
        """The file of the module ``import <dotted>`` binds in ``importer``, if it is linted."""
        return self.resolve(importer, dotted, 0)

    def member(self, path: Path, name: str, depth: int = 0) -> Member | None:
        """What ``name`` is in the module ``path``: a definition or a module file.

        Re-exports are followed (``from .lenet import Net`` in a package's ``__init__``).
        """
        key = (path, name)
        if key in self._members:
            return self._members[key]
        self._members[key] = None  # a cycle of re-exports gives nothing
        tree = self.tree(path)
        if tree is None or depth > MAX_REEXPORTS:
            return None
        found = self._member(self._real[path], tree, name, depth)
        self._members[key] = found
        return found

    def _member(self, path: Path, tree: ast.Module, name: str, depth: int) -> Member | None:
        found: Member | None = self._defs[path].get(name)
        for stmt in tree.body:
            if isinstance(stmt, (ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)):
                if stmt.name == name:
                    found = stmt
            elif isinstance(stmt, ast.ImportFrom):
                source = self.resolve(str(path), stmt.module, stmt.level)
                for alias in stmt.names:
                    if alias.name == "*" and source is not None and not name.startswith("_"):
                        found = self.member(source, name, depth + 1) or found
                    elif (alias.asname or alias.name) == name:
                        inner = self.member(source, alias.name, depth + 1) if source else None
                        dotted = f"{stmt.module}.{alias.name}" if stmt.module else alias.name
                        found = inner or self.resolve(str(path), dotted, stmt.level)
            elif isinstance(stmt, ast.Import):
                for alias in stmt.names:
                    if alias.asname == name:
                        found = self.module_file(str(path), alias.name)
        if found is None and path.name == "__init__.py":  # a submodule of the package
            found = self.resolve(str(path), name, 1)
        return found

    def public_names(self, path: Path) -> list[str]:
        """The names ``from <module> import *`` binds: ``__all__``, else the public top level."""
        tree = self.tree(path)
        if tree is None:
            return []
        names: list[str] = []
        for stmt in tree.body:
            if (
                isinstance(stmt, ast.Assign)
                and any(isinstance(t, ast.Name) and t.id == "__all__" for t in stmt.targets)
                and isinstance(stmt.value, (ast.List, ast.Tuple))
            ):
                return [
                    e.value
                    for e in stmt.value.elts
                    if isinstance(e, ast.Constant) and isinstance(e.value, str)
                ]
            if isinstance(stmt, (ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)):
                names.append(stmt.name)
            elif isinstance(stmt, ast.ImportFrom):
                names += [a.asname or a.name for a in stmt.names if a.name != "*"]
        return [n for n in names if not n.startswith("_")]

    def report(self, path: Path, key: object, finding: object) -> None:
        """Record a finding in the linted file ``path``, made while following another file."""
        if real_path(path) in self.files:
            self.found.setdefault(real_path(path), {}).setdefault(key, finding)
