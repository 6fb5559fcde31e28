"""Compare two builds of the book and report every difference in what the reader sees as a result.

Usage::

    python tools/compare_builds.py BUILD_A BUILD_B

Each argument is a ``docs`` folder after ``sphinx-build`` (it holds ``_build/jupyter_execute`` and
``auto_examples``), or a checkout whose ``docs`` folder is one. Compared:

* **Glued values** of every MyST notebook page: myst-nb writes them to
  ``_build/jupyter_execute/**/<page>.glue.json`` (and, in older versions, as ``display_data`` outputs with
  ``scrapbook``/``glue`` metadata inside the executed ``.ipynb``, which are read too). ``text/plain`` and
  ``text/markdown`` must be equal as text; ``image/png`` figures are compared as described below.
* **Other cell outputs** of the executed notebooks (streams, ``text/plain``/``text/markdown``/``text/html``
  results and images), cell by cell. The name of ipykernel's per-process temporary file for a cell
  (``/tmp/ipykernel_<pid>/<hash>.py``, which appears in warnings) and object addresses (``at 0x...``) are
  masked: they name the process, not a result.
* **Gallery examples**: the captured stdout blocks (``.. rst-class:: sphx-glr-script-out``) and captured
  HTML reprs of every ``auto_examples/**/*.rst`` (the "Total running time" line is not compared: it is a
  timing), and every ``auto_examples/**/images/*.png`` (thumbnails included).

Images: matplotlib's Agg backend writes PNGs with no timestamp (only a ``Software`` text chunk), so the
same pixels give the same bytes, and a byte comparison (SHA-256) is the strict default. When the bytes
differ, the PNGs are decoded and the pixels compared: a byte-only difference (metadata, compression) is
reported as a note and does not fail; any pixel difference fails, with the number of differing pixels and
the largest channel difference.

The exit status is 1 if anything differs (or is present in one build only), 0 otherwise.
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import io
import json
import re
import sys
from collections.abc import Iterator
from pathlib import Path

TEXT_MIMES = ("text/plain", "text/markdown", "text/html", "text/latex")
IMAGE_MIMES = ("image/png",)
GLUE_KEYS = ("scrapbook", "glue")


def docs_dir(path: Path) -> Path:
    """The folder that holds ``_build`` and ``auto_examples`` for a docs folder or a checkout."""
    for candidate in (path, path / "docs"):
        if (candidate / "_build" / "jupyter_execute").is_dir() or (
            candidate / "auto_examples"
        ).is_dir():
            return candidate
    raise SystemExit(
        f"{path}: no _build/jupyter_execute or auto_examples found (not a built docs dir)"
    )


# Parts of an output that name the executing process, not a result: ipykernel's per-process file of the
# cell's code (in warnings and tracebacks) and object addresses.
_VOLATILE = (
    (re.compile(r"/tmp/ipykernel_\d+/\d+\.py"), "<ipykernel cell>"),
    (re.compile(r"\bat 0x[0-9a-f]+"), "at 0x..."),
)


def _text(value: object) -> str:
    text = "".join(value) if isinstance(value, list) else str(value)
    for pattern, replacement in _VOLATILE:
        text = pattern.sub(replacement, text)
    return text


def _png_bytes(value: object) -> bytes:
    return base64.b64decode(_text(value))


def _pixels(data: bytes):
    """Decoded RGBA pixels of a PNG as a uint8 array (matplotlib's reader, which the build has)."""
    import matplotlib.image
    import numpy as np

    image = matplotlib.image.imread(io.BytesIO(data), format="png")
    if image.dtype != np.uint8:
        image = np.round(np.asarray(image) * 255).astype(np.uint8)
    return image


def compare_png(a: bytes, b: bytes) -> tuple[bool, str]:
    """``(same, note)``: same pixels (bytes first, then decoded), and a note if only the bytes differ."""
    if a == b:
        return True, ""
    pa, pb = _pixels(a), _pixels(b)
    if pa.shape != pb.shape:
        return False, f"image size differs: {pa.shape} vs {pb.shape}"
    diff = abs(pa.astype(int) - pb.astype(int))
    npix = int((diff.max(axis=-1) > 0).sum()) if diff.ndim == 3 else int((diff > 0).sum())
    if npix == 0:
        return True, "PNG bytes differ but decoded pixels are identical"
    return False, f"{npix} pixels differ (largest channel difference {int(diff.max())}/255)"


def _short(text: str, limit: int = 300) -> str:
    text = text if len(text) <= limit else text[:limit] + f"... ({len(text)} chars)"
    return text.replace("\n", "\\n")


# -- notebook pages ---------------------------------------------------------------------------------------
def glued_values(root: Path) -> dict[str, dict[str, object]]:
    """``{"page::name": {mime: data}}`` for every glued value of every executed notebook page."""
    out: dict[str, dict[str, object]] = {}
    jupyter = root / "_build" / "jupyter_execute"
    for path in sorted(jupyter.rglob("*.glue.json")):
        page = path.relative_to(jupyter).as_posix().removesuffix(".glue.json")
        for name, output in json.loads(path.read_text(encoding="utf-8")).items():
            out[f"{page}::{name}"] = output.get("data", {})
    for path in sorted(jupyter.rglob("*.ipynb")):
        page = path.relative_to(jupyter).as_posix().removesuffix(".ipynb")
        for cell in json.loads(path.read_text(encoding="utf-8")).get("cells", []):
            for output in cell.get("outputs", []):
                meta = output.get("metadata", {})
                for key in GLUE_KEYS:
                    if isinstance(meta.get(key), dict) and "name" in meta[key]:
                        out.setdefault(f"{page}::{meta[key]['name']}", output.get("data", {}))
    return out


def cell_outputs(root: Path) -> dict[str, list[tuple[str, object]]]:
    """``{"page#cell": [(kind, data), ...]}`` for the non-glue outputs of every executed notebook."""
    out: dict[str, list[tuple[str, object]]] = {}
    jupyter = root / "_build" / "jupyter_execute"
    for path in sorted(jupyter.rglob("*.ipynb")):
        page = path.relative_to(jupyter).as_posix().removesuffix(".ipynb")
        for index, cell in enumerate(json.loads(path.read_text(encoding="utf-8")).get("cells", [])):
            items: list[tuple[str, object]] = []
            for output in cell.get("outputs", []):
                if any(key in output.get("metadata", {}) for key in GLUE_KEYS):
                    continue
                if output.get("output_type") == "stream":  # stderr too: warnings show in the page
                    items.append((f"stream:{output.get('name')}", _text(output.get("text", ""))))
                elif output.get("output_type") == "error":
                    items.append(("error", f"{output.get('ename')}: {output.get('evalue')}"))
                else:
                    for mime, data in sorted(output.get("data", {}).items()):
                        if mime in TEXT_MIMES or mime in IMAGE_MIMES:
                            items.append((mime, data))
            if items:
                out[f"{page}#cell{index}"] = items
    return out


def compare_mimebundle(label: str, a: dict[str, object], b: dict[str, object], report) -> None:
    for mime in sorted(set(a) | set(b)):
        if mime not in a or mime not in b:
            report.diff(f"{label} [{mime}]: present in {'A' if mime in a else 'B'} only")
        elif mime in IMAGE_MIMES:
            same, note = compare_png(_png_bytes(a[mime]), _png_bytes(b[mime]))
            report.result(same, f"{label} [{mime}]: {note}" if note else f"{label} [{mime}]")
        elif mime in TEXT_MIMES and _text(a[mime]) != _text(b[mime]):
            report.diff(
                f"{label} [{mime}]: {_short(_text(a[mime]))!r} != {_short(_text(b[mime]))!r}"
            )


# -- gallery ----------------------------------------------------------------------------------------------
_BLOCK_START = re.compile(r"^\.\. (rst-class:: sphx-glr-script-out|raw:: html)\s*$")


def gallery_outputs(root: Path) -> dict[str, list[str]]:
    """``{"example.rst": [block, ...]}``: the captured stdout and HTML-repr blocks of every example page."""
    out: dict[str, list[str]] = {}
    gallery = root / "auto_examples"
    for path in sorted(gallery.rglob("*.rst")):
        if path.name in ("index.rst", "sg_execution_times.rst"):
            continue
        lines = path.read_text(encoding="utf-8").splitlines()
        blocks: list[str] = []
        i = 0
        while i < len(lines):
            if _BLOCK_START.match(lines[i]):
                j = i + 1
                body = []
                while j < len(lines) and (not lines[j] or lines[j].startswith(" ")):
                    body.append(lines[j])
                    j += 1
                text = "\n".join(body).strip("\n")
                if "sphx-glr-timing" not in text and "sphx-glr-download" not in text:
                    blocks.append(text)
                i = j
            else:
                i += 1
        out[path.relative_to(gallery).as_posix()] = blocks
    return out


def gallery_images(root: Path) -> dict[str, Path]:
    gallery = root / "auto_examples"
    return {p.relative_to(gallery).as_posix(): p for p in sorted(gallery.rglob("images/**/*.png"))}


# -- report -----------------------------------------------------------------------------------------------
class Report:
    def __init__(self) -> None:
        self.diffs: list[str] = []
        self.notes: list[str] = []
        self.counts: dict[str, int] = {}

    def count(self, what: str, n: int = 1) -> None:
        self.counts[what] = self.counts.get(what, 0) + n

    def diff(self, message: str) -> None:
        self.diffs.append(message)

    def result(self, same: bool, message: str) -> None:
        if not same:
            self.diffs.append(message)
        elif message.endswith("identical"):
            self.notes.append(message)


def keyed(report: Report, what: str, a: dict, b: dict) -> Iterator[str]:
    """Keys present in both (reporting the ones in one build only), counted under ``what``."""
    for key in sorted(set(a) ^ set(b)):
        report.diff(f"{what} {key}: present in {'A' if key in a else 'B'} only")
    both = sorted(set(a) & set(b))
    report.count(what, len(both))
    yield from both


def compare(root_a: Path, root_b: Path) -> Report:
    report = Report()
    ga, gb = glued_values(root_a), glued_values(root_b)
    for key in keyed(report, "glued value", ga, gb):
        compare_mimebundle(f"glue {key}", ga[key], gb[key], report)

    ca, cb = cell_outputs(root_a), cell_outputs(root_b)
    for key in keyed(report, "notebook cell with output", ca, cb):
        if len(ca[key]) != len(cb[key]):
            report.diff(f"cell {key}: {len(ca[key])} outputs vs {len(cb[key])}")
            continue
        for (kind_a, da), (kind_b, db) in zip(ca[key], cb[key], strict=True):
            if kind_a != kind_b:
                report.diff(f"cell {key}: output kinds {kind_a} vs {kind_b}")
            else:
                compare_mimebundle(f"cell {key}", {kind_a: da}, {kind_b: db}, report)
                if kind_a.startswith(("stream", "error")) and da != db:
                    report.diff(f"cell {key} [{kind_a}]: {_short(da)!r} != {_short(db)!r}")

    oa, ob = gallery_outputs(root_a), gallery_outputs(root_b)
    for key in keyed(report, "gallery example", oa, ob):
        if oa[key] != ob[key]:
            pairs = list(zip(oa[key], ob[key], strict=False))
            for index, (xa, xb) in enumerate(pairs):
                if xa != xb:
                    report.diff(
                        f"gallery {key} output block {index}: {_short(xa)!r} != {_short(xb)!r}"
                    )
            if len(oa[key]) != len(ob[key]):
                report.diff(f"gallery {key}: {len(oa[key])} output blocks vs {len(ob[key])}")

    ia, ib = gallery_images(root_a), gallery_images(root_b)
    for key in keyed(report, "gallery image", ia, ib):
        da, db = ia[key].read_bytes(), ib[key].read_bytes()
        same, note = compare_png(da, db)
        digest = hashlib.sha256(da).hexdigest()[:12]
        report.result(same, f"image {key}: {note}" if note else f"image {key} (sha256 {digest})")
    return report


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("build_a", type=Path)
    parser.add_argument("build_b", type=Path)
    args = parser.parse_args(argv)
    root_a, root_b = docs_dir(args.build_a), docs_dir(args.build_b)
    report = compare(root_a, root_b)
    print(f"A = {root_a}\nB = {root_b}")
    print("compared: " + ", ".join(f"{n} {what}s" for what, n in report.counts.items()))
    for note in report.notes:
        print(f"note: {note}")
    if not report.counts or not any(report.counts.values()):
        print("FAIL: nothing to compare (were the builds executed?)")
        return 1
    if report.diffs:
        print(f"FAIL: {len(report.diffs)} differences")
        for message in report.diffs:
            print(f"  {message}")
        return 1
    print("OK: every glued value, cell output, gallery output and image is identical")
    return 0


if __name__ == "__main__":
    sys.exit(main())
