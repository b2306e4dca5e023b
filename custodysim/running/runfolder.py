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
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Literal

import numpy as np

from custodysim.errors import RunFolderError
from custodysim.running.rows import (
    EVENT_COLUMNS,
    LATER_COLUMNS,
    Chunk,
    Columns,
    EventRow,
    EventTable,
    RowsBuilder,
    VariantRows,
)
from custodysim.simulation.results import PATH_TYPES

REQUIRED = ("manifest.json", "summary.json", "trials.csv")
SCENARIO_COPY = "scenario.yaml"
"""The scenario file exactly as run (its sha256 is in the manifest)."""
FIGURES = ("expected_loss_usd", "p_any_loss", "var99_usd", "es99_usd")
"""The figures of a variant in summary.json that a comparison checks against trials.csv."""
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
    if missing:
        raise RunFolderError(_not_a_run(folder, command) or f"{folder}: not a complete run (missing "
                             f"{', '.join(missing)}); was it interrupted, or is it another folder?")
    try:
        manifest = json.loads((folder / "manifest.json").read_text(encoding="utf-8"))
        summary = json.loads((folder / "summary.json").read_text(encoding="utf-8"))
        if not isinstance(manifest, dict) or not isinstance(summary, dict):
            raise ValueError("manifest.json and summary.json must hold JSON objects")
        rows, columns = read_trials_csv(folder / "trials.csv")
        events_path = folder / "events.csv"
        events = read_events_csv(events_path) if events_path.is_file() else None
        rows = [replace(r, events=events.get(r.name, EventTable.of([])) if events is not None else None) for r in rows]
        stories_path = folder / "stories.json"
        stories = json.loads(stories_path.read_text(encoding="utf-8")) if stories_path.is_file() else []
    except (OSError, ValueError, KeyError) as exc:
        raise RunFolderError(f"{folder}: its files cannot be read as a run ({exc})") from None
    _check_json(folder / "manifest.json", manifest, _MANIFEST)
    _check_json(folder / "summary.json", summary, _SUMMARY)
    if [r.name for r in rows] != list(summary["variants"]):
        raise RunFolderError(f"{folder}: trials.csv and summary.json name different variants")
    if events is not None and set(events) - set(summary["variants"]):
        raise RunFolderError(f"{folder}: events.csv names variants that did not run")
    _check_rows(folder, rows, manifest["trials"], summary["baseline"])
    _check_stories(folder / "stories.json", stories, set(summary["variants"]))
    _check_scenario_copy(folder, manifest.get("scenario_sha256"))
    return StoredRun(folder, summary, manifest, rows, columns, stories)


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


def _check_rows(folder: Path, rows: list[VariantRows], trials: object, baseline: object) -> None:
    """Refuse rows that do not fit the manifest: every variant holds trials 0..N-1 exactly once."""
    if not isinstance(baseline, str) or baseline not in [r.name for r in rows]:
        raise RunFolderError(f"{folder}: summary.json names no baseline that trials.csv has rows for")
    first: np.ndarray | None = None
    for r in rows:
        _check_numbers(folder / "trials.csv", r)
        numbers = np.sort(r.numbers["trial"])
        if len(numbers) != trials:
            raise RunFolderError(f"{folder}: trials.csv has {len(numbers)} trials of {r.name!r}, "
                                 f"manifest.json says {trials}; the file is damaged")
        if len(np.unique(numbers)) != len(numbers):
            raise RunFolderError(f"{folder}: trials.csv repeats trial numbers of {r.name!r}")
        if first is not None and not np.array_equal(first, numbers):
            raise RunFolderError(f"{folder}: variants in trials.csv have different trial numbers")
        first = numbers
        if r.events is not None:
            _check_events(folder / "events.csv", r)


def _check_events(path: Path, rows: VariantRows) -> None:
    """Refuse a variant's events whose trials it lacks, or whose losses do not add up to their trials' losses."""
    events = rows.events
    assert events is not None
    trials = rows.numbers["trial"]
    if len(events) and (not np.isin(events.trial, trials).all() or not np.isfinite(events.loss_usd).all()
                        or (events.loss_usd <= 0).any()):
        raise RunFolderError(f"{path}: an event of {rows.name!r} has no trial in trials.csv or no positive loss; "
                             "the file is damaged")
    if not np.allclose(events.sums(trials) if len(events) else 0.0, rows.loss, rtol=1e-9, atol=1e-3):
        raise RunFolderError(f"{path}: the events of {rows.name!r} do not add up to the trials' losses in "
                             "trials.csv; the file is damaged")


def _check_numbers(path: Path, rows: VariantRows) -> None:
    """Refuse a variant's rows with a loss or trial number that is not a finite number of 0 or more.

    No column holds a negative or infinite value; only the times and the columns a run of an earlier
    version lacks may be empty (NaN).
    """
    for column, values in rows.numbers.items():
        must_be_there = column == "trial" or column.startswith("loss_")
        bad = np.isinf(values) | (values < 0)
        if must_be_there:
            bad |= np.isnan(values)
        if bad.any():
            i = int(np.flatnonzero(bad)[0])
            raise RunFolderError(f"{path}: {column} of {rows.name!r} is {float(values[i])!r} in trial "
                                 f"{rows.numbers['trial'][i]:g} (it should be a finite number of 0 or more); the "
                                 "file is damaged")


def read_events_csv(path: Path) -> dict[str, EventTable]:
    """Read the event loss table written by :func:`custodysim.running.trialscsv.write_events_csv`, by variant.

    Raises:
        ValueError: the file has other columns, a line of the wrong length, or a bad number.
    """
    with path.open(newline="", encoding="utf-8") as fh:
        reader = csv.reader(fh)
        if next(reader, None) != ["variant", *EVENT_COLUMNS]:
            raise ValueError("unexpected columns in events.csv")
        events: dict[str, list[EventRow]] = {}
        for n, record in enumerate(reader, start=2):
            if len(record) != 1 + len(EVENT_COLUMNS):
                raise ValueError(f"events.csv line {n} has {len(record)} fields, not {1 + len(EVENT_COLUMNS)}")
            variant, trial, event, peril, day, loss, path_, wallet = record
            events.setdefault(variant, []).append((int(trial), event, peril, float(day), float(loss), path_, wallet))
    return {name: EventTable.of(rows) for name, rows in events.items()}


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
