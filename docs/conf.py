"""Sphinx configuration of the auroradask documentation site.

Build: ``sphinx-build -W -b html docs docs/_build/html`` (``pip install ".[docs]"``). The
pages are MyST markdown, so that README text moves between them unchanged; the CLI reference
is generated from the argparse parser and the API reference from ``auroradask.__all__`` at
build time (``_ext/auroradask_docs.py``), so neither can drift from the code.
"""

from __future__ import annotations

import sys
from pathlib import Path

DOCS = Path(__file__).resolve().parent
ROOT = DOCS.parent
# this checkout's package, not an installed copy of another one
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(DOCS / "_ext"))

import auroradask  # noqa: E402

project = "auroradask"
author = "the auroradask authors"
copyright = "the auroradask authors; THEMIS ASI data: NASA contract NAS5-02099"
release = auroradask.__version__
version = release

extensions = [
    "myst_parser",
    "sphinx.ext.autodoc",
    "sphinx.ext.autosummary",
    "numpydoc",
    "auroradask_docs",
]

source_suffix = {".rst": "restructuredtext", ".md": "markdown"}
exclude_patterns = ["_build", "Thumbs.db", ".DS_Store", "screenshot.py"]
templates_path = ["_templates"]

# MyST: headings get GitHub-style anchors, so "#section" links written for GitHub resolve
myst_heading_anchors = 4
myst_enable_extensions = ["colon_fence", "deflist"]

# autosummary writes one stub page per public name into reference/generated (git-ignored)
autosummary_generate = True
autosummary_imported_members = True
autodoc_typehints = "none"  # numpydoc's Parameters sections say the types
# numpydoc: class members are listed by the autosummary class template, not twice
numpydoc_show_class_members = False
numpydoc_class_members_toctree = False

html_theme = "pydata_sphinx_theme"
html_title = f"auroradask {release}"
html_static_path = ["_static"]
html_theme_options = {
    "navigation_with_keys": False,
    "show_toc_level": 2,
    "footer_start": ["copyright"],
    "footer_end": ["sphinx-version"],
}
html_sidebars = {"index": [], "gallery": []}
# light unless the reader picks another (the theme's "auto" logs a console error on a first
# visit, which the screenshot script treats as a failure)
html_context = {"default_mode": "light"}
smartquotes = False  # "--site" stays two hyphens in option help and prose
