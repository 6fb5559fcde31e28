"""Sphinx glue for the initbook book.

* :func:`network_available` decides, once per build, whether intersphinx inventories can be fetched.
  Offline (CI, air-gapped machines) ``conf.py`` drops ``intersphinx_mapping``; :func:`_external_reference`
  then renders references into torch, numpy, Python, ... as unlinked code instead of ``-n`` warnings.
  Online, the same references become links. ``INITBOOK_OFFLINE=1`` forces the offline behaviour.
* :func:`reset_torch` is sphinx-gallery's per-example resetter: every example starts from the same torch
  seed, thread count and default dtype, whatever ran before it.
* Every API entry gets a mini-gallery of the examples that use it (sphinx-gallery backreferences).
* MathJax is loaded on every page (the navigation shows section titles with math everywhere).
* :func:`_alt_text` gives every image a text alternative: a figure's caption (glued figures otherwise get their
  file name as ``alt``), or for a gallery thumbnail the title of the example it links to.
"""

from __future__ import annotations

import builtins
import os
import socket
import sys
from urllib.parse import urlparse

from docutils import nodes
from sphinx.application import Sphinx

_TYPING_NAMES = {
    "Callable",
    "Iterable",
    "Iterator",
    "Literal",
    "Mapping",
    "Sequence",
    "Any",
    "Optional",
    "Union",
    "NamedTuple",
    "Protocol",
    "TypeAlias",
    "Axes",  # matplotlib.axes.Axes, imported under TYPE_CHECKING
}


def network_available(mapping: dict, timeout: float = 2.0) -> bool:
    """Return True if every intersphinx host in ``mapping`` accepts a TCP connection within ``timeout``."""
    if os.environ.get("INITBOOK_OFFLINE", "").strip() not in ("", "0"):
        return False
    for url, *_ in mapping.values():
        host = urlparse(url).hostname
        try:
            socket.create_connection((host, 443), timeout=timeout).close()
        except OSError:
            return False
    return True


_DEFAULT_THREADS: int | None = None


def reset_torch(gallery_conf, fname):  # signature required by sphinx-gallery
    """Give every gallery example the same fresh torch state: seed 0, torch's default thread count, float32.

    The thread count is restored to the value in force when the first example ran (the build's threads
    per kernel, set by ``initbook_execute``: the examples run beside the page kernels), so an example that
    changes it cannot slow down or change the summation order of the ones after it.
    """
    global _DEFAULT_THREADS
    import torch

    if _DEFAULT_THREADS is None:
        _DEFAULT_THREADS = torch.get_num_threads()
    torch.manual_seed(0)
    torch.set_num_threads(_DEFAULT_THREADS)
    torch.set_default_dtype(torch.float32)


def _external_reference(app: Sphinx, env, node, contnode):
    """Resolve a reference into an external project to plain code when intersphinx is off."""
    if app.config.intersphinx_mapping:
        return None  # online: intersphinx resolves (or reports) it
    if node.get("refdomain") != "py":
        return None
    target = node.get("reftarget", "")
    head = target.split(".")[0]
    external = set(app.config.initbook_docs_external_modules) | set(sys.stdlib_module_names)
    if (
        head in external
        or target in _TYPING_NAMES
        or (hasattr(builtins, target) and "." not in target)
        or target in {"None", "True", "False"}
    ):
        return contnode
    return None


def _public_alias(app: Sphinx, env, node, contnode):
    """Resolve ``initbook.name`` (the public re-export) to where ``name`` is documented.

    The API page documents each object in its module (``initbook.init.kaiming_normal_``); the book writes the
    shorter public name ``initbook.kaiming_normal_``. Both must link to the same entry.
    """
    if node.get("refdomain") != "py":
        return None
    target = node.get("reftarget", "")
    parts = target.split(".")
    if len(parts) != 2 or parts[0] != "initbook":
        return None
    import initbook

    obj = getattr(initbook, parts[1], None)
    module = getattr(obj, "__module__", None)
    if obj is None or module is None or not module.startswith("initbook.") or module == target:
        return None
    # an object of a private module (initbook._theory_x) is documented in the module that re-exports it
    if module.rsplit(".", 1)[-1].startswith("_"):
        public = [f"initbook.{m}" for m in ("init", "stats", "theory", "nets", "mup")]
        found = [m for m in public if getattr(sys.modules.get(m), parts[1], None) is obj]
        module = found[0] if found else module
    py = env.domains["py"]
    resolved = f"{module}.{parts[1]}"
    return py.resolve_xref(
        env, node["refdoc"], app.builder, node["reftype"], resolved, node, contnode
    )


def _needs_alt(image: nodes.image) -> bool:
    alt = image.get("alt", "").strip()
    uri = image.get("uri", "")
    return not alt or alt == uri or alt.rsplit("/", 1)[-1] == uri.rsplit("/", 1)[-1]


def _alt_text(app: Sphinx, doctree: nodes.document, docname: str) -> None:
    """Set ``alt`` from the figure caption or the gallery link where an image has none (or only its path)."""
    for image in doctree.findall(nodes.image):
        if not _needs_alt(image):
            continue
        text = ""
        parent = image.parent
        while parent is not None and not isinstance(parent, nodes.figure):
            parent = parent.parent
        if parent is not None:
            caption = next(iter(parent.findall(nodes.caption)), None)
            text = caption.astext() if caption is not None else ""
        elif "/images/thumb/" in image.get("uri", "") or "_thumb." in image.get("uri", ""):
            link = image.next_node(nodes.paragraph, siblings=True, descend=False)
            text = f"Thumbnail of the example: {link.astext()}" if link is not None else ""
        if text:
            image["alt"] = " ".join(text.split())[:300]


def setup(app: Sphinx) -> dict:
    # MathJax on every page, not only on pages with equations: section titles with math appear in the
    # navigation of pages without any (the search page, the gallery indexes) and must be typeset there too.
    app.set_html_assets_policy("always")
    app.add_config_value("initbook_docs_external_modules", (), "env")
    app.connect("missing-reference", _public_alias, priority=800)
    app.connect("missing-reference", _external_reference, priority=900)
    app.connect("doctree-resolved", _alt_text)
    return {"parallel_read_safe": True, "parallel_write_safe": True, "version": "1"}
