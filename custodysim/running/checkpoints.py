"""Completed chunks of trials, kept on disk so that an interrupted run can be resumed.

Each chunk of one variant is saved as it completes, in one file written aside and then renamed into
place, so a chunk file is either whole or absent after the run is killed. After a crash of the machine
a renamed file may still hold damaged bytes: the file's checksum and sizes are checked when it is
loaded, and a chunk whose file is missing, damaged, or of another shape or format is simulated again.
Trials do not depend on how they are chunked (see :mod:`custodysim.simulation.randomness`), so a resumed run gives
the same figures as an uninterrupted one.

A chunk file (``VARIANT.FIRST.chunk``, FIRST the chunk's first trial in 10 digits) holds, in order:

- :data:`MAGIC` (8 bytes: the format and its version);
- the length of the header (4 bytes, unsigned little-endian);
- the header, JSON: ``{"rows": count, "numbers": columns, "codes": columns, "categories": [[str, ...], ...],
  "events": [[trial, event, peril, day, loss_usd, path, wallet], ...]}`` (per text column, the strings its
  codes stand for; the chunk's loss events, few: only trials that lost have one);
- the numbers, ``rows x numbers`` float64 little-endian, row after row;
- the text codes, ``rows x codes`` int32 little-endian, row after row;
- the CRC-32 of everything before it (4 bytes, unsigned little-endian).

One file and one write per chunk, raw arrays and no compression: a million-trial run saves thousands
of chunks while the workers simulate, on the process that hands out their work.
"""

from __future__ import annotations

import json
import struct
import zlib
from collections.abc import Iterable, Iterator
from pathlib import Path

import numpy as np

from custodysim.errors import WriteError
from custodysim.running.outputs import write_file, writing
from custodysim.running.rows import EVENT_COLUMNS, Chunk, EventRow

MAGIC = b"CSCHUNK2"
"""The first bytes of a chunk file (a file of another format or version is simulated again)."""
_U32 = struct.Struct("<I")
_NUMBER = np.dtype("<f8")
_CODE = np.dtype("<i4")


class ChunkStore:
    """Chunk files under ``folder/chunks``.

    Args:
        folder: the run's hidden staging folder.
    """

    def __init__(self, folder: Path) -> None:
        self.folder = folder / "chunks"
        with writing(self.folder):
            self.folder.mkdir(parents=True, exist_ok=True)

    def _path(self, variant: str, first: int) -> Path:
        return self.folder / f"{variant}.{first:010d}.chunk"

    def load(self, variant: str, first: int, count: int, width: tuple[int, int]) -> Chunk | None:
        """Return a saved chunk of ``count`` rows, or None if it is missing, damaged or does not fit.

        Args:
            variant: the variant.
            first: the chunk's first trial.
            count: the chunk's trials.
            width: the numeric and text columns a row must have.
        """
        try:
            content = self._path(variant, first).read_bytes()
        except OSError:
            return None
        return _parse(content, count, width)

    def save(self, variant: str, first: int, chunk: Chunk) -> None:
        """Save a completed chunk.

        Raises:
            WriteError: the file cannot be written (a full disk, say); the chunks saved before are kept.
        """
        numbers = np.ascontiguousarray(chunk.numbers, dtype=_NUMBER)
        codes = np.ascontiguousarray(chunk.codes, dtype=_CODE)
        header = json.dumps({"rows": len(chunk), "numbers": numbers.shape[1], "codes": codes.shape[1],
                             "categories": chunk.categories, "events": chunk.events}).encode()
        parts: list[bytes | memoryview] = [MAGIC, _U32.pack(len(header)), header, numbers.data, codes.data]
        crc = 0
        for part in parts:
            crc = zlib.crc32(part, crc)
        write_file(self._path(variant, first), b"".join([*parts, _U32.pack(crc)]))

    def chunks(self, variant: str, pieces: Iterable[tuple[int, int]], width: tuple[int, int]) -> Iterator[Chunk]:
        """Yield a variant's saved chunks of ``pieces`` (first trial, count), in order, one read at a time.

        Raises:
            WriteError: a chunk saved during the run is missing or damaged now (the disk failed, or
                someone deleted it): the run cannot write its rows; resuming it simulates that chunk again.
        """
        for first, count in pieces:
            chunk = self.load(variant, first, count, width)
            if chunk is None:
                raise WriteError(self._path(variant, first), OSError(
                    f"the checkpoint of trials {first}-{first + count - 1} of {variant!r}, saved during the run, is "
                    "missing or damaged now, so the run's rows cannot be written from it"))
            yield chunk

    def count(self) -> int:
        """Return how many chunks are saved."""
        return sum(1 for _ in self.folder.glob("*.chunk"))


def _parse(content: bytes, count: int, width: tuple[int, int]) -> Chunk | None:
    """Return the chunk a file holds, or None unless it is whole, of this format, and ``count x width``."""
    start = len(MAGIC) + _U32.size
    if len(content) < start + _U32.size or not content.startswith(MAGIC) \
            or _U32.unpack_from(content, len(content) - _U32.size)[0] != zlib.crc32(memoryview(content)[:-_U32.size]):
        return None
    (length,) = _U32.unpack_from(content, len(MAGIC))
    try:
        header = json.loads(content[start:start + length])
        shape = (header["rows"], header["numbers"], header["codes"])
        categories = tuple(tuple(column) for column in header["categories"] if isinstance(column, list))
        events = tuple(_event(e) for e in header["events"])
    except (ValueError, KeyError, TypeError):
        return None
    at_numbers = start + length
    at_codes = at_numbers + count * width[0] * _NUMBER.itemsize
    if shape != (count, *width) or len(categories) != width[1] \
            or not all(isinstance(c, str) for column in categories for c in column) \
            or at_codes + count * width[1] * _CODE.itemsize + _U32.size != len(content):
        return None
    numbers = np.frombuffer(content, _NUMBER, count * width[0], at_numbers).reshape(count, width[0])
    codes = np.frombuffer(content, _CODE, count * width[1], at_codes).reshape(count, width[1])
    if any(len(c) and (codes[:, j].min() < 0 or codes[:, j].max() >= len(c)) for j, c in enumerate(categories)):
        return None
    return Chunk(numbers.astype(np.float64), codes.astype(np.int32), categories, events)


def _event(values: object) -> EventRow:
    """Return a loss event read from a chunk's header (ValueError or TypeError unless it is one)."""
    if not isinstance(values, list) or len(values) != len(EVENT_COLUMNS):
        raise ValueError("not an event")
    trial, event, peril, day, loss, path, wallet = values
    if type(trial) is not int or not all(isinstance(t, str) for t in (event, peril, path, wallet)) \
            or not all(isinstance(x, float) for x in (day, loss)):
        raise TypeError("not an event")
    return trial, event, peril, day, loss, path, wallet
