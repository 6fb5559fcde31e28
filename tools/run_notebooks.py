"""Run the book's downloadable notebooks top to bottom in fresh kernels, several at a time.

Usage: ``python tools/run_notebooks.py [--jobs N] [--timeout S] [PATTERN ...]``

The notebooks are the ones a reader downloads from a page's ``.ipynb`` button (``docs/_ext/initbook_notebooks.py``
writes them to ``docs/_build/html/_sources/<page>.ipynb``; build the book first). Each runs in its own
Jupyter kernel (``nbclient``) with the page's folder under ``docs/`` as working directory, as myst-nb runs the
page, and with one torch thread per kernel. ``PATTERN`` keeps only the notebooks whose page name contains it.
Prints one line per notebook (time, or the failing cell and its error) and exits 1 if any fails. ``nox -s
notebooks`` runs it in a fresh environment holding only the package and Jupyter's kernel and client.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import nbformat
from jupyter_client.manager import AsyncKernelManager
from nbclient import NotebookClient
from nbclient.exceptions import CellExecutionError

ROOT = Path(__file__).resolve().parent.parent
SOURCES = ROOT / "docs" / "_build" / "html" / "_sources"


class IPCKernelManager(AsyncKernelManager):
    """Kernels over Unix sockets (not TCP on localhost), at an absolute and short path."""

    def _transport_default(self) -> str:
        return "ipc"

    def _ip_default(self) -> str:
        return os.path.join(tempfile.gettempdir(), f"initbook-nb-{uuid.uuid4().hex[:16]}")


def run_one(path: Path, timeout: int) -> tuple[str, float, str | None]:
    """Execute one notebook; return its page name, the seconds it took and the error (``None`` if it ran)."""
    page = path.relative_to(SOURCES).with_suffix("").as_posix()
    notebook = nbformat.read(path, as_version=4)
    cwd = ROOT / "docs" / Path(page).parent
    client = NotebookClient(
        notebook,
        timeout=timeout,
        kernel_name="python3",
        kernel_manager_class=IPCKernelManager,
        resources={"metadata": {"path": str(cwd)}},
    )
    start = time.perf_counter()
    try:
        client.execute()
    except CellExecutionError as error:
        return page, time.perf_counter() - start, str(error).strip().splitlines()[-1]
    except (
        RuntimeError,
        TimeoutError,
    ) as error:  # a dead kernel, a timeout: report it with the others
        return page, time.perf_counter() - start, f"{type(error).__name__}: {error}"
    return page, time.perf_counter() - start, None


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "patterns", nargs="*", help="run only the pages whose name contains one of these"
    )
    parser.add_argument("--jobs", type=int, default=os.cpu_count() or 1, help="notebooks at a time")
    parser.add_argument("--timeout", type=int, default=600, help="seconds per cell")
    args = parser.parse_args(argv)
    notebooks = sorted(SOURCES.rglob("*.ipynb"))
    if args.patterns:
        notebooks = [p for p in notebooks if any(s in p.as_posix() for s in args.patterns)]
    if not notebooks:
        print(f"no notebooks in {SOURCES}: build the book first (nox -s docs)", file=sys.stderr)
        return 1
    os.environ.setdefault("OMP_NUM_THREADS", "1")  # inherited by the kernels: one thread each
    start = time.perf_counter()
    with ThreadPoolExecutor(max_workers=args.jobs) as pool:
        results = list(pool.map(lambda p: run_one(p, args.timeout), notebooks))
    failed = [r for r in results if r[2] is not None]
    for page, seconds, error in sorted(results, key=lambda r: -r[1]):
        print(
            f"{'FAIL' if error else 'ok  '} {seconds:6.1f} s  {page}"
            + (f": {error}" if error else "")
        )
    print(
        f"{len(results) - len(failed)} of {len(results)} notebooks ran top to bottom "
        f"in {time.perf_counter() - start:.0f} s ({args.jobs} at a time)"
    )
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
