"""Phase 1b: each defect is fixed with a count in the report, or refused in one line."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from factory.data.validate import validate_bars
from factory.errors import DataError
from tests.conftest import random_bars


def _raw(n: int = 50) -> pd.DataFrame:
    return random_bars(n, seed=3, gap_prob=0.0)


def test_clean_input_passes_unchanged():
    raw = _raw()
    clean, report = validate_bars(raw, "x.csv")
    pd.testing.assert_frame_equal(clean, raw, check_index_type=False)
    assert clean.index.equals(raw.index)
    assert report["rows_out"] == len(raw)
    assert not report["zero_volume_throughout"]


def test_duplicates_keep_last_and_unsorted_rows_are_sorted():
    raw = _raw()
    dup = raw.iloc[[10]].copy()
    dup["close"] = dup["high"]  # a later correction of the same minute
    shuffled = pd.concat([raw.iloc[20:], raw.iloc[:20], dup])
    clean, report = validate_bars(shuffled, "x.csv")
    assert report["duplicate_timestamps"] == 1
    assert report["unsorted_rows"] >= 1
    assert clean.index.is_monotonic_increasing and clean.index.is_unique
    assert clean["close"].iloc[10] == dup["close"].iloc[0]


def test_ohlc_defects_are_fixed_and_counted():
    raw = _raw()
    raw.iloc[5, raw.columns.get_loc("open")] = np.nan
    raw.iloc[6, raw.columns.get_loc("low")] = -1.0
    h, lo = raw.iloc[7]["high"], raw.iloc[7]["low"]
    raw.iloc[7, raw.columns.get_loc("high")], raw.iloc[7, raw.columns.get_loc("low")] = lo, h
    raw.iloc[8, raw.columns.get_loc("close")] = raw.iloc[8]["high"] + 5
    raw.iloc[9, raw.columns.get_loc("volume")] = -3
    clean, report = validate_bars(raw, "x.csv")
    assert report["nan_ohlc_rows_dropped"] == 1
    assert report["non_positive_price_rows_dropped"] == 1
    assert report["high_below_low_fixed"] == 1
    assert report["open_close_outside_range_fixed"] >= 1
    assert report["negative_volume_set_to_zero"] == 1
    assert len(clean) == len(raw) - 2
    assert (clean["high"] >= clean[["open", "close"]].max(axis=1)).all()
    assert (clean["low"] <= clean[["open", "close"]].min(axis=1)).all()
    assert (clean["volume"] >= 0).all()


def test_zero_volume_throughout_is_allowed_and_reported():
    raw = _raw()
    raw["volume"] = 0.0
    _, report = validate_bars(raw, "x.csv")
    assert report["zero_volume_throughout"]


def test_non_numeric_price_is_refused_naming_the_column():
    raw = _raw().astype({"close": object})
    raw.iloc[4, raw.columns.get_loc("close")] = "4700,25"
    with pytest.raises(DataError, match=r"x\.csv: non-numeric prices in column 'close'.*fix:"):
        validate_bars(raw, "x.csv")


def test_coarser_bars_are_refused():
    raw = random_bars(50, freq="5min", gap_prob=0.0)
    with pytest.raises(DataError, match="not 1 minute"):
        validate_bars(raw, "x.csv")
