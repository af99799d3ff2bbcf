"""Bounded-memory search in a sorted column of a 2-D HDF5 dataset.

MVSEC event arrays hold tens of millions of rows; they are never loaded whole.
:class:`SortedColumn` keeps a sparse index (at most ``max_samples`` values of
the column, read once) and answers ``searchsorted`` queries by narrowing the
range with the index, bisecting with single-row reads while the range is
larger than ``max_block`` rows, then reading one block of at most
``max_block`` values. Memory per query is ``O(max_block)``.
"""

from __future__ import annotations

from typing import Literal

import h5py
import numpy as np

#: Default number of index samples kept per column.
DEFAULT_MAX_SAMPLES: int = 1024
#: Default largest block of the column read in one go by a query.
DEFAULT_MAX_BLOCK: int = 1 << 18
#: Default most chunks of a chunked dataset the index samples touch.
DEFAULT_MAX_CHUNK_SAMPLES: int = 64


class SortedColumn:
    """Sparse index over column ``column`` of an ``(N, C)`` HDF5 dataset sorted on it.

    The index samples rows ``0, s, 2s, ...`` and the last row, with the stride
    ``s`` chosen so that at most ``max_samples + 1`` values are kept and, for a
    chunked dataset, at most ``max_chunk_samples + 1`` chunks are read.
    """

    def __init__(
        self,
        dataset: h5py.Dataset,
        column: int,
        *,
        max_samples: int = DEFAULT_MAX_SAMPLES,
        max_block: int = DEFAULT_MAX_BLOCK,
        max_chunk_samples: int = DEFAULT_MAX_CHUNK_SAMPLES,
    ) -> None:
        if min(max_samples, max_block, max_chunk_samples) < 1:
            raise ValueError("max_samples, max_block and max_chunk_samples must be >= 1")
        self.dataset = dataset
        self.column = int(column)
        self.max_block = int(max_block)
        self.n = int(dataset.shape[0])
        if self.n == 0:
            self.rows = np.zeros(0, dtype=np.int64)
            self.values = np.zeros(0, dtype=np.float64)
            return
        stride = max(1, -(-self.n // max_samples))  # ceil
        chunks = getattr(dataset, "chunks", None)
        if chunks:
            # Each sample of a chunked (maybe compressed) dataset costs a chunk
            # read: touch at most max_chunk_samples chunks, sampling chunk starts.
            rows_per_chunk = int(chunks[0])
            n_chunks = -(-self.n // rows_per_chunk)
            if n_chunks > max_chunk_samples:
                stride = max(stride, -(-n_chunks // max_chunk_samples) * rows_per_chunk)
        rows = np.arange(0, self.n, stride, dtype=np.int64)
        values = np.asarray(dataset[0 : self.n : stride, self.column], dtype=np.float64)
        if rows[-1] != self.n - 1:
            rows = np.append(rows, self.n - 1)
            values = np.append(values, float(dataset[self.n - 1, self.column]))
        self.rows = rows
        self.values = values

    def read(self, start: int, stop: int) -> np.ndarray:
        """Column values of rows ``[start, stop)`` as float64."""
        if stop <= start:
            return np.zeros(0, dtype=np.float64)
        return np.asarray(self.dataset[start:stop, self.column], dtype=np.float64)

    def searchsorted(self, value: float, side: str = "left") -> int:
        """Like ``np.searchsorted(column, value, side)`` without loading the column.

        ``side='left'`` returns the number of rows with ``t < value``;
        ``side='right'`` the number with ``t <= value`` (for a sorted column).
        """
        if side not in ("left", "right"):
            raise ValueError(f"side must be 'left' or 'right', not {side!r}")
        if self.n == 0:
            return 0
        value = float(value)
        which: Literal["left", "right"] = "left" if side == "left" else "right"
        # Number of index samples for which the predicate (t < v or t <= v) holds.
        i = int(np.searchsorted(self.values, value, side=which))
        lo = int(self.rows[i - 1]) + 1 if i > 0 else 0
        hi = int(self.rows[i]) if i < len(self.rows) else self.n
        # Invariant: the answer p lies in [lo, hi].
        while hi - lo > self.max_block:
            mid = (lo + hi) // 2
            t_mid = float(self.dataset[mid, self.column])
            below = t_mid < value if side == "left" else t_mid <= value
            if below:
                lo = mid + 1
            else:
                hi = mid
        block = self.read(lo, hi)
        return lo + int(np.searchsorted(block, value, side=which))


def first_unsorted_row(
    column: SortedColumn,
    *,
    full_check_rows: int,
    probe_blocks: int,
    probe_rows: int,
) -> tuple[int | None, bool]:
    """Cheap check that ``column`` is finite and non-decreasing.

    Columns of at most ``full_check_rows`` rows are checked exactly, in chunks
    of ``full_check_rows``. Longer ones are checked on the sparse index plus
    ``probe_blocks`` evenly spaced blocks of ``probe_rows`` consecutive rows.
    Returns ``(row, finite)``: the first offending row found (``None`` when the
    check passed) and whether the problem is a non-finite value.
    """
    n = column.n
    if n == 0:
        return None, True

    def check(values: np.ndarray, offset: int) -> tuple[int | None, bool]:
        bad = np.flatnonzero(~np.isfinite(values))
        if bad.size:
            return offset + int(bad[0]), False
        dec = np.flatnonzero(np.diff(values) < 0)
        if dec.size:
            return offset + int(dec[0]) + 1, True
        return None, True

    if n <= full_check_rows:
        return check(column.read(0, n), 0)
    # The sparse index itself, then evenly spaced probe blocks.
    row, finite = check(column.values, 0)
    if row is not None:
        return int(column.rows[row]), finite
    starts = np.linspace(0, max(0, n - probe_rows), probe_blocks).astype(np.int64)
    for start in np.unique(starts):
        stop = min(n, int(start) + probe_rows)
        row, finite = check(column.read(int(start), stop), int(start))
        if row is not None:
            return row, finite
    return None, True
