"""Fixtures for testing the built site in headless Chromium: a local HTTP server and a browser.

The site is served from ``docs/_build/html`` (or ``$INITBOOK_SITE``) by a threaded HTTP server on a free
localhost port that records the status of every request, so a missing file (a broken image, script, stylesheet
or download) fails the test even when the page looks fine. The browser is the system's Chromium driven through
its chromedriver (Debian packages ``chromium`` and ``chromium-driver``); nothing is downloaded. Chrome's
performance log records every request the page makes, including any to another host: the built site must not
need the network, so those fail too.
"""

from __future__ import annotations

import functools
import http.server
import json
import os
import shutil
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SCREENSHOTS = Path(os.environ.get("INITBOOK_SCREENSHOTS", ROOT / "docs" / "_build" / "screenshots"))


def site_dir() -> Path:
    path = Path(os.environ.get("INITBOOK_SITE", ROOT / "docs" / "_build" / "html"))
    if not (path / "index.html").is_file():
        pytest.exit(
            f"no built site at {path}: run `nox -s docs` first (or set INITBOOK_SITE)", returncode=2
        )
    return path


@dataclass
class Server:
    """A static file server for the built site that remembers every request it answered."""

    root: Path
    url: str = ""
    log: list[tuple[str, int]] = field(default_factory=list)

    def failures(self) -> list[tuple[str, int]]:
        return [(path, status) for path, status in self.log if status >= 400]


class _Handler(http.server.SimpleHTTPRequestHandler):
    server_record: Server

    def log_request(self, code: object = "-", size: object = "-") -> None:
        status = code.value if hasattr(code, "value") else int(code) if str(code).isdigit() else 0
        self.server_record.log.append((self.path, status))

    def log_message(self, format: str, *args: object) -> None:  # quiet
        pass


@pytest.fixture(scope="session")
def server() -> Iterator[Server]:
    record = Server(root=site_dir())
    handler = type("Handler", (_Handler,), {"server_record": record})
    httpd = http.server.ThreadingHTTPServer(
        ("127.0.0.1", 0), functools.partial(handler, directory=str(record.root))
    )
    record.url = f"http://127.0.0.1:{httpd.server_address[1]}"
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield record
    finally:
        httpd.shutdown()
        httpd.server_close()


def _find(name: str, candidates: tuple[str, ...]) -> str:
    for candidate in (os.environ.get(name), *candidates):
        if candidate and (shutil.which(candidate) or Path(candidate).is_file()):
            return shutil.which(candidate) or candidate
    pytest.exit(
        f"{candidates[0]} not found (set {name}); on Debian: apt-get install chromium chromium-driver",
        returncode=2,
    )


@pytest.fixture(scope="session")
def browser() -> Iterator[object]:
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = _find("CHROMIUM", ("chromium", "chromium-browser", "google-chrome"))
    for flag in (
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--disable-extensions",
        "--window-size=1400,1000",
        "--hide-scrollbars",
    ):
        options.add_argument(flag)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL", "performance": "ALL"})
    service = Service(executable_path=_find("CHROMEDRIVER", ("chromedriver",)))
    driver = webdriver.Chrome(options=options, service=service)
    driver.set_page_load_timeout(60)
    try:
        yield driver
    finally:
        driver.quit()


SKIP_DIRS = {"_static", "_sources", "_downloads", "_images"}


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """Parametrize ``page`` over every HTML page of the built site (not the theme's static files)."""
    if "page" in metafunc.fixturenames:
        root = site_dir()
        pages = sorted(
            path.relative_to(root).as_posix()
            for path in root.rglob("*.html")
            if not SKIP_DIRS.intersection(path.relative_to(root).parts)
        )
        metafunc.parametrize("page", pages)


@pytest.fixture(scope="session")
def site() -> Path:
    return site_dir()


@pytest.fixture(scope="session")
def screenshots() -> Path:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    return SCREENSHOTS


@pytest.fixture
def drain() -> object:
    return drain_logs


def drain_logs(driver: object) -> tuple[list[dict], list[str]]:
    """Console messages and the URLs of requests made since the last call (both logs are emptied)."""
    console = driver.get_log("browser")
    requests = []
    for entry in driver.get_log("performance"):
        message = json.loads(entry["message"])["message"]
        if message.get("method") == "Network.requestWillBeSent":
            requests.append(message["params"]["request"]["url"])
        elif message.get("method") == "Network.loadingFailed" and not message["params"].get(
            "canceled"
        ):
            requests.append("FAILED " + message["params"].get("errorText", "?"))
    return console, requests
