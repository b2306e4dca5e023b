"""Faults injected into runs and run folders: a full disk, a run interrupted after a few chunks, a damaged file."""

from __future__ import annotations

import errno
import io
import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from custodysim.errors import RunInterrupted
from custodysim.studies.run import execute_run

SCENARIOS = Path(__file__).resolve().parent.parent / "scenarios"
DMM = SCENARIOS / "dmm-2024.yaml"
SMALL = {"trials": 2500, "seed": 3, "variants": ["split-wallets"]}
"""A run of dmm-2024 in 10 chunks of 250 trials, a second or two."""


class _FullFile:
    """A file being written on a disk with ``room`` bytes left: a write past it fails as a full disk does."""

    def __init__(self, fh: Any, disk: FullDisk) -> None:
        self._fh, self._disk = fh, disk

    def write(self, data: Any) -> int:
        if len(data) > self._disk.room:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))  # as write(2) raises it: no file name
        self._disk.room -= len(data)
        written: int = self._fh.write(data)
        return written

    def __getattr__(self, name: str) -> Any:
        return getattr(self._fh, name)

    def __enter__(self) -> _FullFile:
        return self

    def __exit__(self, *exc: object) -> None:
        self._fh.close()


class FullDisk:
    """Makes every file opened for writing fail once ``room`` bytes are written, or only files ``named`` so."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch, room: int = 0, named: str | None = None) -> None:
        self.room = room
        real_open = io.open

        def fake_open(file: Any, mode: str = "r", *args: Any, **kwargs: Any) -> Any:
            fh = real_open(file, mode, *args, **kwargs)
            if not any(c in mode for c in "wax"):
                return fh
            if named is not None and Path(file).name != named:
                return fh
            return _FullFile(fh, self)

        monkeypatch.setattr(io, "open", fake_open)


def interrupted_run(out: Path, after: int = 2, **kwargs: Any) -> None:
    """Run dmm-2024 (:data:`SMALL`) to ``out`` and interrupt it after ``after`` chunks, as Ctrl-C does."""
    done: list[str] = []

    def interrupt(name: str, k: int) -> None:
        done.append(name)
        if len(done) == after:
            raise KeyboardInterrupt

    with pytest.raises(RunInterrupted):
        execute_run(DMM, out=out, progress=interrupt, **{**SMALL, **kwargs})


def edit_json(path: Path, change: Callable[[Any], object]) -> None:
    """Rewrite the JSON file at ``path`` after ``change`` changed its content in place."""
    data = json.loads(path.read_text(encoding="utf-8"))
    change(data)
    path.write_text(json.dumps(data), encoding="utf-8")


def snapshot(folder: Path) -> dict[str, bytes]:
    """Return every file under ``folder`` (hidden ones too) and its bytes."""
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}
