"""Offer every executed page of the book as a Jupyter notebook a reader can download and run.

myst-nb executes each MyST page and writes the executed notebook to ``_build/jupyter_execute/<page>.ipynb``.
That notebook is not yet one for a reader: its Markdown is MyST (roles such as ``{glue:text}`name```,
``{ref}``, directives, equation labels), its figures and tables live in glue outputs, and its code imports
``myst_nb.glue``, which is a build tool and not a dependency of the ``initbook`` package. This extension turns
it into a plain notebook, at ``html-page-context`` (before the theme builds its header buttons):

* the Markdown becomes CommonMark a notebook renders: glued numbers are written in (formatted as on the page),
  glued tables become Markdown tables, glued figures become cell attachments, cross-references become their
  text, MyST fences (admonitions, dropdowns) are unwrapped, and raw HTML (the explorer widget) is left out;
* every code cell is kept, in order, with its outputs, including the ones the page hides or removes
  (imports, plotting), so the notebook runs top to bottom in a fresh kernel; their ``hide-*``/``remove-*``
  tags stay in the cell metadata;
* ``from myst_nb import glue`` is replaced by a first code cell that uses ``myst_nb.glue`` when it is
  installed and otherwise a stand-in that does nothing (or displays the value when asked to), so a reader
  needs only the package and Jupyter.

The notebook is written to ``_sources/<page>.ipynb`` and the page's context gets ``ipynb_source``, so
sphinx-book-theme's download menu shows its ``.ipynb`` entry (the theme does so by itself only when launch
buttons are configured). ``nox -s notebooks`` runs every such notebook in a fresh environment.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from sphinx.application import Sphinx
from sphinx.util import logging

logger = logging.getLogger(__name__)

GLUE_IMPORT = re.compile(r"^from myst_nb import glue\n", re.MULTILINE)
SHIM = '''\
# This notebook is a chapter of the initbook book. In the book's build, glue() stores a value for the text
# to quote (myst_nb.glue); here, without myst_nb, it does nothing unless asked to display the value.
try:
    from myst_nb import glue
except ImportError:

    def glue(name, value, display=True):
        """Stand-in for myst_nb.glue: display ``value`` if asked to, else nothing."""
        if display:
            from IPython.display import display as show

            show(value)
'''
ROLE = re.compile(r"\{([a-z]+(?::[a-z]+)?)\}`([^`]*)`")
FENCE_OPEN = re.compile(r"^(```+|:::+)\{([a-z:-]+)\}\s*(.*)$")
OPTION = re.compile(r"^:[a-z-]+:.*$")
LABEL = re.compile(r"^\([A-Za-z0-9_-]+\)=\s*$")
EQ_LABEL = re.compile(r"^\$\$\s*\([A-Za-z0-9_-]+\)\s*$")


def _glue_text(glued: dict[str, Any], content: str) -> str:
    """The text of ``{glue:text}`name:format```, formatted as the page shows it."""
    name, _, fmt = content.partition(":")
    data = glued.get(name, {}).get("data", {})
    text = data.get("text/plain")
    if text is None:
        return f"`{name}`"
    if fmt:
        try:
            return format(float(text), fmt)
        except ValueError:
            pass
        try:
            return format(int(text), fmt)
        except ValueError:
            pass
    return text.strip("'\"")


def _role(glued: dict[str, Any], role: str, content: str) -> str:
    if role in ("glue:text", "glue"):
        return _glue_text(glued, content)
    if role == "math":
        return f"${content}$"
    text, _, target = content.partition(" <")
    if target:  # {ref}`text <label>`
        return text
    content = content.lstrip("~!")
    if role in ("func", "class", "meth", "mod", "attr", "data", "obj", "exc"):
        return f"`{content}`"
    if role == "eq":
        return f"({content})"
    if role.startswith("cite"):
        return f"[{content}]"
    return content


def _markdown(source: str, glued: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    """MyST Markdown to CommonMark; returns the text and the cell's attachments (glued figures)."""
    out: list[str] = []
    attachments: dict[str, Any] = {}
    lines = source.split("\n")
    i = 0
    while i < len(lines):
        line = lines[i]
        opened = FENCE_OPEN.match(line)
        if opened:
            fence, directive, argument = opened.groups()
            body: list[str] = []
            i += 1
            while i < len(lines) and lines[i].rstrip() != fence:
                body.append(lines[i])
                i += 1
            i += 1  # the closing fence
            body = [b for b in body if not OPTION.match(b)]
            if directive == "raw":
                continue
            if directive in ("glue:figure", "glue:md", "glue"):
                data = glued.get(argument.strip(), {}).get("data", {})
                if "image/png" in data:
                    key = f"{argument.strip()}.png"
                    attachments[key] = {"image/png": data["image/png"]}
                    out.append(f"![{argument.strip()}](attachment:{key})")
                elif "text/markdown" in data:
                    out.append(data["text/markdown"])
                caption = "\n".join(body).strip()
                if caption:
                    out.append("")
                    out.append(_roles("*" + caption + "*", glued))
                continue
            if directive in ("math",):
                out.append("$$\n" + "\n".join(body) + "\n$$")
                continue
            if directive in ("code", "code-block", "doctest"):
                out.append("```python\n" + "\n".join(body) + "\n```")
                continue
            title = argument.strip()
            if title:
                out.append(f"**{_roles(title, glued)}**")
                out.append("")
            out.append(_markdown("\n".join(body), glued)[0])
            continue
        if LABEL.match(line):
            i += 1
            continue
        if EQ_LABEL.match(line):
            out.append("$$")
            i += 1
            continue
        out.append(_roles(line, glued))
        i += 1
    return _roles("\n".join(out), glued), attachments  # again: roles that span lines


def _roles(text: str, glued: dict[str, Any]) -> str:
    return ROLE.sub(lambda m: _role(glued, m.group(1), m.group(2)), text)


def reader_notebook(
    executed: dict[str, Any], glued: dict[str, Any], title: str, url: str
) -> dict[str, Any]:
    """The reader's notebook made from myst-nb's executed notebook of a page (see the module docstring)."""
    cells: list[dict[str, Any]] = []
    for cell in executed["cells"]:
        source = "".join(cell["source"]) if isinstance(cell["source"], list) else cell["source"]
        if cell["cell_type"] == "markdown":
            text, attachments = _markdown(source, glued)
            if not text.strip():
                continue
            new = {"cell_type": "markdown", "metadata": {}, "source": text}
            if attachments:
                new["attachments"] = attachments
            cells.append(new)
        elif cell["cell_type"] == "code":
            cells.append({**cell, "source": GLUE_IMPORT.sub("", source)})
    intro = {
        "cell_type": "markdown",
        "metadata": {},
        "source": (
            f"*This is the chapter [{title}]({url}) of the initbook book, as a notebook:* every cell "
            "of the page, including the ones the page hides (imports, plotting), runs top to bottom in a "
            "fresh kernel with `pip install initbook` (torch, matplotlib) and Jupyter. The text is the "
            "chapter's, with the numbers of the book's build written in."
        ),
    }
    shim = {
        "cell_type": "code",
        "execution_count": None,
        "metadata": {},
        "outputs": [],
        "source": SHIM,
    }
    metadata = {
        "kernelspec": {"display_name": "Python 3", "language": "python", "name": "python3"},
        "language_info": {"name": "python"},
    }
    intro["id"], shim["id"] = "initbook-intro", "initbook-glue"
    for k, cell in enumerate(cells):
        cell.setdefault("id", f"cell-{k}")
    return {
        "cells": [intro, shim, *cells],
        "metadata": metadata,
        "nbformat": 4,
        "nbformat_minor": 5,
    }


def _page_notebook(
    app: Sphinx, pagename: str, templatename: str, context: dict, doctree: Any
) -> None:
    if doctree is None or app.builder.format != "html":
        return
    executed_dir = Path(app.outdir).parent / "jupyter_execute"
    executed = executed_dir / f"{pagename}.ipynb"
    if not executed.is_file():
        return
    glue_file = executed_dir / f"{pagename}.glue.json"
    glued = json.loads(glue_file.read_text(encoding="utf-8")) if glue_file.is_file() else {}
    title = re.sub(r"<[^>]+>", "", context.get("title", pagename))
    url = f"{pagename.rsplit('/', 1)[-1]}.html"
    notebook = reader_notebook(json.loads(executed.read_text(encoding="utf-8")), glued, title, url)
    target = Path(app.outdir) / "_sources" / f"{pagename}.ipynb"
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(json.dumps(notebook, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    context["ipynb_source"] = f"{pagename}.ipynb"


def setup(app: Sphinx) -> dict[str, Any]:
    # after myst-nb wrote the executed notebooks, before the theme's header buttons (priority 501)
    app.connect("html-page-context", _page_notebook, priority=490)
    return {"parallel_read_safe": True, "parallel_write_safe": True}


__all__ = ["reader_notebook"]
