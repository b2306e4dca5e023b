"""Completed chunks of trials, kept on disk so that an interrupted run can be resumed.

Each chunk of one variant is saved as it completes, in one atomic step (written aside, then renamed),
so a chunk file is either whole or absent. Trials do not depend on how they are chunked (see
:mod:`custodysim.randomness`), so a resumed run gives the same figures as an uninterrupted one.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np


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

    def load(self, variant: str, first: int, count: int,
             width: tuple[int, int]) -> tuple[np.ndarray, list[list[str]]] | None:
        """Return a saved chunk's numeric and text rows, or None if it is missing or does not fit."""
        path = self._path(variant, first)
        if not path.is_file():
            return None
        try:
            with np.load(path, allow_pickle=False) as data:
                numbers, texts = data["numbers"], data["texts"]
        except (OSError, ValueError, KeyError):
            return None  # unreadable: simulate it again
        if numbers.shape != (count, width[0]) or texts.shape != (count, width[1]):
            return None
        return numbers, texts.tolist()

    def save(self, variant: str, first: int, numbers: np.ndarray, texts: list[list[str]]) -> None:
        """Save a completed chunk."""
        path = self._path(variant, first)
        tmp = path.with_name(f".{path.name}.tmp.npz")
        np.savez(tmp, numbers=numbers, texts=np.array(texts, dtype=str).reshape(len(texts), -1))
        os.replace(tmp, path)

    def count(self) -> int:
        """Return how many chunks are saved."""
        return sum(1 for _ in self.folder.glob("*.npz"))
