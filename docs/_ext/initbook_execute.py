"""Execute the book's notebook pages in parallel, while sphinx-gallery runs its examples.

myst-nb executes a page when Sphinx reads it, so with ``nb_execution_mode = "cache"`` the pages of a clean
build run one after the other. Sphinx's own ``-j`` does not help here: it forks worker processes from a
process in which sphinx-gallery has already run torch (whose OpenMP thread pool does not survive a fork),
and it splits the pages into consecutive chunks, so the heavy chapters of one part end up in one worker.

This extension runs first, at ``builder-inited``:

1. It finds every page that myst-nb would execute (``cache`` mode) and whose code is not in the execution
   cache, exactly as myst-nb does: the same reader, kernel aliases and per-page configuration, so that the
   cache entry it writes is the one myst-nb looks up.
2. It executes them on ``initbook_execution_jobs`` threads (default: one per CPU), longest first (the
   duration of the page's previous execution in the cache, else the one recorded by ``nox -s benchmarks``
   in ``initbook_execution_hints``, else a guess), each thread driving one Jupyter kernel
   through myst-nb's own cache client. Meanwhile sphinx-gallery runs the gallery scripts in the main thread.
3. Sphinx then reads the documents one by one while the kernels go on; before it reads a page that is being
   executed (``source-read``), it waits for that page only. myst-nb then finds the page in the cache. A page
   that failed is left out of the cache, so myst-nb executes it again while reading and reports the error
   as usual.

Every kernel, and the gallery, runs torch with ``initbook_kernel_threads`` threads (default: the CPUs divided
by the jobs, at least one), whatever the number of pages that happen to be stale, so a page computes the same
numbers in a clean build and when it is re-executed alone. Kernels talk to Sphinx over IPC (Unix sockets)
instead of TCP on localhost, which is also what stops ipykernel from warning about unencrypted TCP on every
page.
"""

from __future__ import annotations

import json
import os
import re
import sys
import tempfile
import time
import uuid
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sphinx.application import Sphinx
from sphinx.errors import ExtensionError
from sphinx.project import Project
from sphinx.util import logging

logger = logging.getLogger(__name__)

_STATE_KEY = "_initbook_execute_futures"


def _kernel_manager_class() -> type:
    """An ``AsyncKernelManager`` that uses IPC and starts kernels with the book's thread settings."""
    from jupyter_client.manager import AsyncKernelManager
    from traitlets import CaselessStrEnum

    class BookKernelManager(AsyncKernelManager):
        transport = CaselessStrEnum(["tcp", "ipc"], default_value="ipc", config=True)

        def _ip_default(self) -> str:
            # jupyter_client's default for IPC is the relative path "kernel-ipc" when the IP is read before
            # the connection file is named (as it is), and the kernel runs in the page's folder while
            # Sphinx runs elsewhere: the sockets must have an absolute path (short: Unix socket paths are
            # limited to about 100 bytes).
            if self.transport == "ipc":
                return os.path.join(
                    tempfile.gettempdir(), f"initbook-kernel-{uuid.uuid4().hex[:16]}"
                )
            return super()._ip_default()

        extra_env: dict[str, str] = {}  # noqa: RUF012 (set once per build, read by every kernel)

        async def start_kernel(self, **kw: Any) -> None:
            kw["env"] = {**kw.get("env", os.environ), **type(self).extra_env}
            await super().start_kernel(**kw)

    return BookKernelManager


def _use_book_kernels(threads: int) -> None:
    """Make every kernel started in this process (by nbclient's default) a ``BookKernelManager``.

    nbclient's ``NotebookClient`` picks ``jupyter_client.AsyncKernelManager`` when it is given no kernel
    manager, and myst-nb gives it none, so replacing that name is how the transport and the environment of
    myst-nb's own kernels are chosen.
    """
    import jupyter_client

    manager = jupyter_client.AsyncKernelManager
    if not getattr(manager, "_initbook", False):
        manager = _kernel_manager_class()
        manager._initbook = True
        jupyter_client.AsyncKernelManager = manager
    manager.extra_env = {"OMP_NUM_THREADS": str(threads), "MKL_NUM_THREADS": str(threads)}


class _PageLogger:
    """The logger interface myst-nb's execution clients use, routed to Sphinx with the page's name.

    A failure is reported as information only: myst-nb executes the page again while reading it, and its
    report of the error (a warning, an error with ``-W``) is the one that counts.
    """

    def __init__(self, docname: str) -> None:
        self.docname = docname

    def _log(self, msg: str, **kwargs: Any) -> None:
        logger.info(f"{msg} [parallel execution]", location=self.docname)

    def info(self, msg: str, **kwargs: Any) -> None:
        if msg.startswith("Executed notebook"):  # the one line per page worth reading
            self._log(msg)
        else:
            logger.verbose(msg, location=self.docname)

    def warning(self, msg: str, **kwargs: Any) -> None:
        first = msg.splitlines()[0] if msg else msg
        self._log(f"{first} (myst-nb re-executes the page while reading it and reports the error)")

    error = warning

    def debug(self, msg: str, **kwargs: Any) -> None:
        pass


@dataclass
class _Page:
    docname: str
    path: Path
    notebook: Any
    nb_config: Any
    read_fmt: dict | None
    expected_s: float


def _nb_page(app: Sphinx, docname: str, path: Path, cache: Any, durations: dict) -> _Page | None:
    """The page as myst-nb would execute it, or None if myst-nb would not execute it in cache mode.

    This follows ``myst_nb.sphinx_.Parser.parse`` up to the creation of the execution client.
    """
    from myst_nb.core.nb_to_tokens import nb_node_to_dict
    from myst_nb.core.read import create_nb_reader

    md_config, nb_config = app.env.myst_config, app.env.mystnb_config
    text = path.read_text(encoding="utf-8")
    reader = create_nb_reader(str(path), md_config, nb_config, text)
    if reader is None:
        return None
    notebook = reader.read(text)
    if not any(cell.cell_type == "code" for cell in notebook.cells):
        return None
    kernel = notebook.metadata.get("kernelspec", {}).get("name")
    if kernel is not None:
        for pattern, alias in nb_config.kernel_rgx_aliases.items():
            if re.fullmatch(pattern, kernel):
                notebook.metadata["kernelspec"]["name"] = alias
                break
    if nb_config.metadata_key in notebook.metadata:
        overrides = nb_node_to_dict(notebook.metadata[nb_config.metadata_key])
        overrides.pop("output_folder", None)
        nb_config = nb_config.copy(**overrides)
    if nb_config.execution_mode != "cache":
        return None
    posix = path.as_posix()
    if any(Path(posix).match(p) for p in nb_config.execution_excludepatterns):
        return None
    try:
        cache.match_cache_notebook(notebook)
    except KeyError:
        pass
    else:
        return None  # already in the cache: myst-nb will use it
    expected = durations.get(str(path))
    if expected is None:
        # No execution of this page in the cache: the guess decides the order. Training on MNIST is what
        # takes long in this book, so those pages go first.
        code = "".join(cell.source for cell in notebook.cells if cell.cell_type == "code")
        share = 1.0 if "load_mnist(" in code or "load_book_split(" in code else 0.5
        expected = share * float(nb_config.execution_timeout or 0)
    return _Page(docname, path, notebook, nb_config, reader.read_fmt, expected)


def _hinted_durations(app: Sphinx) -> dict[str, float]:
    """Execution times per page from ``initbook_execution_hints`` (``benchmarks/results.json``), if any.

    ``nox -s benchmarks`` records how long each page took in its clean build; a clean build, which has no
    cache to learn from, uses them to start the longest pages first.
    """
    if not app.config.initbook_execution_hints:
        return {}
    path = Path(app.confdir, app.config.initbook_execution_hints)
    try:
        pages = json.loads(path.read_text(encoding="utf-8"))["build"]["current"]["page_seconds"]
    except (OSError, ValueError, KeyError, TypeError):
        return {}
    return {str(Path(app.srcdir, name)): float(seconds) for name, seconds in pages.items()}


def _previous_durations(cache: Any) -> dict[str, float]:
    """Execution time of the most recent cached execution of each source file."""
    out: dict[str, tuple[float, float]] = {}
    for record in cache.list_cache_records():
        seconds = (record.data or {}).get("execution_seconds")
        if seconds is None or not record.uri:
            continue
        created = record.created.timestamp()
        if record.uri not in out or out[record.uri][0] < created:
            out[record.uri] = (created, float(seconds))
    return {uri: seconds for uri, (_, seconds) in out.items()}


def _execute(page: _Page) -> float:
    from myst_nb.core.execute.cache import NotebookClientCache

    start = time.perf_counter()
    client = NotebookClientCache(
        page.notebook, page.path, page.nb_config, _PageLogger(page.docname), read_fmt=page.read_fmt
    )
    client.start_client()
    return time.perf_counter() - start


def _settings(app: Sphinx) -> tuple[int, int]:
    cpus = os.cpu_count() or 1
    jobs = app.config.initbook_execution_jobs or cpus
    threads = app.config.initbook_kernel_threads or max(1, cpus // jobs)
    return int(jobs), int(threads)


def _start(app: Sphinx) -> None:
    jobs, threads = _settings(app)
    _use_book_kernels(threads)
    # The gallery scripts run in this process at the same time as the kernels: the same thread count (torch
    # reads the variable when it is imported; it is not imported here unless conf.py did).
    os.environ["OMP_NUM_THREADS"] = os.environ["MKL_NUM_THREADS"] = str(threads)
    if "torch" in sys.modules:
        sys.modules["torch"].set_num_threads(threads)
    nb_config = getattr(app.env, "mystnb_config", None)
    if (
        nb_config is None
    ):  # listed before myst_nb in `extensions`: its configuration does not exist yet
        raise ExtensionError("initbook_execute must come after myst_nb in conf.py's extensions")
    if nb_config.execution_mode != "cache" or jobs < 1:
        return
    from jupyter_cache import get_cache

    cache = get_cache(nb_config.execution_cache_path or ".jupyter_cache")
    durations = {**_hinted_durations(app), **_previous_durations(cache)}
    project = Project(app.srcdir, app.config.source_suffix)
    excluded = [*app.config.exclude_patterns, *app.config.templates_path, "**/_sources", ".#*"]
    pages = []
    for docname in sorted(project.discover(excluded, app.config.include_patterns)):
        path = Path(project.doc2path(docname, absolute=True))
        if path.suffix in (".md", ".ipynb"):
            page = _nb_page(app, docname, path, cache, durations)
            if page is not None:
                pages.append(page)
    if not pages:
        return
    pages.sort(key=lambda p: -p.expected_s)
    logger.info(
        f"executing {len(pages)} notebook page(s) on {min(jobs, len(pages))} kernel(s) in parallel "
        f"({threads} torch thread(s) each): {', '.join(p.docname for p in pages)}"
    )
    pool = ThreadPoolExecutor(max_workers=jobs, thread_name_prefix="initbook-execute")
    futures = {page.docname: pool.submit(_execute, page) for page in pages}
    pool.shutdown(wait=False)
    setattr(app, _STATE_KEY, futures)


def _wait_for(app: Sphinx, docname: str) -> None:
    """Wait until the parallel execution of ``docname`` (if any) has finished, and report how it went."""
    futures: dict[str, Future] = getattr(app, _STATE_KEY, None) or {}
    future = futures.pop(docname, None)
    if future is None:
        return
    try:
        seconds = future.result()
    except Exception as exc:  # noqa: BLE001 (reported again, properly, by myst-nb while reading)
        logger.info(
            f"parallel execution failed ({type(exc).__name__}: {exc}); myst-nb retries it",
            location=docname,
        )
    else:
        logger.verbose(f"executed in {seconds:.1f} s (parallel)", location=docname)


def _before_read(app: Sphinx, docname: str, source: list[str]) -> None:
    # Sphinx reads the documents one by one while the kernels run; a page waits for its own execution only.
    _wait_for(app, docname)


def _wait_all(app: Sphinx, env: Any) -> None:
    # Pages that Sphinx did not read (not outdated) may still be executing: finish before writing.
    for docname in list(getattr(app, _STATE_KEY, None) or {}):
        _wait_for(app, docname)


def setup(app: Sphinx) -> dict:
    """Register the configuration values and the event handlers.

    Order matters: ``conf.py`` lists this extension after ``myst_nb`` and before sphinx-gallery, so that at
    ``builder-inited`` (same priority) myst-nb has built its configuration and sphinx-gallery has not yet
    started running the examples.
    """
    app.add_config_value("initbook_execution_jobs", None, "", types=(int, type(None)))
    app.add_config_value("initbook_kernel_threads", None, "", types=(int, type(None)))
    app.add_config_value("initbook_execution_hints", None, "", types=(str, type(None)))
    app.connect("builder-inited", _start)
    app.connect("source-read", _before_read)
    app.connect("env-updated", _wait_all)
    return {"parallel_read_safe": True, "parallel_write_safe": True, "version": "1"}
