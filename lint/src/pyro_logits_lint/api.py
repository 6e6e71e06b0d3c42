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
    As Python binds them, by one evaluation per kind of expression and statement (the design is
    in :mod:`pyro_logits_lint._engine.analysis`). A name assigned from ``log_softmax``, ``softmax``,
    ``sigmoid``, ``logsigmoid``, a base-10 log or ``logits.mean(0)`` keeps that provenance until
    it is reassigned; any other expression (``lhat * 2``, ``lhat / T``), an in-place method
    (``lhat.mul_(2)``) or an item assignment (``lhat[0] = 0``) clears it; value-preserving
    methods (``.detach()``, ``.to()``, ``.data``, ...) keep it. Tuples keep each position
    (``out, feats = model(x)``, ``model(x)[0]``, starred and nested unpacking), dicts their
    constant keys (``out["logits"]``). Calls are followed into functions, methods, constructors
    and ``forward`` (``model(x)``, ``self.net.predict(x)``, ``trainer.fit(model)``), with
    inheritance and ``super().__init__(...)``; an object keeps what its constructor set
    (``self.criterion = criterion``). Imports are followed into the other linted files in every
    form (``import m``, ``from pkg import Net`` through a package's ``__init__``, relative and
    star imports), from notebooks too, and a mistake found in another file by following a call
    is reported in that file, once.

    Paths: after ``if``/``else``, loops and ``try`` a tensor's provenance survives only if every
    path agrees, so weak evidence never becomes a finding. A network, a loss or a class that
    differs by path (``if``/``elif`` over architectures, a helper returning one of several
    losses, a registry ``MODELS[name]``) is followed on every path, and a mistake on one
    feasible path is reported, saying so; a redundancy (PL001) only when every path has it.

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
import errno
import io
import json
import os
import stat
import sys
import tokenize
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import TextIO

from ._engine.analysis import _analyse, _rendered
from ._engine.project import Project, real_path
from ._engine.rules import RULES, Finding, Rule
from ._engine.sources import (
    _PARSE_ERRORS,
    _SKIPPED_DIRS,
    _TOO_DEEP,
    _describe,
    _findings,
    _notebook_language,
    _parse,
    _parse_error,
    _split_lines,
    _strip_magics,
)
from ._version import __version__

MAX_SOURCE_BYTES = 10 * 2**20  # larger .py files are generated data, not code to check
MAX_NOTEBOOK_BYTES = 200 * 2**20  # notebooks carry their outputs (images) too

__all__ = [
    "RULES",
    "Finding",
    "Flake8Checker",
    "Project",
    "Rule",
    "cli",
    "iter_source_files",
    "lint_file",
    "lint_notebook",
    "lint_paths",
    "lint_source",
    "main",
]


def lint_source(
    source: str, *, path: str = "<string>", project: Project | None = None
) -> list[Finding]:
    """Lint Python source code.

    Parameters
    ----------
    source : str
        The code.
    path : str, optional
        The name to report the findings under.
    project : Project, optional
        The files linted with it: ``from model import Net`` is followed into ``model.py``
        when that file is one of them (:func:`lint_paths` builds it).

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
    tree = project.tree(Path(path), source) if project is not None else None
    try:
        tree = tree if tree is not None else _parse(source, path)
    except _PARSE_ERRORS as exc:
        line, col, message = _describe(exc)
        return [Finding(path, 0, line, col, "PL000", message)]
    return _findings(path, lines, _analyse(tree, lines, project=project, path=path))


def lint_notebook(
    text: str, *, path: str = "<notebook>", project: Project | None = None
) -> list[Finding]:
    r"""Lint the code cells of a Jupyter notebook (the JSON text of an ``.ipynb`` file).

    Code cells are analysed in order as one program; findings carry the 1-based number of the
    cell (counting every cell from the top) and the line within that cell.

    Parameters
    ----------
    text : str
        The notebook file's contents.
    path : str, optional
        The name to report the findings under.
    project : Project, optional
        The files linted with it: the notebook's imports of them are followed.

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
    except RecursionError:
        message = "cannot read the notebook: its JSON is nested too deeply"
        return [Finding(path, 0, 1, 1, "PL000", message)]
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
        tree = _parse("\n".join(lines), path, notebook=True)
    except RecursionError:
        return [*errors, Finding(path, 0, 1, 1, "PL000", _TOO_DEEP)]
    raw = _analyse(tree, lines, origin=origin, project=project, path=path)
    out = errors
    for finding in _findings(path, lines, raw):
        number, within = cell_of(finding.line)
        out.append(Finding(path, number, within, finding.col, finding.code, finding.message))
    return sorted(out)


def lint_file(
    path: str | os.PathLike[str], *, project: Project | None = None, notes: list[str] | None = None
) -> list[Finding]:
    r"""Lint one ``.py`` file or ``.ipynb`` notebook (any other name is read as Python).

    Parameters
    ----------
    path : str or os.PathLike
        The file.
    project : Project, optional
        The files linted with it (see :func:`lint_source`).
    notes : list of str, optional
        Receives a line when the path is not a regular file (a FIFO, a device, a socket),
        which is skipped.

    Returns
    -------
    list of Finding
        The findings; a file that cannot be read, decoded, parsed or analysed within bounds
        (:data:`MAX_SOURCE_BYTES`, :data:`MAX_NOTEBOOK_BYTES`, the analysis's own limits)
        gives one ``PL000`` saying why.

    Examples
    --------
    >>> import tempfile
    >>> with tempfile.TemporaryDirectory() as tmp:
    ...     file = Path(tmp) / "bad.py"
    ...     _ = file.write_text("def f(:\n")
    ...     [f.code for f in lint_file(file)]
    ['PL000']
    """
    name = os.fsdecode(path)
    try:
        info = os.stat(path)
    except OSError as exc:
        reason = "a symbolic link that loops" if exc.errno == errno.ELOOP else exc.strerror
        return [Finding(name, 0, 1, 1, "PL000", f"cannot read: {reason or exc}")]
    if not stat.S_ISREG(info.st_mode):
        if notes is not None:
            notes.append(f"skipped {name}: {_special_kind(Path(path)) or 'not a file'}")
        return []
    limit = MAX_NOTEBOOK_BYTES if name.endswith(".ipynb") else MAX_SOURCE_BYTES
    if info.st_size > limit:
        size = f"{info.st_size / 2**20:.0f} MiB, over the limit of {limit // 2**20} MiB"
        return [Finding(name, 0, 1, 1, "PL000", f"too large to analyse ({size})")]
    try:
        data = Path(path).read_bytes()
    except OSError as exc:
        return [Finding(name, 0, 1, 1, "PL000", f"cannot read: {exc.strerror or exc}")]
    except MemoryError:
        return [Finding(name, 0, 1, 1, "PL000", "cannot read: out of memory")]
    try:
        if name.endswith(".ipynb"):
            return lint_notebook(data.decode("utf-8-sig"), path=name, project=project)
        encoding = tokenize.detect_encoding(io.BytesIO(data).readline)[0]
        text = data.decode(encoding)
    except (SyntaxError, LookupError, UnicodeDecodeError) as exc:
        return [Finding(name, 0, 1, 1, "PL000", f"cannot decode: {exc}")]
    return lint_source(text, path=name, project=project)


def iter_source_files(
    paths: Iterable[str | os.PathLike[str]],
    *,
    problems: list[Finding] | None = None,
    notes: list[str] | None = None,
) -> Iterator[Path]:
    """Files to lint: each file given, and the ``.py``/``.ipynb`` files under each directory.

    Directories are walked recursively in sorted order, skipping hidden directories and
    ``__pycache__``, ``build``, ``dist``, ``node_modules``, ``venv``. A file is given once
    however many paths lead to it. Inside directories, files that are not regular files (FIFOs,
    devices, sockets) are skipped, with a note.

    Parameters
    ----------
    paths : iterable of str or os.PathLike
        Files and directories.
    problems : list of Finding, optional
        Receives a ``PL000`` for each directory that cannot be listed.
    notes : list of str, optional
        Receives a line for each file skipped.

    Yields
    ------
    pathlib.Path
        Each file to lint.

    Raises
    ------
    FileNotFoundError
        If a path does not exist (a symbolic link that loops does exist: linting it gives a
        ``PL000``).

    Examples
    --------
    >>> import tempfile
    >>> with tempfile.TemporaryDirectory() as tmp:
    ...     for name in ("a.py", "b.ipynb", "c.txt", ".hidden/d.py", "build/e.py", "pkg/f.py"):
    ...         (Path(tmp) / name).parent.mkdir(exist_ok=True)
    ...         _ = (Path(tmp) / name).write_text("")
    ...     [p.relative_to(tmp).as_posix() for p in iter_source_files([tmp, tmp])]
    ['a.py', 'b.ipynb', 'pkg/f.py']
    """
    seen: set[Path] = set()

    def first_time(path: Path) -> bool:
        key = real_path(path)
        if key in seen:
            return False
        seen.add(key)
        return True

    def unlistable(error: OSError) -> None:
        if problems is not None:
            reason = error.strerror or str(error)
            where = str(error.filename or "")
            problems.append(Finding(where, 0, 1, 1, "PL000", f"cannot list directory: {reason}"))

    for path in map(Path, paths):
        if path.is_dir():
            for root, dirs, files in os.walk(path, onerror=unlistable):
                dirs[:] = sorted(
                    d for d in dirs if not d.startswith(".") and d not in _SKIPPED_DIRS
                )
                for name in sorted(files):
                    if not name.endswith((".py", ".ipynb")):
                        continue
                    file = Path(root, name)
                    kind = _special_kind(file)
                    if kind is not None:
                        if notes is not None:
                            notes.append(f"skipped {os.fsdecode(file)}: {kind}, not a file")
                    elif first_time(file):
                        yield file
        elif os.path.lexists(path):
            if first_time(path):
                yield path
        else:
            raise FileNotFoundError(f"{path}: no such file or directory")


def _special_kind(path: Path) -> str | None:
    """What a path is when it is not a regular file or a broken link (``None`` otherwise)."""
    try:
        mode = path.stat().st_mode
    except OSError:
        return None  # reported when it is linted
    for test, kind in ((stat.S_ISFIFO, "a FIFO"), (stat.S_ISSOCK, "a socket")):
        if test(mode):
            return kind
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return "a device"
    return None if stat.S_ISREG(mode) else "not a regular file"


def lint_paths(
    paths: Iterable[str | os.PathLike[str]],
    *,
    select: Iterable[str] | None = None,
    ignore: Iterable[str] = (),
    notes: list[str] | None = None,
) -> list[Finding]:
    r"""Lint files and directories.

    Parameters
    ----------
    paths : iterable of str or os.PathLike
        Files and directories (see :func:`iter_source_files`).
    select : iterable of str, optional
        Report only these codes (default: all); a file that could not be checked (``PL000``)
        is reported whatever is selected.
    ignore : iterable of str, optional
        Do not report these codes.
    notes : list of str, optional
        Receives a line for each file skipped (FIFOs, devices, sockets).

    Returns
    -------
    list of Finding
        File by file, in walking order. The files are one project: a class or function
        imported from another of them (``from model import Net``) is followed there.

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
    paths = list(paths)
    problems: list[Finding] = []
    files = list(iter_source_files(paths, problems=problems, notes=notes))
    project = Project(files, [Path(p) for p in paths if Path(p).is_dir()])
    found = {file: lint_file(file, project=project, notes=notes) for file in files}
    out = []
    for file in files:
        # Findings made in this file while following a call from another are reported here.
        for finding in sorted({*found[file], *_followed_findings(file, project)}):
            # A file that could not be checked is always said, unless PL000 is ignored.
            shown = selected is None or finding.code in selected or finding.code == "PL000"
            if shown and finding.code not in ignored:
                out.append(finding)
    return [*(p for p in problems if "PL000" not in ignored), *out]


def _followed_findings(path: Path, project: Project) -> list[Finding]:
    reports = project.found.get(real_path(path))
    if not reports:
        return []
    try:
        lines = _split_lines(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError):
        return []
    return _findings(str(path), lines, _rendered(list(reports.values()), lines))  # type: ignore[arg-type]


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
    parser.add_argument(
        "--format",
        choices=("text", "json", "github"),
        default="text",
        help="text: one `path:line:col: CODE message` line per finding; json: a JSON array "
        "with one object per finding; github: GitHub Actions annotations",
    )
    parser.add_argument(
        "--statistics", action="store_true", help="count the findings per code at the end"
    )
    parser.add_argument(
        "--exit-zero", action="store_true", help="exit 0 even when there are findings"
    )
    parser.add_argument("--list-rules", action="store_true", help="print the rules and exit")
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    return parser


def _as_json(finding: Finding) -> dict[str, object]:
    return {
        "path": finding.path,  # undecodable bytes of a name are escaped by json.dumps
        "cell": finding.cell or None,
        "line": finding.line,
        "col": finding.col,
        "code": finding.code,
        "message": finding.message,
        "summary": RULES[finding.code].summary,
    }


def main(argv: Sequence[str] | None = None, *, prog: str = "pyro-logits-lint") -> int:
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
        0 when clean (or with ``--exit-zero``), 1 when there are findings, 2 on a usage error
        (no path, a missing path, an unknown option or rule code).

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
        notes: list[str] = []
        findings = lint_paths(args.paths, select=select, ignore=ignore, notes=notes)
    except (ValueError, FileNotFoundError) as exc:
        parser.print_usage(sys.stderr)
        _write(sys.stderr, f"{prog}: error: {exc}")
        return 2
    if args.format == "json":
        _write(sys.stdout, json.dumps([_as_json(f) for f in findings], indent=2))
    elif args.format == "github":
        for finding in findings:
            _write(sys.stdout, _as_github(finding))
    else:
        for finding in findings:
            _write(sys.stdout, str(finding))
    for note in notes:
        _write(sys.stderr, f"{prog}: note: {note}")
    if args.statistics:
        counts: dict[str, int] = {}
        for finding in findings:
            counts[finding.code] = counts.get(finding.code, 0) + 1
        out = sys.stdout if args.format == "text" else sys.stderr
        for code, count in sorted(counts.items()):
            _write(out, f"{count:<5} {code} {RULES[code].summary}")
    return 1 if findings and not args.exit_zero else 0


def _write(stream: TextIO, text: str) -> None:
    """Print ``text``; what the stream cannot encode (a file name's raw bytes) is escaped."""
    encoding = getattr(stream, "encoding", None) or "utf-8"
    stream.write(text.encode(encoding, "backslashreplace").decode(encoding) + "\n")


def _as_github(finding: Finding) -> str:
    """A GitHub Actions annotation: ``::error file=...,line=...,col=...,title=CODE::message``."""
    where = f"{finding.path}:cell {finding.cell}" if finding.cell else finding.path
    line = f"line={finding.line},col={finding.col}"
    message = finding.message.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")
    return f"::error file={where},{line},title={finding.code}::{message}"


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
    usage = (
        "usage: pyro-logits lint [-h] [--select CODES] [--ignore CODES] "
        "[--format {text,json,github}] [--statistics] [--exit-zero] [--list-rules] [--version] "
        "PATH..."
    )
    if argv[:1] == ["lint"]:
        return main(argv[1:], prog="pyro-logits lint")
    if argv[:1] in (["-h"], ["--help"]):
        print(f"{usage}\n\ncommands:\n  lint  find logits mistakes in source code (see lint -h)")
        return 0
    if argv[:1] == ["--version"]:
        print(f"pyro-logits {__version__}")
        return 0
    print(usage, file=sys.stderr)
    print("pyro-logits: error: expected the command 'lint'", file=sys.stderr)
    return 2


def _version() -> str:
    return __version__


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
