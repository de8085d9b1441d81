"""Phase 1a: read raw bars (parquet or CSV, gzip, any header) into one UTC-indexed frame.

The result has a `DatetimeIndex` (UTC, ns, named "timestamp") and float64 columns
open, high, low, close, volume. Validation and fixes are `factory.data.validate`'s job;
this module only finds the columns and parses the timestamps.
"""

from __future__ import annotations

import gzip
import hashlib
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from factory.data.timezone import end_stamp_warning, fit_warning, survey, undetected_reason
from factory.errors import DataError

PRICE_COLUMNS = ("open", "high", "low", "close")
BAR_COLUMNS = (*PRICE_COLUMNS, "volume")

ALIASES: dict[str, tuple[str, ...]] = {
    "timestamp": (
        "timestamp",
        "datetime",
        "date_time",
        "time_stamp",
        "ts",
        "date time",
        "gmt time",
        "local time",
        "time (utc)",
        "timestamp_utc",
        "bar_time",
    ),
    "date": ("date", "day", "trade_date"),
    "time": ("time", "hhmmss", "bar_start"),
    "open": ("open", "o", "open_price", "first", "openprice"),
    "high": ("high", "h", "high_price", "max", "highprice"),
    "low": ("low", "l", "low_price", "min", "lowprice"),
    "close": ("close", "c", "last", "close_price", "closeprice", "settle"),
    "volume": ("volume", "vol", "v", "tick volume", "tickvol", "qty", "size", "total volume"),
}
_POSITIONAL = {
    6: ("timestamp", "open", "high", "low", "close", "volume"),
    7: ("date", "time", "open", "high", "low", "close", "volume"),
}
_TS_FORMATS = (
    "ISO8601",
    "%Y%m%d %H%M%S",
    "%Y%m%d%H%M%S",
    "%Y%m%d %H:%M:%S",
    "%d.%m.%Y %H:%M:%S.%f",
    "%m/%d/%Y %H:%M",
    "%m/%d/%Y %H:%M:%S",
    "%d/%m/%Y %H:%M:%S",
)


@dataclass(frozen=True)
class RawFile:
    """What identifies a raw input: its path, size and content hash."""

    path: str
    size_bytes: int
    sha256: str

    @classmethod
    def of(cls, path: Path) -> RawFile:
        digest = hashlib.sha256()
        with open(path, "rb") as fh:
            for chunk in iter(lambda: fh.read(1 << 22), b""):
                digest.update(chunk)
        return cls(str(path), path.stat().st_size, digest.hexdigest())


def _open_text(path: Path):
    if path.suffix == ".gz":
        return gzip.open(path, "rt", encoding="utf-8", errors="replace")
    return open(path, encoding="utf-8", errors="replace")


def _sniff(path: Path) -> tuple[str, list[str]]:
    """The separator and the fields of the first non-empty line."""
    with _open_text(path) as fh:
        first = ""
        for line in fh:
            if line.strip():
                first = line.strip()
                break
    if not first:
        raise DataError(str(path), "the file holds no rows", "give a file of 1-minute OHLCV bars")
    counts = {sep: first.count(sep) for sep in (";", ",", "\t", "|")}
    sep = max(counts, key=counts.get)
    if counts[sep] == 0:
        raise DataError(
            str(path),
            "no column separator found in the first line",
            "use ',' or ';' separated columns: timestamp,open,high,low,close,volume",
        )
    return sep, [f.strip().strip('"').strip() for f in first.split(sep)]


def _canonical(name: str) -> str | None:
    key = re.sub(r"\s+", " ", str(name).strip().lower().strip("<>").replace("_", " "))
    for canon, names in ALIASES.items():
        if key in {n.replace("_", " ") for n in names}:
            return canon
    return None


def _has_header(fields: list[str]) -> bool:
    return any(_canonical(f) for f in fields) or any(
        re.search(r"[a-df-su-y]", f.lower()) for f in fields
    )


def _read_csv(path: Path) -> pd.DataFrame:
    sep, fields = _sniff(path)
    if _has_header(fields):
        frame = pd.read_csv(path, sep=sep, dtype=str, skipinitialspace=True)
        return frame
    names = _POSITIONAL.get(len(fields))
    if names is None:
        raise DataError(
            str(path),
            f"no header and {len(fields)} columns "
            "(expected 6: timestamp,o,h,l,c,v or 7: date,time,o,h,l,c,v)",
            "add a header line naming the columns",
        )
    return pd.read_csv(path, sep=sep, header=None, names=list(names), dtype=str)


def read_table(path: Path) -> pd.DataFrame:
    """The raw table, columns renamed to canonical names where an alias matches."""
    if not path.exists():
        raise DataError(str(path), "file not found", "check the --raw path")
    suffixes = [s.lower() for s in path.suffixes]
    try:
        if suffixes and suffixes[-1] in (".parquet", ".pq"):
            frame = pd.read_parquet(path)
            if isinstance(frame.index, pd.DatetimeIndex):
                frame = frame.reset_index(names="timestamp")
        else:
            frame = _read_csv(path)
    except DataError:
        raise
    except Exception as exc:  # pyarrow / parser errors carry long messages
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise DataError(
            str(path),
            f"cannot be read ({first[:160]})",
            "give a valid parquet or CSV file of 1-minute bars",
        ) from exc
    rename = {}
    for col in frame.columns:
        canon = _canonical(col)
        if canon and canon not in rename.values():
            rename[col] = canon
    return frame.rename(columns=rename)


def _parse_strings(values: pd.Series) -> pd.DatetimeIndex | None:
    sample = values.dropna().astype(str).head(200)
    for fmt in _TS_FORMATS:
        try:
            pd.to_datetime(sample, format=fmt)
        except (ValueError, TypeError):
            continue
        return pd.DatetimeIndex(pd.to_datetime(values, format=fmt, errors="coerce"))
    return None


def _parse_epoch(values: pd.Series) -> pd.DatetimeIndex | None:
    numeric = pd.to_numeric(values, errors="coerce")
    if numeric.isna().all():
        return None
    magnitude = float(np.nanmedian(numeric.to_numpy(dtype=float)))
    for unit, low in (("ns", 1e17), ("us", 1e14), ("ms", 1e11), ("s", 1e8)):
        if magnitude >= low:
            return pd.DatetimeIndex(pd.to_datetime(numeric, unit=unit, errors="coerce"))
    return None


def _combine_date_time(frame: pd.DataFrame) -> pd.Series:
    date = frame["date"].astype(str).str.strip()
    time = frame["time"].astype(str).str.strip()
    if time.str.fullmatch(r"\d{1,6}").all():
        width = 6 if time.str.len().max() > 4 else 4
        time = time.str.zfill(width)
        time = time.str[:2] + ":" + time.str[2:4] + (":" + time.str[4:6] if width == 6 else "")
    return date + " " + time


def _is_epoch_text(values: pd.Series) -> bool:
    """Digit-only text that is not a compact YYYYMMDDHHMMSS stamp: epoch seconds/ms/us/ns."""
    sample = values.dropna().astype(str).str.strip().head(200)
    return bool(len(sample)) and bool(
        sample.str.fullmatch(r"\d+").all() and not sample.str.len().eq(14).all()
    )


def parse_timestamps(frame: pd.DataFrame, source: str) -> pd.DatetimeIndex:
    """Timestamps from a `timestamp` column or from `date` + `time` columns (naive or aware)."""
    if "timestamp" in frame:
        raw = frame["timestamp"]
    elif "date" in frame and "time" in frame:
        raw = _combine_date_time(frame)
    elif "date" in frame or "time" in frame:
        raw = frame["date" if "date" in frame else "time"]
    else:
        raise DataError(
            source,
            f"no timestamp column (found {list(frame.columns)})",
            "name it 'timestamp' (or give 'date' and 'time' columns)",
        )
    if isinstance(raw.dtype, pd.DatetimeTZDtype) or pd.api.types.is_datetime64_any_dtype(raw):
        parsed = pd.DatetimeIndex(raw)
    elif pd.api.types.is_numeric_dtype(raw) or _is_epoch_text(raw):
        parsed = _parse_epoch(raw)
    else:
        parsed = _parse_strings(raw)
    if parsed is None or parsed.isna().all():
        example = str(raw.iloc[0])[:40]
        raise DataError(
            source,
            f"timestamps like {example!r} are not understood",
            "use ISO timestamps like 2024-01-08 18:00:00",
        )
    bad = int(parsed.isna().sum())
    if bad:
        example = str(raw[np.asarray(parsed.isna())].iloc[0])[:40]
        raise DataError(
            source,
            f"{bad} timestamps cannot be parsed (e.g. {example!r})",
            "fix or remove those rows",
        )
    return parsed


def localize(index: pd.DatetimeIndex, tz: str, source: str) -> tuple[pd.DatetimeIndex, dict]:
    """UTC timestamps: naive ones are read in `tz` ('auto' detects it), aware ones converted.

    The daily break (17:00-18:00 New York) is checked in winter and summer: a zone that
    misplaces it, or bars stamped at their end, leave a line in `info["warnings"]`.
    """
    info: dict = {"input_tz": str(index.tz) if index.tz is not None else None, "tz_used": tz}
    info["warnings"] = warnings = []
    if index.tz is not None:
        info["tz_used"] = str(index.tz)
        utc = index.tz_convert("UTC").as_unit("ns")
        misfit = fit_warning(utc, f"{index.tz} (as stamped in the file)", None, aware=True)
        info["warnings"] = [w for w in [misfit or end_stamp_warning(utc)] if w]
        return utc, info
    found = survey(index)
    info["tz_guess"] = found.tz
    if tz == "auto":
        if found.tz is None:
            raise DataError(
                source,
                f"the timezone cannot be detected: {undetected_reason(found)}",
                "pass --tz with the timestamps' timezone, e.g. --tz America/New_York",
            )
        tz = info["tz_used"] = found.tz
        info["tz_detected"] = found.to_dict()
        warnings.append(found.describe())
    local = index.tz_localize(tz, ambiguous="NaT", nonexistent="NaT")
    info["ambiguous_or_nonexistent_local_times"] = int(local.isna().sum() - index.isna().sum())
    utc = local.tz_convert("UTC").as_unit("ns")
    misfit = fit_warning(utc, tz, found.tz)
    warnings.append(misfit or end_stamp_warning(utc))
    info["warnings"] = [w for w in warnings if w]
    return utc, info


def read_bars(path: Path, tz: str = "UTC") -> tuple[pd.DataFrame, dict]:
    """Raw bars as a frame on a UTC index (unsorted, unvalidated) and what was found."""
    source = str(path)
    frame = read_table(path)
    missing = [c for c in BAR_COLUMNS if c not in frame.columns]
    if missing:
        raise DataError(
            source,
            f"missing column(s) {missing} (found {[str(c) for c in frame.columns]})",
            "name the columns open, high, low, close, volume (aliases like o/h/l/c/v work)",
        )
    if len(frame) == 0:
        raise DataError(source, "the file holds no rows", "give a file of 1-minute OHLCV bars")
    index = parse_timestamps(frame, source)
    index, info = localize(index, tz, source)
    bars = frame.loc[:, list(BAR_COLUMNS)].copy()
    bars.index = index.rename("timestamp")
    info["format"] = "parquet" if path.suffix.lower() in (".parquet", ".pq") else "csv"
    info["raw_rows"] = len(bars)
    return bars, info
