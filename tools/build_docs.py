"""Build the book (HTML, warnings as errors) and run its doctests, in one Python process.

Usage::

    python tools/build_docs.py [SPHINX OPTIONS ...]

runs ``sphinx-build -b html`` and then, if it succeeded, ``sphinx-build -b doctest`` on the same doctrees,
with the options of ``nox -s docs`` (``-W --keep-going -n -T``) plus any given here. Two ``sphinx-build``
commands would each start Python and import Sphinx, myst-nb, the theme and torch; in one process the second
build reuses those imports, which is most of what a rebuild with no change costs.

The doctest builder runs the ``{doctest}`` blocks of the book's pages only
(``doctest_test_doctest_blocks = ""`` in ``docs/conf.py``): the examples in the docstrings, which the API
pages show as plain ``>>>`` blocks, are run by ``pytest --doctest-modules`` in ``nox -s tests``.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

from sphinx.cmd.build import build_main

DOCS = Path(__file__).resolve().parent.parent / "docs"
BUILD = DOCS / "_build"
STRICT = ("-W", "--keep-going", "-n", "-T")


def main(argv: list[str]) -> int:
    for builder in ("html", "doctest"):
        start = time.perf_counter()
        args = ["-b", builder, "-d", str(BUILD / "doctrees"), *STRICT, *argv]
        status = build_main([*args, str(DOCS), str(BUILD / builder)])
        print(
            f"sphinx-build -b {builder}: exit status {status}, {time.perf_counter() - start:.1f} s"
        )
        if status:
            return status
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
