"""Phase 1a: every supported input layout reads into the same UTC bars."""

from __future__ import annotations

import gzip

import numpy as np
import pandas as pd
import pytest

from factory.data.ingest import read_bars
from factory.errors import DataError

ROWS = [
    ("2024-01-08 09:30:00", 4700.0, 4701.0, 4699.5, 4700.5, 120),
    ("2024-01-08 09:31:00", 4700.5, 4702.0, 4700.0, 4701.75, 80),
    ("2024-01-08 09:32:00", 4701.75, 4702.25, 4701.0, 4701.0, 0),
]
EXPECTED_UTC = pd.DatetimeIndex(
    ["2024-01-08 14:30", "2024-01-08 14:31", "2024-01-08 14:32"], tz="UTC", name="timestamp"
)


def _check(bars: pd.DataFrame) -> None:
    assert list(bars.columns) == ["open", "high", "low", "close", "volume"]
    pd.testing.assert_index_equal(bars.index, EXPECTED_UTC.as_unit("ns"))
    np.testing.assert_allclose(pd.to_numeric(bars["close"]), [4700.5, 4701.75, 4701.0])


def _lines(sep: str = ",", header: str | None = "timestamp,open,high,low,close,volume") -> str:
    body = [sep.join(str(v) for v in row) for row in ROWS]
    return "\n".join(([header.replace(",", sep)] if header else []) + body) + "\n"


def test_csv_with_header(tmp_path):
    path = tmp_path / "bars.csv"
    path.write_text(_lines())
    bars, info = read_bars(path, "America/New_York")
    _check(bars)
    assert info["tz_used"] == "America/New_York"


def test_csv_without_header_semicolon_gzip(tmp_path):
    path = tmp_path / "bars.csv.gz"
    text = _lines(";", header=None).replace("2024-01-08 ", "20240108 ").replace(":", "")
    with gzip.open(path, "wt") as fh:
        fh.write(text)
    bars, _ = read_bars(path, "America/New_York")
    _check(bars)


def test_separate_date_and_time_columns(tmp_path):
    path = tmp_path / "bars.csv"
    lines = ["date,time,open,high,low,close,volume"]
    for ts, *rest in ROWS:
        day, clock = ts.split(" ")
        lines.append(",".join([day.replace("-", ""), clock.replace(":", ""), *map(str, rest)]))
    path.write_text("\n".join(lines) + "\n")
    bars, _ = read_bars(path, "America/New_York")
    _check(bars)


def test_aliases_and_aware_parquet(tmp_path):
    frame = pd.DataFrame(ROWS, columns=["Date Time", "O", "High", "Low", "Last", "Vol"])
    frame["Date Time"] = pd.to_datetime(frame["Date Time"]).dt.tz_localize("America/New_York")
    path = tmp_path / "bars.parquet"
    frame.to_parquet(path)
    bars, info = read_bars(path, "UTC")  # aware input: --tz is not needed
    _check(bars)
    assert info["input_tz"] == "America/New_York"


def test_datetime_index_parquet_and_epoch_seconds(tmp_path):
    frame = pd.DataFrame([r[1:] for r in ROWS], columns=["open", "high", "low", "close", "volume"])
    frame.index = EXPECTED_UTC
    frame.to_parquet(tmp_path / "a.parquet")
    _check(read_bars(tmp_path / "a.parquet")[0])
    epoch = frame.reset_index()
    epoch["timestamp"] = EXPECTED_UTC.as_unit("s").asi8
    epoch.to_csv(tmp_path / "b.csv", index=False)
    _check(read_bars(tmp_path / "b.csv")[0])


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("timestamp,open,high,low,volume\n2024-01-08 09:30:00,1,2,0.5,3\n", "missing column"),
        ("timestamp,open,high,low,close,volume\n", "no rows"),
        ("", "no rows"),
        ("timestamp,open,high,low,close,volume\nnot-a-time,1,2,0.5,1,3\n", "timestamps"),
    ],
)
def test_refusals_are_one_line(tmp_path, content, message):
    path = tmp_path / "bad.csv"
    path.write_text(content)
    with pytest.raises(DataError) as err:
        read_bars(path)
    text = str(err.value)
    assert message in text and "fix:" in text and str(path) in text
    assert "\n" not in text


def _write_new_york_week(path) -> None:
    """A week of naive New York bars with the daily break at 17:00."""
    index = pd.date_range("2024-01-07 18:00", "2024-01-12 16:59", freq="1min")
    local = index[index.hour != 17]
    prices = {"open": 1.0, "high": 1.0, "low": 1.0, "close": 1.0, "volume": 1}
    frame = pd.DataFrame({"timestamp": local.strftime("%Y-%m-%d %H:%M:%S"), **prices})
    frame.to_csv(path, index=False)


def test_auto_timezone_detects_new_york_daily_break(tmp_path):
    _write_new_york_week(tmp_path / "ny.csv")
    bars, info = read_bars(tmp_path / "ny.csv", "auto")
    assert info["tz_used"] == "America/New_York"
    assert bars.index[0] == pd.Timestamp("2024-01-07 23:00", tz="UTC")


def test_naive_new_york_times_read_as_utc_are_warned_about(tmp_path):
    _write_new_york_week(tmp_path / "ny.csv")
    _, info = read_bars(tmp_path / "ny.csv", "UTC")
    assert "--tz America/New_York" in info["warnings"][0]
    _, info = read_bars(tmp_path / "ny.csv", "America/New_York")
    assert info["warnings"] == []
