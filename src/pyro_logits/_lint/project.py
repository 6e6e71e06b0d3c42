"""The files linted together, so that ``from model import Net`` is followed into ``model.py``."""

from __future__ import annotations

import ast
from collections.abc import Iterable
from pathlib import Path

from .sources import _PARSE_ERRORS, _parse


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
        self.files = {f.resolve() for f in files if f.suffix == ".py"}
        self.roots = [r.resolve() for r in roots]
        self._trees: dict[Path, ast.Module | None] = {}
        self._defs: dict[Path, dict[str, ast.AST]] = {}
        self._origin: dict[ast.AST, Path] = {}  # definition -> the file it is in
        # What the analysis learnt of imported definitions, shared by the files importing them.
        self.summaries: dict[object, object] = {}
        self.classes: dict[ast.AST, object] = {}
        self.facts: dict[ast.AST, object] = {}

    def resolve(self, importer: str, module: str | None, level: int) -> Path | None:
        """The file that ``from <level dots><module> import ...`` in ``importer`` reads, if any.

        Looked for beside ``importer`` (or up ``level`` packages), then under the roots.
        """
        here = Path(importer).resolve().parent
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
        path = path.resolve()
        if path not in self._trees:
            try:
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

    def definitions(self, importer: str, node: ast.ImportFrom) -> dict[str, tuple[ast.AST, str]]:
        """Top-level classes and functions imported by ``node``: local name -> (def, file)."""
        path = self.resolve(importer, node.module, node.level)
        if path is None or self.tree(path) is None:
            return {}
        defs = self._defs[path.resolve()]
        out = {}
        for alias in node.names:
            if alias.name in defs:
                out[alias.asname or alias.name] = (defs[alias.name], path.name)
        return out
