"""Every gallery script runs standalone (as ``python examples/<dir>/plot_x.py`` would) without error or
warning, and draws a figure with data in it (the gallery shows it)."""

from __future__ import annotations

import runpy
from pathlib import Path

import matplotlib
import pytest

matplotlib.use("Agg")

import matplotlib.pyplot as plt

EXAMPLES = sorted((Path(__file__).parents[1] / "examples").glob("**/plot_*.py"))


def test_examples_found():
    assert EXAMPLES, "no gallery examples found"


@pytest.mark.slow
@pytest.mark.parametrize("path", EXAMPLES, ids=[p.stem for p in EXAMPLES])
def test_example_runs_without_error_and_draws(path, monkeypatch):
    """The script runs (warnings are errors, see pyproject.toml) and leaves a figure with data in it."""
    monkeypatch.chdir(path.parent)
    monkeypatch.setattr(plt, "show", lambda *args, **kwargs: None)
    try:
        runpy.run_path(str(path), run_name="__main__")
        figures = [plt.figure(number) for number in plt.get_fignums()]
        assert figures, f"{path.name} drew no figure"
        assert any(ax.has_data() for fig in figures for ax in fig.axes), f"{path.name}: empty axes"
    finally:
        plt.close("all")
