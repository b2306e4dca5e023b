"""Reading a finished run folder back: its summary, manifest, trial rows and stories, each checked.

A folder is checked before anything uses it: JSON of the types its figures need, losses that are
finite amounts of 0 or more, rows that fit the manifest, and a scenario copy whose hash is the
manifest's. A damaged folder is refused, naming the file and the damage, before any file is written.
"""

from __future__ import annotations

import csv
import hashlib
import json
import math
import shlex
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Literal

import numpy as np

from custodysim.errors import OptionError, RunFolderError
from custodysim.running.losses import LossesBuilder, VariantLosses
from custodysim.running.rows import (
    EVENT_COLUMNS,
    LATER_COLUMNS,
    Chunk,
    Columns,
    EventRow,
    EventsBuilder,
    EventTable,
    RowsBuilder,
    VariantRows,
)
from custodysim.running.trialsparquet import parquet_header, read_parquet_chunks, require_pyarrow
from custodysim.simulation.results import PATH_TYPES

REQUIRED = ("manifest.json", "summary.json")
ROW_FILES = ("trials.parquet", "trials.csv")
"""The files a run's trial rows may be in, the one read first (faster) first; a run has one or both."""
SCENARIO_COPY = "scenario.yaml"
"""The scenario file exactly as run (its sha256 is in the manifest)."""
FIGURES = ("expected_loss_usd", "p_any_loss", "var99_usd", "es99_usd")
"""The figures of a variant in summary.json that a comparison checks against trials.csv."""
BLOCK = 1000
"""Rows of trials.csv parsed into arrays at a time: a long file is never held as millions of Python lists."""


@dataclass(frozen=True)
class StoredRun:
    """A complete run folder, read back: its trials as each variant's losses (its rows are not held)."""

    folder: Path
    summary: dict[str, Any]
    manifest: dict[str, Any]
    losses: list[VariantLosses]
    columns: Columns
    stories: list[dict[str, Any]]
    rows_file: str = "trials.csv"
    """The file the trials were read from (``trials.parquet`` when the run has it)."""


def read_run(folder: Path, command: Literal["report", "compare"] | None = None) -> StoredRun:
    """Read a complete run folder.

    Args:
        folder: the run folder.
        command: the command that reads it, named in the refusal of a sweep's, an attribution's or a
            comparison's folder (with what to do instead).

    Raises:
        RunFolderError: the folder is missing, incomplete, another command's, or its files are not a run's.
    """
    if not folder.is_dir():
        raise RunFolderError(f"{folder}: no such run folder")
    missing = [name for name in REQUIRED if not (folder / name).is_file()]
    rows_file = next((folder / name for name in ROW_FILES if (folder / name).is_file()), None)
    if rows_file is None:
        missing.append(" or ".join(reversed(ROW_FILES)))
    if missing:
        raise RunFolderError(_not_a_run(folder, command) or f"{folder}: not a complete run (missing "
                             f"{', '.join(missing)}); was it interrupted, or is it another folder?")
    try:
        manifest = json.loads((folder / "manifest.json").read_text(encoding="utf-8"))
        summary = json.loads((folder / "summary.json").read_text(encoding="utf-8"))
        if not isinstance(manifest, dict) or not isinstance(summary, dict):
            raise ValueError("manifest.json and summary.json must hold JSON objects")
        assert rows_file is not None
        losses, columns = read_losses(rows_file)
        events_path = folder / "events.csv"
        events = read_events_csv(events_path) if events_path.is_file() else None
        losses = [replace(r, events=events.get(r.name, EventTable.of([])) if events is not None else None)
                  for r in losses]
        stories_path = folder / "stories.json"
        stories = json.loads(stories_path.read_text(encoding="utf-8")) if stories_path.is_file() else []
    except OptionError as exc:
        raise RunFolderError(f"{folder}: {exc}") from None
    except (OSError, ValueError, KeyError) as exc:
        raise RunFolderError(f"{folder}: its files cannot be read as a run ({exc})") from None
    _check_json(folder / "manifest.json", manifest, _MANIFEST)
    _check_json(folder / "summary.json", summary, _SUMMARY)
    if [r.name for r in losses] != list(summary["variants"]):
        raise RunFolderError(f"{folder}: {rows_file.name} and summary.json name different variants")
    if events is not None and set(events) - set(summary["variants"]):
        raise RunFolderError(f"{folder}: events.csv names variants that did not run")
    _check_rows(rows_file, losses, manifest["trials"], summary["baseline"])
    _check_stories(folder / "stories.json", stories, set(summary["variants"]))
    _check_scenario_copy(folder, manifest.get("scenario_sha256"))
    return StoredRun(folder, summary, manifest, losses, columns, stories, rows_file.name)


OTHER_OUTPUTS = (("sweep", "sweep.json", "sweep", "report.html", "compares its grid points"),
                 ("attribution", "attribution.csv", "attribution", "report.html", "says what each control is worth"),
                 ("comparison", "comparison.json", "compare", "comparison.html", "compares the runs it names"))
"""The folders other commands write: what it is, the file that marks it, the command, its report and what
that report shows."""


def _not_a_run(folder: Path, command: str | None) -> str | None:
    """Say what ``folder`` is if another command wrote it (a sweep, an attribution, a comparison), and what to do.

    Returns:
        the message, or None: the folder is no other command's.
    """
    found = next((o for o in OTHER_OUTPUTS if (folder / o[1]).is_file()), None)
    if found is None:
        return None
    kind, marker, writer, report, shows = found
    article = "an" if kind[0] in "aeiou" else "a"
    head = f"{folder}: {article} {kind} folder (written by custodysim {writer}), not a run folder"
    runs = _compared_runs(folder / marker) if kind == "comparison" else []
    if command == "compare":
        instead = f"; give the run folders it compared instead: {' '.join(runs)}" if runs else ""
        return (f"{head}; compare compares run folders (written by custodysim run). Its own report, "
                f"{folder / report}, {shows}{instead}")
    if command == "report":
        head += "; report re-renders a run folder"
    again = f"custodysim compare {' '.join(runs)}" if runs else _command_again(folder, writer)
    return f"{head}. Its report is {folder / report}; to make it anew, run {again}"


def _command_again(folder: Path, writer: str) -> str:
    """Return the command manifest.json records for ``folder``, with --replace to replace it (or the bare command)."""
    try:
        command = json.loads((folder / "manifest.json").read_text(encoding="utf-8")).get("command")
    except (OSError, ValueError, AttributeError):
        command = None
    if not (isinstance(command, list) and all(isinstance(a, str) for a in command) and command[:2] == [
            "custodysim", writer]):
        return f"custodysim {writer} again"
    if any(a == "--out" or a.startswith("--out=") for a in command) and "--replace" not in command:
        command = [*command, "--replace"]
    return shlex.join(command)


def _compared_runs(path: Path) -> list[str]:
    """Return the run folders comparison.json says were compared (none if it cannot be read)."""
    try:
        runs = json.loads(path.read_text(encoding="utf-8")).get("runs")
        return [r["folder"] for r in runs if isinstance(r.get("folder"), str)]
    except (OSError, ValueError, AttributeError, TypeError, KeyError):
        return []


def read_manifest(folder: Path) -> dict[str, Any]:
    """Read a run folder's manifest, checked, and check that its scenario copy is the one that ran.

    Cheaper than :func:`read_run` (the rows are not read): what telling one of its trials needs.

    Raises:
        RunFolderError: the folder has no manifest, or it or the scenario copy is damaged.
    """
    path = folder / "manifest.json"
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise RunFolderError(f"{folder}: not a run folder (no manifest.json); give a run folder or a scenario "
                             "file") from None
    except (OSError, ValueError) as exc:
        raise RunFolderError(f"{path}: cannot be read as JSON ({exc})") from None
    if not isinstance(manifest, dict):
        raise RunFolderError(f"{path}: should hold a JSON object; the file is damaged")
    if manifest.get("kind") == "compare":
        raise RunFolderError(f"{folder}: holds a comparison of runs, not a run; give a run folder or a scenario file")
    _check_json(path, manifest, _MANIFEST)
    _check_scenario_copy(folder, manifest.get("scenario_sha256"))
    return manifest


def check_summary(path: Path, summary: object) -> None:
    """Refuse a run's or a sweep's summary (summary.json, sweep.json) whose figures are not of the types they need.

    Raises:
        RunFolderError: naming the file, the key and what it holds.
    """
    if not isinstance(summary, dict):
        raise RunFolderError(f"{path}: should hold a JSON object; the file is damaged")
    _check_json(path, summary, _SUMMARY)


Check = tuple[str, Callable[[Any], bool]]
"""What a JSON value should be, in words, and the test of it."""


def _number(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


def _whole(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool) and v >= 0


def _all(check: Check) -> Check:
    """Return the check of an object whose every value passes ``check``."""
    expected, ok = check
    return f"an object whose values are each {expected}", lambda v: isinstance(v, dict) and all(map(ok, v.values()))


_TEXT: Check = ("text", lambda v: isinstance(v, str))
_OBJECT: Check = ("an object", lambda v: isinstance(v, dict))
_AMOUNT: Check = ("a finite number of 0 or more", lambda v: _number(v) and v >= 0)
_FIGURE: Check = ("a finite number or null", lambda v: v is None or _number(v))
_COUNT: Check = ("a whole number of 0 or more", _whole)
_TRIALS: Check = ("a whole number of 1 or more", lambda v: _whole(v) and v >= 1)
_LINES: Check = ("a list of text", lambda v: isinstance(v, list) and all(isinstance(x, str) for x in v))
_COMMAND: Check = ("a list of text, or null", lambda v: v is None or _LINES[1](v))

Fields = dict[str, tuple[Check, bool]]
"""The keys of a JSON object: what each should be, and whether it must be there."""
_MANIFEST: Fields = {"scenario_file": (_TEXT, False), "scenario_sha256": (_TEXT, False), "version": (_TEXT, False),
                     "created_utc": (_TEXT, False), "command": (_COMMAND, False), "seed": (_COUNT, True),
                     "trials": (_TRIALS, True)}
_VARIANT: Fields = {**{f: (_FIGURE, False) for f in FIGURES}, "costs": (_OBJECT, False)}
_COSTS: Fields = {"control_cost_usd": (("a finite number of 0 or more, or null", lambda v: v is None or _AMOUNT[1](v)),
                                       False)}
_PRECISION: Fields = {"target": (("a share between 0 and 1", lambda v: _number(v) and 0 < v < 1), True),
                      "max_trials": (_TRIALS, True), "achieved": (_all(_AMOUNT), True),
                      "stopped_by": (("'precision' or 'max_trials'", lambda v: v in ("precision", "max_trials")), True)}
_SUMMARY: Fields = {"scenario": (_TEXT, True), "description": (_TEXT, False), "baseline": (_TEXT, True),
                    "trials": (_TRIALS, True), "seed": (_COUNT, True),
                    "horizon_days": (("a positive number", lambda v: _number(v) and v > 0), False),
                    "variants": (_all(_OBJECT), True), "variant_descriptions": (_all(_TEXT), False),
                    "precision": (_OBJECT, False), "provenance": (_OBJECT, False)}
_NESTED: dict[str, Fields] = {"precision": _PRECISION, "costs": _COSTS}
"""The fields of the objects found under these keys."""
_STORY: Fields = {"variant": (_TEXT, True), "trial": (_COUNT, True), "loss_usd": (_AMOUNT, True),
                  "loss_by_asset": (_all(_AMOUNT), False), "outcome": (_TEXT, True), "lines": (_LINES, True)}


def _check_json(path: Path, data: dict[str, Any], fields: Fields, where: str = "") -> None:
    """Refuse an object of ``path`` (at ``where``) whose keys are not what ``fields`` says.

    Raises:
        RunFolderError: naming the file, the key and what it holds.
    """
    for key, ((expected, ok), required) in fields.items():
        if key not in data:
            if required:
                raise RunFolderError(f"{path}: {where}{key} is missing; the file is damaged")
            continue
        if not ok(data[key]):
            shown = json.dumps(data[key])
            shown = shown if len(shown) <= 60 else shown[:57] + "..."
            raise RunFolderError(f"{path}: {where}{key} should be {expected}, not {shown}; the file is damaged")
        if key in _NESTED:
            _check_json(path, data[key], _NESTED[key], f"{where}{key}.")
    if where == "" and fields is _SUMMARY:
        for name, figures in data["variants"].items():
            _check_json(path, figures, _VARIANT, f"variants.{name}.")


def _check_stories(path: Path, stories: Any, variants: set[str]) -> None:
    """Refuse stories.json unless it is a list of stories of the run's variants."""
    if not isinstance(stories, list):
        raise RunFolderError(f"{path}: should hold a list of stories, not {type(stories).__name__}; "
                             "the file is damaged")
    for i, story in enumerate(stories):
        if not isinstance(story, dict):
            raise RunFolderError(f"{path}: [{i}] should be an object; the file is damaged")
        _check_json(path, story, _STORY, f"[{i}].")
        if story["variant"] not in variants:
            raise RunFolderError(f"{path}: [{i}].variant {story['variant']!r} is not a variant of the run; "
                                 "the file is damaged")


def _check_scenario_copy(folder: Path, sha256: object) -> None:
    """Refuse a scenario copy whose sha256 is not the one manifest.json holds (no copy: nothing to check)."""
    path = folder / SCENARIO_COPY
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        return
    except OSError as exc:
        raise RunFolderError(f"{path}: cannot be read ({exc.strerror})") from None
    if hashlib.sha256(raw).hexdigest() != sha256:
        raise RunFolderError(f"{path}: is not the scenario that was run (its sha256 is not the one manifest.json "
                             "holds); restore the file, or re-run the scenario")


def _check_rows(path: Path, losses: list[VariantLosses], trials: object, baseline: object) -> None:
    """Refuse rows that do not fit the manifest: every variant holds trials 0..N-1 (in order, so once each)."""
    if not isinstance(baseline, str) or baseline not in [r.name for r in losses]:
        raise RunFolderError(f"{path.parent}: summary.json names no baseline that {path.name} has rows for")
    for r in losses:
        if len(r) != trials:
            raise RunFolderError(f"{path.parent}: {path.name} has {len(r)} trials of {r.name!r}, "
                                 f"manifest.json says {trials}; the file is damaged")
        if r.events is not None:
            _check_events(path.parent / "events.csv", r)


def _check_events(path: Path, losses: VariantLosses) -> None:
    """Refuse a variant's events whose trials it lacks, or whose losses do not add up to their trials' losses."""
    events = losses.events
    assert events is not None
    if len(events) and (events.trial.min() < 0 or events.trial.max() >= len(losses)
                        or not np.isfinite(events.loss_usd).all() or (events.loss_usd <= 0).any()):
        raise RunFolderError(f"{path}: an event of {losses.name!r} has no trial in the trials' file or no positive "
                             "loss; the file is damaged")
    if not np.allclose(events.sums(losses.trials) if len(events) else 0.0, losses.loss, rtol=1e-9, atol=1e-3):
        raise RunFolderError(f"{path}: the events of {losses.name!r} do not add up to the trials' losses in "
                             "the trials' file; the file is damaged")


def _check_numbers(path: Path, name: str, columns: Columns, chunk: Chunk) -> None:
    """Refuse rows of a variant with a loss or trial number that is not a finite number of 0 or more.

    No column holds a negative or infinite value; only the times and the columns a run of an earlier
    version lacks may be empty (NaN).
    """
    values = chunk.numbers
    bad = np.isinf(values) | (values < 0)
    must = [j for j, c in enumerate(columns.numeric) if c == "trial" or c.startswith("loss_")]
    bad[:, must] |= np.isnan(values[:, must])
    if bad.any():
        i, j = (int(k[0]) for k in np.nonzero(bad))
        raise RunFolderError(f"{path}: {columns.numeric[j]} of {name!r} is {float(values[i, j])!r} in trial "
                             f"{values[i, 0]:g} (it should be a finite number of 0 or more); the file is damaged")


def read_events_csv(path: Path) -> dict[str, EventTable]:
    """Read the event loss table written by :func:`custodysim.running.trialscsv.write_events_csv`, by variant.

    Raises:
        ValueError: the file has other columns, a line of the wrong length, or a bad number.
    """
    builders: dict[str, EventsBuilder] = {}
    with path.open(newline="", encoding="utf-8") as fh:
        reader = csv.reader(fh)
        if next(reader, None) != ["variant", *EVENT_COLUMNS]:
            raise ValueError("unexpected columns in events.csv")
        block: list[tuple[str, EventRow]] = []
        for n, record in enumerate(reader, start=2):
            if len(record) != 1 + len(EVENT_COLUMNS):
                raise ValueError(f"events.csv line {n} has {len(record)} fields, not {1 + len(EVENT_COLUMNS)}")
            variant, trial, event, peril, day, loss, path_, wallet = record
            block.append((variant, (int(trial), event, peril, float(day), float(loss), path_, wallet)))
            if len(block) == BLOCK:
                _add_events(builders, block)
        _add_events(builders, block)
    return {name: b.finish() for name, b in builders.items()}


def _add_events(builders: dict[str, EventsBuilder], block: list[tuple[str, EventRow]]) -> None:
    """Add a block of (variant, event) to the variants' tables, and empty the block."""
    by_variant: dict[str, list[EventRow]] = {}
    for variant, event in block:
        by_variant.setdefault(variant, []).append(event)
    for variant, events in by_variant.items():
        builders.setdefault(variant, EventsBuilder()).add(events)
    block.clear()


def read_losses(path: Path) -> tuple[list[VariantLosses], Columns]:
    """Read the trials of a rows file (``trials.csv`` or ``trials.parquet``) into each variant's losses.

    The file is read a block of rows at a time and each variant's rows are not kept: what the figures
    need is (:class:`~custodysim.running.losses.VariantLosses`). Each variant's trials must be 0, 1, 2, ... in order,
    as a run writes them.

    Raises:
        RunFolderError: a loss or trial number is negative, infinite or missing.
        OptionError: the file is Parquet and pyarrow is not installed.
        ValueError: the file is empty, has other columns, a row of the wrong length, a bad number, or
            trials out of order.
    """
    columns, chunks = read_rows(path)
    builders: dict[str, LossesBuilder] = {}
    for name, chunk in chunks:
        _check_numbers(path, name, columns, chunk)
        builder = builders.get(name)
        if builder is None:  # variants keep the order of their first rows
            builder = builders[name] = LossesBuilder(name, columns)
        builder.add(chunk)
    return [b.finish() for b in builders.values()], columns


def read_all_rows(path: Path) -> tuple[list[VariantRows], Columns]:
    """Read every row of a rows file (``trials.csv`` or ``trials.parquet``) into memory.

    For a few rows (tests, small studies); :func:`read_losses` reads a run of any length.

    Raises:
        ValueError: as :func:`read_losses`.
    """
    columns, chunks = read_rows(path)
    builders: dict[str, RowsBuilder] = {}
    for name, chunk in chunks:
        builders.setdefault(name, RowsBuilder(name, columns, BLOCK)).add(chunk)
    return [b.finish() for b in builders.values()], columns


def read_rows(path: Path) -> tuple[Columns, Iterator[tuple[str, Chunk]]]:
    """Return the column layout of a rows file and its rows, a block at a time: (variant, its next rows).

    A CSV written before the later columns lacks them: they read back as ``LATER_COLUMNS`` says.

    Raises:
        OptionError: the file is Parquet and pyarrow is not installed.
        ValueError: the file is empty or has other columns (and, as its rows are read, a bad row).
    """
    parquet = path.suffix == ".parquet"
    if parquet:
        require_pyarrow()
        header = parquet_header(path)
    else:
        with path.open(newline="", encoding="utf-8") as fh:
            first = next(csv.reader(fh), None)
        if first is None:
            raise ValueError(f"{path.name} is empty")
        header = first
    columns = _columns_of(header, path.name)
    present = [c for c in columns.numeric if c not in LATER_COLUMNS or c in header]
    if header != ["variant", *present, *Columns.text]:
        raise ValueError(f"unexpected columns in {path.name}")
    chunks = read_parquet_chunks(path, columns, present) if parquet else _csv_chunks(path, columns, present)
    return columns, _with_later_columns(chunks, columns, present)


def _csv_chunks(path: Path, columns: Columns, present: list[str]) -> Iterator[tuple[str, Chunk]]:
    """Yield the rows of a CSV rows file a block at a time (numbers as in the file: ``present`` columns)."""
    width = 1 + len(present) + len(Columns.text)
    with path.open(newline="", encoding="utf-8") as fh:
        reader = csv.reader(fh)
        next(reader)
        block: list[list[str]] = []
        for n, record in enumerate(reader, start=2):
            if len(record) != width:
                raise ValueError(f"{path.name} line {n} has {len(record)} fields, not {width}")
            if (block and record[0] != block[0][0]) or len(block) == BLOCK:
                yield block[0][0], _chunk_of(block, len(present))
                block = []
            block.append(record)
        if block:
            yield block[0][0], _chunk_of(block, len(present))


def _chunk_of(block: list[list[str]], n_num: int) -> Chunk:
    """Return the chunk of some records of one variant (``n_num``: the numbers in a record, after its variant)."""
    numbers = np.array([[float(x) if x != "" else math.nan for x in r[1:1 + n_num]] for r in block])
    return Chunk.from_texts(numbers, [r[1 + n_num:] for r in block])


def _with_later_columns(chunks: Iterator[tuple[str, Chunk]], columns: Columns,
                        present: list[str]) -> Iterator[tuple[str, Chunk]]:
    """Yield the chunks with the numeric columns a file written before them lacks, as ``LATER_COLUMNS`` says."""
    if len(present) == len(columns.numeric):
        yield from chunks
        return
    where = [columns.numeric.index(c) for c in present]
    later = np.array([LATER_COLUMNS.get(c, math.nan) for c in columns.numeric])
    for name, chunk in chunks:
        full = np.tile(later, (len(chunk), 1))
        full[:, where] = chunk.numbers
        yield name, Chunk(full, chunk.codes, chunk.categories)


def _columns_of(header: list[str], name: str = "trials.csv") -> Columns:
    """Recover the asset and wallet columns from their positions (asset ids may start with 'usd')."""
    try:
        first_path = header.index(f"loss_usd_{PATH_TYPES[0]}")
        first_after_wallets = header.index("campaigns")
    except ValueError:
        raise ValueError(f"unexpected columns in {name}") from None
    assets = tuple(c[len("loss_"):] for c in header[header.index("loss_usd") + 1:first_path])
    prefix = "loss_usd_wallet_"
    paths = sum(f"loss_usd_{p}" in header for p in PATH_TYPES)  # a run written before lock-outs has one fewer
    wallets = tuple(c[len(prefix):] for c in header[first_path + paths:first_after_wallets])
    return Columns(assets, wallets)
