"""Nox sessions for initbook: tests, the book, lint and single examples.

Every session installs the package and its dependency groups from ``pyproject.toml`` under the pins in
``constraints.txt`` (torch==2.13.0, a CPU build, and the docs toolchain). Virtual environments are reused and
re-installed only when ``pyproject.toml`` or ``constraints.txt`` change, so torch is installed once.

    nox -s tests              # pytest: unit, statistical and docstring doctests
    nox -s docs               # the book: HTML with -W -n --keep-going, then the doctest builder
    nox -s docs -- --fast     # the book without executing pages or examples (layout work)
    nox -s docs -- --serve    # build the book, then serve it on http://localhost:8000
    nox -s docs -- -b html    # one builder (html or doctest); --clean starts from scratch
    nox -s lint               # ruff check, ruff format --check, mypy, workflow files against their schema
    nox -s install            # build sdist and wheel, twine check, install the wheel in a fresh venv, run it
    nox -s site               # the built book in headless Chromium (after docs; needs chromium, chromedriver)
    nox -s notebooks          # run every chapter's downloadable notebook in a fresh venv (after docs)
    nox -s example -- plot_nonfinite_step   # run one gallery script through Sphinx
    nox -s reproducibility    # build the book twice from clean copies and compare every result
    nox -s benchmarks         # time builds, examples, estimators and training; write benchmarks/results.json
"""

from __future__ import annotations

import hashlib
import os
import shutil
import sys
import time
from pathlib import Path

import nox

sys.path.insert(0, str(Path(__file__).parent / "tools"))
import build_docs  # the book's one build entry point (stdlib only at import)

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
BUILD = ROOT / "docs" / "_build"
BUILD_DOCS = ROOT / "tools" / "build_docs.py"


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
    # No MPLBACKEND here: docs/conf.py keeps it away from the notebook kernels (see there).
    env = {"PYTHONHASHSEED": "0"}
    shared = ROOT.parent / "shared" / "data"
    if "INITBOOK_DATA" not in os.environ and (shared / "mnist").is_dir():
        env["INITBOOK_DATA"] = str(shared)
    return env


@nox.session
def docs(session: nox.Session) -> None:
    """Build the book: ``tools/build_docs.py`` with the arguments given after ``--``.

    With none: HTML with warnings as errors, then the pages' doctests on the same doctrees, then a check that
    every glued output rendered. ``-b html`` or ``-b doctest`` for one builder, ``--fast`` for HTML without
    executing pages or examples, ``--clean`` to delete the previous build and the execution cache first,
    ``--serve [PORT]`` to serve the result on http://localhost:8000. Stale pages are executed in parallel,
    one Jupyter kernel per CPU (``docs/_ext/initbook_execute.py``); unchanged pages come from the execution
    cache in ``docs/_build/.jupyter_cache``, unchanged gallery scripts from ``docs/auto_examples``.
    """
    _install(session, "docs")
    session.run("python", str(BUILD_DOCS), *session.posargs, env=_docs_env())


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
def notebooks(session: nox.Session) -> None:
    """Run every chapter's downloadable notebook top to bottom, as a reader would (run ``nox -s docs`` first).

    The book's build writes one notebook per executed page (``docs/_ext/initbook_notebooks.py``, the
    ``.ipynb`` entry of a page's download menu). This session installs into its own fresh environment only
    what a reader needs, the package and Jupyter's kernel and client (dependency group ``notebooks``: no
    Sphinx, no myst-nb, no scipy), and runs the notebooks in parallel, one kernel per CPU
    (``tools/run_notebooks.py``; extra arguments go to it, e.g. ``-- chaos`` for the pages whose name
    contains "chaos"). Not run by ``nox`` alone, nor by ``.ci/run``: it re-executes the whole book, which
    would take .ci/run past its 12 minutes. The hosted CI runs it in its own job after the docs job
    (``.github/workflows/ci.yml``).
    """
    if not (BUILD / "html" / "_sources").is_dir():
        session.error("no built book in docs/_build/html: run `nox -s docs` first")
    _install(session, "notebooks")
    session.run(
        "python", str(ROOT / "tools" / "run_notebooks.py"), *session.posargs, env=_docs_env()
    )


@nox.session
def example(session: nox.Session) -> None:
    """Run gallery examples whose file name matches the given pattern, through Sphinx.

    ``nox -s example -- plot_nonfinite_step`` re-executes that script and rebuilds its page.
    """
    if not session.posargs:
        session.error("name an example: nox -s example -- plot_nonfinite_step")
    _install(session, "docs")
    pattern = session.posargs[0].removesuffix(".py")
    session.run(
        "python",
        str(BUILD_DOCS),
        "-b",
        "html",
        "-D",
        f"sphinx_gallery_conf.filename_pattern={pattern}",
        "-D",
        "sphinx_gallery_conf.run_stale_examples=True",
        env=_docs_env(),
    )


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
    copies = [build_docs.fresh_copy(where / name) for name in ("a", "b")]
    for copy in copies:
        session.log(f"copied the sources to {copy}")
        start = time.perf_counter()
        session.run(
            *build_docs.command(copy / "docs", "-b", "html"),
            env={**_docs_env(), "PYTHONPATH": str(copy)},
            external=True,
        )
        session.log(f"clean build of {copy} took {time.perf_counter() - start:.0f} s")
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
