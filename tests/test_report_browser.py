"""The HTML report in a real browser: opened from disk it requests nothing, shows its charts, and prints."""

from __future__ import annotations

import os
import re
import unicodedata
from pathlib import Path
from typing import Any

import pytest
from test_report_html import dmm_html

CHROMIUM = Path("/usr/bin/chromium")
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
        "--disable-sync", "--no-first-run"]
VIEWPORT = {"width": 1366, "height": 768}
"""A common laptop screen: the headline must fit on it."""


def _unavailable(why: str) -> None:
    if os.environ.get("CI"):
        pytest.fail(f"{why}; CI is set, so the browser test must run")
    pytest.skip(why)


@pytest.fixture(scope="module")
def browser() -> Any:
    """Headless Chromium from /usr/bin/chromium, driven by Playwright."""
    if not CHROMIUM.exists():
        _unavailable(f"{CHROMIUM} not found")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        _unavailable("playwright is not installed")
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=str(CHROMIUM), args=ARGS)
        yield b
        b.close()


@pytest.fixture(scope="module")
def page_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """dmm-2024's report written to a file."""
    path = tmp_path_factory.mktemp("report") / "report.html"
    path.write_text(dmm_html(), encoding="utf-8")
    return path


def _distinct_colours(png: Path) -> int:
    try:
        from PIL import Image
    except ImportError:
        return -1
    with Image.open(png) as im:
        colours = im.convert("RGB").getcolors(maxcolors=1 << 24)
    return len(colours) if colours else 0


def test_report_opened_from_disk_requests_nothing_and_shows_its_charts(browser, page_file, tmp_path):
    """Only the file itself is requested, no console or page errors, five visible charts, a non-blank screenshot."""
    page = browser.new_page(viewport=VIEWPORT)
    requests: list[str] = []
    errors: list[str] = []
    page.on("request", lambda r: requests.append(r.url))
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.goto(page_file.as_uri(), wait_until="load")
    page.wait_for_load_state("networkidle")
    shot = tmp_path / "report.png"
    page.screenshot(path=str(shot), full_page=True)
    charts = page.locator("svg.chart")
    boxes = [charts.nth(i).bounding_box() for i in range(charts.count())]
    page.close()

    assert [u for u in requests if not u.startswith("data:")] == [page_file.as_uri()]
    assert errors == []
    assert len(boxes) == 5
    for box in boxes:
        assert box is not None and box["width"] > 400 and box["height"] > 150, box
    colours = _distinct_colours(shot)
    if colours < 0:
        assert shot.stat().st_size > 100_000
    else:
        assert colours > 50, colours


def test_headline_fits_on_the_first_laptop_screen(browser, page_file):
    """The answer (sentence and ranked table) is visible without scrolling on a 1366x768 screen."""
    page = browser.new_page(viewport=VIEWPORT)
    page.goto(page_file.as_uri())
    box = page.locator("#answer table").bounding_box()
    assert page.locator("#answer .lead").is_visible()
    page.close()
    assert box is not None and box["y"] + box["height"] <= VIEWPORT["height"], box


def test_worst_year_link_scrolls_to_its_story(browser, page_file):
    """Clicking a variant's worst year in the headline brings its story into view."""
    page = browser.new_page(viewport=VIEWPORT)
    page.goto(page_file.as_uri())
    link = page.locator("#answer a[href^='#story-']").first
    target = link.get_attribute("href")
    link.click()
    assert target is not None
    page.wait_for_function(f"document.getElementById('{target[1:]}').getBoundingClientRect().top < 100")
    assert page.locator(target).is_visible()
    page.close()


def test_report_prints_without_the_navigation(browser, page_file, tmp_path):
    """Print media hides the navigation and the page makes a PDF of several pages."""
    page = browser.new_page(viewport=VIEWPORT)
    page.goto(page_file.as_uri())
    page.emulate_media(media="print")
    assert not page.locator("nav").is_visible()
    pdf = tmp_path / "report.pdf"
    page.pdf(path=str(pdf), format="A4", print_background=True)
    page.close()
    pages = len(re.findall(rb"/Type\s*/Page[^s]", pdf.read_bytes()))
    assert pages >= 4, pages


WIDTHS = (390, 1280, 1920)
"""A phone, a laptop and a desktop screen."""

LAYOUT_FAULTS = """() => {
  const faults = [];
  const viewport = document.documentElement.clientWidth;
  if (document.documentElement.scrollWidth > viewport + 1)
    faults.push(`the page is ${document.documentElement.scrollWidth} px wide in a ${viewport} px window`);
  const where = (el) => (el.closest('section[id]') || {id: 'page'}).id;
  for (const t of document.querySelectorAll('table')) {
    const box = t.parentElement.clientWidth;
    const right = t.getBoundingClientRect().right;
    if (t.scrollWidth > box + 1 || right > viewport + 1)
      faults.push(`table in #${where(t)}: ${t.scrollWidth} px wide in a ${box} px box`);
  }
  // Every piece of visible text as screen boxes: HTML text by line, chart text by element.
  const visible = (el, r) => {
    for (let a = el; a && a !== document.body; a = a.parentElement) {
      const s = getComputedStyle(a);
      if (s.visibility === 'hidden' || s.display === 'none') return null;
      if (s.overflow !== 'visible' || s.clip !== 'auto') {
        const b = a.getBoundingClientRect();
        r = {left: Math.max(r.left, b.left), right: Math.min(r.right, b.right),
             top: Math.max(r.top, b.top), bottom: Math.min(r.bottom, b.bottom)};
        if (r.right - r.left < 1 || r.bottom - r.top < 1) return null;
      }
    }
    return r;
  };
  const boxes = [];
  const walker = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT);
  for (let n = walker.nextNode(); n; n = walker.nextNode()) {
    if (!n.textContent.trim() || n.parentElement.closest('svg, title, style')) continue;
    const range = document.createRange();
    range.selectNodeContents(n);
    for (const r of range.getClientRects()) {
      const v = r.width > 0 && visible(n.parentElement, r);
      if (v) boxes.push({text: n.textContent.trim().slice(0, 40), r: v});
    }
  }
  for (const t of document.querySelectorAll('svg.chart text')) {
    if (!t.textContent.trim()) continue;
    const r = t.getBoundingClientRect();
    const v = r.width > 0 && visible(t, r);
    if (v) boxes.push({text: t.textContent.trim().slice(0, 40), r: v});
    const ctm = t.getScreenCTM();
    const px = parseFloat(getComputedStyle(t).fontSize) * Math.hypot(ctm.a, ctm.b);
    if (px < 8.9) faults.push(`chart text "${t.textContent.trim().slice(0, 40)}" in #${where(t)} at ${px.toFixed(1)} px`);
  }
  boxes.sort((a, b) => a.r.top - b.r.top);
  const slack = 1.5;  // glyph boxes of adjacent lines and neighbouring words may touch
  for (let i = 0; i < boxes.length; i++) {
    for (let j = i + 1; j < boxes.length && boxes[j].r.top < boxes[i].r.bottom - slack; j++) {
      const a = boxes[i].r, b = boxes[j].r;
      if (Math.min(a.right, b.right) - Math.max(a.left, b.left) > slack
          && Math.min(a.bottom, b.bottom) - Math.max(a.top, b.top) > slack)
        faults.push(`"${boxes[i].text}" overlaps "${boxes[j].text}"`);
    }
  }
  return faults;
}"""
"""Find what a reader cannot read: a page or table wider than its box, overlapping text, chart text under ~9 px."""


def layout_faults(browser: Any, page_file: Path, width: int) -> list[str]:
    """Open a report at a screen width and return its layout faults (see :data:`LAYOUT_FAULTS`)."""
    page = browser.new_page(viewport={"width": width, "height": 900})
    page.goto(page_file.as_uri())
    faults: list[str] = page.evaluate(LAYOUT_FAULTS)
    page.close()
    return faults


@pytest.mark.parametrize("width", WIDTHS)
def test_every_table_fits_and_no_text_overlaps(browser, page_file, width):
    """At 390, 1280 and 1920 px nothing scrolls sideways, no text overlaps other text, no chart text is tiny."""
    assert layout_faults(browser, page_file, width) == []


def test_the_phone_shows_figures_on_its_first_screen(browser, page_file):
    """On a 390 x 844 phone the first screen shows the best variant's expected loss, not just the variants' names."""
    page = browser.new_page(viewport={"width": 390, "height": 844})
    page.goto(page_file.as_uri())
    figure = page.locator("#answer tbody tr").first.locator("td[data-label^='expected loss']")
    box = figure.bounding_box()
    page.close()
    assert box is not None and box["y"] + box["height"] <= 844 and box["x"] + box["width"] <= 390, box


def test_the_printed_report_numbers_its_pages_and_ends_no_page_on_a_heading(browser, page_file, tmp_path):
    """Printed to A4, every page says 'page N of M' and no heading sits in a page's last two lines."""
    pypdf = pytest.importorskip("pypdf")
    page = browser.new_page(viewport=VIEWPORT)
    page.goto(page_file.as_uri())
    headings = {_squeezed(h) for h in page.locator("h2, h3, h4").all_inner_texts()}
    pdf = tmp_path / "report.pdf"
    page.pdf(path=str(pdf), format="A4", print_background=True)
    page.close()
    pages = pypdf.PdfReader(pdf).pages
    assert len(pages) >= 4
    for k, sheet in enumerate(pages, 1):
        lines = [_squeezed(line) for line in sheet.extract_text(extraction_mode="layout").splitlines() if line.strip()]
        assert lines[-1] == _squeezed(f"page {k} of {len(pages)}"), lines[-3:]
        assert not headings & set(lines[-3:-1]), f"page {k} ends with a heading: {lines[-3:-1]}"


def _squeezed(text: str) -> str:
    """Return text without its spaces and ligatures: a PDF's extracted text spaces words unevenly."""
    return "".join(unicodedata.normalize("NFKC", text).split())
