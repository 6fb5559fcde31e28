"""The built book as a reader sees it, in headless Chromium.

Every page: loads with no console error, makes no request that fails or leaves localhost, has its math
typeset by the bundled MathJax (no raw TeX left, and no backslash or error in what MathJax drew:
``\\text{fan\\_in}`` shows its backslash, an unknown command shows in red), and has every image loaded
with alt text. Then the search page, the gallery's thumbnails and downloads, dark mode and a phone-sized
viewport. Screenshots of the landing page, a chapter and a gallery example (light, dark and narrow) are
written to ``docs/_build/screenshots``.

Run with ``nox -s site`` after ``nox -s docs``.
"""

from __future__ import annotations

import re
from pathlib import Path
from urllib.parse import urljoin, urlsplit

import pytest

LANDING = "index.html"
CHAPTER = "foundations/relu-and-kaiming.html"
EXAMPLE = "auto_examples/variance/plot_relu_depth.html"

WAIT_FOR_MATHJAX = """
const done = arguments[arguments.length - 1];
if (window.MathJax && MathJax.startup && MathJax.startup.promise) {
  MathJax.startup.promise.then(() => done(true), (e) => done(String(e)));
} else { done(false); }
"""

PAGE_FACTS = """
const math = Array.from(document.querySelectorAll('.math'));
const images = Array.from(document.querySelectorAll('article img, main img, .bd-article img'));
return {
  title: document.title,
  mathTotal: math.length,
  mathUntypeset: math.filter(e => !e.querySelector('mjx-container')).map(e => e.textContent.slice(0, 80)),
  rawTex: /\\\\\\(|\\\\\\[|\\$\\$/.test(document.querySelector('main, body').innerText),
  images: images.map(img => ({src: img.currentSrc || img.src, loaded: img.complete && img.naturalWidth > 0,
                              alt: (img.getAttribute('alt') || '').trim()})),
};
"""

# What MathJax made of each formula: its internal MathML tree (what is drawn, and the hidden MathML that
# screen readers get) and the drawn element. Inside \text{...} MathJax 3 (without its textmacros extension)
# prints backslash commands literally, so \text{fan\_in} shows "fan\_in"; an unknown command is drawn as its
# own name in red (noundefined); a TeX error becomes an merror node. A backslash in any token's text, an
# merror node, or a backslash or mjx-merror in the drawn element is a formula the reader sees wrongly.
MATH_PROBLEMS = """
const problems = [];
const items = (window.MathJax && MathJax.startup && MathJax.startup.document)
  ? Array.from(MathJax.startup.document.math) : [];
for (const item of items) {
  const bad = [];
  if (item.root) {
    item.root.walkTree((node) => {
      if (node.isKind('merror')) {
        bad.push('error: ' + (node.attributes.get('data-mjx-error') || MathJax.startup.toMML(node)));
      } else if (node.isToken && /\\\\/.test(node.getText())) {
        bad.push(node.getText());
      }
    });
  }
  const drawn = item.typesetRoot;
  if (drawn && drawn.querySelector && drawn.querySelector('mjx-merror, [data-mjx-error]')) {
    bad.push('error drawn: ' + drawn.textContent.slice(0, 80));
  } else if (drawn && /\\\\/.test(drawn.textContent) && !bad.length) {
    bad.push('drawn: ' + drawn.textContent.slice(0, 80));
  }
  if (bad.length) problems.push(String(item.math).trim().slice(0, 100) + '  ->  ' + bad.join(' | '));
}
const containers = document.querySelectorAll('mjx-container').length;
return {items: items.length, containers: containers, problems: problems};
"""


def load(browser, server, page: str) -> dict:
    browser.get_log("browser")
    browser.get_log("performance")
    browser.get(f"{server.url}/{page}")
    browser.set_script_timeout(30)
    mathjax = browser.execute_async_script(WAIT_FOR_MATHJAX)
    assert mathjax in (True, False), f"{page}: MathJax failed to start: {mathjax}"
    return browser.execute_script(PAGE_FACTS)


def screenshot(browser, folder: Path, name: str) -> Path:
    path = folder / f"{name}.png"
    browser.save_screenshot(str(path))
    assert path.stat().st_size > 10_000, f"{path} is suspiciously small: a blank page?"
    return path


def test_site_has_the_book(site: Path) -> None:
    for page in (LANDING, CHAPTER, EXAMPLE, "search.html", "api.html", "references.html"):
        assert (site / page).is_file(), f"{page} missing from the built site"
    assert len(list((site / "auto_examples").rglob("plot_*.html"))) >= 10


def test_page(browser, server, drain, page: str) -> None:
    start = len(server.log)
    facts = load(browser, server, page)
    console, requests = drain(browser)
    errors = [entry["message"] for entry in console if entry["level"] == "SEVERE"]
    assert not errors, f"{page}: console errors: {errors}"
    failed = [f"{path} -> {status}" for path, status in server.log[start:] if status >= 400]
    failed += [url for url in requests if url.startswith("FAILED")]
    assert not failed, f"{page}: failed requests: {failed}"
    external = [
        url
        for url in requests
        if urlsplit(url).scheme in ("http", "https") and not url.startswith(server.url)
    ]
    assert not external, (
        f"{page}: requests leave localhost (the site must work offline): {external}"
    )
    assert facts["mathUntypeset"] == [], f"{page}: math not typeset: {facts['mathUntypeset']}"
    assert not facts["rawTex"], f"{page}: raw TeX delimiters in the rendered text"
    broken = [img["src"] for img in facts["images"] if not img["loaded"]]
    assert not broken, f"{page}: images that did not load: {broken}"
    no_alt = [
        img["src"]
        for img in facts["images"]
        if not img["alt"] or re.search(r"\.(png|svg|jpe?g|gif)$", img["alt"], re.IGNORECASE)
    ]
    assert not no_alt, f"{page}: images without alt text (or only a file name): {no_alt}"


def test_math_renders_cleanly(browser, server, page: str) -> None:
    """No formula on the page shows a backslash, a raw TeX command or a MathJax error to the reader."""
    facts = load(browser, server, page)
    math = browser.execute_script(MATH_PROBLEMS)
    assert math["items"] == math["containers"], (
        f"{page}: MathJax items and drawn formulas differ: {math}"
    )
    assert not math["problems"], (
        f"{page}: {len(math['problems'])} of {math['items']} formulas render wrongly:\n  "
        + "\n  ".join(math["problems"])
    )
    assert facts["mathTotal"] <= math["items"], (page, facts["mathTotal"], math["items"])


# Typeset by MathJax on a loaded chapter, to show that the check above catches what it is meant to catch:
# a \_ inside \text (printed literally), an unknown command (drawn in red) and a TeX error (a double
# exponent, an merror node); and that clean math passes.
PROBE_BAD = (r"\text{fan\_in} + 1", r"\undefinedcommand x", r"x^2^3")
PROBE_GOOD = (
    r"n_\text{in} + \operatorname{Var}[w]",
    r"\{n_\text{in},\ n_\text{out}\} \setminus \{0\}",
)

TYPESET_PROBE = """
const [formulas, done] = [arguments[0], arguments[arguments.length - 1]];
const box = document.createElement('div');
for (const tex of formulas) {
  const span = document.createElement('span');
  span.className = 'math notranslate nohighlight';
  span.textContent = '\\\\(' + tex + '\\\\)';
  const paragraph = document.createElement('p');
  paragraph.appendChild(span);
  box.appendChild(paragraph);
}
document.querySelector('main, body').appendChild(box);
MathJax.typesetPromise([box]).then(() => done(true), (e) => done(String(e)));
"""


def test_math_check_catches_raw_tex(browser, server) -> None:
    load(browser, server, CHAPTER)
    before = browser.execute_script(MATH_PROBLEMS)
    assert before["problems"] == [], before["problems"]
    assert browser.execute_async_script(TYPESET_PROBE, [*PROBE_BAD, *PROBE_GOOD]) is True
    after = browser.execute_script(MATH_PROBLEMS)
    assert after["items"] == before["items"] + len(PROBE_BAD) + len(PROBE_GOOD), (before, after)
    flagged = [
        next((tex for tex in PROBE_BAD + PROBE_GOOD if p.startswith(tex)), p)
        for p in after["problems"]
    ]
    assert flagged == list(PROBE_BAD), after["problems"]


def test_chapters_have_math_and_figures(browser, server) -> None:
    facts = load(browser, server, CHAPTER)
    assert facts["mathTotal"] >= 10, facts["mathTotal"]
    assert len(facts["images"]) >= 1, facts["images"]


def test_search_finds_kaiming(browser, server) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions
    from selenium.webdriver.support.ui import WebDriverWait

    browser.get(f"{server.url}/search.html?q=Kaiming")
    WebDriverWait(browser, 30).until(
        expected_conditions.presence_of_element_located((By.CSS_SELECTOR, "#search-results li"))
    )
    hits = [
        a.get_attribute("href")
        for a in browser.find_elements(By.CSS_SELECTOR, "#search-results li a")
    ]
    assert any("relu-and-kaiming" in href for href in hits), hits


def test_gallery_thumbnails_and_downloads(browser, server, site: Path) -> None:
    from selenium.webdriver.common.by import By

    browser.get(f"{server.url}/auto_examples/index.html")
    thumbs = browser.find_elements(By.CSS_SELECTOR, ".sphx-glr-thumbcontainer")
    assert len(thumbs) >= 10, len(thumbs)
    targets = []
    for thumb in thumbs:
        links = thumb.find_elements(By.CSS_SELECTOR, "a")
        assert links, thumb.get_attribute("outerHTML")[:200]
        targets.append(links[0].get_attribute("href"))
        image = thumb.find_element(By.CSS_SELECTOR, "img")
        assert browser.execute_script("return arguments[0].naturalWidth", image) > 0
    for target in targets:
        path = urlsplit(target).path.lstrip("/")
        assert (site / path).is_file(), f"thumbnail links to a missing page: {target}"
        browser.get(target)
        downloads = [
            a.get_attribute("href")
            for a in browser.find_elements(By.CSS_SELECTOR, ".sphx-glr-download a")
        ]
        suffixes = sorted(Path(urlsplit(h).path).suffix for h in downloads)
        assert suffixes == [".ipynb", ".py", ".zip"] or {".ipynb", ".py"} <= set(suffixes), (
            f"{target}: downloads {downloads}"
        )
        for href in downloads:
            file = site / urlsplit(urljoin(target, href)).path.lstrip("/")
            assert file.is_file(), f"{target}: missing download {href}"
            assert file.stat().st_size > 0, f"{target}: empty download {href}"


def _luminance(css_color: str) -> float:
    r, g, b = (int(v) for v in re.findall(r"\d+", css_color)[:3])
    return (0.2126 * r + 0.7152 * g + 0.0722 * b) / 255


def test_light_screenshots(browser, server, screenshots: Path) -> None:
    browser.set_window_size(1400, 1000)
    for name, page in (("landing", LANDING), ("chapter", CHAPTER), ("example", EXAMPLE)):
        load(browser, server, page)
        screenshot(browser, screenshots, f"{name}-light")


def test_dark_mode(browser, server, screenshots: Path) -> None:
    browser.set_window_size(1400, 1000)
    load(browser, server, CHAPTER)
    light_bg = browser.execute_script("return getComputedStyle(document.body).backgroundColor")
    browser.execute_script(
        "localStorage.setItem('theme', 'dark'); localStorage.setItem('mode', 'dark')"
    )
    try:
        for name, page in (("landing", LANDING), ("chapter", CHAPTER), ("example", EXAMPLE)):
            load(browser, server, page)
            theme = browser.execute_script("return document.documentElement.dataset.theme")
            assert theme == "dark", f"{page}: data-theme is {theme!r}"
            bg = browser.execute_script("return getComputedStyle(document.body).backgroundColor")
            fg = browser.execute_script("return getComputedStyle(document.body).color")
            assert _luminance(bg) < 0.25 < _luminance(fg), (page, bg, fg, light_bg)
            screenshot(browser, screenshots, f"{name}-dark")
    finally:
        browser.execute_script("localStorage.clear()")


def test_narrow_viewport(browser, server, screenshots: Path) -> None:
    from selenium.webdriver.common.by import By

    browser.set_window_size(390, 844)
    try:
        for name, page in (("landing", LANDING), ("chapter", CHAPTER), ("example", EXAMPLE)):
            load(browser, server, page)
            width = browser.execute_script("return window.innerWidth")
            scroll = browser.execute_script("return document.documentElement.scrollWidth")
            assert scroll <= width + 1, f"{page}: the page scrolls sideways ({scroll} > {width} px)"
            sidebar = browser.find_element(
                By.CSS_SELECTOR, "#pst-primary-sidebar, .bd-sidebar-primary"
            )
            assert not sidebar.is_displayed() or sidebar.size["width"] < width, (
                "sidebar covers the page"
            )
            toggle = browser.find_elements(By.CSS_SELECTOR, ".primary-toggle, label.sidebar-toggle")
            assert any(t.is_displayed() for t in toggle), f"{page}: no menu button on a phone"
            screenshot(browser, screenshots, f"{name}-narrow")
    finally:
        browser.set_window_size(1400, 1000)


@pytest.mark.parametrize("chapter", [CHAPTER, "beyond/chaos-experiments.html"])
def test_chapter_notebook_download(browser, server, site: Path, chapter: str) -> None:
    """The download menu of a chapter offers its notebook, a valid .ipynb holding the page's code."""
    import json

    from selenium.webdriver.common.by import By

    browser.get(f"{server.url}/{chapter}")
    links = [
        a.get_attribute("href")
        for a in browser.find_elements(By.CSS_SELECTOR, ".dropdown-download-buttons a")
        if urlsplit(a.get_attribute("href") or "").path.endswith(".ipynb")
    ]
    assert len(links) == 1, f"{chapter}: notebook downloads {links}"
    file = site / urlsplit(urljoin(f"{server.url}/{chapter}", links[0])).path.lstrip("/")
    notebook = json.loads(file.read_text(encoding="utf-8"))
    code = [c for c in notebook["cells"] if c["cell_type"] == "code"]
    assert notebook["nbformat"] == 4, f"{file}: not an nbformat 4 notebook"
    assert len(code) >= 3, f"{file}: {len(code)} code cells"
    sources = "".join("".join(c["source"]) for c in notebook["cells"])
    assert "from myst_nb import glue\n" not in "".join("".join(c["source"]) for c in code[1:]), file
    assert "{glue:text}" not in sources, f"{file}: MyST roles left in the text"
