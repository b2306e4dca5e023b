"""Provenance of every output folder: its manifest (what made it, how, from what and when).

A run, a sweep and an attribution each write ``manifest.json`` last (its presence marks the folder
complete) and copy the scenario file as run, so that any figure can be traced back and remade.
"""

from __future__ import annotations

import os
import platform
import sys
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from custodysim import __version__
from custodysim.running.executors import Executor
from custodysim.running.runfolder import SCENARIO_COPY

__all__ = ["SCENARIO_COPY", "build_manifest", "provenance", "shareable_command"]


def build_manifest(command: list[str], scenario_file: str, sha256: str, seed: int, trials: int,
                   own: dict[str, Any], executor: Executor, started: float, files: list[str],
                   kind: str | None = None) -> dict[str, Any]:
    """Return manifest.json's content: what made an output folder, how, from what and when.

    The keys are in a fixed order: package, version, ``kind`` (when given), created_utc, command,
    scenario_file, scenario_sha256, seed, trials, then ``own`` (the output's own keys, in their order),
    executor, workers, wall_time_seconds, python and files.

    Args:
        command: the command line, as recorded (see :func:`shareable_command`).
        scenario_file: the scenario file's name.
        sha256: the scenario file's sha256.
        seed: the master seed.
        trials: trials per variant (or per grid point, or combination).
        own: the keys that only this kind of output has.
        executor: where the trials ran.
        started: when the work started (:func:`time.perf_counter`), for the wall time.
        files: the folder's files.
        kind: what the folder holds (``sweep``); None leaves the key out (as a run's and an attribution's
            manifest do).
    """
    return {
        "package": "custodysim",
        "version": __version__,
        **({"kind": kind} if kind is not None else {}),
        "created_utc": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "command": command,
        "scenario_file": scenario_file,
        "scenario_sha256": sha256,
        "seed": seed,
        "trials": trials,
        **own,
        "executor": executor.kind,
        "workers": executor.workers,
        "wall_time_seconds": round(time.perf_counter() - started, 3),
        "python": platform.python_version(),
        "files": files,
    }


def provenance(manifest: dict[str, Any]) -> dict[str, Any]:
    """Return the part of a manifest a summary carries as its ``provenance``."""
    return {k: manifest[k] for k in ("version", "scenario_sha256", "seed", "trials", "created_utc")}


def shareable_command(argv: list[str] | None = None) -> list[str]:
    """Return ``argv`` with absolute paths cut to their last part, so a shared run names no home folder.

    Args:
        argv: the command line (default: this process's, as ``custodysim ARGS``).
    """
    out = []
    for arg in argv if argv is not None else ["custodysim", *sys.argv[1:]]:
        flag, eq, value = arg.partition("=")
        if eq and os.path.isabs(value):
            out.append(f"{flag}={Path(value).name}")
        elif os.path.isabs(arg):
            out.append(Path(arg).name)
        else:
            out.append(arg)
    return out
