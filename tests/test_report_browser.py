"""The HTML report in a real browser: opened from disk it requests nothing, shows its charts, and prints."""

from __future__ import annotations

import os
import re
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
    """Only the file itself is requested, no console or page errors, four visible charts, a non-blank screenshot."""
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
    assert len(boxes) == 4
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
