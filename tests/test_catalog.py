"""The catalog of runs (`custodysim runs`) and a scenario's trend page (`custodysim runs trend`).

Results folders are built from copies of the reference run (results/dmm-2024), with their dates, seeds,
figures or scenario file edited: cheap, and each a run folder that passes every check.
"""

from __future__ import annotations

import csv
import hashlib
import json
import re
import shutil
import sqlite3
from pathlib import Path
from typing import Any

from errordocs import check_example, shown
from test_report_html import assert_loads_nothing
from typer.testing import CliRunner

from custodysim.cli import app
from custodysim.running.outputs import staged_folder
from custodysim.studies import catalog as catalog_module
from custodysim.studies.catalog import INDEX, catalog

REFERENCE = Path(__file__).resolve().parents[1] / "results" / "dmm-2024"


def _edit(path: Path, change: Any) -> None:
    data = json.loads(path.read_text(encoding="utf-8"))
    change(data)
    path.write_text(json.dumps(data), encoding="utf-8")


def add_run(root: Path, name: str, created: str, *, seed: int = 1, baseline_loss: float | None = None,
            scenario_edit: str | None = None, scenario: str | None = None) -> Path:
    """Copy the reference run to ``root/name``, made at ``created``, with the seed, loss, file or name changed."""
    folder = root / name
    shutil.copytree(REFERENCE, folder)
    if scenario_edit is not None:
        copy = folder / "scenario.yaml"
        copy.write_text(copy.read_text(encoding="utf-8") + f"\n# {scenario_edit}\n", encoding="utf-8")
        sha = hashlib.sha256(copy.read_bytes()).hexdigest()
        _edit(folder / "manifest.json", lambda m: m.update(scenario_sha256=sha))
    _edit(folder / "manifest.json", lambda m: m.update(created_utc=created, seed=seed))

    def summary(s: dict[str, Any]) -> None:
        s["seed"] = seed
        if baseline_loss is not None:
            s["variants"]["baseline"]["expected_loss_usd"] = baseline_loss
        if scenario is not None:
            s["scenario"] = scenario

    _edit(folder / "summary.json", summary)
    return folder


def add_sweep(root: Path, name: str, created: str) -> Path:
    """Make a sweep folder of the reference run's figures (its summary as sweep.json), made at ``created``."""
    folder = add_run(root, name, created)
    (folder / "summary.json").rename(folder / "sweep.json")
    _edit(folder / "manifest.json", lambda m: m.update(kind="sweep", files=["sweep.json", "manifest.json"]))
    return folder


def add_attribution(root: Path, name: str, created: str) -> Path:
    """Make an attribution folder: the baseline and two combinations of controls, made at ``created``."""
    folder = root / name
    folder.mkdir()
    (folder / "manifest.json").write_text(json.dumps({"created_utc": created, "seed": 5, "trials": 400,
                                                      "controls": ["a", "b"], "files": ["summary.json"]}))
    runs = {"baseline": {"expected_loss_usd": 9e6, "ci95_usd": [7e6, 11e6], "p_any_loss": 0.1},
            "a": {"expected_loss_usd": 4e6, "ci95_usd": [3e6, 5e6], "p_any_loss": 0.05},
            "b": {"expected_loss_usd": 2e6, "ci95_usd": [1e6, 3e6], "p_any_loss": 0.02}}
    (folder / "summary.json").write_text(json.dumps({"scenario": "dmm-2024", "baseline": "baseline", "trials": 400,
                                                     "runs": runs}))
    return folder


def cli(*args: str) -> Any:
    return CliRunner().invoke(app, list(args))


def test_listing_is_newest_first_with_each_runs_figures(tmp_path):
    """Runs are listed newest first, each with scenario, date, seed, trials, baseline loss and CI, best variant."""
    add_run(tmp_path, "q1", "2026-01-05T09:00:00+00:00", seed=11, baseline_loss=40e6)
    add_run(tmp_path, "q2", "2026-04-03T09:00:00+00:00", seed=12)
    add_sweep(tmp_path, "sweep", "2026-02-01T09:00:00+00:00")
    add_attribution(tmp_path, "attribution", "2026-03-01T09:00:00+00:00")
    entries = catalog(tmp_path).entries
    assert [(e.folder, e.kind, e.status) for e in entries] == [
        ("q2", "run", "complete"), ("attribution", "attribution", "complete"), ("sweep", "sweep", "complete"),
        ("q1", "run", "complete")]
    assert entries[1].best == "b" and entries[1].figures["baseline"]["expected_loss_ci95_usd"] == [7e6, 11e6]
    q2 = entries[0]
    reference = json.loads((REFERENCE / "summary.json").read_text())["variants"]
    assert (q2.scenario, q2.kind, q2.status, q2.seed, q2.trials) == ("dmm-2024", "run", "complete", 12, 2000)
    assert q2.figures["baseline"]["expected_loss_usd"] == reference["baseline"]["expected_loss_usd"]
    assert q2.figures["baseline"]["expected_loss_ci95_usd"] == reference["baseline"]["expected_loss_ci95_usd"]
    lowest = min((v["expected_loss_usd"], n) for n, v in reference.items() if n != "baseline")
    assert reference[q2.best]["expected_loss_usd"] == lowest[0]
    result = cli("runs", str(tmp_path))
    assert result.exit_code == 0, result.output
    assert result.output.index("2026-04-03") < result.output.index("2026-01-05")
    assert "$31.06M" in result.output and "$40.00M" in result.output and "complete" in result.output
    listed = json.loads(cli("runs", str(tmp_path), "--json").output)
    assert [e["folder"] for e in listed["entries"]] == ["q2", "attribution", "sweep", "q1"]


def test_scenario_filter_and_unknown_name(tmp_path):
    """--scenario lists one scenario's folders; an unknown name exits 1 naming the scenarios there are."""
    add_run(tmp_path, "a", "2026-01-05T09:00:00+00:00")
    add_run(tmp_path, "b", "2026-02-05T09:00:00+00:00", scenario="other-exchange")
    listed = json.loads(cli("runs", str(tmp_path), "--scenario", "other-exchange", "--json").output)
    assert [e["folder"] for e in listed["entries"]] == ["b"]
    result = cli("runs", str(tmp_path), "--scenario", "nope")
    assert result.exit_code == 1
    assert "no run of a scenario named 'nope'" in result.stderr and "dmm-2024, other-exchange" in result.stderr


def test_a_missing_folder_and_an_empty_one(tmp_path):
    """A results folder that does not exist exits 1 saying so; an empty one says there are no runs."""
    result = cli("runs", str(tmp_path / "gone"))
    assert result.exit_code == 1 and "no such folder" in result.stderr and "Traceback" not in result.output
    result = cli("runs", str(tmp_path))
    assert result.exit_code == 0 and "no runs, sweeps or attributions here yet" in result.output


def test_copied_in_folder_appears_and_a_stale_index_is_updated(tmp_path, monkeypatch):
    """The index is reused while nothing changes; a folder copied in (at any depth), changed or removed is re-read."""
    add_run(tmp_path, "a", "2026-01-05T09:00:00+00:00")
    add_run(tmp_path, "b", "2026-02-05T09:00:00+00:00")
    assert len(catalog(tmp_path).entries) == 2
    assert (tmp_path / INDEX).is_file()
    reads: list[Path] = []
    real = catalog_module._read_output
    monkeypatch.setattr(catalog_module, "_read_output", lambda folder, key: reads.append(folder) or real(folder, key))
    assert len(catalog(tmp_path).entries) == 2 and reads == []  # nothing changed: nothing read again
    (tmp_path / "archive" / "2025").mkdir(parents=True)
    add_run(tmp_path / "archive" / "2025", "old", "2025-06-01T09:00:00+00:00")
    (tmp_path / "b" / "trials.csv").unlink()
    shutil.rmtree(tmp_path / "a")
    entries = {e.folder: e for e in catalog(tmp_path).entries}
    assert sorted(reads) == [tmp_path / "archive" / "2025" / "old", tmp_path / "b"]
    assert set(entries) == {"archive/2025/old", "b"}
    assert entries["archive/2025/old"].complete and entries["b"].status == "broken"
    with sqlite3.connect(tmp_path / INDEX) as db:
        assert sorted(r[0] for r in db.execute("SELECT folder FROM folders")) == ["archive/2025/old", "b"]


def test_a_damaged_or_unwritable_index_never_stops_the_listing(tmp_path):
    """A damaged index is rebuilt; one that cannot be written leaves the listing built in memory."""
    add_run(tmp_path, "a", "2026-01-05T09:00:00+00:00")
    (tmp_path / INDEX).write_bytes(b"not a database at all")
    cat = catalog(tmp_path)
    assert [e.folder for e in cat.entries] == ["a"] and cat.index_kept
    with sqlite3.connect(tmp_path / INDEX) as db:
        assert db.execute("SELECT count(*) FROM folders").fetchone() == (1,)
    (tmp_path / INDEX).unlink()
    (tmp_path / INDEX).mkdir()  # nothing can be written where the index goes (as in a read-only folder)
    cat = catalog(tmp_path)
    assert [e.folder for e in cat.entries] == ["a"] and not cat.index_kept
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".tmp")]


def test_broken_partial_and_live_folders_are_listed_as_such(tmp_path):
    """Damaged, incomplete, interrupted and in-progress folders are each listed with their state, never a crash."""
    add_run(tmp_path, "good", "2026-01-05T09:00:00+00:00")
    (add_run(tmp_path, "no-rows", "2026-01-06T09:00:00+00:00") / "trials.csv").unlink()
    (add_run(tmp_path, "bad-json", "2026-01-07T09:00:00+00:00") / "manifest.json").write_text("{bad")
    edited = add_run(tmp_path, "edited", "2026-01-08T09:00:00+00:00")
    (edited / "scenario.yaml").write_text("name: something else\n")
    _edit(add_run(tmp_path, "bad-summary", "2026-01-09T09:00:00+00:00") / "summary.json",
          lambda s: s.update(variants=[1, 2]))
    (tmp_path / "half-copied").mkdir()
    shutil.copy(REFERENCE / "summary.json", tmp_path / "half-copied")
    stopped = tmp_path / ".stopped.partial"
    (stopped / "chunks").mkdir(parents=True)
    (stopped / "run.json").write_text(json.dumps({"seed": 3, "trials": 2500}))
    (stopped / "chunks" / "baseline.0000000000.chunk").write_bytes(b"x")
    shutil.copy(REFERENCE / "scenario.yaml", stopped)
    (tmp_path / "notes").mkdir()  # not an output: not listed
    (tmp_path / "notes" / "readme.txt").write_text("minutes of the risk committee")
    with staged_folder(tmp_path / "live"):
        entries = {e.folder: e for e in catalog(tmp_path).entries}
        result = cli("runs", str(tmp_path))
    assert result.exit_code == 0, result.output
    status = {k: e.status for k, e in entries.items()}
    assert status == {"good": "complete", "no-rows": "broken", "bad-json": "broken", "edited": "broken",
                      "bad-summary": "broken", "half-copied": "broken", ".stopped.partial": "partial",
                      ".live.partial": "in progress"}
    assert "trials.csv missing" in entries["no-rows"].problem
    assert "cannot be read as JSON" in entries["bad-json"].problem
    assert "is not the scenario that was run" in entries["edited"].problem
    assert "variants should be" in entries["bad-summary"].problem
    assert "no manifest.json" in entries["half-copied"].problem
    assert "1 chunk of trials kept" in entries[".stopped.partial"].problem and "--resume" in entries[".stopped.partial"].problem
    assert entries[".stopped.partial"].scenario == "dmm-2024"
    for problem in ("trials.csv missing", "is not the scenario that was run", "1 chunk of trials kept",
                    "being written by a live process"):
        assert problem in result.output


def test_trend_page_has_one_point_per_run_and_marks_where_the_scenario_changed(tmp_path):
    """The trend draws each complete run once, oldest first, marks where the scenario changed, loads nothing."""
    root = tmp_path / "results"
    root.mkdir()
    add_run(root, "q3", "2026-07-01T09:00:00+00:00", seed=3, baseline_loss=20e6, scenario_edit="a control added")
    add_run(root, "q1", "2026-01-01T09:00:00+00:00", seed=1)
    add_run(root, "q2", "2026-04-01T09:00:00+00:00", seed=2, baseline_loss=35e6)
    (add_run(root, "q2-broken", "2026-04-02T09:00:00+00:00") / "trials.csv").unlink()
    result = cli("runs", "trend", "dmm-2024", str(root), "--out", str(tmp_path / "trend"))
    assert result.exit_code == 0, result.output
    assert "3 runs" in result.output and "changed 1 time" in result.output
    data = json.loads((tmp_path / "trend" / "trend.json").read_text())
    assert [p["folder"] for p in data["points"]] == ["q1", "q2", "q3"]
    assert [p["scenario_changed"] for p in data["points"]] == [False, False, True]
    assert [p["variants"]["baseline"]["expected_loss_usd"] for p in data["points"]] == [31061892.0, 35e6, 20e6]
    with (tmp_path / "trend" / "trend.csv").open() as fh:
        rows = list(csv.DictReader(fh))
    assert len(rows) == 3 * len(data["variants"])
    html = (tmp_path / "trend" / "trend.html").read_text()
    charts = re.findall(r"<svg.*?</svg>", html, flags=re.S)
    assert len(charts) == 3
    for svg in charts:  # one slot per run, and the mark where the file changed
        assert [d for d in ("2026-01-01", "2026-04-01", "2026-07-01") if d in svg] == ["2026-01-01", "2026-04-01",
                                                                                        "2026-07-01"]
        assert "scenario file changed" in svg
    assert ">changed<" in html
    assert "q2-broken" in html and "broken run" in html  # listed apart, not drawn
    md = (tmp_path / "trend" / "trend.md").read_text()
    assert "Where the scenario file changed" in md and md.count("| baseline |") == 3
    assert_loads_nothing(html)


def test_trend_errors(tmp_path, monkeypatch):
    """An unknown scenario exits 1 naming those there are; a trend page is never written over silently."""
    monkeypatch.setattr(catalog_module, "render_trend_html", lambda data: "<html></html>")  # no charts needed
    add_run(tmp_path, "q1", "2026-01-01T09:00:00+00:00")
    result = cli("runs", "trend", "nope", str(tmp_path), "--out", str(tmp_path / "t"))
    assert result.exit_code == 1 and "the scenarios with runs here: dmm-2024" in result.stderr
    assert not (tmp_path / "t").exists()
    assert cli("runs", "trend", "dmm-2024", str(tmp_path), "--out", str(tmp_path / "t")).exit_code == 0
    result = cli("runs", "trend", "dmm-2024", str(tmp_path), "--out", str(tmp_path / "t"))
    assert result.exit_code == 1 and "already exists" in result.stderr
    assert cli("runs", "trend", "dmm-2024", str(tmp_path), "--out", str(tmp_path / "t"), "--replace").exit_code == 0
    result = cli("runs", "trend")
    assert result.exit_code == 1 and "name one scenario" in result.stderr
    assert [e.folder for e in catalog(tmp_path).entries] == ["q1"]  # the trend folder is not a run


def test_the_documented_errors(tmp_path, monkeypatch):
    """docs/errors.md shows what `runs` prints for a missing folder, an unknown scenario and a trend without one."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "results").mkdir()
    add_run(tmp_path / "results", "dmm-2024", "2026-01-01T09:00:00+00:00")
    check_example("runs-errors", shown("runs", "archive"), shown("runs", "--scenario", "dmm-2023"),
                  shown("runs", "trend"))
