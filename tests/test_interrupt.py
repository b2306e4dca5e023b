"""Killing a real run: it stops promptly, writes no run folder, says how to resume, and resumes exactly."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from custodysim.studies.run import execute_run

DMM = Path(__file__).resolve().parent.parent / "scenarios" / "dmm-2024.yaml"
ARGS = ["--variant", "independent-verification", "--trials", "8000", "--seed", "4", "--workers", "2"]


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
def test_killed_run_resumes_to_the_uninterrupted_figures(tmp_path, sig):
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

    resumed = subprocess.run([sys.executable, "-m", "custodysim", "run", "--resume", str(out), "--workers", "2"],
                             capture_output=True, text=True, timeout=120)
    assert resumed.returncode == 0, resumed.stderr
    whole = execute_run(DMM, trials=8000, seed=4, out=tmp_path / "whole", variants=["independent-verification"])
    summary = json.loads((out / "summary.json").read_text())
    assert summary["variants"] == json.loads(json.dumps(whole.summary["variants"]))
    assert json.loads((out / "manifest.json").read_text())["resumed"] is True
    assert sorted(p.name for p in tmp_path.iterdir()) == ["run", "whole"]
