"""Reading a finished run folder back: its summary, manifest, trial rows and stories."""

from __future__ import annotations

import csv
import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from custodysim.errors import RunFolderError
from custodysim.runner import Columns, VariantRows

REQUIRED = ("manifest.json", "summary.json", "trials.csv")


@dataclass(frozen=True)
class StoredRun:
    """A complete run folder, read back."""

    folder: Path
    summary: dict[str, Any]
    manifest: dict[str, Any]
    rows: list[VariantRows]
    columns: Columns
    stories: list[dict[str, Any]]


def read_run(folder: Path) -> StoredRun:
    """Read a complete run folder.

    Raises:
        RunFolderError: the folder is missing, incomplete, or its files are not a run's.
    """
    if not folder.is_dir():
        raise RunFolderError(f"{folder}: no such run folder")
    missing = [name for name in REQUIRED if not (folder / name).is_file()]
    if missing:
        raise RunFolderError(f"{folder}: not a complete run (missing {', '.join(missing)}); "
                             "was it interrupted, or is it another folder?")
    try:
        manifest = json.loads((folder / "manifest.json").read_text(encoding="utf-8"))
        summary = json.loads((folder / "summary.json").read_text(encoding="utf-8"))
        rows, columns = read_trials_csv(folder / "trials.csv")
        stories_path = folder / "stories.json"
        stories = json.loads(stories_path.read_text(encoding="utf-8")) if stories_path.is_file() else []
    except (OSError, ValueError, KeyError) as exc:
        raise RunFolderError(f"{folder}: its files cannot be read as a run ({exc})") from None
    if [r.name for r in rows] != list(summary.get("variants", {})):
        raise RunFolderError(f"{folder}: trials.csv and summary.json name different variants")
    return StoredRun(folder, summary, manifest, rows, columns, stories)


def read_trials_csv(path: Path) -> tuple[list[VariantRows], Columns]:
    """Read the tidy rows written by :func:`custodysim.outputs.write_trials_csv`."""
    with path.open(newline="", encoding="utf-8") as fh:
        reader = csv.reader(fh)
        header = next(reader)
        records = list(reader)
    assets = tuple(c[len("loss_"):] for c in header if c.startswith("loss_") and not c.startswith("loss_usd"))
    wallets = tuple(c[len("loss_usd_wallet_"):] for c in header if c.startswith("loss_usd_wallet_"))
    columns = Columns(assets, wallets)
    expected = ["variant", *columns.numeric, *Columns.text]
    if header != expected:
        raise ValueError("unexpected columns in trials.csv")
    by_variant: dict[str, list[list[str]]] = {}
    for record in records:
        by_variant.setdefault(record[0], []).append(record)
    rows = []
    n_num = len(columns.numeric)
    for name, recs in by_variant.items():
        numbers = np.array([[float(x) if x != "" else math.nan for x in r[1:1 + n_num]] for r in recs])
        numbers = numbers.reshape(len(recs), n_num)
        texts = {c: [r[1 + n_num + j] for r in recs] for j, c in enumerate(Columns.text)}
        rows.append(VariantRows(name, {c: numbers[:, j].copy() for j, c in enumerate(columns.numeric)}, texts))
    return rows, columns
