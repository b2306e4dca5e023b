"""The run folder: written aside, then made visible in one rename, never over an existing run.

A run writes into a hidden sibling folder (``.NAME.partial``) and renames it to ``NAME`` only when
every file is complete, so a crash or Ctrl-C leaves no folder that looks like a finished run.
"""

from __future__ import annotations

import csv
import json
import math
import os
import shutil
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np

from custodysim.errors import RunFolderError

RESULTS_DIR = Path("results")


def default_run_dir(scenario_name: str, now: datetime | None = None, root: Path = RESULTS_DIR) -> Path:
    """Return a new folder path under ``root`` named after the scenario and the time."""
    now = now or datetime.now(timezone.utc)
    base = root / f"{scenario_name}-{now:%Y%m%d-%H%M%S}"
    candidate, k = base, 2
    while candidate.exists():
        candidate = base.with_name(f"{base.name}-{k}")
        k += 1
    return candidate


def ensure_new(final: Path, replace: bool = False) -> None:
    """Refuse a run folder that exists, unless ``replace`` is asked and it is a complete run.

    Raises:
        RunFolderError: if ``final`` exists and may not be replaced.
    """
    if not final.exists():
        return
    if not replace:
        raise RunFolderError(f"{final} already exists; choose another --out, or pass --replace to replace "
                             "a previous run (runs are never overwritten silently)")
    if not (final / "manifest.json").is_file():
        raise RunFolderError(f"{final} exists and is not a complete run folder; --replace only replaces runs")


def partial_dir(final: Path) -> Path:
    """Return the hidden folder where the run to ``final`` is assembled (and kept if interrupted)."""
    return final.parent / f".{final.name}.partial"


@contextmanager
def staged_folder(final: Path, replace: bool = False, resume: bool = False,
                  keep_unfinished: bool = True) -> Iterator[Path]:
    """Yield the hidden staging folder of ``final``; it becomes ``final`` only if the block completes.

    If the block is interrupted or fails, the staging folder stays (hidden, named ``.NAME.partial``) so
    that a run can be resumed, unless ``keep_unfinished`` is false (for outputs that are quick to redo);
    it never looks like a finished run. With ``replace``, a previous complete run at ``final`` is swapped
    out only once the new one is complete.

    Raises:
        RunFolderError: ``final`` exists and may not be replaced; an interrupted run is in the way (or,
            with ``resume``, missing); or the folder cannot be made.
    """
    staging = partial_dir(final)
    if resume:
        if not staging.is_dir():
            raise RunFolderError(f"{final}: there is no interrupted run to resume (no {staging.name} beside it)")
    else:
        ensure_new(final, replace)
        if staging.exists():
            raise RunFolderError(f"{final}: an interrupted run to this folder is kept in {staging}; resume it with "
                                 f"'custodysim run --resume {final}' or delete {staging}")
        try:
            staging.mkdir(parents=True)
        except OSError as exc:
            raise RunFolderError(f"cannot create {staging}: {exc.strerror}") from None
    try:
        yield staging
    except BaseException:
        if not keep_unfinished:
            shutil.rmtree(staging, ignore_errors=True)
        raise
    retired = None
    if final.exists():
        ensure_new(final, replace)
        retired = final.parent / f".{final.name}.replaced-{os.getpid()}"
        final.rename(retired)
    staging.rename(final)
    if retired is not None:
        shutil.rmtree(retired, ignore_errors=True)


def json_text(data: Any) -> str:
    """Return ``data`` as indented JSON text (NaN and infinity as null)."""
    return json.dumps(_clean(data), indent=2, sort_keys=False) + "\n"


def write_json(path: Path, data: Any) -> None:
    """Write ``data`` as indented JSON (NaN and infinity as null)."""
    path.write_text(json_text(data), encoding="utf-8")


def _clean(x: Any) -> Any:
    if isinstance(x, float):
        return None if math.isnan(x) or math.isinf(x) else x
    if isinstance(x, dict):
        return {k: _clean(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_clean(v) for v in x]
    if isinstance(x, np.generic):
        return _clean(x.item())
    return x


def write_rows(path: Path, rows: list[dict[str, Any]], fieldnames: Sequence[str]) -> None:
    """Write tidy rows as CSV, one column per field name.

    Numbers are written as Python writes them (``repr``: the shortest text that reads back to the same
    float), a missing value (None) as an empty field, true and false in lower case.
    """
    with path.open("w", newline="", encoding="utf-8") as fh:
        writer = csv.DictWriter(fh, fieldnames=fieldnames)
        writer.writeheader()
        writer.writerows({k: _cell(v) for k, v in row.items()} for row in rows)


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    return repr(value) if isinstance(value, float) else str(value)
