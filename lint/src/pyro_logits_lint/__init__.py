"""Find logits mistakes in PyTorch and Pyro source code without running it.

The linter of pyro-logits, standing alone: standard library only, so it installs in seconds
where torch is not wanted (a pre-commit hook, a CI lint job). ``pyro-logits lint PATH...`` and
``pyro-logits-lint PATH...`` run it; :func:`lint_paths` and :func:`lint_source` are its API, and
:class:`Flake8Checker` its flake8 plugin (codes ``PL``). The rules, the command line and the
analysis are described in :mod:`pyro_logits_lint.api`.
"""

from pyro_logits_lint._version import __version__
from pyro_logits_lint.api import (
    RULES,
    Finding,
    Flake8Checker,
    Project,
    Rule,
    cli,
    iter_source_files,
    lint_file,
    lint_notebook,
    lint_paths,
    lint_source,
    main,
)

__all__ = [
    "RULES",
    "Finding",
    "Flake8Checker",
    "Project",
    "Rule",
    "__version__",
    "cli",
    "iter_source_files",
    "lint_file",
    "lint_notebook",
    "lint_paths",
    "lint_source",
    "main",
]
