"""trials.parquet: every trial row of a run in Apache Parquet, the columnar file notebooks and data tools read.

The columns are those of ``trials.csv``, in its order and with its names, typed: ``variant`` and the
text columns as dictionary-encoded strings, the counts (:data:`~custodysim.running.trialscsv.INTEGER_COLUMNS`)
as int64, amounts, shares and times as float64; a time that never came (no access, no alarm) is null,
as it is an empty field in the CSV. Rows are grouped by variant, each variant's in trial order, and
compressed with zstd a row group of :data:`ROW_GROUP` rows at a time: pandas, polars, DuckDB, R's arrow and
Spark read the file as it is, a column at a time.

pyarrow is an optional dependency (``pip install 'custodysim[parquet]'``); without it, a run asked for
Parquet stops before it simulates anything, saying how to install it.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import numpy as np

from custodysim.errors import OptionError
from custodysim.running.rows import Chunk, Columns, VariantRows
from custodysim.running.trialscsv import INTEGER_COLUMNS

ROW_GROUP = 65_536
"""Rows per row group: large enough to compress well, small enough to write a block at a time."""
READ_BATCH = 16_384
"""Rows read at a time."""
INSTALL = "pip install 'custodysim[parquet]'"


def require_pyarrow() -> None:
    """Refuse Parquet output or input without pyarrow.

    Raises:
        OptionError: pyarrow is not installed, with the command that installs it.
    """
    if importlib.util.find_spec("pyarrow") is None:
        raise OptionError(f"Parquet needs pyarrow, which is not installed: {INSTALL} (or use --rows csv)")


def _schema(cols: Columns) -> Any:
    import pyarrow as pa

    text = pa.dictionary(pa.int32(), pa.string())
    return pa.schema([("variant", text),
                      *((c, pa.int64() if c in INTEGER_COLUMNS else pa.float64()) for c in cols.numeric),
                      *((c, text) for c in Columns.text)],
                     metadata={"written_by": "custodysim", "layout": "one row per variant and trial, as trials.csv"})


def write_trials_parquet(path: Path, rows: Iterable[VariantRows], cols: Columns) -> None:
    """Write trial rows to one Parquet file (see the module's docstring).

    Args:
        path: the file.
        rows: every variant's rows, the variants in order and each variant's trials in order, in pieces
            if need be (see :func:`~custodysim.running.rows.blocks_of`): a block is held at a time.
        cols: their column layout.
    """
    import pyarrow as pa
    import pyarrow.parquet as pq

    schema = _schema(cols)
    pending: list[Any] = []
    held = 0
    pool = pa.system_memory_pool()  # malloc: memory freed is given back, not kept for later as jemalloc does
    with pq.ParquetWriter(path, schema, compression="zstd", memory_pool=pool) as writer:
        for r in rows:
            pending.append(pa.record_batch(_arrays(r, cols), schema=schema))
            held += len(r)
            if held >= ROW_GROUP:
                writer.write_table(pa.Table.from_batches(pending, schema), row_group_size=held)
                pending, held = [], 0
        if pending:
            writer.write_table(pa.Table.from_batches(pending, schema), row_group_size=held)


def _arrays(r: VariantRows, cols: Columns) -> list[Any]:
    """Return the columns of a block of one variant's rows, as the schema types them."""
    import pyarrow as pa

    n = len(r)
    arrays = [pa.DictionaryArray.from_arrays(np.zeros(n, dtype=np.int32), pa.array([r.name], pa.string()))]
    for c in cols.numeric:
        values = r.numbers[c]
        missing = np.isnan(values)
        if c in INTEGER_COLUMNS:
            arrays.append(pa.array(np.where(missing, 0, values).astype(np.int64), pa.int64(),
                                   mask=missing if missing.any() else None))
        else:
            arrays.append(pa.array(values, pa.float64(), mask=missing if missing.any() else None))
    for c in Columns.text:
        column = r.categorical(c)
        arrays.append(pa.DictionaryArray.from_arrays(column.codes.astype(np.int32, copy=False),
                                                     pa.array(column.categories, pa.string())))
    return arrays


def parquet_header(path: Path) -> list[str]:
    """Return the column names of a Parquet file (OSError or ValueError if it is not one)."""
    import pyarrow.parquet as pq

    try:
        return list(pq.ParquetFile(path).schema_arrow.names)
    except Exception as exc:  # pyarrow raises its own errors for a damaged file
        raise ValueError(f"{path.name} cannot be read as Parquet ({exc})") from None


def read_parquet_chunks(path: Path, cols: Columns, present: list[str]) -> Iterator[tuple[str, Chunk]]:
    """Yield the rows of a Parquet file a block at a time: (variant, its next rows as a chunk).

    Args:
        path: the file.
        cols: its column layout (from its header: see :func:`custodysim.running.runfolder.read_rows`).
        present: its numeric columns, as in its header.

    Raises:
        ValueError: the file cannot be read, or a column holds what it should not.
    """
    import pyarrow as pa
    import pyarrow.parquet as pq

    try:
        batches = pq.ParquetFile(path).iter_batches(batch_size=READ_BATCH)
        for batch in batches:
            variants, names = _codes(batch.column("variant"))
            numbers = np.column_stack([_floats(batch.column(c)) for c in present]) if len(batch) else \
                np.zeros((0, len(present)))
            texts = [_codes(batch.column(c)) for c in Columns.text]
            starts = np.flatnonzero(np.diff(variants)) + 1
            for a, b in zip([0, *starts.tolist()], [*starts.tolist(), len(batch)], strict=True):
                codes = np.column_stack([k[a:b] for k, _ in texts]) if b > a else np.zeros((0, len(texts)), np.int32)
                yield names[variants[a]], Chunk(np.ascontiguousarray(numbers[a:b]), codes.astype(np.int32),
                                                tuple(c for _, c in texts))
    except (pa.ArrowException, KeyError, IndexError) as exc:
        raise ValueError(f"{path.name} cannot be read ({exc})") from None


def _floats(column: Any) -> np.ndarray:
    """Return a numeric column as float64, a null as NaN."""
    import pyarrow as pa

    values: np.ndarray = column.cast(pa.float64()).to_numpy(zero_copy_only=False)
    return values


def _codes(column: Any) -> tuple[np.ndarray, tuple[str, ...]]:
    """Return a text column as codes and the strings they stand for (a null as the empty string)."""
    import pyarrow as pa

    if not pa.types.is_dictionary(column.type):
        column = column.cast(pa.string()).dictionary_encode()
    categories = tuple("" if c is None else str(c) for c in column.dictionary.to_pylist())
    codes = column.indices.fill_null(0).to_numpy(zero_copy_only=False).astype(np.int32)
    if column.null_count:  # a null stands for the empty string, which may not be among the strings yet
        categories = (*categories, "")
        codes[np.asarray(column.is_null())] = len(categories) - 1
    return codes, categories
