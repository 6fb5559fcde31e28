"""Sphinx configuration for the initbook online book.

Decisions that matter for a reproducible, offline ``-W -n`` build are explained where they are made:
execution caching (myst-nb ``cache``, sphinx-gallery md5s), the bundled MathJax, and intersphinx that is
switched on only when its servers answer (see ``initbook_docs.network_available``).
"""

from __future__ import annotations

import doctest
import os
import re
import sys
import warnings
from pathlib import Path

HERE = Path(__file__).parent.resolve()
# The myst-nb kernels inherit this environment. With MPLBACKEND=Agg they would not use matplotlib's inline
# backend, and glued figures would turn into their text repr; sphinx-gallery selects Agg on its own.
os.environ.pop("MPLBACKEND", None)
sys.path.insert(0, str(HERE / "_ext"))

import initbook_docs
from sphinx_gallery.sorting import ExplicitOrder

# -- Project ---------------------------------------------------------------------------------------------
project = "initbook"
author = "The initbook developers"
copyright = "2026, The initbook developers"
# The version is read from the package's source, not imported: importing initbook imports torch (2 s), which
# a rebuild with nothing to execute does not otherwise need.
release = re.search(
    r'^__version__ = "([^"]+)"',
    (HERE.parent / "initbook" / "__init__.py").read_text(encoding="utf-8"),
    re.MULTILINE,
).group(1)
version = release

# -- General -----------------------------------------------------------------------------------------------
extensions = [
    "myst_nb",
    # After myst_nb, before sphinx_gallery: starts the stale pages' execution before the examples run.
    "initbook_execute",
    "sphinx.ext.autodoc",
    "sphinx.ext.autosummary",
    "sphinx.ext.napoleon",
    "sphinx.ext.intersphinx",
    "sphinx.ext.mathjax",
    "sphinx.ext.doctest",
    "sphinx_gallery.gen_gallery",
    "sphinx_copybutton",
    "sphinx_design",  # dropdowns for the exercises' worked solutions
    "sphinxcontrib.bibtex",
    "sphinx-mathjax-offline",  # ships MathJax 3 and points mathjax_path at the local copy
    "initbook_docs",
    "initbook_notebooks",  # every executed page as a notebook to download (.ipynb button)
]
exclude_patterns = [
    "_build",
    "**.ipynb_checkpoints",
    # sphinx-gallery writes notebooks next to its .rst pages; myst-nb must not claim them.
    "auto_examples/**/*.ipynb",
    "auto_examples/**/*.py",
    "auto_examples/**/*.codeobj.json",
    "auto_examples/**/*.md5",
    "auto_examples/**/*.zip",
]
source_suffix = {".rst": "restructuredtext", ".md": "myst-nb", ".ipynb": "myst-nb"}
root_doc = "index"
nitpicky = True
default_role = "literal"
pygments_style = "friendly"
suppress_warnings = ["mystnb.unknown_mime_type"]
numfig = True
math_eqref_format = "Eq. {number}"
math_numfig = True

# -- Math: MathJax 3 served from _static (bundled, so math renders offline) ------------------------------
mathjax_path = "mathjax/tex-chtml.js"

# -- MyST / myst-nb ----------------------------------------------------------------------------------------
myst_enable_extensions = ["amsmath", "colon_fence", "deflist", "dollarmath", "substitution"]
myst_heading_anchors = 3
myst_dmath_double_inline = True
nb_execution_mode = "cache"
nb_execution_raise_on_error = True
nb_execution_show_tb = True
nb_execution_timeout = 120
nb_merge_streams = True
# A warning printed by a page (to stderr) is a build warning, so -W fails on it instead of showing it to readers.
nb_output_stderr = "warn"
nb_execution_cache_path = str(HERE / "_build" / ".jupyter_cache")
nb_kernel_rgx_aliases = {".*": "python3"}
# initbook_execute: stale pages run in parallel, longest first; a clean build takes the order from the page
# times of the last `nox -s benchmarks` run.
initbook_execution_hints = "../benchmarks/results.json"

# -- autodoc ---------------------------------------------------------------------------------------------
autodoc_member_order = "bysource"
autodoc_preserve_defaults = True  # show `checksums=MNIST_MD5`, not the dict it holds
autodoc_typehints = "description"
autodoc_typehints_description_target = "documented_params"
autodoc_default_options = {"members": True, "undoc-members": False, "show-inheritance": False}
napoleon_google_docstring = True
napoleon_numpy_docstring = False
napoleon_use_rtype = False
napoleon_use_ivar = True  # dataclass "Attributes:" as fields, not duplicate attribute entries

# -- autosummary: the API reference, one page per public object ----------------------------------------------
# docs/api.md lists the modules; each module's page (docs/_templates/autosummary/module.rst) lists the names
# in its __all__, and each name gets a page (function.rst, class.rst) with its gallery mini-gallery. The pages
# are generated at build time into docs/api/generated/ (gitignored: they are a function of the docstrings).
templates_path = ["_templates"]
autosummary_generate = True
# a module's members are its __all__, wherever they are defined
autosummary_ignore_module_all = False
# names that differ only in case would overwrite each other's page on a case-insensitive file system
autosummary_filename_map = {
    "initbook.stats.Moments": "initbook.stats.Moments-class",
    "initbook.stats.Trace": "initbook.stats.Trace-class",
    "initbook.init.TRUNCATED_NORMAL_STD": "initbook.init.TRUNCATED_NORMAL_STD-constant",
}

# -- doctest -------------------------------------------------------------------------------------------------
doctest_global_setup = "import math\nimport torch\nimport initbook"
# Only the pages' {doctest} blocks: the docstrings' examples (plain >>> blocks on the API pages) are run by
# `pytest --doctest-modules` in `nox -s tests`; running them here too doubled the doctest builder's work.
doctest_test_doctest_blocks = ""
trim_doctest_flags = True
doctest_default_flags = (
    doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE | doctest.DONT_ACCEPT_TRUE_FOR_1
)

# -- intersphinx: linked when the servers answer, plain text (and no warning) when offline ---------------------
intersphinx_mapping = {
    "python": ("https://docs.python.org/3", None),
    "torch": ("https://docs.pytorch.org/docs/stable/", None),
    "numpy": ("https://numpy.org/doc/stable/", None),
    "matplotlib": ("https://matplotlib.org/stable/", None),
}
intersphinx_timeout = 5
if not initbook_docs.network_available(intersphinx_mapping):
    # CI and most build machines have no network: drop the inventories, and let initbook_docs turn
    # references to these projects into unlinked literals instead of nitpicky warnings.
    intersphinx_mapping = {}
initbook_docs_external_modules = ("torch", "numpy", "matplotlib", "scipy", "typing", "collections")

# -- HTML ------------------------------------------------------------------------------------------------------
html_theme = "sphinx_book_theme"
html_title = f"initbook {release}"  # the version in the header: one source, initbook.__version__
html_static_path = ["_static"]
html_css_files = ["initbook.css"]
html_last_updated_fmt = None
# Without a favicon, every page load asks for /favicon.ico and gets a 404.
html_favicon = "_static/favicon.svg"
# The theme's default mode is "", which its own script rejects with a console error on a first visit.
html_context = {"default_mode": "auto"}
html_theme_options = {
    "use_download_button": True,
    "use_fullscreen_button": False,
    "show_toc_level": 2,
    "home_page_in_toc": True,
    "navigation_with_keys": False,
    "launch_buttons": {},
    # The sidebar lists the chapters, the gallery's sections and the API's modules. The gallery scripts and the
    # pages of the API's functions and classes are one level below, listed on their section's and module's
    # pages: rendering them into the sidebar of every page (the theme's default depth is 4) was 40% of the time
    # spent writing HTML.
    "max_navbar_depth": 2,
}
html_show_sourcelink = False

# -- Bibliography ------------------------------------------------------------------------------------------------
# Every paper is cited where it is used ({cite:t}/{cite:p}); the references page lists the cited ones only. One
# .bib file per part of the book keeps edits from colliding; a key defined twice is a build warning.
bibtex_bibfiles = sorted(str(p.relative_to(HERE)) for p in (HERE / "bib").glob("*.bib"))
bibtex_reference_style = "author_year"
bibtex_default_style = "plain"

# -- sphinx-gallery ----------------------------------------------------------------------------------------------
sphinx_gallery_conf = {
    "examples_dirs": "../examples",
    "gallery_dirs": "auto_examples",
    "filename_pattern": r"/plot_",
    "subsection_order": ExplicitOrder(
        [
            "../examples/why_init",
            "../examples/variance",
            "../examples/initializers",
            "../examples/training",
            "../examples/beyond",
            "../examples/architectures",
        ]
    ),
    "within_subsection_order": "FileNameSortKey",
    # names of initbook's objects in the examples' code link to their API pages, which sphinx-gallery finds in
    # the book being built (its `reference_url` option is deprecated and ignored)
    "doc_module": ("initbook",),
    "backreferences_dir": "gen_modules/backreferences",
    "remove_config_comments": True,
    "image_scrapers": ("matplotlib",),
    "capture_repr": ("_repr_html_", "__repr__"),
    "reset_modules": ("matplotlib", "initbook_docs.reset_torch"),
    "plot_gallery": "True",
    "run_stale_examples": False,
    "abort_on_example_error": False,
    "only_warn_on_example_error": False,
    "min_reported_time": 0,
    # The execution-times pages load jQuery and DataTables from CDNs, which an offline reader cannot reach
    # (the browser test finds their console errors); `nox -s benchmarks` reports example times instead.
    "write_computation_times": False,
    "show_memory": False,
    "inspect_global_variables": False,
    "download_all_examples": False,
}

if os.environ.get("SOURCE_DATE_EPOCH"):
    sphinx_gallery_conf["min_reported_time"] = sys.maxsize

warnings.filterwarnings(
    "ignore",
    category=UserWarning,
    message="Matplotlib is currently using agg, which is a non-GUI backend",
)
