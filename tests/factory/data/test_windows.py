"""SequenceWindows: views into X, one copy per batch, no memory per lookback."""

from __future__ import annotations

import tracemalloc

import numpy as np
import pytest

from factory.data.windows import SequenceWindows


def matrix(n: int = 200, f: int = 7) -> np.ndarray:
    return np.arange(n * f, dtype=np.float32).reshape(n, f)


def test_item_is_a_view_of_the_right_rows():
    X = matrix()
    rows = np.array([9, 10, 57, 199])
    w = SequenceWindows(X, rows, lookback=10)
    assert len(w) == 4
    for i, r in enumerate(rows):
        win = w[i]
        assert win.shape == (10, 7)
        assert np.shares_memory(win, X)
        np.testing.assert_array_equal(win, X[r - 9 : r + 1])
        assert win[-1, 0] == X[r, 0]  # the window ends at the decision row
    np.testing.assert_array_equal(w[-1], X[190:200])


def test_batch_is_a_contiguous_copy():
    X = matrix()
    rows = np.arange(4, 200, 3)
    w = SequenceWindows(X, rows, lookback=5)
    idx = np.array([0, 5, 3, len(rows) - 1])
    b = w.batch(idx)
    assert b.shape == (4, 5, 7) and b.dtype == np.float32 and b.flags.c_contiguous
    assert not np.shares_memory(b, X)
    np.testing.assert_array_equal(b, np.stack([w[i] for i in idx]))


def test_rejects_rows_without_enough_history():
    X = matrix()
    with pytest.raises(ValueError, match="fewer than lookback=10"):
        SequenceWindows(X, np.array([8, 20]), lookback=10)
    with pytest.raises(ValueError, match="past the end"):
        SequenceWindows(X, np.array([200]), lookback=10)
    SequenceWindows(X, np.array([9]), lookback=10)  # exactly enough


def test_rejects_wrong_matrix():
    with pytest.raises(ValueError, match="float32"):
        SequenceWindows(matrix().astype(np.float64), np.array([10]), lookback=5)
    with pytest.raises(ValueError, match="C-contiguous"):
        SequenceWindows(np.asfortranarray(matrix()), np.array([10]), lookback=5)


def test_construction_allocates_almost_nothing():
    n, f, lookback = 1_000_000, 50, 128
    X = np.zeros((n, f), dtype=np.float32)  # 200 MB
    rows = np.arange(lookback - 1, n, dtype=np.intp)
    tracemalloc.start()
    try:
        w = SequenceWindows(X, rows, lookback)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 1_000_000, peak  # vs 200 MB for X, 25 GB for materialised windows
    assert len(w) == n - lookback + 1
    assert np.shares_memory(w[0], X) and np.shares_memory(w[len(w) - 1], X)
    assert w.batch(np.array([0, 1])).shape == (2, lookback, f)
