"""docs/errors.md's examples of run-time faults are the real output of each fault (see errordocs.py)."""

from __future__ import annotations

import os
import re
import shlex
import shutil
import signal
import time
from pathlib import Path

import pytest
from conftest import MINI
from errordocs import check_example, shown
from faults import DMM, SMALL, FullDisk, edit_json, interrupted_run
from test_lost_workers import _chunks, _cli, _wait_for, _workers

from custodysim.running.outputs import partial_dir, staged_folder
from custodysim.studies.attribution import execute_attribution
from custodysim.studies.provenance import Command
from custodysim.studies.run import PLAN, execute_run
from custodysim.studies.sweep import execute_sweep

RUN = ["run", "dmm-2024.yaml", "--trials", str(SMALL["trials"]), "--seed", str(SMALL["seed"]), "--variant",
       "split-wallets", "--workers", "1"]
"""The command of :data:`faults.SMALL`, as run in the folder of the example."""


@pytest.fixture
def here(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A folder holding dmm-2024.yaml, made the current folder, so that messages name paths as a user sees them."""
    shutil.copy(DMM, tmp_path / DMM.name)
    monkeypatch.chdir(tmp_path)
    return tmp_path


def test_a_damaged_plan(here):
    """The example of a damaged resume plan is what `run --resume` prints."""
    interrupted_run(Path("r4"))
    edit_json(partial_dir(Path("r4")) / PLAN, lambda plan: plan.update(seed=plan["seed"] + 1))
    check_example("plan-damaged", shown("run", "--resume", "r4"))


def test_a_live_run(here):
    """The example of a run in progress is what a second run and a `--resume` print while it is live."""
    with staged_folder(Path("r4")):
        pid = {f"process {os.getpid()}": "process 48213"}
        check_example("run-in-progress", shown(*RUN, "--out", "r4", same=pid), shown("run", "--resume", "r4", same=pid))


def test_a_full_disk(here, monkeypatch):
    """The example of a full disk is what a run and a --replace print when the disk fills."""
    with monkeypatch.context() as patch:
        FullDisk(patch, room=500_000)
        during_run = shown(*RUN, "--out", "r4")
    execute_run(Path("dmm-2024.yaml"), out=Path("r1"), trials=20, variants=["baseline"])
    with monkeypatch.context() as patch:
        FullDisk(patch, named=".report.html.tmp")
        during_replace = shown(*RUN, "--out", "r1", "--replace")
        during_report = shown("report", "r1")
    check_example("full-disk", during_run, during_replace, during_report)


def test_a_damaged_run_folder(here):
    """The example of damaged run folders is what `report` and `compare` print for them."""
    execute_run(Path("dmm-2024.yaml"), out=Path("r1"), trials=300, seed=2, variants=["split-wallets"])
    for name in ("r2", "r3", "r5"):
        shutil.copytree("r1", name)
    edit_json(Path("r1/summary.json"), lambda s: s["variants"]["baseline"].update(expected_loss_usd="n/a"))
    lines = Path("r2/trials.csv").read_bytes().split(b"\r\n")
    cells = lines[5].split(b",")
    cells[2] = b"nan"
    lines[5] = b",".join(cells)
    Path("r2/trials.csv").write_bytes(b"\r\n".join(lines))
    with Path("r3/scenario.yaml").open("a") as fh:
        fh.write("# edited after the run\n")
    edit_json(Path("r5/stories.json"), lambda stories: stories[0].update(lines="no story"))
    check_example("damaged-folder", shown("report", "r1"), shown("report", "r2"), shown("report", "r3"),
                  shown("compare", "r5", "r3", "--out", "c1"))


def test_another_commands_folder(here):
    """The example of a sweep's and an attribution's folder given to `report` and `compare` is what they print."""
    Path("mini.yaml").write_text(MINI, encoding="utf-8")
    sweep = ["sweep", "mini.yaml", "--set", "wallets.hot.balance=100,200", "--trials", "20", "--out", "s1"]
    execute_sweep(Path("mini.yaml"), sweep[3:4], trials=20, out=Path("s1"),
                  command=Command(("custodysim", *sweep), time.perf_counter()))
    attribution = ["attribution", "mini.yaml", "--trials", "20", "--out", "a1"]
    execute_attribution(Path("mini.yaml"), trials=20, out=Path("a1"),
                        command=Command(("custodysim", *attribution), time.perf_counter()))
    check_example("another-commands-folder", shown("report", "s1"), shown("report", "a1"),
                  shown("compare", "s1", "a1", "--out", "c1"), shown("compare", "a1", "s1", "--out", "c1"))


def test_a_trial_too_costly(here):
    """The example of a trial past its budget is what a run of a far too busy threat prints."""
    heavy = Path("dmm-2024.yaml").read_text().replace("campaigns_per_year: 1.0 ", "campaigns_per_year: 1000 ")
    Path("busy.yaml").write_text(heavy.replace("horizon_days: 365 ", "horizon_days: 1825\n  max_campaigns_per_threat: "
                                                                     "10000\n "))
    check_example("trial-too-costly", shown("run", "busy.yaml", "--trials", "500", "--workers", "1", "--out", "r8"))


def test_a_worker_died(here):
    """The example of a dead worker is what a run prints when one of its workers is killed (its pid and trials vary)."""
    args = ["run", "dmm-2024.yaml", "--trials", "8000", "--variant", "independent-verification", "--workers", "2",
            "--out", "r6"]
    proc = _cli(*args)
    _wait_for(lambda: len(_chunks(Path("r6"))) >= 1 and len(_workers(proc)) == 2, proc, "chunk")
    os.kill(_workers(proc)[0].pid, signal.SIGKILL)
    _, stderr = proc.communicate(timeout=120)
    assert proc.returncode == 1, stderr
    text = re.sub(r"trials \d+-\d+", "trials 1000-1999", re.sub(r"worker process \d+", "worker process 13150", stderr))
    check_example("worker-died", f"$ custodysim {shlex.join(args)}      # a worker process is killed\n{text.strip()}")
