"""The book's figure style, one place for the pages and the gallery.

Every figure of the book is drawn with :data:`BOOK_STYLE`: a light grid and a screen resolution a little
above matplotlib's default. Pages and gallery scripts call :func:`use_book_style` once at the top;
:func:`book_style` applies it to one block only. matplotlib is imported when a function is called, not when
:mod:`initbook` is imported.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from types import MappingProxyType
from typing import Any, cast

__all__ = ["BOOK_STYLE", "book_style", "use_book_style"]

BOOK_STYLE: MappingProxyType[str, Any] = MappingProxyType(
    {"figure.dpi": 110, "axes.grid": True, "grid.alpha": 0.3}
)
"""The rcParams the book's figures are drawn with (read-only)."""


def use_book_style() -> None:
    """Set matplotlib's rcParams to :data:`BOOK_STYLE` for the rest of the session (page or script).

    Examples:
        >>> import matplotlib
        >>> initbook.plotting.use_book_style()
        >>> matplotlib.rcParams["axes.grid"], matplotlib.rcParams["figure.dpi"]
        (True, 110.0)
        >>> matplotlib.rcdefaults()
    """
    import matplotlib

    matplotlib.rcParams.update(cast("Any", dict(BOOK_STYLE)))  # the stubs want literal keys


@contextmanager
def book_style() -> Iterator[None]:
    """Draw with :data:`BOOK_STYLE` inside a ``with`` block; the previous rcParams come back after it.

    Examples:
        >>> import matplotlib
        >>> matplotlib.rcParams["grid.alpha"] = 0.8
        >>> with initbook.plotting.book_style():
        ...     matplotlib.rcParams["grid.alpha"]
        0.3
        >>> matplotlib.rcParams["grid.alpha"]  # restored on leaving
        0.8
        >>> matplotlib.rcdefaults()
    """
    import matplotlib

    with matplotlib.rc_context(cast("Any", dict(BOOK_STYLE))):
        yield
