"""Source text handling: parsing, parse errors, ``# noqa`` suppression, notebook cells."""

from __future__ import annotations

import ast
import re
import sys
import warnings
from collections.abc import Iterable, Sequence

from .rules import Finding

_NOQA = re.compile(
    r"#\s*noqa(?::[\s]?(?P<codes>[A-Z]+[0-9]+(?:[,\s]+[A-Z]+[0-9]+)*))?", re.IGNORECASE
)
_SKIPPED_DIRS = frozenset({"__pycache__", "build", "dist", "node_modules", "venv"})
_CELL_MAGICS_PYTHON = frozenset({"time", "timeit", "capture", "prun", "debug", "memit"})


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
    if isinstance(exc, MemoryError):
        return 1, 1, f"cannot parse as {version}: out of memory (the file is too large or too deep)"
    return 1, 1, f"cannot parse as {version}: {exc or type(exc).__name__}"


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
    scanner = _LogicalLines()
    for line in lines:
        stripped = line.strip()
        starts_statement = scanner.at_statement_start
        if starts_statement and (
            stripped.startswith(("%", "!")) or _HELP.match(stripped) or _SHELL.match(stripped)
        ):
            out.append(line[: len(line) - len(line.lstrip())] + "pass")
            continue
        out.append(line)
        scanner.feed(line)
    return "\n".join(out)


class _LogicalLines:
    """Whether the next physical line starts a statement.

    Not inside brackets, a string or a backslash continuation: a line such as ``% (a, b)`` that
    continues an expression is code, not IPython syntax.
    """

    def __init__(self) -> None:
        self.depth = 0
        self.quote = ""  # the open triple quote, if any
        self.continued = False

    @property
    def at_statement_start(self) -> bool:
        return self.depth == 0 and not self.quote and not self.continued

    def feed(self, line: str) -> None:
        i, n = 0, len(line)
        while i < n:
            if self.quote:
                end = line.find(self.quote, i)
                if end < 0:
                    return
                i, self.quote = end + 3, ""
                continue
            c = line[i]
            if c == "#":
                break
            if c in "\"'":
                if line.startswith(c * 3, i):
                    self.quote, i = c * 3, i + 3
                    continue
                end = i + 1
                while end < n and line[end] != c:
                    end += 2 if line[end] == "\\" else 1
                i = end + 1
                continue
            if c in "([{":
                self.depth += 1
            elif c in ")]}":
                self.depth = max(self.depth - 1, 0)
            i += 1
        self.continued = line.rstrip().endswith("\\") and not self.quote


def _notebook_language(notebook: dict[str, object]) -> str:
    metadata = notebook.get("metadata")
    if isinstance(metadata, dict):
        for key, name in (("kernelspec", "language"), ("language_info", "name")):
            entry = metadata.get(key)
            if isinstance(entry, dict) and isinstance(entry.get(name), str):
                return entry[name].lower()
    return "python"


# obj?, obj??, ?obj, and IPython's wildcard search: torch.*Tensor?, ?np.*load*
_HELP = re.compile(r"^\??[\w.\[\]*]+\?{1,2}$|^\?\??[\w.\[\]*]+$")
_SHELL = re.compile(r"^[\w.,\s\[\]()]+=\s*[%!]")  # files = !ls
