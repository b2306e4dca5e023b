"""trials.csv: every trial row of a run as text, one line per variant and trial, formatted a block at a time.

The lines are what ``csv.writer`` writes for these fields: the variant, the numbers as Python writes
them (``repr``: the shortest text that reads back to the same float; counts as integers; a missing time
as an empty field), then the text columns (quoted only when they must be); lines end in CRLF.

A million-trial run writes millions of lines but few distinct ones: most trials of a variant differ
from another trial of it only in their number (every trial without a campaign, or whose campaigns found
no foothold). So a line is written as its variant, its trial number and the rest of its row, each
distinct rest of a block of rows is formatted once, and each distinct number in them once.
"""

from __future__ import annotations

import csv
import io
import math
import re
from collections.abc import Iterable, Sequence
from itertools import repeat
from pathlib import Path

import numpy as np

from custodysim.running.rows import EVENT_COLUMNS, Columns, EventTable, VariantRows

WRITE_BLOCK = 16_384
"""Rows formatted and written at a time: the file is never built whole in memory (a block is a few MB)."""
EOL = "\r\n"
"""The line end, as the csv module writes it."""
INTEGER_COLUMNS = frozenset({"trial", "campaigns", "footholds", "transfers_signed", "transfers_delayed",
                             "signing_ceremonies", "transfers_blocked", "locks"})
"""Numeric columns of counts, written as integers."""


def write_trials_csv(path: Path, rows: Iterable[VariantRows], cols: Columns) -> None:
    """Write trial rows to one tidy CSV (one line per variant and trial, in trial order).

    Args:
        path: the file.
        rows: every variant's rows, the variants in order and each variant's trials in order; a variant's
            rows may come in several pieces (see :func:`~custodysim.running.rows.blocks_of`), so that a long
            run is written without holding its rows.
        cols: their column layout.
    """
    with path.open("w", newline="", encoding="utf-8") as fh:
        fh.write(",".join(map(_csv_field, ["variant", *cols.numeric, *Columns.text])) + EOL)
        for r in rows:
            variant = _VariantLines(r, cols)
            for start in range(0, len(r), WRITE_BLOCK):
                fh.write(variant.lines(start, min(start + WRITE_BLOCK, len(r))))


def write_events_csv(path: Path, events: Iterable[tuple[str, EventTable | None]]) -> None:
    """Write every variant's loss events to one tidy CSV: the run's event loss table.

    One line per variant and event, in trial order: ``variant, trial, event, peril, day, loss_usd, path,
    wallet`` (see :class:`~custodysim.simulation.results.LossEvent`), numbers as ``repr`` writes them.

    Args:
        path: the file.
        events: (variant, its events) in the file's order; None for a variant whose events were not kept.
    """
    with path.open("w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh, lineterminator=EOL)
        writer.writerow(["variant", *EVENT_COLUMNS])
        for name, table in events:
            if table is None or not len(table):
                continue
            texts = {c: table.text(c).tolist() for c in ("event", "peril", "path", "wallet")}
            writer.writerows(
                (name, trial, event, peril, repr(day), repr(loss), path_, wallet)
                for trial, event, peril, day, loss, path_, wallet in zip(
                    table.trial.tolist(), texts["event"], texts["peril"], table.day.tolist(),
                    table.loss_usd.tolist(), texts["path"], texts["wallet"], strict=True))


class _VariantLines:
    """Formats the lines of one variant's rows.

    Args:
        rows: the variant's rows.
        cols: their column layout.
    """

    def __init__(self, rows: VariantRows, cols: Columns) -> None:
        self.rows = rows
        self.rest = cols.numeric[1:]  # the numeric columns after the trial number
        self.prefix = _csv_field(rows.name) + ","
        # Per text column, each category's field; the last column's with the line end.
        self.fields = [np.array([_csv_field(x) + (EOL if c == Columns.text[-1] else "")
                                 for x in rows.categorical(c).categories], dtype=object) for c in Columns.text]

    def lines(self, start: int, end: int) -> str:
        """Return the lines of rows ``start .. end-1``."""
        values = {c: self.rows.numbers[c][start:end] for c in self.rest}
        codes = [self.rows.categorical(c).codes[start:end] for c in Columns.text]
        first, which = _distinct_rows([values[c].view(np.int64) for c in self.rest] + codes)
        cells = [_number_texts(c, values[c][first]) for c in self.rest]
        cells += [_chosen(fields, k[first]) for k, fields in zip(codes, self.fields, strict=True)]
        rests = np.array(_joined(cells, len(first)), dtype=object)
        parts = np.empty(3 * (end - start), dtype=object)
        parts[0::3] = self.prefix
        parts[1::3] = list(map(str, self.rows.numbers["trial"][start:end].astype(np.int64).tolist()))
        parts[2::3] = rests[which]
        return "".join(parts.tolist())


def _chosen(texts: np.ndarray, which: np.ndarray) -> str | list[str]:
    """Return ``texts[which]`` as a list, or the one text chosen if every row chose the same."""
    if len(which) and (which == which[0]).all():
        only: str = texts[which[0]]
        return only
    each: list[str] = texts[which].tolist()
    return each


def _joined(cells: Sequence[str | list[str]], n: int) -> list[str]:
    """Return ``n`` rests of rows: each row's cells, each after a comma.

    Args:
        cells: per column, each row's text, or one text when every row has the same (adjacent such
            columns are joined once, not once per row).
        n: the number of rows.
    """
    columns: list[Iterable[str]] = []
    same = [""]  # "": the rest starts with the comma after the trial number
    for cell in cells:
        if isinstance(cell, str):
            same.append(cell)
            continue
        if same:
            columns.append(repeat(",".join(same), n))
            same = []
        columns.append(cell)
    if same:
        columns.append(repeat(",".join(same), n))
    return list(map(",".join, zip(*columns, strict=True)))


def _distinct_rows(columns: Sequence[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """Group equal rows: return the first row of each group and, per row, the number of its group.

    Args:
        columns: the rows' columns, each an array of integers (a float column as its bit patterns), all
            of one length.

    Rows are grouped by a hash of their values, then each row is compared with the first row of its
    group; a row that differs (its hash collides with another row's) is made a group of its own, so the
    groups are exact. A column that holds one value throughout cannot tell rows apart and is left out.
    """
    n = len(columns[0]) if columns else 0
    varying = [k for k in columns if n and (k != k[0]).any()]
    key = np.zeros(n, dtype=np.uint64)
    for k in varying:
        key ^= k.astype(np.uint64, copy=False)
        key *= _SPREAD
        key ^= key >> np.uint64(29)
    _, first, which = np.unique(key, return_index=True, return_inverse=True)
    which = which.reshape(-1)
    model = first[which]
    differs = np.zeros(n, dtype=bool)
    for k in varying:
        differs |= k[model] != k
    if differs.any():
        own = np.flatnonzero(differs)
        which[own] = len(first) + np.arange(len(own))
        first = np.concatenate([first, own])
    return first, which


_SPREAD = np.uint64(0x9E3779B97F4A7C15)
"""An odd constant (2**64 divided by the golden ratio) whose products spread a value's bits over the hash."""


def _number_texts(column: str, values: np.ndarray) -> str | list[str]:
    """Return the text of each of ``values`` (float64) of the numeric column ``column``, or one text for all.

    Each distinct value is formatted once. Values are told apart by bit pattern: NaN equals NaN, and -0.0
    stays apart from 0.0 ("-0.0" is what repr writes).
    """
    bits = values.view(np.int64)
    if len(bits) and (bits == bits[0]).all():  # most columns, in the distinct rows of a block
        return _texts_of(column, values[:1])[0]
    distinct, where = _factorized(bits)
    texts: list[str] = np.array(_texts_of(column, distinct.view(np.float64)), dtype=object)[where].tolist()
    return texts


def _factorized(values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Return the distinct values (sorted) and, per value, the index of its distinct value.

    Like ``np.unique(values, return_inverse=True)``, but sorted stably, which is several times faster on
    a column that repeats a few values (most of them).
    """
    order = np.argsort(values, kind="stable")
    ordered = values[order]
    starts = np.empty(len(values), dtype=bool)
    starts[:1] = True
    np.not_equal(ordered[1:], ordered[:-1], out=starts[1:])
    where = np.empty(len(values), dtype=np.intp)
    where[order] = np.cumsum(starts) - 1
    return ordered[starts], where


def _texts_of(column: str, values: np.ndarray) -> list[str]:
    """Return the text of each of ``values`` (float64) of the numeric column ``column``."""
    if column in INTEGER_COLUMNS:
        return ["" if math.isnan(v) else str(int(v)) for v in values.tolist()]
    texts = list(map(repr, values.tolist()))  # repr in C: most of the cost of a distinct float
    for i in np.flatnonzero(np.isnan(values)).tolist():
        texts[i] = ""
    return texts


_QUOTED = re.compile('[,"\r\n]')
"""What makes the csv module quote a field: the delimiter, the quote character, a line break."""


def _csv_field(text: str) -> str:
    """Return ``text`` as the csv module writes one field (quoted only when it must be)."""
    if _QUOTED.search(text) is None:
        return text
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator=EOL).writerow([text, ""])  # the terminator decides what is quoted
    return buffer.getvalue()[:-len("," + EOL)]
