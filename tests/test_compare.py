"""Comparing separate runs: pairing when seed and trials match (even across files), honest unpaired CIs otherwise."""

from __future__ import annotations

import csv
import json
import math
import re
import shutil
from dataclasses import asdict
from pathlib import Path

import numpy as np
import pytest
from test_report_browser import WIDTHS, browser, layout_faults  # noqa: F401 (browser: the fixture, headless Chromium)

from custodysim.errors import RunFolderError
from custodysim.formatting import signed_usd, usd
from custodysim.reporting.report import change_sentence
from custodysim.running.precision import Z95
from custodysim.running.runfolder import read_run
from custodysim.studies.compare import PAIRED, Comparison, build_comparison, compare_runs
from custodysim.studies.run import execute_run

SCENARIOS = Path(__file__).resolve().parent.parent / "scenarios"
DMM = SCENARIOS / "dmm-2024.yaml"
TRIALS = 300
SEED = 42
PHONE = {"width": 390, "height": 844}
A4_TEXT_WIDTH = 688
"""CSS pixels between A4's 14 mm margins (182 mm at 96 per inch)."""
OVERFLOWS = """() => [...document.querySelectorAll('table')]
    .filter(t => t.scrollWidth > t.parentElement.clientWidth + 1).map(t => t.closest('section').id)"""
SMALLEST_CHART_TEXT = """() => Math.min(...[...document.querySelectorAll('svg.chart text')].map(t => {
    const svg = t.ownerSVGElement;
    return parseFloat(getComputedStyle(t).fontSize) * svg.getBoundingClientRect().width / svg.viewBox.baseVal.width;
}))"""
EDIT = ("fake_recruiter_test: 0.15}", "fake_recruiter_test: 0.05}")
"""The edit that makes dmm-2024-q2.yaml: vendor engineers fall for fake recruiters a third as often."""


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Runs of dmm-2024 (a, b: same seed, other variants; s5: seed 5; t200: 200 trials) and q2 of an edited copy."""
    root = tmp_path_factory.mktemp("runs")
    edited = root / "dmm-2024-q2.yaml"
    edited.write_text(DMM.read_text().replace(*EDIT))
    made = {
        "a": dict(scenario=DMM, trials=TRIALS, seed=SEED, variants=["independent-whitelist"]),
        "b": dict(scenario=DMM, trials=TRIALS, seed=SEED, variants=["split-wallets"]),
        "s5": dict(scenario=DMM, trials=TRIALS, seed=5, variants=["split-wallets"]),
        "t200": dict(scenario=DMM, trials=200, seed=SEED, variants=["split-wallets"]),
        "q2": dict(scenario=edited, trials=TRIALS, seed=SEED, variants=["split-wallets"]),
    }
    for name, kw in made.items():
        execute_run(kw.pop("scenario"), out=root / name, **kw)
    return {name: root / name for name in made}


@pytest.fixture(scope="module")
def b_q2(runs: dict[str, Path], tmp_path_factory: pytest.TempPathFactory) -> tuple[Comparison, Path]:
    """The comparison of b (dmm-2024) with q2 (its edited copy), same seed and trials, and its folder."""
    out = tmp_path_factory.mktemp("b-q2") / "cmp"
    return compare_runs([runs["b"], runs["q2"]], out), out


def _json(folder: Path) -> dict:
    return json.loads((folder / "comparison.json").read_text())


def _entries(data: dict) -> dict[str, dict]:
    return {e["label"]: e for e in data["entries"]}


def _loss(run: Path, variant: str) -> np.ndarray:
    """Return a variant's loss_usd column of trials.csv, ordered by trial number."""
    with (run / "trials.csv").open() as fh:
        rows = [(int(r["trial"]), float(r["loss_usd"])) for r in csv.DictReader(fh) if r["variant"] == variant]
    return np.array([loss for _, loss in sorted(rows)])


def _welch(a: np.ndarray, b: np.ndarray) -> float:
    return Z95 * math.sqrt(np.var(a, ddof=1) / len(a) + np.var(b, ddof=1) / len(b))


def test_same_seed_runs_are_paired_and_baseline_difference_is_zero(runs, tmp_path):
    """Two dmm-2024 runs with one seed are paired trial by trial; baseline vs baseline is exactly 0, CI [0, 0]."""
    out = tmp_path / "cmp"
    comparison = compare_runs([runs["a"], runs["b"]], out)
    data = _json(out)
    assert data["reference"] == "a:baseline"
    assert [r["paired"] for r in data["runs"]] == [True, True]
    assert data["runs"][1]["pairing"] == PAIRED == "paired trial by trial (same seed and trial count)"
    for name in ("comparison.md", "comparison.html"):
        assert PAIRED in (out / name).read_text()
    entries = _entries(data)
    assert list(entries) == ["a:baseline", "a:independent-whitelist", "b:baseline", "b:split-wallets"]
    assert entries["b:baseline"]["diff_vs_reference_usd"] == 0.0
    assert entries["b:baseline"]["diff_ci95_usd"] == [0.0, 0.0]
    assert entries["a:baseline"]["is_reference"] and entries["a:baseline"]["diff_ci95_usd"] == [0.0, 0.0]
    # b's baseline is a's trial for trial, so b:split-wallets against a:baseline is b's own paired difference.
    own = json.loads((runs["b"] / "summary.json").read_text())["variants"]["split-wallets"]
    assert entries["b:split-wallets"]["diff_vs_reference_usd"] == own["diff_vs_baseline_usd"]
    assert entries["b:split-wallets"]["diff_ci95_usd"] == own["diff_ci95_usd"]
    assert comparison.entry("b:split-wallets").paired


def test_other_seed_is_unpaired_with_the_reason_and_a_welch_ci(runs, tmp_path):
    """A run with another seed is compared unpaired, says 'different seeds 42 vs 5', and gets the Welch CI."""
    out = tmp_path / "cmp"
    compare_runs([runs["a"], runs["s5"]], out)
    data = _json(out)
    run = data["runs"][1]
    assert not run["paired"]
    assert run["pairing"] == "unpaired: different seeds 42 vs 5"
    assert "different seeds 42 vs 5" in (out / "comparison.md").read_text()
    assert "different seeds 42 vs 5" in (out / "comparison.html").read_text()
    assert run["how_to_pair"] == "To pair s5 with a, rerun it with the reference's seed and trial count:"
    assert run["pair_commands"] == ["custodysim run dmm-2024.yaml --seed 42 --trials 300"]
    for name in ("comparison.md", "comparison.html"):
        assert "custodysim run dmm-2024.yaml --seed 42 --trials 300" in (out / name).read_text()
    entry = _entries(data)["s5:split-wallets"]
    assert not entry["paired"]
    x, ref = _loss(runs["s5"], "split-wallets"), _loss(runs["a"], "baseline")
    diff, half = x.mean() - ref.mean(), _welch(x, ref)
    assert entry["diff_vs_reference_usd"] == pytest.approx(diff, rel=1e-12)
    assert entry["diff_ci95_usd"] == pytest.approx([diff - half, diff + half], rel=1e-12)
    # The reference run's own variants stay paired.
    assert _entries(data)["a:independent-whitelist"]["paired"]


def test_other_trial_count_is_unpaired_with_the_reason(runs, tmp_path):
    """A run with another trial count is unpaired, and the outputs say so."""
    out = tmp_path / "cmp"
    comparison = compare_runs([runs["a"], runs["t200"]], out)
    assert comparison.runs[1].pairing == "unpaired: different trial counts 300 vs 200"
    assert all(not e.paired for e in comparison.entries if e.run == "t200")
    assert not comparison.match("t200", "baseline").paired
    assert "different trial counts 300 vs 200" in (out / "comparison.md").read_text()


def test_different_files_with_one_seed_and_trial_count_are_paired_like_trials_csv(runs, b_q2):
    """An edited copy of the file run with the same seed and trials pairs, and its change is trials.csv's trial by trial."""
    comparison, out = b_q2
    info = comparison.runs[1]
    assert info.paired and info.pairing == PAIRED and not info.how_to_pair
    sha = {r: json.loads((runs[r] / "manifest.json").read_text())["scenario_sha256"][:12] for r in ("b", "q2")}
    assert info.scenario_change == (f"another scenario file: dmm-2024-q2.yaml (sha256 {sha['q2']}) against "
                                    f"dmm-2024.yaml ({sha['b']})")
    assert any(line.startswith("-") and EDIT[0] in line for line in info.scenario_diff)
    assert any(line.startswith("+") and EDIT[1] in line for line in info.scenario_diff)
    html = (out / "comparison.html").read_text()
    assert info.scenario_change in html and "still paired with b on the same named random streams" in html
    for variant in ("baseline", "split-wallets"):
        d = _loss(runs["q2"], variant) - _loss(runs["b"], variant)
        half = Z95 * np.std(d, ddof=1) / math.sqrt(len(d))
        m = comparison.match("q2", variant)
        assert m.paired and m.trials == TRIALS
        assert m.change_usd == pytest.approx(d.mean(), rel=1e-12)
        assert m.change_ci95_usd == pytest.approx([d.mean() - half, d.mean() + half], rel=1e-9)
        assert m.change_ci95_usd[1] - m.change_ci95_usd[0] < m.change_ci95_unpaired_usd[1] - m.change_ci95_unpaired_usd[0]


def test_another_file_with_another_seed_is_unpaired_and_says_how_to_pair(runs, tmp_path):
    """The edited file against dmm-2024 with seed 5 is unpaired (Welch CI) and advises a variant or one seed and trial count."""
    out = tmp_path / "cmp"
    comparison = compare_runs([runs["q2"], runs["s5"]], out)
    info = comparison.runs[1]
    assert not info.paired and info.pairing == "unpaired: different seeds 42 vs 5"
    assert info.how_to_pair == ("To pair s5 with q2, put the change in a variant of one scenario file and run that "
                                "file once (a run's variants are always paired), or run both files with the same "
                                "seed and trial count:")
    assert info.pair_commands == ["custodysim run dmm-2024-q2.yaml --seed 42 --trials 300",
                                  "custodysim run dmm-2024.yaml --seed 42 --trials 300"]
    m = comparison.match("s5", "split-wallets")
    x, ref = _loss(runs["s5"], "split-wallets"), _loss(runs["q2"], "split-wallets")
    diff, half = x.mean() - ref.mean(), _welch(x, ref)
    assert not m.paired
    assert m.change_ci95_usd == pytest.approx([diff - half, diff + half], rel=1e-12)
    assert m.change_ci95_usd == m.change_ci95_unpaired_usd
    assert "unpaired 95% CI" in change_sentence(asdict(m))
    html = (out / "comparison.html").read_text()
    assert '<p class="advice">To pair s5 with q2, put the change in a variant' in html
    assert "<code>custodysim run dmm-2024.yaml --seed 42 --trials 300</code>" in html


def test_variants_are_matched_by_name_and_headlined_with_their_change(runs, b_q2):
    """Runs b and q2 share baseline and split-wallets: each gets a signed headline with its paired CI, in both reports."""
    comparison, out = b_q2
    assert [(m.run, m.variant) for m in comparison.matches] == [("q2", "baseline"), ("q2", "split-wallets")]
    md, html = (out / "comparison.md").read_text(), (out / "comparison.html").read_text()
    for m in comparison.matches:
        assert m.reference_expected_loss_usd == pytest.approx(_loss(runs["b"], m.variant).mean(), rel=1e-12)
        assert m.expected_loss_usd == pytest.approx(_loss(runs["q2"], m.variant).mean(), rel=1e-12)
        low, high = m.change_ci95_usd
        verdict = ("better (less loss, beyond the noise)" if high < 0 else
                   "worse (more loss, beyond the noise)" if low > 0 else
                   "within the noise (no change shown at this trial count)")
        sign = "+" if m.change_usd > 0 else "-"
        assert signed_usd(m.change_usd).startswith(sign)
        sentence = (f"{m.variant}: {signed_usd(m.change_usd)} a year in q2 against b, paired 95% CI "
                    f"{signed_usd(low)} to {signed_usd(high)}: {verdict}.")
        assert change_sentence(asdict(m)) == sentence
        assert f"- {sentence}" in md
        assert f"<strong>{m.variant}: {signed_usd(m.change_usd)} a year</strong> against b" in html
    # Fewer recruits fall for the fake test: the baseline loses less, clearly.
    assert comparison.match("q2", "baseline").change_ci95_usd[1] < 0
    data = _json(out)
    assert data["reference_run"] == "b" and [m["variant"] for m in data["matches"]] == ["baseline", "split-wallets"]


def test_signed_usd_marks_increases_with_plus():
    """A change is written +$1.20M when it adds loss, -$945.16k when it removes some, $0 when it rounds to nothing."""
    assert [signed_usd(x) for x in (1.2e6, -945_160.0, 0.0, -0.4, None)] == [
        "+$1.20M", "-$945.16k", "$0", "$0", "n/a"]


def test_variants_without_a_namesake_are_named_in_a_note(runs, tmp_path):
    """Run a (independent-whitelist) against b (split-wallets): only the baselines match; a note names the others."""
    comparison = build_comparison([read_run(runs["a"]), read_run(runs["b"])], tmp_path / "cmp")
    assert [m.variant for m in comparison.matches] == ["baseline"]
    assert ("b: not matched by name with a (no namesake in the other run): a:independent-whitelist, "
            "b:split-wallets; each is compared only with a:baseline") in comparison.notes


def test_html_draws_each_matched_variants_exceedance_curves_in_small_charts(b_q2):
    """comparison.html has an exceedance chart per matched variant, one curve per run, no text under 8.5 pt."""
    _, out = b_q2
    html = (out / "comparison.html").read_text()
    charts = re.findall(r'<svg class="chart" role="img" aria-labelledby="(lec\d)-title".*?</svg>', html, re.S)
    assert charts == ["lec0", "lec1"]  # baseline and split-wallets
    for svg in re.findall(r'<svg class="chart".*?</svg>', html, re.S):
        assert 'width="331.2pt"' in svg  # 4.6 inches: shown a phone's width, 9 pt text is 9 px or more
        assert "Loss exceedance curves, one per run" in svg
        for label in ("b (reference)", "q2"):
            assert f"<!-- {label} -->" in svg or f">{label}<" in svg
        assert min(float(x) for x in re.findall(r"font-size: ([\d.]+)px", svg)) >= 8.5


def test_html_has_a_viewport_and_print_styles_with_page_numbers(b_q2):
    """comparison.html sets the viewport for phones, and prints on A4 with numbered pages and headings kept with text."""
    _, out = b_q2
    html = (out / "comparison.html").read_text()
    assert '<meta name="viewport" content="width=device-width, initial-scale=1">' in html
    assert "@media print" in html and "size: A4" in html and "break-after: avoid" in html
    assert 'content: "page " counter(page) " of " counter(pages)' in html


def test_tables_fit_a_laptop_and_an_a4_page(browser, b_q2):  # noqa: F811
    """At 1280 px and at A4's print width no table is wider than the page: none scrolls sideways, none loses columns."""
    page = browser.new_page(viewport={"width": 1280, "height": 800})
    page.goto((b_q2[1] / "comparison.html").as_uri())
    assert page.evaluate(OVERFLOWS) == []
    assert page.evaluate("document.documentElement.scrollWidth") <= 1280
    page.set_viewport_size({"width": A4_TEXT_WIDTH, "height": 1000})
    page.emulate_media(media="print")
    assert page.evaluate(OVERFLOWS) == []
    page.close()


@pytest.mark.parametrize("width", WIDTHS)
def test_nothing_scrolls_sideways_overlaps_or_is_too_small_to_read(browser, b_q2, width):  # noqa: F811
    """At 390, 1280 and 1920 px no page or table is wider than its box, no text overlaps, no chart text is tiny."""
    assert layout_faults(browser, b_q2[1] / "comparison.html", width) == []


def test_phone_first_screen_shows_the_changes_and_charts_stay_legible(browser, b_q2):  # noqa: F811
    """On a 390 px phone the headline changes are on the first screen, and no chart text is under 9 px."""
    page = browser.new_page(viewport=PHONE)
    page.goto((b_q2[1] / "comparison.html").as_uri())
    first = page.locator("#answer ul.changes li").first.bounding_box()
    assert first is not None and first["y"] + first["height"] <= PHONE["height"], first
    assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]
    assert page.evaluate(SMALLEST_CHART_TEXT) >= 9.0
    page.close()


def test_paired_ci_of_a_variant_difference_is_narrower_than_unpaired(runs, tmp_path):
    """The paired CI of b:split-wallets vs a:baseline is narrower than the Welch CI of the same two samples."""
    comparison = compare_runs([runs["a"], runs["b"]], tmp_path / "cmp")
    entry = comparison.entry("b:split-wallets")
    welch = _welch(_loss(runs["b"], "split-wallets"), _loss(runs["a"], "baseline"))
    paired_width = entry.diff_ci95_usd[1] - entry.diff_ci95_usd[0]
    assert entry.diff_ci95_unpaired_usd[1] - entry.diff_ci95_unpaired_usd[0] == pytest.approx(2 * welch)
    assert 0 < paired_width < 0.9 * 2 * welch
    assert entry.diff_ci95_usd[1] < 0  # splitting the wallet clearly cuts the loss


def test_figures_equal_each_runs_summary(runs, tmp_path):
    """Expected loss, its CI, P(loss>0), VaR 99 and ES 99 in comparison.json equal each run's summary.json."""
    out = tmp_path / "cmp"
    compare_runs([runs["a"], runs["b"], runs["s5"]], out)
    data = _json(out)
    assert not [n for n in data["notes"] if "summary.json" in n]  # no summary figure disagrees with its trials.csv
    for entry in data["entries"]:
        summary = json.loads((runs[entry["run"]] / "summary.json").read_text())["variants"][entry["variant"]]
        for key in ("trials", "expected_loss_usd", "expected_loss_ci95_usd", "p_any_loss", "var99_usd", "es99_usd"):
            assert entry[key] == summary[key], (entry["label"], key)
    for m in data["matches"]:  # a 365-day horizon: a year's figures are the run's
        summary = json.loads((runs[m["run"]] / "summary.json").read_text())["variants"][m["variant"]]
        assert [m["expected_loss_usd"], m["expected_loss_ci95_usd"]] == [summary["expected_loss_usd"],
                                                                         summary["expected_loss_ci95_usd"]]


def test_half_written_folder_is_refused_naming_it(runs, tmp_path):
    """A run folder without manifest.json gives RunFolderError naming that folder, and writes nothing."""
    broken = tmp_path / "half"
    shutil.copytree(runs["b"], broken)
    (broken / "manifest.json").unlink()
    out = tmp_path / "cmp"
    with pytest.raises(RunFolderError, match=rf"{broken}: not a complete run \(missing manifest.json\)"):
        compare_runs([runs["a"], broken], out)
    assert not out.exists()
    assert [p.name for p in tmp_path.iterdir()] == ["half"]  # no staging folder left behind


def test_trials_csv_shorter_than_the_manifest_is_refused(runs, tmp_path):
    """A run whose trials.csv lost its last row is refused, naming the folder."""
    short = tmp_path / "short"
    shutil.copytree(runs["b"], short)
    lines = (short / "trials.csv").read_text().splitlines(keepends=True)
    (short / "trials.csv").write_text("".join(lines[:-1]))
    with pytest.raises(RunFolderError, match=rf"{short}: trials.csv has {TRIALS - 1} trials of 'split-wallets', "
                                             rf"manifest.json says {TRIALS}; the file is damaged"):
        compare_runs([runs["a"], short], tmp_path / "cmp")
    assert not (tmp_path / "cmp").exists()


def test_existing_out_folder_is_refused(runs, tmp_path):
    """An out folder that exists is refused and left as it was."""
    out = tmp_path / "cmp"
    out.mkdir()
    (out / "keep.txt").write_text("mine")
    with pytest.raises(RunFolderError, match="already exists"):
        compare_runs([runs["a"], runs["b"]], out)
    assert [p.name for p in out.iterdir()] == ["keep.txt"]


def test_differences_are_written_with_their_sign(runs, tmp_path):
    """Each entry's difference against the reference and its CI are written signed in comparison.md and .html."""
    from custodysim.formatting import signed_ci, signed_usd

    out = tmp_path / "cmp"
    compare_runs([runs["b"], runs["s5"], runs["a"]], out)
    md, html = (out / "comparison.md").read_text(), (out / "comparison.html").read_text()
    for e in _json(out)["entries"]:
        if not e["is_reference"]:
            shown = f"{signed_usd(e['diff_vs_reference_usd'])} | {signed_ci(e['diff_ci95_usd'])}"
            assert shown in md
            assert signed_ci(e["diff_ci95_usd"]) in html


def test_trace_of_a_comparison_folder_says_what_it_is(runs, tmp_path):
    """Tracing a trial in a comparison folder (it has a manifest too) says it holds a comparison, not a run."""
    from custodysim.studies.trace import trace_trial

    compare_runs([runs["a"], runs["b"]], tmp_path / "cmp")
    with pytest.raises(RunFolderError, match="holds a comparison of runs, not a run"):
        trace_trial(tmp_path / "cmp", 0)


def test_fewer_than_two_folders_or_one_folder_twice_is_refused(runs, tmp_path):
    """One folder, or the same folder twice (even spelled differently), is a RunFolderError."""
    with pytest.raises(RunFolderError, match="at least two run folders"):
        compare_runs([runs["a"]], tmp_path / "one")
    with pytest.raises(RunFolderError, match="given twice"):
        compare_runs([runs["a"], runs["b"], runs["a"].parent / "." / "a"], tmp_path / "twice")
    assert not any(tmp_path.iterdir())


def test_default_out_folder_is_named_after_the_first_run(runs, tmp_path, monkeypatch):
    """Without out, the comparison appears complete under results/compare-<first run>-<UTC time>."""
    monkeypatch.chdir(tmp_path)
    comparison = compare_runs([runs["b"], runs["a"]])
    assert comparison.folder.parent == Path("results")
    assert comparison.folder.name.startswith("compare-b-")
    assert sorted(p.name for p in (tmp_path / comparison.folder).iterdir()) == [
        "comparison.html", "comparison.json", "comparison.md", "manifest.json"]
    assert [p.name for p in (tmp_path / "results").iterdir()] == [comparison.folder.name]
    assert comparison.reference == "b:baseline"


def test_html_is_self_contained_and_escapes_names(runs, tmp_path):
    """comparison.html makes no external request and escapes a folder name that looks like markup."""
    odd = tmp_path / "<b>q3"
    shutil.copytree(runs["b"], odd)
    out = tmp_path / "cmp"
    compare_runs([runs["a"], odd], out)
    html = (out / "comparison.html").read_text()
    assert "<style>" in html and "<table" in html and '<svg class="chart"' in html
    for external in ("http://", "https://", "<script", "<link", "src=", "@import"):
        assert external not in html
    assert all(u.startswith("#") for u in re.findall(r"url\(\s*['\"]?([^)'\"]*)", html))  # the charts' own clip paths
    assert "&lt;b&gt;q3:split-wallets" in html and "<b>q3" not in html
    assert "&lt;b&gt;q3</text>" in html  # the legend of the charts too


def test_runs_with_the_same_folder_name_get_distinct_labels(runs, tmp_path):
    """Two runs both named 'run' in different parents are labelled q1/run and q2/run."""
    for q, name in (("q1", "a"), ("q2", "b")):
        shutil.copytree(runs[name], tmp_path / q / "run")
    comparison = compare_runs([tmp_path / "q1" / "run", tmp_path / "q2" / "run"], tmp_path / "cmp")
    assert comparison.reference == "q1/run:baseline"
    assert [e.label for e in comparison.entries] == [
        "q1/run:baseline", "q1/run:independent-whitelist", "q2/run:baseline", "q2/run:split-wallets"]


def test_cli_compare_prints_the_table_of_changes_and_how_it_paired(runs, tmp_path):
    """`custodysim compare B Q2` exits 0, writes the comparison, prints each matched change in a table and the pairing."""
    from typer.testing import CliRunner

    from custodysim.cli import app

    out = tmp_path / "cmp-cli"
    result = CliRunner().invoke(app, ["compare", str(runs["b"]), str(runs["q2"]), "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert "q2: paired trial by trial (same seed and trial count)" in result.output
    assert {p.name for p in out.iterdir()} == {"comparison.json", "comparison.md", "comparison.html", "manifest.json"}
    lines = result.output.splitlines()
    assert "q2 against b: expected loss, USD a year (+ is more loss)" in lines[0]
    header = next(line for line in lines if "variant" in line)
    assert [c.strip() for c in header.split("┃")[1:-1]] == [
        "variant", "b", "q2", "change", "95% CI", "is the change real?"]
    data = _json(out)
    for m in data["matches"]:
        row = next(line for line in lines if line.startswith(f"│ {m['variant']} "))
        cells = [c.strip() for c in row.split("│")[1:-1]]
        low, high = m["change_ci95_usd"]
        assert cells[:5] == [m["variant"], usd(m["reference_expected_loss_usd"]), usd(m["expected_loss_usd"]),
                             signed_usd(m["change_usd"]), f"{signed_usd(low)} to {signed_usd(high)}"]
        assert cells[5] in ("better", "worse", "within the noise", "no change")


def test_cli_compare_manifest_and_wrote_line_name_every_file(runs, tmp_path):
    """The comparison's manifest records the command as typed and its wall time; "wrote" names every file there."""
    from typer.testing import CliRunner

    from custodysim.cli import app

    out = tmp_path / "cmp"
    args = ["compare", str(runs["a"]), str(runs["b"]), "--out", str(out)]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["kind"] == "compare" and manifest["command"] == ["custodysim", *args]
    assert manifest["wall_seconds"] > 0
    assert sorted(manifest["files"]) == sorted(p.name for p in out.iterdir())
    wrote = result.output.strip().splitlines()[-1]
    assert wrote == f"wrote {out}/ ({', '.join(manifest['files'])})"


def test_compare_replace_swaps_a_previous_comparison_only_when_asked(runs, tmp_path):
    """An existing --out is refused without --replace (untouched); with it, the new comparison replaces the old."""
    from typer.testing import CliRunner

    from custodysim.cli import app

    out = tmp_path / "cmp"
    compare_runs([runs["a"], runs["b"]], out)
    before = (out / "comparison.json").read_text()
    refused = CliRunner().invoke(app, ["compare", str(runs["a"]), str(runs["s5"]), "--out", str(out)])
    assert refused.exit_code == 1 and "already exists" in refused.output and "--replace" in refused.output
    assert (out / "comparison.json").read_text() == before
    replaced = CliRunner().invoke(app, ["compare", str(runs["a"]), str(runs["s5"]), "--out", str(out), "--replace"])
    assert replaced.exit_code == 0, replaced.output
    assert "s5:split-wallets" in _entries(_json(out))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["cmp"]


def test_compare_never_replaces_a_run_it_compares(runs, tmp_path):
    """--out naming one of the compared runs (or a folder holding one) is refused even with --replace."""
    a, b = tmp_path / "a", tmp_path / "b"
    shutil.copytree(runs["a"], a)
    shutil.copytree(runs["b"], b)
    with pytest.raises(RunFolderError, match=r"is the run .* being compared"):
        compare_runs([a, b], a, replace=True)
    with pytest.raises(RunFolderError, match=r"holds the run .* being compared"):
        compare_runs([a, b], tmp_path, replace=True)
    assert (a / "trials.csv").is_file() and sorted(p.name for p in tmp_path.iterdir()) == ["a", "b"]


def test_cli_compare_of_a_non_run_exits_1(tmp_path):
    """Comparing a folder that is not a run gives exit code 1 and a message naming it, no traceback."""
    from typer.testing import CliRunner

    from custodysim.cli import app

    (tmp_path / "x").mkdir()
    (tmp_path / "y").mkdir()
    result = CliRunner().invoke(app, ["compare", str(tmp_path / "x"), str(tmp_path / "y")])
    assert result.exit_code == 1
    assert "not a complete run" in result.output and "Traceback" not in result.output
