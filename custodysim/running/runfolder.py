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
from custodysim.running.rows import LATER_COLUMNS, Chunk, Columns, RowsBuilder, VariantRows
from custodysim.simulation.results import PATH_TYPES

REQUIRED = ("manifest.json", "summary.json", "trials.csv")
BLOCK = 1000
"""Rows of trials.csv parsed into arrays at a time: a long file is never held as millions of Python lists."""


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
        if not isinstance(manifest, dict) or not isinstance(summary, dict):
            raise ValueError("manifest.json and summary.json must hold JSON objects")
        rows, columns = read_trials_csv(folder / "trials.csv")
        stories_path = folder / "stories.json"
        stories = json.loads(stories_path.read_text(encoding="utf-8")) if stories_path.is_file() else []
    except (OSError, ValueError, KeyError) as exc:
        raise RunFolderError(f"{folder}: its files cannot be read as a run ({exc})") from None
    if [r.name for r in rows] != list(summary.get("variants", {})):
        raise RunFolderError(f"{folder}: trials.csv and summary.json name different variants")
    _check_rows(folder, rows, manifest.get("trials"), summary.get("baseline"))
    return StoredRun(folder, summary, manifest, rows, columns, stories)


def _check_rows(folder: Path, rows: list[VariantRows], trials: object, baseline: object) -> None:
    """Refuse rows that do not fit the manifest: every variant holds trials 0..N-1 exactly once."""
    if not isinstance(baseline, str) or baseline not in [r.name for r in rows]:
        raise RunFolderError(f"{folder}: summary.json names no baseline that trials.csv has rows for")
    first: np.ndarray | None = None
    for r in rows:
        numbers = np.sort(r.numbers["trial"])
        if len(numbers) != trials:
            raise RunFolderError(f"{folder}: trials.csv has {len(numbers)} trials of {r.name!r}, "
                                 f"manifest.json says {trials}; the file is damaged")
        if len(np.unique(numbers)) != len(numbers):
            raise RunFolderError(f"{folder}: trials.csv repeats trial numbers of {r.name!r}")
        if first is not None and not np.array_equal(first, numbers):
            raise RunFolderError(f"{folder}: variants in trials.csv have different trial numbers")
        first = numbers


def read_trials_csv(path: Path) -> tuple[list[VariantRows], Columns]:
    """Read the tidy rows written by :func:`custodysim.running.trialscsv.write_trials_csv`.

    The file is read a block of rows at a time into each variant's arrays (text as categories), so a
    run of millions of rows is not held as millions of Python lists.

    Raises:
        ValueError: the file is empty, has other columns, a row of the wrong length, or a bad number.
    """
    with path.open(newline="", encoding="utf-8") as fh:
        reader = csv.reader(fh)
        header = next(reader, None)
        if header is None:
            raise ValueError("trials.csv is empty")
        columns = _columns_of(header)
        # A run written before the later columns lacks them: they read back as LATER_COLUMNS says.
        present = [c for c in columns.numeric if c not in LATER_COLUMNS or c in header]
        if header != ["variant", *present, *Columns.text]:
            raise ValueError("unexpected columns in trials.csv")
        where = [columns.numeric.index(c) for c in present]
        builders: dict[str, RowsBuilder] = {}
        blocks: dict[str, list[list[str]]] = {}
        for n, record in enumerate(reader, start=2):
            if len(record) != len(header):
                raise ValueError(f"trials.csv line {n} has {len(record)} fields, not {len(header)}")
            block = blocks.get(record[0])
            if block is None:  # variants keep the order of their first rows
                block = blocks[record[0]] = []
                builders[record[0]] = RowsBuilder(record[0], columns, BLOCK)
            block.append(record)
            if len(block) == BLOCK:
                _add_block(builders, record[0], block, columns, where)
                block.clear()
        for name, block in blocks.items():
            _add_block(builders, name, block, columns, where)
    return [b.finish() for b in builders.values()], columns


def _add_block(builders: dict[str, RowsBuilder], name: str, block: list[list[str]], columns: Columns,
               where: list[int]) -> None:
    """Append a block of one variant's records to its rows (``where``: each stored number's column)."""
    if not block:
        return
    n_num = len(where)
    numbers = np.array([[float(x) if x != "" else math.nan for x in r[1:1 + n_num]] for r in block])
    if n_num < len(columns.numeric):
        full = np.tile(np.array([LATER_COLUMNS.get(c, math.nan) for c in columns.numeric]), (len(block), 1))
        full[:, where] = numbers
        numbers = full
    builders[name].add(Chunk.from_texts(numbers, [r[1 + n_num:] for r in block]))


def _columns_of(header: list[str]) -> Columns:
    """Recover the asset and wallet columns from their positions (asset ids may start with 'usd')."""
    try:
        first_path = header.index(f"loss_usd_{PATH_TYPES[0]}")
        first_after_wallets = header.index("campaigns")
    except ValueError:
        raise ValueError("unexpected columns in trials.csv") from None
    assets = tuple(c[len("loss_"):] for c in header[header.index("loss_usd") + 1:first_path])
    prefix = "loss_usd_wallet_"
    paths = sum(f"loss_usd_{p}" in header for p in PATH_TYPES)  # a run written before lock-outs has one fewer
    wallets = tuple(c[len(prefix):] for c in header[first_path + paths:first_after_wallets])
    return Columns(assets, wallets)
