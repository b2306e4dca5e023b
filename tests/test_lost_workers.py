"""Processes that die: a lost worker or scheduler stops a run with its name and keeps its chunks; orphans end."""

from __future__ import annotations

import json
import os
import re
import shlex
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import psutil
import pytest
from conftest import local_dask_cluster
from errordocs import check_example
from typer.testing import CliRunner

from custodysim.cli import app
from custodysim.studies.run import execute_run

DMM = Path(__file__).resolve().parent.parent / "scenarios" / "dmm-2024.yaml"
RUN = ["--variant", "independent-verification", "--trials", "8000", "--seed", "4"]  # conftest's `uninterrupted`


def _figures(folder: Path) -> dict:
    return json.loads((folder / "summary.json").read_text())["variants"]


def _cli(*args: str) -> subprocess.Popen[str]:
    return subprocess.Popen([sys.executable, "-m", "custodysim", *args], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, start_new_session=True)


def _chunks(out: Path) -> list[Path]:
    return sorted((out.parent / f".{out.name}.partial" / "chunks").glob("*.chunk"))


def _wait_for(condition, proc: subprocess.Popen[str], what: str) -> None:
    deadline = time.monotonic() + 60
    while not condition():
        assert proc.poll() is None, proc.communicate()
        assert time.monotonic() < deadline, f"no {what} in 60 s"
        time.sleep(0.05)


def _workers(proc: subprocess.Popen[str]) -> list[psutil.Process]:
    """Return the run's worker processes: its descendants that start no process of their own."""
    family = psutil.Process(proc.pid).children(recursive=True)
    return [p for p in family if not p.children() and "resource_tracker" not in " ".join(p.cmdline())]


def _ended(procs: list[psutil.Process], timeout: float = 30) -> list[psutil.Process]:
    """Wait for ``procs`` to end; kill and return those still alive after ``timeout`` seconds."""
    _, alive = psutil.wait_procs(procs, timeout=timeout)
    for p in alive:
        p.kill()
    return alive


@pytest.mark.parametrize("replace", [False, True], ids=["new", "replace"])
def test_a_killed_worker_stops_the_run_naming_it_and_resume_finishes_it(tmp_path, uninterrupted, replace):
    """SIGKILL of a worker stops the run in seconds with exit 1, naming the worker and its trials; --resume finishes it."""
    out = tmp_path / "run"
    if replace:
        execute_run(DMM, trials=20, seed=1, out=out, variants=["baseline"])  # a previous run, to be kept
    before = (out / "summary.json").read_bytes() if replace else None
    proc = _cli("run", str(DMM), *RUN, "--workers", "2", "--out", str(out), *(["--replace"] if replace else []))
    _wait_for(lambda: len(_chunks(out)) >= 2 and len(_workers(proc)) == 2, proc, "chunk")
    workers = _workers(proc)
    victim = workers[0].pid
    os.kill(victim, signal.SIGKILL)
    killed_at = time.monotonic()
    _, stderr = proc.communicate(timeout=60)
    took = time.monotonic() - killed_at
    print(f"stopped {took:.2f} s after the worker was killed")
    assert took < 30
    assert proc.returncode == 1, stderr
    assert re.search(rf"worker process {victim} died \(killed by signal 9, SIGKILL\) while simulating trials "
                     r"\d+-\d+ of variants baseline, independent-verification; no run folder was written", stderr)
    assert f"Resume with: custodysim run --resume {out}" in stderr and "Traceback" not in stderr
    assert not _ended(workers)  # the other worker too
    assert _chunks(out)
    assert (out / "summary.json").read_bytes() == before if replace else not out.exists()

    # the CLI's --resume in this process: a fresh interpreter would add its start-up and nothing else
    resumed = CliRunner().invoke(app, ["run", "--resume", str(out), "--workers", "2"])
    assert resumed.exit_code == 0, resumed.output
    assert _figures(out) == json.loads(json.dumps(uninterrupted))


def test_workers_end_when_the_run_is_killed(tmp_path):
    """SIGKILL of the main process leaves no worker running."""
    out = tmp_path / "run"
    proc = _cli("run", str(DMM), *RUN, "--workers", "2", "--out", str(out))
    _wait_for(lambda: len(_workers(proc)) == 2, proc, "workers")
    family = psutil.Process(proc.pid).children(recursive=True)
    proc.kill()
    killed_at = time.monotonic()
    proc.communicate()
    assert not _ended(family), "orphans left running"
    print(f"every process of the run ended {time.monotonic() - killed_at:.2f} s after it was killed")


ORPHAN_MAKER = textwrap.dedent("""
    import time, types
    from custodysim.running import executors
    executors.sys = types.SimpleNamespace(platform="elsewhere")  # no prctl: the portable watch only
    next(executors.ProcessPool(1).map_unordered(time.sleep, [3600]))
""")


def test_a_worker_ends_with_its_parent_where_the_kernel_does_not_see_to_it(tmp_path):
    """Without Linux's parent-death signal, a worker still ends when the process that started it is killed."""
    proc = subprocess.Popen([sys.executable, "-c", ORPHAN_MAKER], start_new_session=True)
    _wait_for(lambda: bool(psutil.Process(proc.pid).children()), proc, "worker")
    workers = psutil.Process(proc.pid).children(recursive=True)
    proc.kill()
    proc.wait()
    assert not _ended(workers)


# --- Dask -----------------------------------------------------------------------------------------------------


@pytest.fixture
def cluster():
    """A fresh local Dask cluster of 2 worker processes (a test may break it)."""
    yield from local_dask_cluster()


def test_a_lost_dask_worker_is_retried_and_the_figures_are_unchanged(tmp_path, uninterrupted, cluster):
    """SIGKILL of a Dask worker mid-run: Dask runs its chunks again, and the run completes with identical figures."""
    with pytest.importorskip("distributed").Client(cluster) as client:
        pids = list(client.run(os.getpid).values())
    out = tmp_path / "run"
    proc = _cli("run", str(DMM), *RUN, "--executor", "dask", "--scheduler", cluster.scheduler_address,
                "--out", str(out))
    _wait_for(lambda: len(_chunks(out)) >= 2, proc, "chunk")
    os.kill(pids[0], signal.SIGKILL)
    _, stderr = proc.communicate(timeout=120)
    assert proc.returncode == 0, stderr
    assert _figures(out) == json.loads(json.dumps(uninterrupted))


def test_a_lost_dask_scheduler_stops_the_run_and_keeps_its_chunks(tmp_path, uninterrupted, cluster):
    """A scheduler lost mid-run ends it with exit 1 and a message; the chunks are kept and --resume finishes it."""
    out = tmp_path / "run"
    proc = _cli("run", str(DMM), *RUN, "--executor", "dask", "--scheduler", cluster.scheduler_address,
                "--out", str(out))
    _wait_for(lambda: len(_chunks(out)) >= 2, proc, "chunk")
    cluster.close()
    lost_at = time.monotonic()
    _, stderr = proc.communicate(timeout=60)
    print(f"stopped {time.monotonic() - lost_at:.2f} s after the scheduler closed")
    assert proc.returncode == 1, stderr
    assert re.search(r"lost the connection to the Dask scheduler at tcp://\S+ while simulating trials \d+-\d+ of "
                     r"variants baseline, independent-verification; no run folder was written", stderr)
    assert f"Resume with: custodysim run --resume {out}" in stderr and "Traceback" not in stderr
    assert _chunks(out) and not out.exists()
    # docs/errors.md shows this message (its address, trials and folder vary from run to run)
    address = "tcp://127.0.0.1:43815"
    text = re.sub(r"trials \d+-\d+", "trials 2000-2999",
                  stderr.replace(cluster.scheduler_address, address).replace(str(out), "r7"))
    check_example("dask-scheduler-lost", f"$ custodysim run dmm-2024.yaml {shlex.join(RUN)} --executor dask "
                                         f"--scheduler {address} --out r7\n{text.strip()}")

    # the CLI's --resume in this process: a fresh interpreter would add its start-up and nothing else
    resumed = CliRunner().invoke(app, ["run", "--resume", str(out), "--workers", "2"])
    assert resumed.exit_code == 0, resumed.output
    assert _figures(out) == json.loads(json.dumps(uninterrupted))


def test_an_error_in_a_task_reaches_the_caller_and_the_workers_end():
    """A task's exception is raised by the pool's map as it was raised in the worker, and no worker stays."""
    import math

    from custodysim.running.executors import ProcessPool

    def pool_processes() -> list[psutil.Process]:  # not a fork server or resource tracker, which stay
        helpers = [p for p in psutil.Process().children() if "multiprocessing" in " ".join(p.cmdline())]
        return [p for p in psutil.Process().children(recursive=True) if p not in helpers]

    before = pool_processes()
    with pytest.raises(ValueError, match="math domain error"):
        list(ProcessPool(2).map_unordered(math.sqrt, [4.0, -1.0, 9.0]))
    assert not _ended([p for p in pool_processes() if p not in before], timeout=10)
