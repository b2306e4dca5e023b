"""Provenance of every output folder: its manifest (what made it, how, from what and when).

A run, a sweep, an attribution and a comparison each write ``manifest.json`` last (its presence marks
the folder complete); all but a comparison copy the scenario file as run, so that any figure can be
traced back and remade.

The manifest records the command line as typed (:class:`Command`), a path under the output folder
written relative to it, and how long the whole command took to the moment the manifest was written
(``wall_seconds``). A study called from Python rather than from the ``custodysim`` command records a
``command`` of null and times the call.
"""

from __future__ import annotations

import os
import platform
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from custodysim import __version__
from custodysim.running.executors import Executor
from custodysim.running.outputs import write_json
from custodysim.running.runfolder import SCENARIO_COPY

__all__ = ["SCENARIO_COPY", "Command", "as_typed", "build_manifest", "comparison_manifest", "provenance",
           "write_manifest"]


@dataclass(frozen=True)
class Command:
    """The command line that asked for an output folder, and when it started.

    Attributes:
        argv: the words as typed, the program's name first (``custodysim``, ``run``, ...).
        started: when the command started (:func:`time.perf_counter`): ``wall_seconds`` counts from it.
    """

    argv: tuple[str, ...]
    started: float


def as_typed(command: Command | None, folder: Path) -> list[str] | None:
    """Return the command line to record in the manifest of ``folder`` (None for a call from Python).

    Every word is kept as typed, but for a path to something inside ``folder`` (the scenario copy of a
    run replaced in place, say), which is written relative to it, and a path in the user's home folder,
    which is written from ``~`` as a shell would expand it: the manifest names no user.

    Args:
        command: the command line, or None when the study was called from Python.
        folder: the output folder the manifest describes.
    """
    if command is None:
        return None
    inside = Path(os.path.abspath(folder))
    home = os.path.expanduser("~")
    out = []
    for word in command.argv:
        flag, eq, value = word.partition("=")
        if eq and flag.startswith("-"):
            out.append(f"{flag}={_path_as_typed(value, inside, home)}")
        else:
            out.append(_path_as_typed(word, inside, home))
    return out


def _path_as_typed(word: str, folder: Path, home: str) -> str:
    """Return ``word``, relative to ``folder`` if it names something inside it, from ``~`` if under ``home``."""
    if not word or word.startswith("-"):
        return word
    path = Path(os.path.abspath(word))
    if folder in path.parents and os.path.lexists(path):
        return path.relative_to(folder).as_posix()
    if os.path.isabs(word) and home not in ("", "/") and Path(home) in Path(word).parents:
        return "~/" + Path(word).relative_to(home).as_posix()
    return word


def build_manifest(command: list[str] | None, scenario_file: str, sha256: str, seed: int, trials: int,
                   own: dict[str, Any], executor: Executor, started: float, files: list[str],
                   kind: str | None = None) -> dict[str, Any]:
    """Return manifest.json's content: what made an output folder, how, from what and when.

    The keys are in a fixed order: package, version, ``kind`` (when given), created_utc, command,
    scenario_file, scenario_sha256, seed, trials, then ``own`` (the output's own keys, in their order),
    executor, workers, wall_time_seconds, wall_seconds, python and files. ``wall_seconds`` is null
    until :func:`write_manifest` writes the manifest.

    Args:
        command: the command line, as recorded (see :func:`as_typed`).
        scenario_file: the scenario file's name.
        sha256: the scenario file's sha256.
        seed: the master seed.
        trials: trials per variant (or per grid point, or combination).
        own: the keys that only this kind of output has.
        executor: where the trials ran.
        started: when the study's work started (:func:`time.perf_counter`), for ``wall_time_seconds``.
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
        "wall_seconds": None,
        "python": platform.python_version(),
        "files": files,
    }


def comparison_manifest(command: list[str] | None, created_utc: str, files: list[str]) -> dict[str, Any]:
    """Return the manifest of a comparison folder.

    Its keys, in order: package, version, kind (``compare``), created_utc, command, wall_seconds (null
    until :func:`write_manifest` writes it), python and files. The runs compared, and how each was made,
    are in comparison.json.

    Args:
        command: the command line, as recorded (see :func:`as_typed`).
        created_utc: when the comparison was made (as comparison.json says).
        files: the folder's files.
    """
    return {"package": "custodysim", "version": __version__, "kind": "compare", "created_utc": created_utc,
            "command": command, "wall_seconds": None, "python": platform.python_version(), "files": files}


def write_manifest(folder: Path, manifest: dict[str, Any], since: float) -> None:
    """Write ``folder``'s manifest.json, the last file of the folder, with the command's ``wall_seconds``.

    Args:
        folder: the (staging) folder.
        manifest: its content (``wall_seconds`` is set here).
        since: when the command started (:attr:`Command.started`; for a call from Python, when the call did).
    """
    manifest["wall_seconds"] = round(time.perf_counter() - since, 3)
    write_json(folder / "manifest.json", manifest)


def provenance(manifest: dict[str, Any]) -> dict[str, Any]:
    """Return the part of a manifest a summary carries as its ``provenance``."""
    return {k: manifest[k] for k in ("version", "scenario_sha256", "seed", "trials", "created_utc")}
