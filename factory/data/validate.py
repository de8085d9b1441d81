"""Phase 1b: validate raw bars; fix what can be fixed (with counts), refuse the rest.

Every fix is counted in the report that ends up in the dataset manifest, and every
fix or doubt the user should know of is also a line in `report["warnings"]`; nothing
is changed silently. Refusals are `DataError`s: one line naming file, column and fix.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from factory.data.anomalies import (
    MOST,
    gap_warning,
    long_gaps,
    non_finite_rows,
    spike_rows,
)
from factory.data.ingest import BAR_COLUMNS, PRICE_COLUMNS
from factory.errors import DataError

_EMPTY_TOKENS = {"", "nan", "NaN", "NAN", "null", "NULL", "None", "NA", "N/A", "-"}
MANY_DUPLICATES = 0.001  # a share of the rows above which duplicates are "many"


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
    position = np.arange(len(bars))  # row of the file
    if report["unsorted_rows"]:
        position = np.argsort(ts, kind="stable")
        bars = bars.iloc[position]
    dup = bars.index.duplicated(keep="last")
    report["duplicate_timestamps"] = int(dup.sum())
    if dup.any():
        _warn_duplicates(bars, dup, position[~dup], report)
        bars = bars[~dup]
    return bars


def _warn_duplicates(bars: pd.DataFrame, dup: np.ndarray, kept: np.ndarray, report: dict):
    """Many duplicates, or duplicates that disagree, are worth a warning. `kept`: the file
    rows kept, in time order; each jump between parts of the file is a switch (a hop
    between contracts when overlapping contract files were concatenated)."""
    repeated = bars[bars.index.duplicated(keep=False)]
    conflicting = int((repeated.groupby(level=0)["close"].nunique(dropna=False) > 1).sum())
    report["conflicting_duplicate_timestamps"] = conflicting
    report["file_part_switches"] = switches = int((np.diff(kept) != 1).sum())
    if conflicting == 0 and dup.sum() <= MANY_DUPLICATES * len(bars):
        return
    report["warnings"].append(
        f"{int(dup.sum()):,} duplicate timestamps ({conflicting:,} of them with different "
        "prices, as when overlapping contracts are concatenated); the last row of each was "
        f"kept, so the series switches between parts of the file {switches:,} times: give "
        "one continuous contract series"
    )


def _drop_bad_prices(bars: pd.DataFrame, report: dict, source: str) -> pd.DataFrame:
    """Rows with a missing, infinite, non-positive or absurd price are dropped (counted)."""
    prices = bars[list(PRICE_COLUMNS)].to_numpy(dtype=np.float64)
    nan_rows = np.isnan(prices).any(axis=1)
    inf_rows = non_finite_rows(prices) & ~nan_rows
    with np.errstate(invalid="ignore"):
        nonpos = (prices <= 0).any(axis=1) & ~nan_rows & ~inf_rows
    ok = ~(nan_rows | inf_rows | nonpos)
    spikes = np.zeros(len(bars), dtype=bool)
    spikes[ok] = spike_rows(prices[ok], prices[ok, 3])
    counts = {
        "nan_ohlc_rows_dropped": int(nan_rows.sum()),
        "non_finite_price_rows_dropped": int(inf_rows.sum()),
        "non_positive_price_rows_dropped": int(nonpos.sum()),
        "absurd_price_rows_dropped": int(spikes.sum()),
    }
    report.update(counts)
    bad = ~ok | spikes
    if bad.all() or bad.mean() > MOST:
        raise DataError(
            source,
            f"{int(bad.sum()):,} of {len(bars):,} rows have missing, infinite, non-positive or "
            f"absurd prices ({_counts_text(counts)})",
            "check the price columns (order, units, decimal separator)",
        )
    if bad.any():
        report["warnings"].append(_drop_warning(bars, prices, bad, spikes, counts))
    return bars[~bad]


def _counts_text(counts: dict) -> str:
    names = {
        "nan_ohlc_rows_dropped": "missing",
        "non_finite_price_rows_dropped": "infinite",
        "non_positive_price_rows_dropped": "non-positive",
        "absurd_price_rows_dropped": "absurd (over 50 % from the bars around)",
    }
    return ", ".join(f"{v:,} {names[k]}" for k, v in counts.items() if v)


def _drop_warning(bars, prices: np.ndarray, bad, spikes, counts: dict) -> str:
    first = int(np.flatnonzero(spikes if spikes.any() else bad)[0])
    row = prices[first]
    example = ", ".join(f"{k}={v:g}" for k, v in zip(PRICE_COLUMNS, row, strict=True))
    return (
        f"dropped {int(bad.sum()):,} bar(s) with bad prices: {_counts_text(counts)} "
        f"(e.g. {example} at {bars.index[first]:%Y-%m-%d %H:%M} UTC)"
    )


def _fix_ohlc(arr: dict[str, np.ndarray], report: dict) -> None:
    o, h, lo, c = (arr[k] for k in PRICE_COLUMNS)
    swapped = h < lo
    report["high_below_low_fixed"] = int(swapped.sum())
    if swapped.mean() > MOST:
        report["warnings"].append(
            f"high is below low on {int(swapped.sum()):,} of {len(h):,} rows (swapped back): "
            "the high and low columns look exchanged; check the file's column order"
        )
    if swapped.any():
        h[swapped], lo[swapped] = lo[swapped].copy(), h[swapped].copy()
    outside = (o > h) | (o < lo) | (c > h) | (c < lo)
    report["open_close_outside_range_fixed"] = int(outside.sum())
    np.maximum(h, np.maximum(o, c), out=h)
    np.minimum(lo, np.minimum(o, c), out=lo)


def _fix_volume(arr: dict[str, np.ndarray], report: dict) -> None:
    vol = arr["volume"]
    report["nan_volume_set_to_zero"] = int(np.isnan(vol).sum())
    report["negative_volume_set_to_zero"] = int((vol < 0).sum())
    report["infinite_volume_set_to_zero"] = int(np.isinf(vol).sum())
    arr["volume"] = np.where(~np.isfinite(vol) | (vol < 0), 0.0, vol)
    report["zero_volume_throughout"] = bool((arr["volume"] == 0).all())
    if report["zero_volume_throughout"]:
        report["warnings"].append(
            "volume is zero in every bar (as in spot or quote files): the volume features "
            "carry no information; give a file with traded volume if there is one"
        )


def validate_bars(raw: pd.DataFrame, source: str) -> tuple[pd.DataFrame, dict]:
    """Clean float64 bars on a sorted, unique UTC index, and the validation report."""
    report: dict = {"rows_in": len(raw), "warnings": []}
    nat = raw.index.isna()
    report["unplaceable_local_times_dropped"] = int(nat.sum())
    raw = raw[~nat]
    raw.index = raw.index.as_unit("ns")
    arr = {col: _to_float(raw[col], col, source) for col in BAR_COLUMNS}
    bars = pd.DataFrame(arr, index=raw.index)
    bars = _order_and_dedupe(bars, report)
    bars = _drop_bad_prices(bars, report, source)

    arr = {col: bars[col].to_numpy(dtype=np.float64, copy=True) for col in BAR_COLUMNS}
    _fix_ohlc(arr, report)
    _fix_volume(arr, report)

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
    gaps = long_gaps(clean.index)
    report["long_gaps"] = len(gaps)
    if gaps:
        report["warnings"].append(gap_warning(gaps))
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
