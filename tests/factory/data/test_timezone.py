"""Issue 12, points 4 and 7: `--tz auto` reads the zone from the daily break (winter and
summer), and a zone that misplaces the break, or bars stamped at their end, are warned of."""

from __future__ import annotations

import pandas as pd
import pytest

from factory.data.config import DatasetConfig
from factory.data.dataset import build_dataset
from factory.data.ingest import read_bars
from factory.data.synthetic import synthetic_bars
from factory.errors import DataError
from tests.conftest import real_data_dir

DST_START = "2024-02-26"  # 20 sessions from here cross the 10 March DST switch


@pytest.fixture(scope="module")
def bars() -> pd.DataFrame:
    return synthetic_bars("MES", days=20, seed=4, start=DST_START)


def _write_naive(bars: pd.DataFrame, path, tz: str, shift_min: int = 0):
    stamps = bars.index.tz_convert(tz).tz_localize(None) + pd.Timedelta(minutes=shift_min)
    frame = bars.reset_index(drop=True).assign(timestamp=stamps.strftime("%Y-%m-%d %H:%M:%S"))
    frame[["timestamp", "open", "high", "low", "close", "volume"]].to_csv(path, index=False)
    return path


@pytest.mark.parametrize("zone", ["America/New_York", "America/Chicago", "UTC"])
def test_auto_detects_the_zone_in_winter_and_summer(bars, tmp_path, zone):
    path = _write_naive(bars, tmp_path / "bars.csv", zone)
    read, info = read_bars(path, "auto")
    assert info["tz_used"] == zone
    assert info["tz_detected"]["confidence"] == "high"
    assert set(info["tz_detected"]["candidates"][zone]) == {"winter", "summer"}
    assert info["warnings"][0].startswith(f"--tz auto: the timestamps are {zone} time")
    assert "confidence high" in info["warnings"][0]
    kept = read.index[~read.index.isna()]
    assert kept.isin(bars.index).all() and len(kept) >= len(bars) - 120  # DST-ambiguous hour


def test_auto_is_accepted_by_the_config_and_reaches_the_manifest(bars, tmp_path):
    path = _write_naive(bars, tmp_path / "MES.csv", "America/Chicago")
    config = DatasetConfig(symbol="MES", tick_size=0.25, tick_value_usd=1.25, tz="auto")
    result = build_dataset(path, config, tmp_path / "home")
    assert result.manifest.ingest["tz_used"] == "America/Chicago"
    assert result.manifest.ingest["tz_detected"]["tz"] == "America/Chicago"
    assert result.manifest.validation["out_of_session_dropped"] == 0
    assert result.summary()["warnings"][0].startswith("--tz auto: the timestamps are America/Ch")


def test_auto_refuses_a_fixed_offset_that_fits_no_candidate(bars, tmp_path):
    path = _write_naive(bars, tmp_path / "bars.csv", "Etc/GMT+5")  # EST all year
    with pytest.raises(DataError) as err:
        read_bars(path, "auto")
    text = str(err.value)
    assert "the timezone cannot be detected" in text and "America/New_York fits winter" in text
    assert "fix: pass --tz" in text and "\n" not in text


def test_auto_refuses_too_few_days(bars, tmp_path):
    path = _write_naive(bars.iloc[:600], tmp_path / "bars.csv", "UTC")
    with pytest.raises(DataError, match="cannot be detected: too few weekdays"):
        read_bars(path, "auto")


def test_a_zone_that_misplaces_the_break_in_summer_only_is_warned_of(bars, tmp_path):
    path = _write_naive(bars, tmp_path / "bars.csv", "America/New_York")
    _, info = read_bars(path, "Etc/GMT+5")  # equal to New York in winter only
    assert len(info["warnings"]) == 1
    warning = info["warnings"][0]
    assert "daily break of the bars falls at 18:00 New York in summer, not at 17:00" in warning
    assert "pass --tz America/New_York" in warning
    _, info = read_bars(path, "America/New_York")
    assert info["warnings"] == []


@pytest.mark.realdata
def test_real_gold_read_as_a_fixed_offset_is_warned_of():
    _, info = read_bars(real_data_dir() / "XAUUSD_1m_2017_histdata.csv.gz", "Etc/GMT+5")
    assert any("in summer" in w and "--tz America/New_York" in w for w in info["warnings"])


def test_bars_stamped_at_their_end_are_warned_of(bars, tmp_path):
    path = _write_naive(bars, tmp_path / "MES.csv", "UTC", shift_min=1)
    _, info = read_bars(path, "UTC")
    assert any("stamped at their end" in w for w in info["warnings"]), info["warnings"]
    config = DatasetConfig(symbol="MES", tick_size=0.25, tick_value_usd=1.25)
    result = build_dataset(path, config, tmp_path / "home")
    assert result.manifest.validation["out_of_session"]["daily_break_bars"] > 0
    assert any("stamped at their end" in w for w in result.summary()["warnings"])
    start = _write_naive(bars, tmp_path / "start.csv", "UTC")
    assert read_bars(start, "UTC")[1]["warnings"] == []


def test_aware_stamps_that_misplace_the_break_are_warned_of(bars, tmp_path):
    wall = bars.index.tz_convert("America/New_York").tz_localize(None)
    path = tmp_path / "bars.parquet"
    bars.set_axis(wall.tz_localize("UTC").rename("timestamp")).reset_index().to_parquet(path)
    _, info = read_bars(path, "America/New_York")  # aware input: --tz does not apply
    assert len(info["warnings"]) == 1 and "check the UTC offsets in the file" in info["warnings"][0]
    bars.reset_index().to_parquet(path)
    assert read_bars(path, "UTC")[1]["warnings"] == []
