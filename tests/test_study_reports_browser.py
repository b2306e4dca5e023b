"""A sweep's and an attribution's HTML reports in a real browser: tables fit, chart text is legible, pages print."""

from __future__ import annotations

from pathlib import Path

import pytest
from conftest import BASE, load
from test_attribution import controlled
from test_report_browser import WIDTHS, browser, layout_faults  # noqa: F401 (browser: the fixture)

from custodysim.reporting.report import render_attribution_html
from custodysim.studies.attribution import attribute
from custodysim.studies.sweep import execute_sweep

HOT_WALLET = Path(__file__).resolve().parent.parent / "scenarios" / "hot-wallet-key-theft.yaml"
A4_WIDTH = 700
"""CSS pixels across an A4 page inside 12 mm margins (186 mm at 96 px an inch): what print lays tables out in."""
FITS = """() => [...document.querySelectorAll('table')].filter(t => t.offsetParent !== null)
  .map(t => [t.closest('section')?.id || '', t.scrollWidth, t.parentElement.clientWidth])
  .filter(([, w, box]) => w > box + 1)"""
SMALLEST_CHART_TEXT = """() => Math.min(...[...document.querySelectorAll('svg.chart text')].map(
  t => parseFloat(getComputedStyle(t).fontSize) * t.ownerSVGElement.getScreenCTM().a))"""


@pytest.fixture(scope="module")
def pages(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """A two-path sweep of hot-wallet-key-theft (with control costs) and an attribution of three controls."""
    folder = tmp_path_factory.mktemp("studies")
    sets = ["wallets.hot.topup.cap=5000000,40000000", "wallets.hot.topup.signing_hours=1,48",
            "wallets.hot.topup.low_water=100000", "wallets.hot.flows.deposits_per_day=3000000"]
    execute_sweep(HOT_WALLET, sets, trials=100, seed=1, out=folder / "sweep", from_variant="hot-cap", workers=1)
    summary = attribute(load(controlled(BASE)), trials=100, seed=3)
    manifest = {"version": "test", "created_utc": "2024-05-31T04:26:00+00:00", "scenario_file": "s.yaml",
                "scenario_sha256": "0" * 64, "wall_time_seconds": 1.0, "combinations_simulated": 6,
                "command": ["custodysim", "attribution", "s.yaml"]}
    attribution = folder / "attribution.html"
    attribution.write_text(render_attribution_html(summary, manifest), encoding="utf-8")
    return {"sweep": folder / "sweep" / "report.html", "attribution": attribution}


@pytest.mark.parametrize("report", ["sweep", "attribution"])
def test_every_table_fits_a_laptop_a_phone_shows_figures_and_chart_text_stays_legible(browser, pages, report):  # noqa: F811
    """At 1280 px no table scrolls sideways; at 390 px nothing does, figures are on the first screen, chart text >= 9 px."""
    page = browser.new_page(viewport={"width": 1280, "height": 800})
    page.goto(pages[report].as_uri())
    assert page.evaluate(FITS) == []
    assert page.evaluate(SMALLEST_CHART_TEXT) >= 9
    page.set_viewport_size({"width": 390, "height": 844})
    assert page.evaluate("document.documentElement.scrollWidth") <= 390
    assert page.evaluate(SMALLEST_CHART_TEXT) >= 9
    first = page.locator(".answer td.n, .answer strong").first.bounding_box()
    assert first is not None and first["y"] < 844 and "$" in page.locator(".answer").inner_text()
    page.close()


@pytest.mark.parametrize("report", ["sweep", "attribution"])
def test_printed_on_a4_every_table_keeps_its_columns_and_pages_are_numbered(browser, pages, report):  # noqa: F811
    """Laid out for print at A4's width, no table is wider than the page; the page asks for numbered A4 pages."""
    page = browser.new_page(viewport={"width": A4_WIDTH, "height": 1000})
    page.goto(pages[report].as_uri())
    page.emulate_media(media="print")
    assert page.evaluate(FITS) == []
    assert not page.locator("nav").is_visible()
    assert page.evaluate("getComputedStyle(document.querySelector('h2')).breakAfter") == "avoid"
    page.close()
    assert 'counter(page) " of " counter(pages)' in pages[report].read_text(encoding="utf-8")


@pytest.mark.parametrize("width", WIDTHS)
@pytest.mark.parametrize("report", ["sweep", "attribution"])
def test_nothing_scrolls_sideways_overlaps_or_is_too_small_to_read(browser, pages, report, width):  # noqa: F811
    """At 390, 1280 and 1920 px no page or table is wider than its box, no text overlaps, no chart text is tiny."""
    assert layout_faults(browser, pages[report], width) == []
