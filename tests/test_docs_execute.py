"""The book's parallel page execution (docs/_ext/initbook_execute.py): kernels over IPC, the page order."""

from __future__ import annotations

import importlib.util
import json
import os
import sys
from pathlib import Path
from types import SimpleNamespace

# jupyter_client and Sphinx (which initbook_execute imports) are in the test dependency group: these tests run in
# `nox -s tests`, they are not skipped
import jupyter_client

_PATH = Path(__file__).parents[1] / "docs" / "_ext" / "initbook_execute.py"
_SPEC = importlib.util.spec_from_file_location("initbook_execute", _PATH)
execute = importlib.util.module_from_spec(_SPEC)
sys.modules.setdefault("initbook_execute", execute)  # its dataclass looks its module up there
_SPEC.loader.exec_module(execute)


def test_kernels_use_ipc_with_absolute_socket_paths(monkeypatch):
    """The kernel runs in the page's folder and Sphinx elsewhere: a relative socket path would not meet."""
    monkeypatch.setattr(jupyter_client, "AsyncKernelManager", jupyter_client.AsyncKernelManager)
    execute._use_book_kernels(3)
    manager = jupyter_client.AsyncKernelManager(kernel_name="python3")
    assert manager.transport == "ipc"
    assert os.path.isabs(manager.ip)
    assert len(manager.ip) + len("-65535") < 100  # Unix socket paths are limited to about 100 bytes
    assert type(manager).extra_env == {"OMP_NUM_THREADS": "3", "MKL_NUM_THREADS": "3"}
    execute._use_book_kernels(1)  # idempotent: the same class, new settings
    assert jupyter_client.AsyncKernelManager is type(manager)
    assert type(manager).extra_env["OMP_NUM_THREADS"] == "1"


def test_page_times_come_from_the_benchmark_results(tmp_path):
    results = {"build": {"current": {"page_seconds": {"training/lsuv.md": 120.5, "a.md": 2}}}}
    (tmp_path / "results.json").write_text(json.dumps(results))
    src = tmp_path / "docs"
    app = SimpleNamespace(
        config=SimpleNamespace(initbook_execution_hints="results.json"),
        confdir=str(tmp_path),
        srcdir=str(src),
    )
    assert execute._hinted_durations(app) == {
        str(src / "training" / "lsuv.md"): 120.5,
        str(src / "a.md"): 2.0,
    }
    app.config.initbook_execution_hints = "missing.json"
    assert execute._hinted_durations(app) == {}
    (tmp_path / "old.json").write_text(
        json.dumps({"build": {"clean_s": 3.0}})
    )  # an older results file
    app.config.initbook_execution_hints = "old.json"
    assert execute._hinted_durations(app) == {}
