"""Comparing separate runs: pairing when seed, trials and scenario match, honest unpaired CIs otherwise."""

from __future__ import annotations

import csv
import json
import math
import shutil
from pathlib import Path

import numpy as np
import pytest

from custodysim.errors import RunFolderError
from custodysim.running.precision import Z95
from custodysim.studies.compare import PAIRED, compare_runs
from custodysim.studies.run import execute_run

SCENARIOS = Path(__file__).resolve().parent.parent / "scenarios"
DMM = SCENARIOS / "dmm-2024.yaml"
TRIALS = 300
SEED = 42


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Runs of dmm-2024 (a, b: same seed, other variants; s5: seed 5; t200: 200 trials) and of another file."""
    root = tmp_path_factory.mktemp("runs")
    made = {
        "a": dict(scenario=DMM, trials=TRIALS, seed=SEED, variants=["independent-whitelist"]),
        "b": dict(scenario=DMM, trials=TRIALS, seed=SEED, variants=["split-wallets"]),
        "s5": dict(scenario=DMM, trials=TRIALS, seed=5, variants=["split-wallets"]),
        "t200": dict(scenario=DMM, trials=200, seed=SEED, variants=["split-wallets"]),
        "hot": dict(scenario=SCENARIOS / "hot-wallet-key-theft.yaml", trials=TRIALS, seed=SEED, variants=["hot-cap"]),
    }
    for name, kw in made.items():
        execute_run(kw.pop("scenario"), out=root / name, **kw)
    return {name: root / name for name in made}


def _json(folder: Path) -> dict:
    return json.loads((folder / "comparison.json").read_text())


def _entries(data: dict) -> dict[str, dict]:
    return {e["label"]: e for e in data["entries"]}


def _loss(run: Path, variant: str) -> np.ndarray:
    with (run / "trials.csv").open() as fh:
        return np.array([float(r["loss_usd"]) for r in csv.DictReader(fh) if r["variant"] == variant])


def _welch(a: np.ndarray, b: np.ndarray) -> float:
    return Z95 * math.sqrt(np.var(a, ddof=1) / len(a) + np.var(b, ddof=1) / len(b))


def test_same_seed_runs_are_paired_and_baseline_difference_is_zero(runs, tmp_path):
    """Two dmm-2024 runs with one seed are paired trial by trial; baseline vs baseline is exactly 0, CI [0, 0]."""
    out = tmp_path / "cmp"
    comparison = compare_runs([runs["a"], runs["b"]], out)
    data = _json(out)
    assert data["reference"] == "a:baseline"
    assert [r["paired"] for r in data["runs"]] == [True, True]
    assert data["runs"][1]["pairing"] == PAIRED == "paired trial by trial (same scenario, seed and trials)"
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
    entry = _entries(data)["s5:split-wallets"]
    assert not entry["paired"]
    x, ref = _loss(runs["s5"], "split-wallets"), _loss(runs["a"], "baseline")
    diff, half = x.mean() - ref.mean(), _welch(x, ref)
    assert entry["diff_vs_reference_usd"] == pytest.approx(diff, rel=1e-12)
    assert entry["diff_ci95_usd"] == pytest.approx([diff - half, diff + half], rel=1e-12)
    # The reference run's own variants stay paired.
    assert _entries(data)["a:independent-whitelist"]["paired"]


@pytest.mark.parametrize(("other", "reason"), [
    ("t200", "different trial counts 300 vs 200"),
    ("hot", "different scenario files dmm-2024.yaml vs hot-wallet-key-theft.yaml"),
])
def test_other_trial_count_or_scenario_file_is_unpaired_with_the_reason(runs, tmp_path, other, reason):
    """A run with another trial count or scenario file is unpaired, and the outputs say which."""
    out = tmp_path / "cmp"
    comparison = compare_runs([runs["a"], runs[other]], out)
    assert comparison.runs[1].pairing == f"unpaired: {reason}"
    assert all(not e.paired for e in comparison.entries if e.run == other)
    assert reason in (out / "comparison.md").read_text()


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
    assert data["notes"] == []  # no summary figure disagrees with its trials.csv
    for entry in data["entries"]:
        summary = json.loads((runs[entry["run"]] / "summary.json").read_text())["variants"][entry["variant"]]
        for key in ("trials", "expected_loss_usd", "expected_loss_ci95_usd", "p_any_loss", "var99_usd", "es99_usd"):
            assert entry[key] == summary[key], (entry["label"], key)


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
    assert "<style>" in html and "<table>" in html
    for external in ("http://", "https://", "<script", "<link", "src=", "@import", "url("):
        assert external not in html
    assert "&lt;b&gt;q3:split-wallets" in html and "<b>q3" not in html


def test_runs_with_the_same_folder_name_get_distinct_labels(runs, tmp_path):
    """Two runs both named 'run' in different parents are labelled q1/run and q2/run."""
    for q, name in (("q1", "a"), ("q2", "b")):
        shutil.copytree(runs[name], tmp_path / q / "run")
    comparison = compare_runs([tmp_path / "q1" / "run", tmp_path / "q2" / "run"], tmp_path / "cmp")
    assert comparison.reference == "q1/run:baseline"
    assert [e.label for e in comparison.entries] == [
        "q1/run:baseline", "q1/run:independent-whitelist", "q2/run:baseline", "q2/run:split-wallets"]


def test_cli_compare_writes_the_folder_and_says_how_it_paired(runs, tmp_path):
    """`custodysim compare A B` exits 0, writes the comparison and states that the runs were paired."""
    from typer.testing import CliRunner

    from custodysim.cli import app

    out = tmp_path / "cmp-cli"
    result = CliRunner().invoke(app, ["compare", str(runs["a"]), str(runs["b"]), "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert "paired trial by trial" in result.output
    assert {p.name for p in out.iterdir()} == {"comparison.json", "comparison.md", "comparison.html", "manifest.json"}


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
