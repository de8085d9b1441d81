"""Lookback windows over a feature matrix, for sequence models, without copying it.

Window i holds the `lookback` rows that end at decision row rows[i] (inclusive). A
single window is a view into X; only `batch` copies, and only the rows it returns.
"""

from __future__ import annotations

import numpy as np


class SequenceWindows:
    """Windows X[rows[i] - lookback + 1 : rows[i] + 1] for each decision row."""

    def __init__(self, X: np.ndarray, rows: np.ndarray, lookback: int) -> None:
        if not isinstance(X, np.ndarray) or X.ndim != 2:
            raise ValueError("X must be a 2-D numpy array (n rows, F features)")
        if X.dtype != np.float32 or not X.flags.c_contiguous:
            raise ValueError(
                f"X must be C-contiguous float32 (got {X.dtype}, "
                f"c_contiguous={X.flags.c_contiguous}); fix: np.ascontiguousarray(X, np.float32)"
            )
        lookback = int(lookback)
        if lookback < 1 or lookback > len(X):
            raise ValueError(f"lookback {lookback} must lie in 1..{len(X)} (the rows of X)")
        rows = np.asarray(rows)
        if rows.ndim != 1 or not np.issubdtype(rows.dtype, np.integer):
            raise ValueError("rows must be a 1-D integer array of row positions")
        rows = rows.astype(np.intp, copy=False)
        if len(rows) and rows.min() < lookback - 1:
            raise ValueError(
                f"row {int(rows.min())} has fewer than lookback={lookback} rows of history; "
                f"fix: keep only rows >= {lookback - 1}"
            )
        if len(rows) and rows.max() >= len(X):
            raise ValueError(f"row {int(rows.max())} is past the end of X ({len(X)} rows)")
        self.X = X
        self.rows = rows
        self.lookback = lookback
        # (n - lookback + 1, lookback, F) view: window s starts at row s.
        windows = np.lib.stride_tricks.sliding_window_view(X, lookback, axis=0)
        self._windows = windows.transpose(0, 2, 1)

    def __len__(self) -> int:
        return len(self.rows)

    def __getitem__(self, i: int) -> np.ndarray:
        """Window i, shape (lookback, F): a view of X (writing to it writes to X)."""
        end = int(self.rows[i]) + 1
        return self.X[end - self.lookback : end]

    def batch(self, idx: np.ndarray) -> np.ndarray:
        """Windows idx as a new C-contiguous array of shape (len(idx), lookback, F)."""
        starts = self.rows[np.asarray(idx, dtype=np.intp)] - (self.lookback - 1)
        return np.ascontiguousarray(self._windows[starts])
