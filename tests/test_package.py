"""The package as shipped: one version, a changelog that names it, a typed package, a README for PyPI.

The wheel itself is built, checked and installed by ``nox -s install``; these are the source-side checks.
"""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import initbook

ROOT = Path(__file__).resolve().parent.parent


def test_version_is_defined_once():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    assert "version" not in project["project"]
    assert "version" in project["project"]["dynamic"]
    dynamic = project["tool"]["setuptools"]["dynamic"]["version"]
    assert dynamic == {"attr": "initbook.__version__"}
    assert re.fullmatch(r"\d+\.\d+\.\d+", initbook.__version__)


def test_changelog_names_the_version():
    text = (ROOT / "CHANGELOG.md").read_text(encoding="utf-8")
    releases = re.findall(r"^## \[(\d+\.\d+\.\d+)\] - (\d{4}-\d{2}-\d{2})$", text, re.MULTILINE)
    assert releases, "no release heading in the Keep-a-Changelog form '## [x.y.z] - YYYY-MM-DD'"
    assert releases[0][0] == initbook.__version__
    for version, _ in releases:
        assert re.search(rf"^\[{re.escape(version)}\]: https://", text, re.MULTILINE), version


def test_typed_marker_is_shipped():
    assert (ROOT / "initbook" / "py.typed").is_file()
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    assert "py.typed" in project["tool"]["setuptools"]["package-data"]["initbook"]


def test_readme_links_are_absolute():
    """PyPI renders the README without the repository around it: a relative link would break there."""
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    targets = re.findall(r"\]\(([^)\s]+)", text) + re.findall(r"<(https?://[^>]+)>", text)
    assert targets
    relative = [t for t in targets if not re.match(r"https?://", t)]
    assert not relative, relative


def test_metadata_is_complete():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    assert set(project["urls"]) >= {"Homepage", "Documentation", "Source", "Issues", "Changelog"}
    assert project["license-files"] == ["LICENSE"]
    assert (ROOT / "LICENSE").is_file()
    assert project["keywords"]
    floor = re.fullmatch(r">=3\.(\d+)", project["requires-python"])
    assert floor
    versions = [
        int(c.rsplit(".", 1)[1])
        for c in project["classifiers"]
        if re.fullmatch(r"Programming Language :: Python :: 3\.\d+", c)
    ]
    # one classifier per supported minor version, from the floor up, with no gaps
    assert versions == list(range(int(floor.group(1)), int(floor.group(1)) + len(versions)))
