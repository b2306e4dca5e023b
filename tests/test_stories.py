"""Trial stories and re-rendered reports: they must agree with the run's rows."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from custodysim.cli import app
from custodysim.errors import RunFolderError
from custodysim.reporting.stories import tell
from custodysim.scenario.loader import load_scenario
from custodysim.simulation.campaigns import Campaign
from custodysim.simulation.engine import footholds
from custodysim.simulation.results import Units
from custodysim.studies.run import execute_run, rerender

DMM = Path(__file__).resolve().parent.parent / "scenarios" / "dmm-2024.yaml"


@pytest.fixture(scope="module")
def dmm_run(tmp_path_factory):
    """A small dmm-2024 run folder shared by the tests of this module."""
    out = tmp_path_factory.mktemp("runs") / "dmm"
    execute_run(DMM, trials=300, out=out)
    return out


def _rows(folder: Path) -> list[dict[str, str]]:
    with (folder / "trials.csv").open() as fh:
        return list(csv.DictReader(fh))


def test_worst_trial_story_matches_its_row(dmm_run):
    """Tracing the worst baseline trial reproduces the loss recorded for it in trials.csv."""
    rows = [r for r in _rows(dmm_run) if r["variant"] == "baseline"]
    worst = max(rows, key=lambda r: float(r["loss_usd"]))
    seed = json.loads((dmm_run / "manifest.json").read_text())["seed"]
    story = tell(load_scenario(DMM), "baseline", int(worst["trial"]), seed)
    assert story.loss_usd == pytest.approx(float(worst["loss_usd"]))
    assert story.loss_usd > 0
    assert any("rewrites" in line for line in story.lines)
    assert any("leave main for the attacker" in line for line in story.lines)


def test_stories_of_the_worst_trials_are_stored_with_the_run(dmm_run):
    """stories.json holds the worst trials of each variant that lost anything, worst first."""
    stories = json.loads((dmm_run / "stories.json").read_text())
    baseline = [s for s in stories if s["variant"] == "baseline"]
    assert 0 < len(baseline) <= 5
    assert [s["loss_usd"] for s in baseline] == sorted((s["loss_usd"] for s in baseline), reverse=True)
    top = max(float(r["loss_usd"]) for r in _rows(dmm_run) if r["variant"] == "baseline")
    assert baseline[0]["loss_usd"] == pytest.approx(top)


def test_verification_story_names_the_signer_who_refused(dmm_run):
    """In independent-verification, a stopped trial's story says who caught the rewrite, and on what."""
    rows = [r for r in _rows(dmm_run) if r["variant"] == "independent-verification" and r["outcome"] == "stopped"
            and "verification:dmm_signer" in r["stopped_by"]]
    assert rows
    story = tell(load_scenario(DMM), "independent-verification", int(rows[0]["trial"]), 20240531)
    assert any("dmm_signer checks on dmm_signer_device and catches the mismatch" in line for line in story.lines)


def test_cli_trace_prints_the_story():
    """`custodysim trace FILE --trial K` prints the timeline and the outcome."""
    result = CliRunner().invoke(app, ["trace", str(DMM), "--trial", "0", "--variant", "split-wallets"])
    assert result.exit_code == 0
    assert "variant split-wallets, trial 0" in result.output
    assert "outcome:" in result.output


def test_cli_trace_unknown_variant_is_a_clear_error():
    """Tracing a variant the scenario does not have exits 1 with the known names."""
    result = CliRunner().invoke(app, ["trace", str(DMM), "--trial", "0", "--variant", "nope"])
    assert result.exit_code == 1
    assert "no variant named 'nope'" in result.output


def test_rerender_reproduces_the_summary_from_the_rows(dmm_run, tmp_path):
    """Re-rendering recomputes summary.json from trials.csv and gets the same figures."""
    before = json.loads((dmm_run / "summary.json").read_text())
    (dmm_run / "report.md").write_text("stale")
    rerender(dmm_run)
    after = json.loads((dmm_run / "summary.json").read_text())
    assert after["variants"] == before["variants"]
    assert "stale" not in (dmm_run / "report.md").read_text()
    assert "independent-whitelist" in (dmm_run / "report.md").read_text()


def test_rerender_refuses_an_incomplete_run(tmp_path):
    """A folder without its manifest is not a complete run: a clear error, nothing written."""
    (tmp_path / "summary.json").write_text("{}")
    with pytest.raises(RunFolderError, match="not a complete run"):
        rerender(tmp_path)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["summary.json"]


def test_run_with_an_asset_named_like_usd_reads_back(tmp_path):
    """A run whose asset is 'usdt' (its column starts like the USD columns) is read back intact."""
    from conftest import BASE, build, load

    from custodysim.running.runfolder import read_run

    doc = build(BASE, assets={"usdt": {"price_usd": 1.0}})
    doc["wallets"]["vault"]["asset"] = "usdt"
    path = tmp_path / "s.yaml"
    import yaml

    path.write_text(yaml.safe_dump(doc))
    load(doc)
    execute_run(path, trials=30, out=tmp_path / "r")
    run = read_run(tmp_path / "r")
    assert run.columns.assets == ("usdt",)
    assert run.losses[0].column("loss_usdt").sum() == pytest.approx(run.losses[0].loss.sum())


@pytest.mark.parametrize("damage", ["empty", "truncated", "short"])
def test_damaged_trials_csv_is_a_clear_error(dmm_run, tmp_path, damage):
    """An empty, truncated or short trials.csv is reported as a damaged run, not a traceback."""
    import shutil

    from custodysim.running.runfolder import read_run

    copy = tmp_path / "copy"
    shutil.copytree(dmm_run, copy)
    lines = (copy / "trials.csv").read_text().splitlines(keepends=True)
    text = {"empty": "", "truncated": "".join(lines)[:-40], "short": "".join(lines[:-1])}[damage]
    (copy / "trials.csv").write_text(text)
    with pytest.raises(RunFolderError, match="copy"):
        read_run(copy)


def test_separate_footholds_are_not_chained_in_the_attack_path():
    """Footholds reached from the node taken just before continue a chain; others start one of their own."""
    c = Campaign("apt#0", "apt:", 0, 0.0, None, [])
    for node, t, source in (("eng_a", 1.0, ""), ("laptop_a", 1.0, "eng_a"), ("eng_b", 2.0, ""),
                            ("comms", 5.0, "laptop_a"), ("wallet_ui", 6.0, "comms")):
        c.held[node], c.came_from[node] = t, source
    assert footholds(c) == ["eng_a@1.0d > laptop_a@1.0d", "eng_b@2.0d",
                            "laptop_a > comms@5.0d > wallet_ui@6.0d"]


def test_story_amounts_print_as_the_tables_do():
    """An amount in a story reads 523,000,000 XEM, not 5.23e+08 XEM; small amounts keep their digits."""
    assert f"{Units(523_000_000.0)} XEM" == "523,000,000 XEM"
    assert f"{Units(0.5)} BTC" == "0.5 BTC"
    assert f"{Units(1234.5):.1f}" == "1234.5"


@pytest.fixture(scope="module")
def seeded_run(tmp_path_factory) -> Path:
    """A dmm-2024 run with a --seed of its own (not the file's) and a --trials of its own."""
    out = tmp_path_factory.mktemp("seeded") / "run"
    execute_run(DMM, trials=300, seed=11, out=out)
    return out


def _losing_trial(run: Path) -> tuple[int, float]:
    with (run / "trials.csv").open(newline="") as fh:
        row = next(r for r in csv.DictReader(fh) if r["variant"] == "baseline" and float(r["loss_usd"]) > 0)
    return int(row["trial"]), float(row["loss_usd"])


@pytest.mark.parametrize("where", ["folder", "copy"])
def test_trace_of_a_run_tells_the_trial_of_its_rows(seeded_run, where):
    """`trace RUN_DIR` (or the run's scenario.yaml) uses the run's seed: the trial told is the row in trials.csv."""
    trial, loss = _losing_trial(seeded_run)
    source = seeded_run if where == "folder" else seeded_run / "scenario.yaml"
    result = CliRunner().invoke(app, ["trace", str(source), "--trial", str(trial)])
    assert result.exit_code == 0, result.output
    assert f"trial {trial}, seed 11 (the seed of the run in" in result.output
    assert f"(USD {loss:,.0f})" in result.output


def test_trace_of_the_file_says_which_seed_it_used(seeded_run):
    """`trace FILE` without --seed names the file's seed, so it never silently tells another run's trial."""
    trial, _ = _losing_trial(seeded_run)
    result = CliRunner().invoke(app, ["trace", str(DMM), "--trial", str(trial)])
    assert result.exit_code == 0 and "seed 20240531 (the file's seed)" in result.output


@pytest.mark.parametrize(("args", "message"), [
    (["--trial", "300"], "has trials 0 to 299"),
    (["--trial", "3", "--seed", "12"], "ran with seed 11; leave --seed out"),
    (["--trial", "3", "--variant", "nope"], "--variant nope: the run in"),
])
def test_trace_of_a_run_refuses_what_the_run_did_not_have(seeded_run, args, message):
    """A trial, seed or variant the run did not have is a clear error, exit 1."""
    result = CliRunner().invoke(app, ["trace", str(seeded_run), *args])
    assert result.exit_code == 1 and message in result.output and "Traceback" not in result.output


def test_the_resolved_scenario_records_the_seed_and_trials_it_ran_with(seeded_run):
    """scenario.resolved.yaml holds the run's --seed and --trials, not the file's."""
    resolved = yaml.safe_load((seeded_run / "scenario.resolved.yaml").read_text(encoding="utf-8"))
    assert {v["settings"]["seed"] for v in resolved.values()} == {11}
    assert {v["settings"]["trials"] for v in resolved.values()} == {300}
