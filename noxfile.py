"""Nox sessions for initbook: tests, the book, lint and single examples.

Every session installs the package and its dependency groups from ``pyproject.toml`` under the pins in
``constraints.txt`` (torch==2.13.0, a CPU build, and the docs toolchain). Virtual environments are reused and
re-installed only when ``pyproject.toml`` or ``constraints.txt`` change, so torch is installed once.

    nox -s tests              # pytest: unit, statistical and docstring doctests
    nox -s docs               # the book: HTML with -W -n --keep-going, then the doctest builder
    nox -s docs-fast          # the book without executing pages or examples (layout work)
    nox -s serve              # build the book, then serve it on http://localhost:8000
    nox -s lint               # ruff check, ruff format --check, mypy, workflow files against their schema
    nox -s install            # build sdist and wheel, twine check, install the wheel in a fresh venv, run it
    nox -s site               # the built book in headless Chromium (after docs; needs chromium, chromedriver)
    nox -s example -- plot_nonfinite_step   # run one gallery script through Sphinx
    nox -s reproducibility    # build the book twice from clean copies and compare every result
    nox -s benchmarks         # time builds, examples, estimators and training; write benchmarks/results.json
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import nox

nox.needs_version = ">=2025.2.9"
# uv does not see the local torch wheel that pip finds; virtualenv + pip keep installs offline-friendly.
nox.options.default_venv_backend = "virtualenv"
nox.options.reuse_venv = "yes"
nox.options.sessions = ["lint", "tests"]

ROOT = Path(__file__).parent
PROJECT = nox.project.load_toml("pyproject.toml")
# the one place the version is written (pyproject.toml reads it too: [tool.setuptools.dynamic])
PROJECT_VERSION = next(
    line.split('"')[1]
    for line in (ROOT / "initbook" / "__init__.py").read_text(encoding="utf-8").splitlines()
    if line.startswith("__version__ = ")
)
CONSTRAINTS = ROOT / "constraints.txt"
DOCS = ROOT / "docs"
BUILD = DOCS / "_build"
DOCTREES = BUILD / "doctrees"
SPHINX_STRICT = ("-W", "--keep-going", "-n", "-T")


def _install(session: nox.Session, *groups: str, package: bool = True) -> None:
    """Install the package (editable) and ``groups`` under the constraints, unless nothing changed."""
    if session.venv_backend == "none":  # `nox --no-venv`: use the current environment as it is
        session.log("no virtualenv (--no-venv): using the current environment's packages")
        return
    digest = hashlib.sha256()
    for path in (ROOT / "pyproject.toml", CONSTRAINTS):
        digest.update(path.read_bytes())
    digest.update(repr((groups, package)).encode())
    stamp = Path(session.virtualenv.location) / ".initbook-install-stamp"
    if stamp.exists() and stamp.read_text() == digest.hexdigest():
        session.log("environment up to date (pyproject.toml and constraints.txt unchanged)")
        return
    requirements = list(nox.project.dependency_groups(PROJECT, *groups)) if groups else []
    editable = ["-e", "."] if package else []
    session.install("-c", str(CONSTRAINTS), *editable, *requirements)
    stamp.write_text(digest.hexdigest())


@nox.session
def tests(session: nox.Session) -> None:
    """Run the test suite (tests/ and the package's docstring examples)."""
    _install(session, "test")
    session.run("pytest", *session.posargs, env={**_docs_env(), "MPLBACKEND": "Agg"})


@nox.session
def lint(session: nox.Session) -> None:
    """Lint: ruff check and format, ruff on the pages' code cells, mypy on ``initbook/`` (against torch's
    types), and the GitHub workflow files validated against their schema."""
    _install(session, "lint")
    session.run("ruff", "check", ".")
    session.run("ruff", "format", "--check", ".")
    session.run("python", "tools/lint_pages.py")  # ruff on the pages' code cells, as notebooks
    session.run("mypy")  # the files and settings are in pyproject.toml's [tool.mypy]
    workflows = sorted(str(p) for p in (ROOT / ".github" / "workflows").glob("*.y*ml"))
    if workflows:  # offline: the schema is the copy vendored in check-jsonschema
        session.run("check-jsonschema", "--builtin-schema", "vendor.github-workflows", *workflows)


# What the install session runs against the installed wheel: two gallery scripts and the command line
# (``python -m initbook``): the version, and ``diagnose`` on a healthy model (exit 0) and on a model with
# an all-constant layer (exit 1, the symmetry finding), both from ``_INSTALL_MODELS``.
INSTALL_EXAMPLES = ("why_init/plot_nonfinite_step.py", "initializers/plot_xavier_variance_check.py")
_DIAGNOSE = ("-m", "initbook", "diagnose", "--input-shape", "64,16", "--classes", "10")
INSTALL_COMMANDS = (("-m", "initbook", "--version"), (*_DIAGNOSE, "models.py:healthy"))
INSTALL_FAILING_COMMANDS = ((*_DIAGNOSE, "models.py:constant"),)
_INSTALL_MODELS = """
import torch
from torch import nn

import initbook


def healthy():
    model = nn.Sequential(nn.Linear(16, 64), nn.ReLU(), nn.Linear(64, 64), nn.ReLU(), nn.Linear(64, 10))
    gen = torch.Generator().manual_seed(0)
    for layer in model[:-1:2]:
        initbook.init.kaiming_normal_(layer.weight, nonlinearity="relu", generator=gen)
        nn.init.zeros_(layer.bias)
    nn.init.zeros_(model[-1].weight)
    nn.init.zeros_(model[-1].bias)
    return model


def constant():
    model = healthy()
    nn.init.constant_(model[2].weight, 0.1)
    return model
"""


@nox.session
def install(session: nox.Session) -> None:
    """Ship check: build the sdist and the wheel, ``twine check`` them, install the wheel into a fresh venv.

    The wheel is installed (not editable) with its dependencies under ``constraints.txt`` into a new
    virtual environment outside the source tree, and everything then runs from an empty folder, so nothing
    is imported from the checkout: every public module, the gallery scripts ``INSTALL_EXAMPLES`` and the
    command line ``INSTALL_COMMANDS``. Not run by ``nox`` alone; ``.ci/run`` runs it.
    """
    if session.venv_backend == "none":
        session.error(
            "the install session builds and installs into virtual environments: drop --no-venv"
        )
    _install(session, "ship", package=False)
    work = Path(session.create_tmp()).resolve()
    dist, target, scratch = work / "dist", work / "venv", work / "run"
    for path in (dist, target, scratch):
        shutil.rmtree(path, ignore_errors=True)
    scratch.mkdir()
    # --no-isolation: the build backend comes from this session (pinned), not from a download per build
    session.run("python", "-m", "build", "--no-isolation", "--outdir", str(dist), str(ROOT))
    built = sorted(dist.iterdir())
    session.run("twine", "check", "--strict", *map(str, built))
    (wheel,) = (path for path in built if path.suffix == ".whl")

    session.run("python", "-m", "venv", str(target))
    python = str(target / "bin" / "python")
    # --no-compile: no .pyc for all of torch up front (a minute on two cores); imports compile what they use
    pip = (python, "-m", "pip", "install", "-q", "--no-compile", "-c", str(CONSTRAINTS))
    session.run(*pip, str(wheel), external=True)
    # an empty folder as the working directory and the only PYTHONPATH entry: no source tree in sight
    env = {**_docs_env(), "MPLBACKEND": "Agg", "PYTHONPATH": str(scratch)}

    def run_installed(*args: str) -> str:
        with session.chdir(scratch):
            return session.run(python, *args, env=env, external=True, silent=True) or ""

    session.log(run_installed("-c", _IMPORT_CHECK, str(ROOT)).strip())
    for example in INSTALL_EXAMPLES:
        run_installed(str(ROOT / "examples" / example))
        session.log(f"ran examples/{example} against the installed package")
    (scratch / "models.py").write_text(_INSTALL_MODELS, encoding="utf-8")
    for command in INSTALL_COMMANDS:
        output = run_installed(*command)
        session.log(f"python {' '.join(command)}: {output.strip().splitlines()[0]}")
        if "--version" in command and PROJECT_VERSION not in output:
            session.error(f"`python {' '.join(command)}` does not print {PROJECT_VERSION}")
    # serious findings: exit status 1, so that a user's CI can fail on them
    for command in INSTALL_FAILING_COMMANDS:
        with session.chdir(scratch):
            session.run(python, *command, env=env, external=True, silent=True, success_codes=[1])
        session.log(f"python {' '.join(command)}: exit status 1, as it should")
    session.log(f"{wheel.name}: built, checked, installed in {target} and run from {scratch}")


# Run by the installed interpreter: import every public module from site-packages, not the checkout.
_IMPORT_CHECK = """
import importlib, importlib.metadata, pathlib, pkgutil, sys
import initbook
root = pathlib.Path(sys.argv[1]).resolve()
where = pathlib.Path(initbook.__file__).resolve()
assert where.parent != root / "initbook" and "site-packages" in where.parts, f"not installed: {where}"
assert importlib.metadata.version("initbook") == initbook.__version__
assert (where.parent / "py.typed").is_file(), "py.typed is missing from the wheel"
names = [m.name for m in pkgutil.iter_modules(initbook.__path__) if not m.name.startswith("_")]
for name in names:
    importlib.import_module(f"initbook.{name}")
missing = [name for name in initbook.__all__ if not hasattr(initbook, name)]
assert not missing, missing
print(f"initbook {initbook.__version__} from {where.parent}: imported", ", ".join(names))
"""


def _docs_env() -> dict[str, str]:
    """Environment for building the book: Agg backend, stable hashing, and where MNIST lives.

    ``INITBOOK_DATA`` is respected if set; otherwise a ``shared/data`` folder beside the checkout (where CI
    keeps the official MNIST files) is used if it exists, and otherwise the loader's user cache, where
    ``load_mnist(download=True)`` fetches and verifies the official files on a machine with internet.
    """
    # No MPLBACKEND here: the notebook kernels must use matplotlib's inline backend, or glued figures
    # become their text repr ("<Figure size ...>"); sphinx-gallery switches to Agg by itself.
    env = {"PYTHONHASHSEED": "0"}
    shared = ROOT.parent / "shared" / "data"
    if "INITBOOK_DATA" not in os.environ and (shared / "mnist").is_dir():
        env["INITBOOK_DATA"] = str(shared)
    return env


def _sphinx(session: nox.Session, builder: str, outdir: Path, *extra: str) -> None:
    session.run(
        "sphinx-build",
        "-b",
        builder,
        "-d",
        str(DOCTREES),
        *extra,
        str(DOCS),
        str(outdir),
        env=_docs_env(),
    )


def _check_rendered(session: nox.Session, html: Path) -> None:
    """Fail if a page shows an output's text repr where a figure or table should be.

    A glued matplotlib figure without a PNG (wrong backend in the kernel) renders as ``<Figure size ...>``
    and a glued table without Markdown as its string repr; neither is a Sphinx warning.
    """
    bad = []
    for page in sorted(html.rglob("*.html")):
        text = page.read_text(encoding="utf-8")
        for marker in ("&lt;Figure size", "&lt;IPython.core.display.Markdown object&gt;"):
            if marker in text:
                bad.append(f"{page.relative_to(html)}: {marker}")
    if bad:
        session.error("outputs rendered as text instead of figures/tables:\n  " + "\n  ".join(bad))
    session.log(f"checked {len(list(html.rglob('*.html')))} pages: every glued output rendered")


@nox.session
def docs(session: nox.Session) -> None:
    """Build the book with warnings as errors, then run its pages' doctests on the same doctrees.

    Stale pages are executed in parallel, one Jupyter kernel per CPU (``docs/_ext/initbook_execute.py``);
    pages whose code is unchanged come from the execution cache in ``docs/_build/.jupyter_cache``, gallery
    scripts whose source is unchanged from ``docs/auto_examples``.

    Pass ``--clean`` after ``--`` to delete the previous build (and the execution cache) first.
    """
    _install(session, "docs")
    if "--clean" in session.posargs:
        for path in (
            BUILD,
            DOCS / "auto_examples",
            DOCS / "gen_modules",
            DOCS / "api" / "generated",
        ):
            shutil.rmtree(path, ignore_errors=True)
    # HTML, then the pages' doctests on the same doctrees, in one process (tools/build_docs.py).
    session.run("python", str(ROOT / "tools" / "build_docs.py"), env=_docs_env())
    _check_rendered(session, BUILD / "html")
    session.log(f"The book is in {BUILD / 'html'}; open index.html or run `nox -s serve`.")


@nox.session(name="docs-fast")
def docs_fast(session: nox.Session) -> None:
    """Build the book without executing pages or examples (glued numbers are missing, so no -W)."""
    _install(session, "docs")
    session.run(
        "sphinx-build",
        "-b",
        "html",
        "-d",
        str(BUILD / "doctrees-fast"),
        "-D",
        "plot_gallery=0",
        "-D",
        "nb_execution_mode=off",
        str(DOCS),
        str(BUILD / "html-fast"),
        env=_docs_env(),
    )


@nox.session
def serve(session: nox.Session) -> None:
    """Build the book (as ``docs``) and serve it on http://localhost:8000 until interrupted."""
    docs(session)
    port = session.posargs[0] if session.posargs and session.posargs[0].isdigit() else "8000"
    session.log(f"Serving {BUILD / 'html'} on http://localhost:{port} (Ctrl-C to stop)")
    session.run(sys.executable, "-m", "http.server", port, "-d", str(BUILD / "html"), external=True)


@nox.session
def site(session: nox.Session) -> None:
    """Test the built book in headless Chromium, as a reader sees it (run ``nox -s docs`` first).

    Needs the system's ``chromium`` and ``chromedriver`` (Debian: ``apt-get install chromium
    chromium-driver``; set ``CHROMIUM``/``CHROMEDRIVER`` to use others). Screenshots of the landing page, a
    chapter and a gallery example, in light and dark mode and on a phone-sized screen, are written to
    ``docs/_build/screenshots``. The package is installed too: the explorer's test compares the page's
    JavaScript with :mod:`initbook.theory`. Extra arguments go to pytest.
    """
    if not (BUILD / "html" / "index.html").is_file():
        session.error("no built book in docs/_build/html: run `nox -s docs` first")
    _install(session, "site")
    session.run(
        "pytest",
        "browser_tests",
        "--confcutdir=browser_tests",  # the root conftest.py is the unit tests' and imports torch
        "-o",
        "addopts=-ra --strict-markers --import-mode=importlib",
        "-o",
        "testpaths=browser_tests",
        *session.posargs,
    )
    session.log(f"screenshots in {BUILD / 'screenshots'}")


@nox.session
def example(session: nox.Session) -> None:
    """Run gallery examples whose file name matches the given pattern, through Sphinx.

    ``nox -s example -- plot_nonfinite_step`` re-executes that script and rebuilds its page.
    """
    if not session.posargs:
        session.error("name an example: nox -s example -- plot_nonfinite_step")
    _install(session, "docs")
    pattern = session.posargs[0].removesuffix(".py")
    _sphinx(
        session,
        "html",
        BUILD / "html",
        "-D",
        f"sphinx_gallery_conf.filename_pattern={pattern}",
        "-D",
        "sphinx_gallery_conf.run_stale_examples=True",
    )


# Build outputs and caches that must not travel into a fresh copy of the sources.
_NOT_SOURCES = (
    ".git",
    ".nox",
    ".ci-venv",
    ".venv*",
    ".hypothesis",
    ".pytest_cache",
    ".ruff_cache",
    ".mypy_cache",
    "__pycache__",
    "*.egg-info",
    "_build",
    "auto_examples",
    "gen_modules",
    "sg_execution_times.rst",
    "jupyter_execute",
)


def _fresh_copy(session: nox.Session, dest: Path) -> Path:
    """Copy the sources (the working tree without build outputs or caches) to ``dest``; return it."""
    shutil.rmtree(dest, ignore_errors=True)
    try:  # exactly the files git would see: tracked plus untracked-but-not-ignored
        listed = subprocess.run(
            ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
            cwd=ROOT,
            check=True,
            capture_output=True,
        ).stdout.decode()
        files = [ROOT / name for name in listed.split("\0") if name]
    except (OSError, subprocess.CalledProcessError):
        files = None
    if files is None:
        shutil.copytree(ROOT, dest, ignore=shutil.ignore_patterns(*_NOT_SOURCES))
    else:
        for path in files:
            if path.is_file():
                target = dest / path.relative_to(ROOT)
                target.parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(path, target)
    for generated in ("_build", "auto_examples", "gen_modules", "api/generated"):
        if (dest / "docs" / generated).exists():
            session.error(f"{dest / 'docs' / generated} exists in a fresh copy")
    session.log(f"copied the sources to {dest}")
    return dest


def _clean_build(session: nox.Session, copy: Path) -> float:
    """Build the book in ``copy`` from nothing (HTML, strict); return the wall time in seconds."""
    docs = copy / "docs"
    start = time.perf_counter()
    session.run(
        "sphinx-build",
        "-b",
        "html",
        "-d",
        str(docs / "_build" / "doctrees"),
        *SPHINX_STRICT,
        str(docs),
        str(docs / "_build" / "html"),
        env={**_docs_env(), "PYTHONPATH": str(copy)},
    )
    return time.perf_counter() - start


@nox.session
def reproducibility(session: nox.Session) -> None:
    """Build the book twice from two fresh copies of the sources and compare every result.

    Each copy starts with no build, no execution cache and no sphinx-gallery outputs, so nothing leaks
    from one build into the other. ``tools/compare_builds.py`` then compares every glued value, notebook
    output, gallery stdout block and gallery image; the session fails on any difference. The copies live in
    ``.nox/reproducibility/{a,b}`` (or the folder given after ``--``) and are kept for inspection.
    """
    _install(session, "docs")
    where = (
        Path(session.posargs[0]).resolve() if session.posargs else ROOT / ".nox" / "reproducibility"
    )
    copies = [_fresh_copy(session, where / name) for name in ("a", "b")]
    for copy in copies:
        seconds = _clean_build(session, copy)
        session.log(f"clean build of {copy} took {seconds:.0f} s")
    session.run("python", str(ROOT / "tools" / "compare_builds.py"), *map(str, copies))


@nox.session
def benchmarks(session: nox.Session) -> None:
    """Time the docs builds, every gallery example, the batched estimators and the training loop.

    Writes ``benchmarks/results.json`` (commit it: the book's "How fast is it" appendix renders its tables
    from that file) and prints the tables. ``-- --skip-build`` leaves out the clean and no-change docs
    builds (minutes); ``-- --skip-examples`` the gallery scripts; ``-- --repeats 9`` for more repeats.
    Not run by the tests.
    """
    _install(session, "docs")
    session.run("python", str(ROOT / "benchmarks" / "run.py"), *session.posargs, env=_docs_env())
