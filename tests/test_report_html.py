"""The HTML report: its figures are the summary's, it loads nothing from anywhere, and it renders the same bytes."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from conftest import build, load

from custodysim.analysis.assumptions import key_inputs
from custodysim.formatting import pct, signed_ci, signed_usd, usd
from custodysim.reporting import charts
from custodysim.reporting.report import best_sentence, ranked, render_html, render_markdown, verdict
from custodysim.reporting.stories import worst_stories
from custodysim.running.runner import simulate
from custodysim.scenario.loader import LoadedScenario, load_scenario
from custodysim.studies.run import summarise_run

SCENARIOS = Path(__file__).resolve().parent.parent / "scenarios"
BUNDLED = sorted(SCENARIOS.glob("*.yaml")) + sorted((SCENARIOS / "incidents").glob("*.yaml"))
TRIALS = 300
SEED = 20240531


def report_inputs(loaded: LoadedScenario, trials: int = TRIALS, seed: int = SEED) -> dict[str, Any]:
    """Return render_html's arguments for a scenario, built the way a run builds them."""
    result = simulate(loaded, trials, seed)
    rows = result.losses
    summary = summarise_run(loaded, rows, result.columns, trials, seed)
    manifest = {"version": "test", "created_utc": "2024-05-31T04:26:00+00:00", "scenario_file": "x.yaml",
                "scenario_sha256": loaded.sha256, "seed": seed, "trials": trials}
    stories = [story.as_dict() for story in worst_stories(loaded, rows, seed)]
    return {"summary": summary, "manifest": manifest, "rows": rows, "stories": stories,
            "inputs": key_inputs(loaded.baseline)}


def dmm_html() -> str:
    """Return the HTML report of dmm-2024 at 300 trials (also used by the browser test)."""
    return render_html(**report_inputs(load_scenario(SCENARIOS / "dmm-2024.yaml")))


@pytest.fixture(scope="module")
def dmm() -> dict[str, Any]:
    """dmm-2024's report arguments and its rendered HTML."""
    args = report_inputs(load_scenario(SCENARIOS / "dmm-2024.yaml"))
    return {**args, "html": render_html(**args)}


def _section(html: str, anchor: str) -> str:
    start = html.index(f'id="{anchor}"')
    return html[start:html.index("</section>", start)]


def _headline_order(html: str) -> list[str]:
    answer = _section(html, "answer")
    return re.findall(r'<td class="name"><span class="vn"><span class="sw"[^>]*></span>([^<\s]+)', answer)


def test_every_variant_expected_loss_appears_as_formatted_in_the_summary(dmm):
    """Each variant's expected loss, VaR 99 and P(loss > 0), formatted by the shared filters, are in the headline."""
    answer = _section(dmm["html"], "answer")
    for v in dmm["summary"]["variants"].values():
        assert usd(v["expected_loss_usd"]) in answer
        assert usd(v["var99_usd"]) in answer
        assert pct(v["p_any_loss"]) in answer
        for x in v.get("diff_ci95_usd", []):
            assert usd(x) in answer


def test_headline_ranks_variants_by_expected_loss(dmm):
    """The headline lists every variant once, lowest expected loss first, ties in run order."""
    variants = dmm["summary"]["variants"]
    order = _headline_order(dmm["html"])
    assert sorted(order) == sorted(variants)
    losses = [variants[n]["expected_loss_usd"] for n in order]
    assert losses == sorted(losses)
    assert order == [name for name, _, _ in ranked(dmm["summary"])]
    assert order[0] == "independent-whitelist" and order[-1] == "threshold-3of5"


def test_headline_sentence_names_the_best_variant_and_the_loss_it_avoids(dmm):
    """The one-sentence answer names the lowest-loss variant and the loss it avoids, as printed in the summary."""
    summary = dmm["summary"]
    best = summary["variants"]["independent-whitelist"]
    sentence = best_sentence(summary)
    assert sentence.startswith("Best: independent-whitelist")
    assert f"avoiding {usd(-best['diff_vs_baseline_usd'])} a year" in sentence
    assert sentence.replace("'", "&#39;") in dmm["html"]


def test_report_has_five_inline_svg_charts_without_prolog(dmm):
    """The two exceedance curves, histogram, breakdown and frontier charts are inline <svg>, no XML prolog or DOCTYPE."""
    html = dmm["html"]
    assert len(re.findall(r"<svg\b", html)) == 5
    for prefix in ("lec", "oep", "hist", "bars", "frontier"):
        assert f'aria-labelledby="{prefix}-title"' in html
    assert "<?xml" not in html and "<!DOCTYPE svg" not in html


def test_element_ids_are_unique(dmm):
    """No id repeats, so each chart's clip paths and every story anchor are unambiguous."""
    ids = re.findall(r'\bid="([^"]+)"', dmm["html"])
    assert len(ids) == len(set(ids))


def test_every_in_page_link_has_a_target(dmm):
    """Every href is an in-page anchor that exists; each variant with a loss links to its worst story."""
    html = dmm["html"]
    ids = set(re.findall(r'\bid="([^"]+)"', html))
    hrefs = re.findall(r'\bhref="([^"]*)"', html)
    assert hrefs and all(h.startswith("#") and h[1:] in ids for h in hrefs)
    answer = _section(html, "answer")
    for name, v in dmm["summary"]["variants"].items():
        if v["max_loss_usd"] > 0:
            assert re.search(rf'href="#story-{re.escape(name)}-\d+"', answer), name


@pytest.mark.parametrize("path", BUNDLED, ids=lambda p: p.stem)
def test_report_loads_nothing_from_outside(path):
    """No script, stylesheet, image, font, frame, url() or @import: nothing in the page refers outside it."""
    assert_loads_nothing(render_html(**report_inputs(load_scenario(path), trials=100)))


def assert_loads_nothing(html: str) -> None:
    """Fail if the page has a script, stylesheet, image, font, frame, url() or web address: it must stand alone."""
    lower = html.lower()
    for tag in ("<script", "<link", "<img", "<iframe", "<object", "<embed", "<base", "<image", "@import",
                "@font-face"):
        assert tag not in lower, tag
    assert not re.search(r"\bsrc\s*=", lower)
    assert all(u.startswith("#") for u in re.findall(r"url\(\s*['\"]?([^)'\"]*)", lower))
    assert all(h.startswith("#") for h in re.findall(r'\bhref\s*=\s*"([^"]*)"', lower))
    assert "http://" not in lower and "https://" not in lower


def test_two_renders_are_byte_identical(dmm):
    """Rendering the same run twice gives the same bytes."""
    args = {k: v for k, v in dmm.items() if k != "html"}
    assert render_html(**args) == dmm["html"]


def test_renders_in_separate_processes_are_byte_identical(tmp_path):
    """Two processes with different hash seeds render the same bytes (no set order, time or salt leaks in)."""
    script = ("import sys; sys.path.insert(0, sys.argv[2]); from test_report_html import dmm_html; "
              "open(sys.argv[1], 'w', encoding='utf-8').write(dmm_html())")
    tests = str(Path(__file__).resolve().parent)
    for seed in ("1", "2"):
        subprocess.run([sys.executable, "-c", script, str(tmp_path / f"{seed}.html"), tests], check=True,
                       env={**os.environ, "PYTHONHASHSEED": seed}, cwd=tmp_path)
    assert (tmp_path / "1.html").read_bytes() == (tmp_path / "2.html").read_bytes()


def test_paired_comparison_ranks_variants_by_loss_avoided(dmm):
    """The comparison section lists non-baseline variants by loss avoided, with paired and unpaired CIs (signed)."""
    section = _section(dmm["html"], "comparison")
    variants = dmm["summary"]["variants"]
    order = re.findall(r'<tr><td><span class="vn"><span class="sw"[^>]*></span>([^<\s]+)', section)
    assert order == sorted((n for n in variants if n != "baseline"), key=lambda n: variants[n]["diff_vs_baseline_usd"])
    for name in order:
        assert signed_ci(variants[name]["diff_ci95_usd"]) in section
        assert signed_ci(variants[name]["diff_ci95_unpaired_usd"]) in section


def test_native_units_and_controls_and_operations_are_shown(dmm):
    """Native expected and max loss, each control's share of trials and the operations figures are in the page."""
    html = dmm["html"]
    base = dmm["summary"]["variants"]["baseline"]
    assert f"{base['max_loss_native']['BTC']:,.0f}" in _section(html, "figures")
    controls = _section(html, "controls")
    for control, stop in base["stops_by_control"].items():
        assert control in controls and pct(stop["share"]) in controls
    assert f"{base['operations']['withdrawal_delay_mean_hours']:.2f}" in _section(html, "operations")


def test_worst_stories_are_told_under_their_anchors(dmm):
    """Each story in stories.json is in the page under its own anchor, with its loss."""
    html = dmm["html"]
    assert dmm["stories"]
    for story in dmm["stories"]:
        start = html.index(f'id="story-{story["variant"]}-{story["trial"]}"')
        assert usd(story["loss_usd"]) in html[start:start + 400]


def test_key_inputs_come_threats_first_and_point_at_real_fields():
    """key_inputs lists threats, then wallets by USD, then edges, then controls; each 'where' names a real field."""
    spec = load_scenario(SCENARIOS / "dmm-2024.yaml").baseline
    inputs = key_inputs(spec)
    wheres = [i["where"] for i in inputs]
    assert wheres[0] == "threats.tradertraitor.campaigns_per_year"
    first = {kind: next(k for k, w in enumerate(wheres) if w.startswith(kind))
             for kind in ("threats.", "people.", "wallets.", "access[", "controls.")}
    assert first["threats."] < first["people."] < first["wallets."] < first["access["] < first["controls."]
    assert wheres.index("wallets.main.balance") < wheres.index("wallets.hot.balance")
    values = {i["where"]: i["value"] for i in inputs}
    assert values["wallets.main.balance"] == "4,600 BTC ($311.88M)"
    assert values["access[0].p_success"] == "0.7"
    assert values["access[0].time_days"] == "45 days"
    assert values["controls.detection.ginco_edr.time_to_detect_days"] == "150 days"
    assert values["controls.response.freeze_delay_hours"] == "2 hours"
    data = spec.model_dump(by_alias=True)
    for where in wheres:
        node: Any = data
        for part in re.findall(r"[^.\[\]]+", where):
            node = node[int(part)] if isinstance(node, list) else node[part]


def test_a_run_without_any_loss_renders_and_says_so(base):
    """When no variant loses anything, charts say so instead of failing on a log axis."""
    doc = build(base, threats__apt__campaigns_per_year=0.0,
                variants={"wl": {"set": {"wallets.vault.policy.whitelist": {"enforced_by": "policy_engine"}}}})
    args = report_inputs(load(doc), trials=50, seed=3)
    html = render_html(**args)
    assert html.count("No variant lost anything") >= 2
    assert "No variant has a lower expected loss than the baseline" in html
    assert "no loss</span>" in _section(html, "answer")


def test_charts_take_variants_with_and_without_loss(dmm):
    """A variant that never loses is named in the legend and not drawn; the others are."""
    svg = charts.loss_exceedance_svg(dmm["rows"], "baseline")
    assert "independent-whitelist: no loss in 300 trials" in svg
    assert svg.startswith("<svg ") and svg.rstrip().endswith("</svg>")
    assert charts.loss_histogram_svg(dmm["rows"], "baseline") == charts.loss_histogram_svg(dmm["rows"], "baseline")


def test_verdict_tells_real_changes_from_noise():
    """A paired CI wholly below 0 is less loss, wholly above is more, straddling 0 is noise, [0, 0] is identical."""
    assert verdict({"diff_vs_baseline_usd": -5.0, "diff_ci95_usd": [-8.0, -2.0]}) == "yes: less loss"
    assert verdict({"diff_vs_baseline_usd": 5.0, "diff_ci95_usd": [2.0, 8.0]}) == "yes: more loss"
    assert verdict({"diff_vs_baseline_usd": -1.0, "diff_ci95_usd": [-3.0, 1.0]}) == "no: within the noise"
    assert verdict({"diff_vs_baseline_usd": 0.0, "diff_ci95_usd": [0.0, 0.0]}) == "no: same loss every year"
    assert verdict({}) == "baseline"


def test_markdown_report_still_renders(dmm):
    """report.md renders from the same summary with the same filters."""
    manifest = {**dmm["manifest"], "wall_time_seconds": 1.0}
    text = render_markdown(dmm["summary"], manifest)
    assert usd(dmm["summary"]["variants"]["baseline"]["expected_loss_usd"]) in text


def test_signed_usd_marks_increases_and_leaves_zero_unsigned():
    """A change is +$ when it increases, -$ when it falls, and $0 (no sign) when it rounds to nothing."""
    assert signed_usd(60_000) == "+$60.00k" and signed_usd(-29_160_000) == "-$29.16M"
    assert signed_usd(0.0) == signed_usd(-0.0) == signed_usd(0.4) == signed_usd(-0.4) == "$0"
    assert signed_usd(None) == "n/a"
    assert signed_ci([-1_200_000, 3_400_000]) == "-$1.20M to +$3.40M"


def test_an_increase_shows_its_plus_sign_in_the_reports_and_the_terminal(dmm, capsys):
    """dmm-2024's higher threshold costs $60k a year more and loses the same: +$60.00k in HTML, Markdown and terminal."""
    from custodysim import cli

    costs = dmm["summary"]["variants"]["threshold-3of5"]["costs"]
    assert costs["total_cost_of_risk_diff_vs_baseline_usd"] == pytest.approx(60_000)
    manifest = {**dmm["manifest"], "wall_time_seconds": 1.0}
    for text in (dmm["html"], render_markdown(dmm["summary"], manifest)):
        assert "+$60.00k" in text and "to +$60.00k" in text
    cli._print_summary(dmm["summary"])
    printed = capsys.readouterr().out
    row = next(line for line in printed.splitlines() if "threshold-3of5" in line and "$480.00k" in line)
    assert row.rstrip(" │").endswith("+$60.00k")


def test_controls_table_says_what_each_control_is(dmm):
    """Each control's row names its library control, FAIR-CAM function and D3FEND/CCSS ids; report.md lists them."""
    controls = _section(dmm["html"], "controls")
    rows = {row.split("</code>")[0]: row for row in controls.split("<tr><td><code>")[1:]}
    assert 'data-label="what it is"' in rows["detection:ginco_edr"]
    assert "endpoint detection" in rows["detection:ginco_edr"] and ">D3-PA<" in rows["detection:ginco_edr"]
    assert "FAIR-CAM detection (monitoring, recognition)" in rows["detection:ginco_edr"]
    assert 'title="Spends are verified before signing">1.4.6<' in rows["verification:dmm_signer"]
    text = render_markdown(dmm["summary"], {**dmm["manifest"], "wall_time_seconds": 1.0})
    assert "- `whitelist:main`: independent_policy_engine; FAIR-CAM prevention (resistance), response (loss " \
           "minimization); CCSS 1.4.6 Spends are verified before signing\n" in text
