"""What the figures need of a variant's trials, gathered chunk by chunk without holding its rows.

A million-trial run has millions of rows of some forty columns each; its figures need far less. A
:class:`VariantLosses` holds one variant's *year loss table* (the loss of every trial: quantiles, tails,
paired differences and exceedance curves need each one), its *event loss table* (its loss events, few:
only trials that lost have one), and of the other columns only what a figure reads:

- every numeric column's **sum**, for its mean, added up in blocks of :data:`SUM_BLOCK` trials aligned on
  trial numbers, then the blocks' sums exactly (``math.fsum``): the sum does not depend on how the trials
  arrived (chunks of a simulation, blocks of a file), so a report re-rendered from a run's file gives
  the figures of the run itself;
- the **non-zero values** of the columns whose quantiles, maxima or spread a figure needs (:data:`SPARSE`:
  each asset's loss, the lock-out loss, the locks), rare, so a trial's zeros are not stored;
- the **distinct values and their counts** of the columns a figure takes a quantile of (:data:`COUNTED`);
- per text column of :data:`TALLIED`, how many trials hold each value, among all trials and among those
  that lost.

Trials arrive in order, 0, 1, 2, ...: a trial's number is its position.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass, field

import numpy as np

from custodysim.running.rows import LOSS_USD, Chunk, Columns, EventsBuilder, EventTable, GrowingArray

SUM_BLOCK = 1000
"""Trials whose values are summed together before the blocks' sums are added up (see the module's docstring)."""
SPARSE = ("loss_usd_lock_out", "locks")
"""Columns kept as their non-zero values (besides each asset's loss, ``loss_ASSET``)."""
COUNTED = ("withdrawal_delay_mean_hours",)
"""Columns kept as their distinct values and counts (a figure takes their 95th percentile)."""
TALLIED = ("outcome", "stopped_by")
"""Text columns whose values are counted (the others, ``attack_path`` above all, take a value per losing
trial: counting them would hold a string per trial)."""


@dataclass(frozen=True)
class VariantLosses:
    """One variant's losses, trial by trial, and the other columns' figures (see the module's docstring).

    Build one with :class:`LossesBuilder`.
    """

    name: str
    loss: np.ndarray
    """The USD loss of each trial (the year loss table; trial ``k`` at position ``k``)."""
    events: EventTable | None
    """The loss events of the trials (the event loss table); None for a run folder written before events were
    kept."""
    columns: tuple[str, ...]
    """The numeric columns, in order."""
    sums: dict[str, float]
    sparse: dict[str, tuple[np.ndarray, np.ndarray]] = field(repr=False)
    counted: dict[str, tuple[np.ndarray, np.ndarray]] = field(repr=False)
    text_counts: dict[str, dict[str, int]] = field(repr=False)
    losing_text_counts: dict[str, dict[str, int]] = field(repr=False)

    def __len__(self) -> int:
        return len(self.loss)

    @property
    def trials(self) -> np.ndarray:
        """Return the trial numbers, 0 .. N-1."""
        return np.arange(len(self.loss))

    def mean(self, column: str) -> float:
        """Return a numeric column's mean over the trials (NaN if a value is missing; 0 without trials).

        Raises:
            KeyError: no such column.
        """
        total = self.sums[column]
        return total / len(self) if len(self) else 0.0

    def column(self, name: str) -> np.ndarray:
        """Return a column kept as its non-zero values (:data:`SPARSE`, ``loss_ASSET``), one value per trial."""
        where, values = self.sparse[name]
        out = np.zeros(len(self))
        out[where] = values
        return out

    def sorted_values(self, name: str) -> np.ndarray:
        """Return a column kept as distinct values and counts (:data:`COUNTED`), every trial's value, sorted."""
        values, counts = self.counted[name]
        ordered: np.ndarray = np.repeat(values, counts)
        return ordered

    def counts(self, column: str, *, losing: bool = False) -> dict[str, int]:
        """Return how many trials (of those that lost, with ``losing``) hold each value of a text column.

        The column is one of :data:`TALLIED`; values in the order first seen, those that occur only.
        """
        return (self.losing_text_counts if losing else self.text_counts)[column]


class LossesBuilder:
    """Gathers one variant's :class:`VariantLosses` from its chunks of rows, in trial order.

    Args:
        name: the variant.
        columns: the run's column layout.
        capacity: the trials to make room for in the loss column (more are made room for as needed).
    """

    def __init__(self, name: str, columns: Columns, capacity: int = SUM_BLOCK) -> None:
        self.name = name
        self.names = tuple(columns.numeric)
        self._n = 0
        self._loss = np.empty(max(capacity, 1))
        self._pending = np.empty((0, len(self.names)))
        self._block_sums = GrowingArray(np.float64, len(self.names))
        sparse = [f"loss_{a}" for a in columns.assets] + list(SPARSE)
        self._sparse = {c: (self.names.index(c), GrowingArray(np.int64), GrowingArray(np.float64)) for c in sparse}
        self._counted: dict[str, tuple[int, dict[int, int]]] = {c: (self.names.index(c), {}) for c in COUNTED}
        self._tallied = [Columns.text.index(c) for c in TALLIED]
        self._index: list[dict[str, int]] = [{} for _ in TALLIED]
        self._counts = [np.zeros(0, dtype=np.int64) for _ in TALLIED]
        self._losing_counts = [np.zeros(0, dtype=np.int64) for _ in TALLIED]
        self._events = EventsBuilder()

    def __len__(self) -> int:
        return self._n

    def loss(self) -> np.ndarray:
        """Return the USD loss of the trials added so far (a view)."""
        return self._loss[:self._n]

    def add(self, chunk: Chunk) -> None:
        """Take in the rows of ``chunk``: the next trials in order.

        Raises:
            ValueError: a trial of the chunk is not the next one in order (the trials of a file re-sorted).
        """
        numbers = chunk.numbers
        count = len(chunk)
        end = self._n + count
        misplaced = np.flatnonzero(numbers[:, 0] != np.arange(self._n, end))
        if len(misplaced):
            at = int(misplaced[0])
            raise ValueError(f"trials of {self.name!r} out of order: trial {numbers[at, 0]:g} after "
                             f"{self._n + at} trials")
        if end > len(self._loss):
            grown = np.empty(max(end, 2 * len(self._loss)))
            grown[:self._n] = self._loss[:self._n]
            self._loss = grown
        loss = numbers[:, LOSS_USD]
        self._loss[self._n:end] = loss
        self._sum(numbers)
        for j, where, values in self._sparse.values():
            column = numbers[:, j]
            nonzero = np.flatnonzero(column.view(np.int64))  # -0.0 too: kept as it is
            if len(nonzero):
                where.extend(nonzero + self._n)
                values.extend(column[nonzero])
        for j, distinct in self._counted.values():
            _count_values(numbers[:, j], distinct)
        losing = loss > 0
        for k, (j, index) in enumerate(zip(self._tallied, self._index, strict=True)):
            recode = np.array([index.setdefault(c, len(index)) for c in chunk.categories[j]], dtype=np.intp)
            codes = recode[chunk.codes[:, j]] if len(recode) else np.zeros(count, dtype=np.intp)
            self._counts[k] = _added(self._counts[k], np.bincount(codes, minlength=len(index)))
            self._losing_counts[k] = _added(self._losing_counts[k], np.bincount(codes[losing], minlength=len(index)))
        self._events.add(chunk.events)
        self._n = end

    def _sum(self, numbers: np.ndarray) -> None:
        """Add ``numbers`` to the blocks' sums: whole blocks of :data:`SUM_BLOCK` trials, the rest kept pending."""
        rows = np.concatenate([self._pending, numbers]) if len(self._pending) else np.ascontiguousarray(numbers)
        whole = len(rows) // SUM_BLOCK * SUM_BLOCK
        for start in range(0, whole, SUM_BLOCK):
            self._block_sums.extend(rows[start:start + SUM_BLOCK].sum(axis=0)[np.newaxis])
        self._pending = rows[whole:].copy()

    def finish(self) -> VariantLosses:
        """Return the variant's losses and figures (the builder may not be used afterwards)."""
        if len(self._pending):
            self._block_sums.extend(self._pending.sum(axis=0)[np.newaxis])
            self._pending = self._pending[:0]
        by_column = self._block_sums.values().T
        sums = {c: math.fsum(by_column[j].tolist()) for j, c in enumerate(self.names)}
        sparse = {c: (where.values(), values.values()) for c, (_, where, values) in self._sparse.items()}
        counted = {}
        for c, (_, distinct) in self._counted.items():
            bits = np.array(sorted(distinct), dtype=np.int64)
            values = bits.view(np.float64)
            order = np.argsort(values, kind="stable")  # NaN last, as np.sort puts it
            counted[c] = (values[order], np.array([distinct[b] for b in bits.tolist()], dtype=np.int64)[order])

        def named(counts: list[np.ndarray]) -> dict[str, dict[str, int]]:
            return {c: {v: k for v, k in zip(index, n.tolist(), strict=False) if k}
                    for c, index, n in zip(TALLIED, self._index, counts, strict=True)}

        loss = self._loss if self._n == len(self._loss) else self._loss[:self._n].copy()
        return VariantLosses(self.name, loss,
                             self._events.finish(), self.names, sums,
                             sparse, counted, named(self._counts), named(self._losing_counts))


def _count_values(column: np.ndarray, distinct: dict[int, int]) -> None:
    """Add to ``distinct`` (value's bits -> trials) how many of ``column``'s values are each (NaN counts too).

    Most trials of a chunk share one value (a quiet year's): those are counted at once, the rest sorted.
    """
    if not len(column):
        return
    bits = np.ascontiguousarray(column).view(np.int64)
    first = int(bits[0])
    other = bits[bits != first]
    distinct[first] = distinct.get(first, 0) + len(bits) - len(other)
    if len(other):
        values, times = np.unique(other, return_counts=True)
        for v, c in zip(values.tolist(), times.tolist(), strict=True):
            distinct[v] = distinct.get(v, 0) + c


def _added(total: np.ndarray, more: np.ndarray) -> np.ndarray:
    """Return ``total + more``, ``total`` widened with zeros to the length of ``more`` (new values seen)."""
    if len(more) > len(total):
        total = np.concatenate([total, np.zeros(len(more) - len(total), dtype=total.dtype)])
    total[:len(more)] += more
    return total


def losses_of(rows: Iterable[Chunk], name: str, columns: Columns) -> VariantLosses:
    """Return the losses of one variant's rows, given as chunks in trial order."""
    builder = LossesBuilder(name, columns)
    for chunk in rows:
        builder.add(chunk)
    return builder.finish()
