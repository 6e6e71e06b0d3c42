"""Sphinx configuration of the pyro-logits documentation (``make docs``)."""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "src"), str(ROOT / "lint" / "src")]

import pyro_logits  # noqa: E402

project = "pyro-logits"
author = "The pyro-logits authors"
copyright = "2026, the pyro-logits authors"
release = pyro_logits.__version__
version = release

extensions = [
    "myst_parser",
    "sphinx.ext.autodoc",
    "sphinx.ext.napoleon",
    "sphinx.ext.intersphinx",
    "sphinx.ext.viewcode",
]
source_suffix = {".md": "markdown", ".rst": "restructuredtext"}
exclude_patterns = ["_build", "_inventories", "results/runs"]
myst_heading_anchors = 3
myst_enable_extensions = ["colon_fence"]

autodoc_member_order = "bysource"
autodoc_typehints = "description"
autodoc_default_options = {"members": True, "show-inheritance": True}
napoleon_numpy_docstring = True
napoleon_google_docstring = False
napoleon_use_ivar = True

# The inventories are written by docs/inventories.py: the build needs no network.
intersphinx_mapping = {
    "python": ("https://docs.python.org/3/", str(ROOT / "docs" / "_inventories" / "python.inv")),
    "torch": (
        "https://docs.pytorch.org/docs/stable/",
        str(ROOT / "docs" / "_inventories" / "torch.inv"),
    ),
    "pyro": ("https://docs.pyro.ai/en/stable/", str(ROOT / "docs" / "_inventories" / "pyro.inv")),
}

html_theme = "furo"
html_title = f"pyro-logits {release}"
