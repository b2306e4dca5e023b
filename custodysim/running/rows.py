"""Trial rows held compactly: numeric columns as float64 arrays, text columns as categorical codes.

A million trials must not become millions of Python objects: most rows share a handful of text values
("no_campaign", an empty attack path), so each text column is an ``int32`` code per trial and a short
tuple of the strings those codes stand for.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from functools import cached_property
from typing import Literal

import numpy as np

from custodysim.errors import LimitError
from custodysim.simulation.results import PATH_TYPES

MAX_ROWS = 20_000_000
"""Default limit on trial rows (trials x variants) in one run: some 10 GB of disk while it lasts."""
ROW_BYTES = 220
"""Memory per trial row held (a sweep's), for the limit's message: 8 bytes per numeric column (25 in dmm-2024)
and 4 per text column."""
DISK_BYTES_PER_ROW = 500
"""Disk per trial row of a run, for the limit's message: its checkpoint (the row's numbers and codes, some
340 bytes in dmm-2024) and its line of trials.csv (some 140)."""
LOSS_USD = 1
"""The index of ``loss_usd`` among the numeric columns (after ``trial``)."""
LATER_COLUMNS = {"signing_ceremonies": math.nan, "transfers_blocked": math.nan, "loss_usd_lock_out": 0.0,
                 "locks": 0.0}
"""Numeric columns added after the first release, with what a run folder written before them reads back:
NaN for a figure it did not record (figures computed from it are then null), 0 for what its model could
not have (no key was ever lost)."""


@dataclass(frozen=True)
class Columns:
    """The column layout shared by every variant of a run."""

    assets: tuple[str, ...]
    wallets: tuple[str, ...]

    @cached_property
    def numeric(self) -> list[str]:
        """Return the names of the numeric columns, in order."""
        return [
            "trial", "loss_usd", *(f"loss_{a}" for a in self.assets),
            *(f"loss_usd_{p}" for p in PATH_TYPES), *(f"loss_usd_wallet_{w}" for w in self.wallets),
            "campaigns", "footholds", "t_first_access_days", "t_first_theft_days", "t_first_alarm_days",
            "withdrawal_delay_mean_hours", "withdrawals_delayed_share", "transfers_signed",
            "transfers_delayed", "transfer_delay_hours", "signing_ceremonies", "transfers_blocked", "locks",
        ]

    text = ("path_type", "outcome", "wallets_hit", "stopped_by", "attack_path")

    @property
    def widths(self) -> tuple[int, int]:
        """Return how many numeric and text columns a row has (a chunk's shape, as its checkpoint stores it)."""
        return len(self.numeric), len(Columns.text)


@dataclass(frozen=True)
class TextColumn:
    """One text column: a code per trial and the strings the codes stand for (in first-seen order)."""

    codes: np.ndarray
    categories: tuple[str, ...]

    @classmethod
    def encode(cls, values: Sequence[str]) -> TextColumn:
        """Return the column holding ``values``."""
        index: dict[str, int] = {}
        codes = np.fromiter((index.setdefault(v, len(index)) for v in values), dtype=np.int32, count=len(values))
        return cls(codes, tuple(index))

    def values(self) -> np.ndarray:
        """Return the column as an array of ``str`` (one Python object per distinct value, shared)."""
        values: np.ndarray = np.asarray(self.categories, dtype=object)[self.codes]
        return values

    def counts(self) -> dict[str, int]:
        """Return how many trials hold each value, in first-seen order (values that occur only)."""
        n: list[int] = np.bincount(self.codes, minlength=len(self.categories)).tolist() if len(self.codes) else []
        return {c: k for c, k in zip(self.categories, n, strict=False) if k}

    def __len__(self) -> int:
        return len(self.codes)


EVENT_COLUMNS = ("trial", "event", "peril", "day", "loss_usd", "path", "wallet")
"""The columns of an event loss table (see :class:`custodysim.simulation.results.LossEvent`)."""
EventRow = tuple[int, str, str, float, float, str, str]
"""One loss event, its values in the order of :data:`EVENT_COLUMNS`."""
_EVENT_TEXTS = ("event", "peril", "path", "wallet")


@dataclass(frozen=True)
class EventTable:
    """The loss events of one variant's trials: its event loss table, in trial order.

    A trial without loss has no event; a trial may have several (two campaigns that both stole, a theft
    and a lock-out).
    """

    trial: np.ndarray
    day: np.ndarray
    loss_usd: np.ndarray
    texts: dict[str, TextColumn]

    @classmethod
    def of(cls, rows: Sequence[EventRow]) -> EventTable:
        """Return the table of the events ``rows``."""
        builder = EventsBuilder()
        builder.add(rows)
        return builder.finish()

    def text(self, column: str) -> np.ndarray:
        """Return a text column (event, peril, path, wallet) as an array of ``str``."""
        return self.texts[column].values()

    def largest(self, trials: np.ndarray) -> np.ndarray:
        """Return each of ``trials``' largest event loss, 0 for a trial without one: the occurrence loss."""
        out = np.zeros(len(trials))
        np.maximum.at(out, self.rows_of(trials), self.loss_usd)
        return out

    def sums(self, trials: np.ndarray) -> np.ndarray:
        """Return the sum of each of ``trials``' event losses (its loss, up to the order of summing)."""
        out = np.zeros(len(trials))
        np.add.at(out, self.rows_of(trials), self.loss_usd)
        return out

    def rows_of(self, trials: np.ndarray) -> np.ndarray:
        """Return, per event, the position of its trial in ``trials`` (which must hold every event's trial)."""
        order = np.argsort(trials, kind="stable")
        where: np.ndarray = order[np.searchsorted(trials[order], self.trial)]
        return where

    def __len__(self) -> int:
        return len(self.trial)


class GrowingArray:
    """An array that pieces are appended to, its room doubled as needed.

    Appending a chunk's few values at a time to a list would leave one small array per chunk, some hundred
    bytes of overhead each, thousands of them in a long run; here they all go into one array (whose room,
    until written to, costs no memory).

    Args:
        dtype: the values' type.
        width: the values per row, or None for one value per row.
    """

    def __init__(self, dtype: type, width: int | None = None) -> None:
        self._data: np.ndarray = np.empty((64,) if width is None else (64, width), dtype=dtype)
        self._n = 0

    def extend(self, values: np.ndarray) -> None:
        """Append ``values`` (rows of the array's width)."""
        end = self._n + len(values)
        if end > len(self._data):
            grown = np.empty((max(end, 2 * len(self._data)), *self._data.shape[1:]), dtype=self._data.dtype)
            grown[:self._n] = self._data[:self._n]
            self._data = grown
        self._data[self._n:end] = values
        self._n = end

    def values(self) -> np.ndarray:
        """Return the values appended so far (a copy of just them, so no room is held for nothing)."""
        values: np.ndarray = self._data[:self._n].copy()
        return values


class EventsBuilder:
    """Gathers loss events into the compact arrays of an :class:`EventTable`, some events at a time.

    Events are kept as arrays from the start (not as tuples, some hundred bytes each): a million-trial
    run has hundreds of thousands.
    """

    def __init__(self) -> None:
        self._numbers = GrowingArray(np.float64, 3)
        self._codes = GrowingArray(np.int32, len(_EVENT_TEXTS))
        self._index: list[dict[str, int]] = [{} for _ in _EVENT_TEXTS]

    def add(self, events: Sequence[EventRow]) -> None:
        """Take in some events (in trial order, after those taken before)."""
        if not events:
            return
        trial, event, peril, day, loss, path, wallet = zip(*events, strict=True)
        self._numbers.extend(np.array([trial, day, loss], dtype=np.float64).T)
        self._codes.extend(np.array([[index.setdefault(v, len(index)) for v in values]
                                     for index, values in zip(self._index, (event, peril, path, wallet), strict=True)],
                                    dtype=np.int32).T)

    def finish(self) -> EventTable:
        """Return the events taken in, as a table."""
        numbers, codes = self._numbers.values(), self._codes.values()
        return EventTable(numbers[:, 0].astype(np.int64), numbers[:, 1].copy(), numbers[:, 2].copy(),
                          {c: TextColumn(np.ascontiguousarray(codes[:, j]), tuple(index))
                           for j, (c, index) in enumerate(zip(_EVENT_TEXTS, self._index, strict=True))})


@dataclass(frozen=True)
class Chunk:
    """Consecutive trial rows of one variant, as simulated by one task.

    Attributes:
        numbers: ``count x len(Columns.numeric)`` float64 values.
        codes: ``count x len(Columns.text)`` int32 codes into ``categories``.
        categories: per text column, the strings its codes stand for.
        events: the loss events of these trials, in trial order.
    """

    numbers: np.ndarray
    codes: np.ndarray
    categories: tuple[tuple[str, ...], ...]
    events: tuple[EventRow, ...] = ()

    @classmethod
    def from_texts(cls, numbers: np.ndarray, texts: Sequence[Sequence[str]],
                   events: Sequence[EventRow] = ()) -> Chunk:
        """Return the chunk of ``numbers``, the text rows ``texts`` and ``events`` (as :func:`run_trials` gives them).

        Most rows are one of a few shared row objects (the quiet row, the row of a trial without a
        foothold), so each distinct row object is encoded once; the categories keep first-seen order.
        """
        width = len(Columns.text)
        distinct: dict[int, int] = {}  # id of a row object -> its position among the distinct rows
        which = [distinct.setdefault(id(t), len(distinct)) for t in texts]
        rows = list({id(t): t for t in texts}.values())  # the distinct row objects, in the same order
        codes_of_row = np.empty((len(rows), width), dtype=np.int32)
        categories: list[tuple[str, ...]] = []
        for j in range(width):
            index: dict[str, int] = {}
            codes_of_row[:, j] = [index.setdefault(row[j], len(index)) for row in rows]
            categories.append(tuple(index))
        codes = codes_of_row[np.array(which, dtype=np.intp)] if rows else np.empty((0, width), dtype=np.int32)
        return cls(numbers, codes, tuple(categories), tuple(events))

    def __len__(self) -> int:
        return int(self.numbers.shape[0])


@dataclass(frozen=True)
class VariantRows:
    """All trial rows of one variant: numeric columns as float64 arrays, text columns categorical.

    Read text columns with :meth:`text` (strings) or :meth:`categorical` (codes and categories).
    """

    name: str
    numbers: dict[str, np.ndarray]
    texts: dict[str, TextColumn]
    events: EventTable | None = None
    """The loss events of the trials; None for rows read from a run folder written before events were kept."""

    @property
    def loss(self) -> np.ndarray:
        """Return the per-trial USD loss."""
        return self.numbers["loss_usd"]

    def text(self, column: str) -> np.ndarray:
        """Return a text column as an array of ``str``, one per trial."""
        return self.texts[column].values()

    def categorical(self, column: str) -> TextColumn:
        """Return a text column as codes and categories."""
        return self.texts[column]

    def __len__(self) -> int:
        return len(self.loss)


class RowsBuilder:
    """Assembles one variant's rows, chunk after chunk in trial order, into preallocated arrays.

    Numbers live in one column-major matrix, so each column is a contiguous view and nothing is copied
    when the rows are finished; text codes are re-coded into categories shared by the whole variant.

    Args:
        name: the variant.
        columns: the run's column layout.
        capacity: the trials to make room for (more are made room for as needed).
    """

    def __init__(self, name: str, columns: Columns, capacity: int) -> None:
        self.name = name
        self.columns = columns
        self._n = 0
        self._numbers = np.empty((capacity, len(columns.numeric)), order="F")
        self._codes = np.empty((capacity, len(Columns.text)), dtype=np.int32, order="F")
        self._index: list[dict[str, int]] = [{} for _ in Columns.text]
        self._events = EventsBuilder()

    def __len__(self) -> int:
        return self._n

    def add(self, chunk: Chunk) -> None:
        """Append the rows of ``chunk`` (the next trials in order)."""
        end = self._n + len(chunk)
        if end > self._numbers.shape[0]:
            self._grow(max(end, 2 * self._numbers.shape[0]))
        self._numbers[self._n:end] = chunk.numbers
        for j, (index, categories) in enumerate(zip(self._index, chunk.categories, strict=True)):
            recode = np.array([index.setdefault(c, len(index)) for c in categories], dtype=np.int32)
            self._codes[self._n:end, j] = recode[chunk.codes[:, j]] if len(recode) else 0
        self._events.add(chunk.events)
        self._n = end

    def loss(self) -> np.ndarray:
        """Return the USD loss of the trials added so far (a view)."""
        return self._numbers[:self._n, LOSS_USD]

    def _grow(self, capacity: int) -> None:
        numbers = np.empty((capacity, self._numbers.shape[1]), order="F")
        codes = np.empty((capacity, self._codes.shape[1]), dtype=np.int32, order="F")
        numbers[:self._n] = self._numbers[:self._n]
        codes[:self._n] = self._codes[:self._n]
        self._numbers, self._codes = numbers, codes

    def finish(self) -> VariantRows:
        """Return the rows added so far (trimming unused room, so no memory is held for nothing)."""
        if self._n < self._numbers.shape[0]:
            self._numbers = np.asfortranarray(self._numbers[:self._n])
            self._codes = np.asfortranarray(self._codes[:self._n])
        return VariantRows(
            self.name,
            {c: self._numbers[:, j] for j, c in enumerate(self.columns.numeric)},
            {c: TextColumn(self._codes[:, j], tuple(index)) for j, (c, index) in
             enumerate(zip(Columns.text, self._index, strict=True))},
            self._events.finish(),
        )


def rows_from_arrays(name: str, columns: Columns, numbers: np.ndarray, texts: Sequence[Sequence[str]]) -> VariantRows:
    """Return one variant's rows from a numeric matrix and text rows (for rows read back from a file)."""
    builder = RowsBuilder(name, columns, len(numbers))
    builder.add(Chunk.from_texts(numbers, texts))
    return builder.finish()


def blocks_of(name: str, columns: Columns, chunks: Iterable[Chunk], size: int) -> Iterator[VariantRows]:
    """Yield one variant's rows, given as chunks in trial order, as blocks of about ``size`` rows (whole chunks).

    What writes a long run's rows to a file holds a block at a time, never the whole.
    """
    builder: RowsBuilder | None = None
    for chunk in chunks:
        if builder is None:
            builder = RowsBuilder(name, columns, size)
        builder.add(chunk)
        if len(builder) >= size:
            yield builder.finish()
            builder = None
    if builder is not None:
        yield builder.finish()


def check_size(trials: int, variants: int, max_rows: int = MAX_ROWS, *,
               cost: Literal["disk", "memory", "time"] = "disk") -> None:
    """Refuse a run whose trial rows would pass the limit.

    Args:
        trials: trials per variant.
        variants: the variants (or grid points).
        max_rows: the limit.
        cost: what a row costs: ``disk`` (a run's, written from its checkpoints), ``memory`` (a sweep's,
            held), ``time`` (an attribution's, which keeps only each trial's loss).

    Raises:
        LimitError: with the arithmetic and the ways out.
    """
    rows = trials * variants
    if rows > max_rows:
        where = {"memory": f"every row is held in memory, about {ROW_BYTES} bytes each",
                 "disk": f"every row takes about {DISK_BYTES_PER_ROW} bytes of disk while the run lasts: its "
                         "checkpoint, then its line in the rows file",
                 "time": "every row is a trial to simulate"}[cost]
        raise LimitError(f"{variants} variant(s) x {trials:,} trials = {rows:,} trial rows, more than the limit "
                         f"of {max_rows:,} ({where}); run fewer trials or variants (--variant), or raise the limit "
                         "with --max-rows")
