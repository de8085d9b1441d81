"""Phase 1b: validate raw bars; fix what can be fixed (with counts), refuse the rest.

Every fix is counted in the report that ends up in the dataset manifest; nothing is
changed silently. Refusals are `DataError`s: one line naming file, column and fix.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from factory.data.ingest import BAR_COLUMNS, PRICE_COLUMNS
from factory.errors import DataError

_EMPTY_TOKENS = {"", "nan", "NaN", "NAN", "null", "NULL", "None", "NA", "N/A", "-"}


def _to_float(values: pd.Series, column: str, source: str) -> np.ndarray:
    """A numeric column as float64; text that is not a number and not empty is refused."""
    if pd.api.types.is_numeric_dtype(values) and not pd.api.types.is_bool_dtype(values):
        return values.to_numpy(dtype=np.float64, na_value=np.nan)
    numeric = pd.to_numeric(values, errors="coerce")
    failed = numeric.isna() & values.notna() & ~values.astype(str).str.strip().isin(_EMPTY_TOKENS)
    if failed.any():
        where = int(np.flatnonzero(failed.to_numpy())[0])
        kind = "prices" if column in PRICE_COLUMNS else "values"
        raise DataError(
            source,
            f"non-numeric {kind} in column '{column}' (e.g. {str(values.iloc[where])[:30]!r} "
            f"at data row {where + 1})",
            f"make '{column}' a plain number in every row",
        )
    return numeric.to_numpy(dtype=np.float64, na_value=np.nan)


def _order_and_dedupe(bars: pd.DataFrame, report: dict) -> pd.DataFrame:
    ts = bars.index.asi8
    report["unsorted_rows"] = int((ts[1:] < ts[:-1]).sum())
    if report["unsorted_rows"]:
        bars = bars.iloc[np.argsort(ts, kind="stable")]
    dup = bars.index.duplicated(keep="last")
    report["duplicate_timestamps"] = int(dup.sum())
    if dup.any():
        bars = bars[~dup]
    return bars


def _fix_ohlc(arr: dict[str, np.ndarray], report: dict) -> None:
    o, h, lo, c = (arr[k] for k in PRICE_COLUMNS)
    swapped = h < lo
    report["high_below_low_fixed"] = int(swapped.sum())
    if swapped.any():
        h[swapped], lo[swapped] = lo[swapped].copy(), h[swapped].copy()
    outside = (o > h) | (o < lo) | (c > h) | (c < lo)
    report["open_close_outside_range_fixed"] = int(outside.sum())
    np.maximum(h, np.maximum(o, c), out=h)
    np.minimum(lo, np.minimum(o, c), out=lo)


def validate_bars(raw: pd.DataFrame, source: str) -> tuple[pd.DataFrame, dict]:
    """Clean float64 bars on a sorted, unique UTC index, and the validation report."""
    report: dict = {"rows_in": len(raw)}
    nat = raw.index.isna()
    report["unplaceable_local_times_dropped"] = int(nat.sum())
    raw = raw[~nat]
    raw.index = raw.index.as_unit("ns")
    arr = {col: _to_float(raw[col], col, source) for col in BAR_COLUMNS}
    bars = pd.DataFrame(arr, index=raw.index)
    bars = _order_and_dedupe(bars, report)

    nan_rows = bars[list(PRICE_COLUMNS)].isna().any(axis=1).to_numpy()
    report["nan_ohlc_rows_dropped"] = int(nan_rows.sum())
    bars = bars[~nan_rows]
    nonpos = (bars[list(PRICE_COLUMNS)] <= 0).any(axis=1).to_numpy()
    report["non_positive_price_rows_dropped"] = int(nonpos.sum())
    bars = bars[~nonpos]
    if bars.empty:
        raise DataError(
            source,
            "no valid rows left (every row has NaN or non-positive prices)",
            "check the price columns",
        )

    arr = {col: bars[col].to_numpy(dtype=np.float64, copy=True) for col in BAR_COLUMNS}
    _fix_ohlc(arr, report)
    vol = arr["volume"]
    report["nan_volume_set_to_zero"] = int(np.isnan(vol).sum())
    report["negative_volume_set_to_zero"] = int((vol < 0).sum())
    arr["volume"] = np.where(np.isnan(vol) | (vol < 0), 0.0, vol)
    report["zero_volume_throughout"] = bool((arr["volume"] == 0).all())

    off_minute = (bars.index.asi8 % 60_000_000_000) != 0
    report["off_minute_timestamps"] = int(off_minute.sum())
    if off_minute.mean() > 0.5:
        raise DataError(
            source,
            "most timestamps are not on whole minutes",
            "give 1-minute bars labelled by their start minute",
        )
    clean = pd.DataFrame(arr, index=bars.index)
    clean = clean[~off_minute]
    _check_spacing(clean.index, source)
    report["rows_out"] = len(clean)
    return clean, report


def _check_spacing(index: pd.DatetimeIndex, source: str) -> None:
    if len(index) < 2:
        return
    step_s = np.diff(index.asi8) / 1e9
    median = float(np.median(step_s))
    if median != 60.0:
        raise DataError(
            source,
            f"bars are {median:.0f} s apart (median), not 1 minute",
            "give 1-minute bars; coarser decision bars come from --timeframe",
        )
