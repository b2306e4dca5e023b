"""Killing a real run: it stops promptly, writes no run folder, says how to resume, and resumes exactly."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest
import yaml
from typer.testing import CliRunner

from custodysim.cli import app

DMM = Path(__file__).resolve().parent.parent / "scenarios" / "dmm-2024.yaml"
ARGS = ["--variant", "independent-verification", "--trials", "8000", "--seed", "4", "--workers", "2"]  # `uninterrupted`


def _start(out: Path) -> subprocess.Popen[str]:
    # A shell without job control starts background jobs with SIGINT ignored, and Python keeps an ignored
    # SIGINT ignored: give the run the default disposition a terminal's foreground command has.
    return subprocess.Popen([sys.executable, "-m", "custodysim", "run", str(DMM), *ARGS, "--out", str(out)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))


def _wait_for_chunks(out: Path, n: int, proc: subprocess.Popen[str]) -> None:
    chunks = out.parent / f".{out.name}.partial" / "chunks"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if chunks.is_dir() and len(list(chunks.glob("*.chunk"))) >= n:
            return
        assert proc.poll() is None, proc.communicate()
        time.sleep(0.05)
    raise AssertionError("the run produced no chunks in 60 s")


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_killed_run_resumes_to_the_uninterrupted_figures(tmp_path, sig, uninterrupted):
    """A run killed mid-way exits 130 with a resume hint, leaves no run folder, and resumes to identical figures."""
    out = tmp_path / "run"
    proc = _start(out)
    _wait_for_chunks(out, 3, proc)
    killed_at = time.monotonic()
    proc.send_signal(sig)
    _, stderr = proc.communicate(timeout=30)
    assert time.monotonic() - killed_at < 10  # promptly
    assert proc.returncode == 130, stderr
    assert "Resume with: custodysim run --resume" in stderr and "Traceback" not in stderr
    assert not out.exists()

    # the CLI's --resume in this process: a fresh interpreter would add its start-up and nothing else
    resumed = CliRunner().invoke(app, ["run", "--resume", str(out), "--workers", "2"])
    assert resumed.exit_code == 0, resumed.output
    summary = json.loads((out / "summary.json").read_text())
    assert summary["variants"] == json.loads(json.dumps(uninterrupted))  # conftest: the same run in one process
    assert json.loads((out / "manifest.json").read_text())["resumed"] is True
    assert sorted(p.name for p in tmp_path.iterdir()) == ["run"]


def _heavy(tmp_path: Path) -> Path:
    """Return a valid scenario whose chunks take minutes: DMM with 1,000 campaigns a year over ten years."""
    doc = yaml.safe_load(DMM.read_text())
    doc["settings"]["horizon_days"] = 3650
    for threat in doc["threats"].values():
        threat["campaigns_per_year"] = 1000
    path = tmp_path / "heavy.yaml"
    path.write_text(yaml.safe_dump(doc, sort_keys=False))
    return path


@pytest.mark.parametrize(("sig", "workers"), [(signal.SIGINT, 2), (signal.SIGTERM, 2), (signal.SIGINT, 1)],
                         ids=["SIGINT", "SIGTERM", "SIGINT-one-process"])
def test_a_heavy_run_stops_within_seconds_mid_chunk(tmp_path, sig, workers):
    """A signal in the middle of chunks that take minutes stops the run within seconds: 130, no folder, no workers."""
    out = tmp_path / "run"
    proc = subprocess.Popen([sys.executable, "-m", "custodysim", "run", str(_heavy(tmp_path)), "--trials", "10000",
                             "--workers", str(workers), "--out", str(out)], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, start_new_session=True,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    staging = out.parent / f".{out.name}.partial"
    deadline = time.monotonic() + 60
    while not (staging / "run.json").is_file() or len(psutil.Process(proc.pid).children()) < workers - 1:
        assert proc.poll() is None, proc.communicate()
        assert time.monotonic() < deadline, "the run did not start in 60 s"
        time.sleep(0.05)
    time.sleep(3)  # well into the first chunks (of 1,000 trials: a minute each before this fix)
    family = psutil.Process(proc.pid).children(recursive=True)
    assert not list(staging.glob("chunks/*.chunk"))  # no chunk ends before the signal
    os.killpg(proc.pid, sig)  # to the whole group, as a terminal's Ctrl-C
    signalled = time.monotonic()
    _, stderr = proc.communicate(timeout=60)
    took = time.monotonic() - signalled
    print(f"{signal.Signals(sig).name} with {workers} worker(s): stopped in {took:.2f} s")
    assert took < 30  # the aim is 5 s; the margin is for a busy machine
    assert proc.returncode == 130, stderr
    assert "interrupted: no run folder was written" in stderr and "Traceback" not in stderr
    assert not out.exists() and (staging / "run.json").is_file()  # kept for --resume
    _, alive = psutil.wait_procs(family, timeout=10)
    assert not alive
