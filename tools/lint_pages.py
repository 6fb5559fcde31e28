"""Lint the code cells of the book's MyST pages with ruff, as the notebooks they are.

Usage::

    python tools/lint_pages.py [PAGE_OR_FOLDER ...]      # default: docs/

Each page's ``{code-cell}`` blocks (directive options such as ``:tags:`` removed) are written, in order, as
the code cells of a temporary ``.ipynb``, and ``ruff check`` runs on those notebooks with the project's
configuration (``pyproject.toml``). Ruff reads a notebook cell by cell, so the notebook idioms pass as they
do in Jupyter: a bare expression ending a cell (its value is the cell's output), IPython ``%`` magics, and
imports at the top of a later cell. Everything else a ``.py`` file of the project must satisfy applies.
Diagnostics are printed with the page's own line numbers (``docs/x.md:LINE:COL: CODE message``).

The exit status is 1 if any page has a finding, 0 otherwise.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
FENCE = re.compile(r"^(`{3,}|~{3,})\{code-cell\}")
OPTION = re.compile(r"^:[\w-]+:")


@dataclass
class Cell:
    """One code cell: its source lines and the page line number (1-based) of its first source line."""

    lines: list[str]
    first_line: int


def code_cells(text: str) -> list[Cell]:
    """The ``{code-cell}`` blocks of a MyST page, without their directive options."""
    lines = text.split("\n")
    cells, i = [], 0
    while i < len(lines):
        match = FENCE.match(lines[i])
        if not match:
            i += 1
            continue
        fence, j = match.group(1), i + 1
        if j < len(lines) and lines[j].strip() == "---":  # a YAML block of options
            j += 1
            while j < len(lines) and lines[j].strip() != "---":
                j += 1
            j += 1
        while j < len(lines) and OPTION.match(lines[j]):  # short options: ":tags: [hide-input]"
            j += 1
        start = j
        while j < len(lines) and not lines[j].startswith(fence[0] * len(fence)):
            j += 1
        body = lines[start:j]
        while body and not body[0].strip():  # the blank line after the options
            body, start = body[1:], start + 1
        cells.append(Cell(body, start + 1))
        i = j + 1
    return cells


def notebook(cells: list[Cell]) -> dict:
    """A minimal nbformat-4 notebook holding ``cells`` as code cells."""
    return {
        "cells": [
            {
                "cell_type": "code",
                "execution_count": None,
                "id": f"cell-{k}",
                "metadata": {},
                "outputs": [],
                "source": [line + "\n" for line in cell.lines[:-1]] + cell.lines[-1:],
            }
            for k, cell in enumerate(cells)
        ],
        "metadata": {
            "kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"},
            "language_info": {"name": "python"},
        },
        "nbformat": 4,
        "nbformat_minor": 5,
    }


def pages(args: list[str]) -> list[Path]:
    """The ``.md`` pages named by ``args`` (files or folders; default ``docs/``), build output excluded."""
    found: list[Path] = []
    for arg in args or [str(ROOT / "docs")]:
        path = Path(arg).resolve()
        if path.is_dir():
            found += sorted(
                p
                for p in path.rglob("*.md")
                if not {"_build", "auto_examples", "gen_modules"} & set(p.parts)
            )
        elif path.suffix == ".md":
            found.append(path)
        else:
            raise SystemExit(f"lint_pages: {arg} is neither a folder nor a .md page")
    return found


def main(argv: list[str]) -> int:
    findings = 0
    with tempfile.TemporaryDirectory(prefix="lint_pages_") as tmp:
        sources: dict[str, tuple[Path, list[Cell]]] = {}
        for k, page in enumerate(pages(argv)):
            cells = [c for c in code_cells(page.read_text(encoding="utf-8")) if c.lines]
            if not cells:
                continue
            target = Path(tmp) / f"page{k}.ipynb"
            target.write_text(json.dumps(notebook(cells)), encoding="utf-8")
            sources[str(target)] = (page, cells)
        if not sources:
            return 0
        result = subprocess.run(
            [
                sys.executable,
                "-m",
                "ruff",
                "check",
                "--config",
                str(ROOT / "pyproject.toml"),
                "--no-cache",
                "--output-format",
                "json",
                *sources,
            ],
            capture_output=True,
            text=True,
            check=False,
        )
        if result.returncode not in (0, 1):
            sys.stderr.write(result.stderr)
            return result.returncode
        for item in json.loads(result.stdout or "[]"):
            page, cells = sources[str(Path(item["filename"]).resolve())]
            cell_index = item.get("cell") or 1  # ruff numbers notebook cells from 1
            cell = cells[cell_index - 1]
            row, col = item["location"]["row"], item["location"]["column"]
            name = page.relative_to(ROOT) if page.is_relative_to(ROOT) else page
            print(f"{name}:{cell.first_line + row - 1}:{col}: {item['code']} {item['message']}")
            findings += 1
    if findings:
        print(f"lint_pages: {findings} finding(s) in the code cells of the pages above")
    return 1 if findings else 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
