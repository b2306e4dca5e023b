"""Completed chunks of trials, kept on disk so that an interrupted run can be resumed.

Each chunk of one variant is saved as it completes, in one atomic step (written aside, then renamed),
so a chunk file is either whole or absent. Trials do not depend on how they are chunked (see
:mod:`custodysim.randomness`), so a resumed run gives the same figures as an uninterrupted one.
"""

from __future__ import annotations

import os
from itertools import pairwise
from pathlib import Path

import numpy as np

from custodysim.rows import Chunk


class ChunkStore:
    """Chunk files under ``folder/chunks``.

    Args:
        folder: the run's hidden staging folder.
    """

    def __init__(self, folder: Path) -> None:
        self.folder = folder / "chunks"
        self.folder.mkdir(parents=True, exist_ok=True)

    def _path(self, variant: str, first: int) -> Path:
        return self.folder / f"{variant}.{first:010d}.npz"

    def load(self, variant: str, first: int, count: int, width: tuple[int, int]) -> Chunk | None:
        """Return a saved chunk, or None if it is missing, unreadable or does not fit."""
        path = self._path(variant, first)
        if not path.is_file():
            return None
        try:
            with np.load(path, allow_pickle=False) as data:
                numbers, codes = data["numbers"], data["codes"]
                flat, sizes = data["categories"].tolist(), data["category_sizes"].tolist()
        except (OSError, ValueError, KeyError):
            return None  # unreadable, or saved by an older version: simulate it again
        if numbers.shape != (count, width[0]) or codes.shape != (count, width[1]) or len(sizes) != width[1] \
                or sum(sizes) != len(flat):
            return None
        ends = np.cumsum([0, *sizes]).tolist()
        categories = tuple(tuple(flat[a:b]) for a, b in pairwise(ends))
        if any(len(c) and (codes[:, j].min() < 0 or codes[:, j].max() >= len(c)) for j, c in enumerate(categories)):
            return None
        return Chunk(numbers, codes.astype(np.int32, copy=False), categories)

    def save(self, variant: str, first: int, chunk: Chunk) -> None:
        """Save a completed chunk."""
        path = self._path(variant, first)
        tmp = path.with_name(f".{path.name}.tmp.npz")
        flat = [c for column in chunk.categories for c in column]
        np.savez(tmp, numbers=chunk.numbers, codes=chunk.codes, categories=np.array(flat, dtype=str),
                 category_sizes=np.array([len(c) for c in chunk.categories], dtype=np.int64))
        os.replace(tmp, path)

    def count(self) -> int:
        """Return how many chunks are saved."""
        return sum(1 for _ in self.folder.glob("*.npz"))
