"""tools/build_docs.py's check of the built HTML: outputs that rendered as text instead of figures or tables."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

_PATH = Path(__file__).parents[1] / "tools" / "build_docs.py"
_SPEC = importlib.util.spec_from_file_location("build_docs", _PATH)
build_docs = importlib.util.module_from_spec(_SPEC)
_SPEC.loader.exec_module(build_docs)

_GOOD = "<p>A paragraph.</p><table><tr><td>1</td></tr></table><pre>| a | b |\n| --- | --- |</pre>"


@pytest.mark.parametrize(
    "bad",
    [
        "<div>&lt;Figure size 640x480 with 1 Axes&gt;</div>",  # a figure glued without its PNG
        "<p>&lt;IPython.core.display.Markdown object&gt;</p>",  # a table glued without its Markdown
        "<p>| quantity | theory |\n| --- | --- |\n| x | 1 |</p>",  # a Markdown table glued with {glue:}
    ],
)
def test_check_rendered_finds_outputs_shown_as_text(tmp_path, capsys, bad):
    (tmp_path / "good.html").write_text(_GOOD, encoding="utf-8")
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "page.html").write_text(_GOOD + bad, encoding="utf-8")
    assert build_docs.check_rendered(tmp_path) == 1
    assert "sub/page.html" in capsys.readouterr().out


def test_check_rendered_passes_tables_and_code(tmp_path, capsys):
    (tmp_path / "good.html").write_text(_GOOD, encoding="utf-8")
    assert build_docs.check_rendered(tmp_path) == 0
    assert "checked 1 pages" in capsys.readouterr().out
