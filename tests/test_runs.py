"""Runs as a user meets them: bundled scenarios, reproducibility, and a run folder that never lies."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest
from conftest import BASE, build, load

from custodysim.errors import RunFolderError, RunInterrupted
from custodysim.running.outputs import staged_folder
from custodysim.running.runner import run_variants
from custodysim.scenario.loader import load_scenario
from custodysim.studies.run import execute_run, resume_run

SCENARIOS = Path(__file__).resolve().parent.parent / "scenarios"
BUNDLED = sorted(SCENARIOS.glob("*.yaml")) + sorted((SCENARIOS / "incidents").glob("*.yaml"))


def _figures(summary: dict) -> dict:
    return {k: v for k, v in summary.items() if k != "provenance"}


@pytest.mark.parametrize("path", BUNDLED, ids=lambda p: p.stem)
def test_bundled_scenario_runs_and_writes_a_complete_folder(path, tmp_path):
    """Every bundled scenario runs at a small trial count and writes all of its files."""
    out = tmp_path / "run"
    outcome = execute_run(path, trials=200, out=out)
    manifest = json.loads((out / "manifest.json").read_text())
    assert {"summary.json", "trials.csv", "stories.json", "report.md", "manifest.json"} <= set(manifest["files"])
    assert sorted(p.name for p in out.iterdir()) == sorted(manifest["files"])
    summary = json.loads((out / "summary.json").read_text())
    assert summary["baseline"] == "baseline"
    for name, v in summary["variants"].items():
        assert v["trials"] == 200
        low, high = v["expected_loss_ci95_usd"]
        assert low <= v["expected_loss_usd"] <= high
        assert v["var95_usd"] <= v["var99_usd"] <= v["var999_usd"] <= v["max_loss_usd"]
        if name != "baseline":
            assert "diff_vs_baseline_usd" in v and len(v["diff_ci95_usd"]) == 2
    with (out / "trials.csv").open() as fh:
        rows = list(csv.DictReader(fh))
    assert len(rows) == 200 * len(summary["variants"])
    base_rows = [float(r["loss_usd"]) for r in rows if r["variant"] == "baseline"]
    assert np.mean(base_rows) == pytest.approx(summary["variants"]["baseline"]["expected_loss_usd"])
    assert outcome.folder == out


def test_same_seed_gives_identical_figures(tmp_path):
    """Two runs of one scenario with one seed give the same summary.json figures, figure by figure."""
    path = SCENARIOS / "dmm-2024.yaml"
    a = execute_run(path, trials=300, seed=42, out=tmp_path / "a")
    b = execute_run(path, trials=300, seed=42, out=tmp_path / "b")
    assert _figures(a.summary) == _figures(b.summary)
    for table in ("trials.csv", "events.csv"):
        assert (tmp_path / "a" / table).read_text() == (tmp_path / "b" / table).read_text()


def test_different_seed_gives_different_figures(tmp_path):
    """The seed matters: another seed gives other trials."""
    path = SCENARIOS / "dmm-2024.yaml"
    a = execute_run(path, trials=300, seed=1, out=tmp_path / "a", variants=["baseline"])
    b = execute_run(path, trials=300, seed=2, out=tmp_path / "b", variants=["baseline"])
    assert _figures(a.summary)["variants"] != _figures(b.summary)["variants"]


def test_trials_do_not_depend_on_how_many_are_run():
    """Trial k gives the same row whether 50 or 500 trials are run (chunk and worker invariance)."""
    loaded = load_scenario(SCENARIOS / "dmm-2024.yaml")
    small, _ = run_variants(loaded, 50, 9, ["baseline"])
    large, _ = run_variants(loaded, 1500, 9, ["baseline"])
    np.testing.assert_array_equal(small[0].loss, large[0].loss[:50])


def test_dmm_threshold_buys_nothing_and_independent_whitelist_almost_everything():
    """In dmm-2024, 3-of-5 on the vendor's screen loses what the baseline loses; an independent whitelist far less."""
    rows, _ = run_variants(load_scenario(SCENARIOS / "dmm-2024.yaml"), 1000, 20240531)
    loss = {r.name: r.loss for r in rows}
    assert loss["baseline"].mean() > 0
    np.testing.assert_allclose(loss["threshold-3of5"], loss["baseline"])
    assert loss["independent-whitelist"].mean() < 0.1 * loss["baseline"].mean()
    assert loss["independent-verification"].mean() < 0.3 * loss["baseline"].mean()
    assert loss["split-wallets"].mean() < 0.5 * loss["baseline"].mean()


def test_variants_share_random_numbers_where_structure_is_shared():
    """A variant that changes only a policy sees the same campaigns: footholds are identical trial by trial."""
    doc = build(BASE, variants={"wl": {"set": {"wallets.vault.policy.whitelist": {"enforced_by": "policy_engine"}}}})
    rows, _ = run_variants(load(doc), 300, 1)
    np.testing.assert_array_equal(rows[0].numbers["footholds"], rows[1].numbers["footholds"])
    np.testing.assert_array_equal(rows[0].numbers["t_first_access_days"], rows[1].numbers["t_first_access_days"])


def test_existing_run_folder_is_never_overwritten(tmp_path):
    """Running into a folder that exists is refused and leaves its contents untouched."""
    out = tmp_path / "run"
    out.mkdir()
    (out / "keep.txt").write_text("mine")
    with pytest.raises(RunFolderError, match="already exists"):
        execute_run(SCENARIOS / "dmm-2024.yaml", trials=10, out=out)
    assert [p.name for p in out.iterdir()] == ["keep.txt"]


def test_failed_run_leaves_no_run_folder(tmp_path):
    """A run that dies while writing leaves no run folder, only its hidden staging folder."""
    final = tmp_path / "run"
    with pytest.raises(RuntimeError), staged_folder(final) as staging:
        (staging / "summary.json").write_text("{}")
        raise RuntimeError("crash mid-run")
    assert [p.name for p in tmp_path.iterdir()] == [".run.partial"]


def test_manifest_of_a_library_call_records_no_command(tmp_path):
    """A run called from Python records command null, the scenario's name, and both wall times."""
    execute_run(SCENARIOS / "key-concentration.yaml", trials=20, out=tmp_path / "r")
    manifest = json.loads((tmp_path / "r" / "manifest.json").read_text())
    for key in ("version", "seed", "trials", "scenario_sha256", "wall_time_seconds", "wall_seconds", "command"):
        assert key in manifest
    assert manifest["command"] is None and manifest["scenario_file"] == "key-concentration.yaml"
    assert manifest["wall_seconds"] >= manifest["wall_time_seconds"] > 0
    assert str(tmp_path) not in (tmp_path / "r" / "manifest.json").read_text()


def test_report_quotes_the_summary_figures(tmp_path):
    """report.md shows each variant's expected loss as summary.json has it."""
    from custodysim.formatting import usd

    outcome = execute_run(SCENARIOS / "hot-wallet-key-theft.yaml", trials=200, out=tmp_path / "r")
    report = (tmp_path / "r" / "report.md").read_text()
    for name, v in outcome.summary["variants"].items():
        assert name in report
        assert usd(v["expected_loss_usd"]) in report


def test_interrupted_simulation_leaves_no_run_folder(tmp_path):
    """Ctrl-C during the trials leaves no run folder, only the hidden chunks kept for --resume."""
    def interrupt(name, k):
        raise KeyboardInterrupt

    with pytest.raises(RunInterrupted, match="--resume"):
        execute_run(SCENARIOS / "dmm-2024.yaml", trials=50, out=tmp_path / "run", progress=interrupt)
    assert [p.name for p in tmp_path.iterdir()] == [".run.partial"]
    assert not (tmp_path / ".run.partial" / "manifest.json").exists()


def test_interrupted_write_leaves_no_run_folder(tmp_path, monkeypatch):
    """Ctrl-C while the files are being written leaves no folder that looks like a run."""
    import custodysim.studies.run

    def explode(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(custodysim.studies.run, "write_trials_csv", explode)
    with pytest.raises(RunInterrupted):
        execute_run(SCENARIOS / "dmm-2024.yaml", trials=20, out=tmp_path / "run")
    assert [p.name for p in tmp_path.iterdir()] == [".run.partial"]


def test_resume_gives_the_figures_of_an_uninterrupted_run(tmp_path):
    """A run interrupted after some chunks and resumed gives exactly the uninterrupted run's figures."""
    chunks_done = []

    def interrupt_after_two(name, k):
        chunks_done.append(name)
        if len(chunks_done) == 2:
            raise KeyboardInterrupt

    out = tmp_path / "run"
    with pytest.raises(RunInterrupted):
        execute_run(SCENARIOS / "dmm-2024.yaml", trials=1000, seed=3, out=out, variants=["split-wallets"],
                    progress=interrupt_after_two)  # of 2 x 4 chunks
    resumed = resume_run(out)
    whole = execute_run(SCENARIOS / "dmm-2024.yaml", trials=1000, seed=3, out=tmp_path / "whole",
                        variants=["split-wallets"])
    assert _figures(resumed.summary) == _figures(whole.summary)
    for table in ("trials.csv", "events.csv"):
        assert (out / table).read_text() == (tmp_path / "whole" / table).read_text()
    assert json.loads((out / "manifest.json").read_text())["resumed"] is True
    assert sorted(p.name for p in tmp_path.iterdir()) == ["run", "whole"]


def test_resume_without_an_interrupted_run_is_a_clear_error(tmp_path):
    """--resume of a folder with no interrupted run says so."""
    with pytest.raises(RunFolderError, match="no interrupted run to resume"):
        resume_run(tmp_path / "nothing")


def test_new_run_refuses_to_trample_an_interrupted_one(tmp_path):
    """Starting a new run to a folder whose interrupted run is kept is refused, naming --resume."""
    def interrupt(name, k):
        raise KeyboardInterrupt

    with pytest.raises(RunInterrupted):
        execute_run(SCENARIOS / "dmm-2024.yaml", trials=20, out=tmp_path / "run", progress=interrupt)
    with pytest.raises(RunFolderError, match="--resume"):
        execute_run(SCENARIOS / "dmm-2024.yaml", trials=20, out=tmp_path / "run")


def test_cli_interrupt_exits_130_and_says_so(tmp_path, monkeypatch):
    """The CLI turns Ctrl-C into a one-line message and exit code 130, without a traceback."""
    from typer.testing import CliRunner

    import custodysim.cli

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(custodysim.cli, "execute_run", interrupted)
    result = CliRunner().invoke(custodysim.cli.app, ["run", str(SCENARIOS / "dmm-2024.yaml"), "--out",
                                                     str(tmp_path / "r")])
    assert result.exit_code == 130
    assert "interrupted" in result.output and "Traceback" not in result.output
    assert not (tmp_path / "r").exists()


def test_replace_swaps_a_previous_run(tmp_path):
    """--replace replaces a previous complete run with the new one."""
    out = tmp_path / "run"
    execute_run(SCENARIOS / "dmm-2024.yaml", trials=20, seed=1, out=out, variants=["baseline"])
    execute_run(SCENARIOS / "dmm-2024.yaml", trials=30, seed=1, out=out, variants=["baseline"], replace=True)
    assert json.loads((out / "summary.json").read_text())["trials"] == 30
    assert sorted(p.name for p in tmp_path.iterdir()) == ["run"]


def test_replace_refuses_a_folder_that_is_not_a_run(tmp_path):
    """--replace never deletes a folder that is not a complete run."""
    out = tmp_path / "mine"
    out.mkdir()
    (out / "notes.txt").write_text("precious")
    with pytest.raises(RunFolderError, match="not a complete run folder"):
        execute_run(SCENARIOS / "dmm-2024.yaml", trials=10, out=out, replace=True)
    assert (out / "notes.txt").read_text() == "precious"


def test_interrupted_replacement_keeps_the_old_run(tmp_path):
    """A replacement interrupted before it completes leaves the previous run untouched."""
    out = tmp_path / "run"
    execute_run(SCENARIOS / "dmm-2024.yaml", trials=20, seed=1, out=out, variants=["baseline"])
    before = (out / "summary.json").read_text()

    def interrupt(name, k):
        raise KeyboardInterrupt

    with pytest.raises(RunInterrupted):
        execute_run(SCENARIOS / "dmm-2024.yaml", trials=40, out=out, replace=True, progress=interrupt)
    assert (out / "summary.json").read_text() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == [".run.partial", "run"]


def test_cli_manifest_records_the_command_as_typed_and_wrote_names_every_file(tmp_path, monkeypatch):
    """`custodysim run` records its words as typed and the whole command's wall time; "wrote" lists the folder's files."""
    from typer.testing import CliRunner

    from custodysim.cli import app

    monkeypatch.chdir(tmp_path)
    (tmp_path / "s.yaml").write_bytes((SCENARIOS / "key-concentration.yaml").read_bytes())
    args = ["run", "s.yaml", "--trials", "20", "--out", "r", "--workers", "1"]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    manifest = json.loads((tmp_path / "r" / "manifest.json").read_text())
    assert manifest["command"] == ["custodysim", *args]
    assert manifest["wall_seconds"] >= manifest["wall_time_seconds"] > 0
    files = sorted(p.name for p in (tmp_path / "r").iterdir())
    assert sorted(manifest["files"]) == files
    wrote = result.stdout.strip().splitlines()[-1]
    assert wrote.startswith("wrote r/ (") and sorted(wrote[len("wrote r/ ("):-1].split(", ")) == files


def test_cli_manifest_writes_a_path_inside_the_run_folder_relative_to_it(tmp_path, monkeypatch):
    """Re-running a run's own scenario copy into that folder records the copy as 'scenario.yaml', --out as typed."""
    from typer.testing import CliRunner

    from custodysim.cli import app

    monkeypatch.chdir(tmp_path)
    execute_run(SCENARIOS / "key-concentration.yaml", trials=10, out=tmp_path / "r")
    args = ["run", "r/scenario.yaml", "--trials", "20", "--out", "r", "--replace", "--workers", "1"]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    manifest = json.loads((tmp_path / "r" / "manifest.json").read_text())
    assert manifest["command"] == ["custodysim", "run", "scenario.yaml", "--trials", "20", "--out", "r", "--replace",
                                   "--workers", "1"]
    assert manifest["trials"] == 20


def test_recorded_command_names_no_home_folder(tmp_path, monkeypatch):
    """A path in the home folder is recorded from ~ (as the shell reads it); other paths and words stay as typed."""
    from custodysim.studies.provenance import Command, as_typed

    monkeypatch.setenv("HOME", "/home/alice")
    typed = ("custodysim", "run", "/home/alice/secret/dmm.yaml", "--out=/home/alice/r", "--seed", "5",
             "/srv/shared/s.yaml", "rel/s.yaml")
    assert as_typed(Command(typed, 0.0), tmp_path / "r") == [
        "custodysim", "run", "~/secret/dmm.yaml", "--out=~/r", "--seed", "5", "/srv/shared/s.yaml", "rel/s.yaml"]
    assert as_typed(None, tmp_path / "r") is None


def test_oversized_run_is_refused_with_the_arithmetic(tmp_path):
    """A run over the row limit is refused before any work, saying why and how to go beyond."""
    from custodysim.errors import LimitError

    with pytest.raises(LimitError, match=r"6 variant\(s\) x 2,000 trials = 12,000 trial rows.*--max-rows"):
        execute_run(SCENARIOS / "dmm-2024.yaml", trials=2000, out=tmp_path / "r", max_rows=11_999)
    assert list(tmp_path.iterdir()) == []


def test_scenario_entity_limit_is_explained():
    """A scenario with more wallets than the limit gets a message naming the limit, not a memory blow-up."""
    from custodysim.errors import ScenarioError
    from custodysim.scenario.schema import MAX_ENTITIES

    doc = build(BASE)
    wallet = doc["wallets"]["vault"]
    doc["wallets"] = {f"w{i}": dict(wallet) for i in range(MAX_ENTITIES + 1)}
    with pytest.raises(ScenarioError, match="custodysim limit"):
        load(doc)


def test_outputs_name_no_local_details(tmp_path, monkeypatch):
    """No file of a run names the user, the host, the home folder or the absolute path of the scenario."""
    import getpass
    import socket

    out = tmp_path / "r"
    execute_run(SCENARIOS / "key-concentration.yaml", trials=30, out=out)
    user = getpass.getuser()  # as a path part or an address: "root" alone is also a CSS selector
    secrets = {f"/{user}/", f"{user}@", socket.gethostname(), str(Path.home()), str(SCENARIOS), str(tmp_path)}
    secrets = {s for s in secrets if len(s) > 3}
    for path in out.iterdir():
        text = path.read_text(encoding="utf-8", errors="replace")
        for secret in secrets:
            assert secret not in text, f"{path.name} names {secret!r}"
