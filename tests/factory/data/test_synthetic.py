"""factory.data.synthetic: calendar, OHLC validity, and the stylised facts it promises."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd
import pytest

from factory.data import synthetic
from factory.data.sessions import holidays, session_frame
from factory.data.synthetic import synthetic_bars, write_raw
from factory.errors import ConfigError

NY = "America/New_York"


@pytest.fixture(scope="module")
def bars() -> pd.DataFrame:
    return synthetic_bars("MES", days=60, seed=3)


def _ny_minute(index: pd.DatetimeIndex) -> np.ndarray:
    local = index.tz_convert(NY)
    return np.asarray(local.hour * 60 + local.minute)


def _consecutive_returns(bars: pd.DataFrame) -> np.ndarray:
    step = np.diff(bars.index.asi8) == 60 * 1_000_000_000
    return np.diff(np.log(bars["close"].to_numpy()))[step]


def _acf(x: np.ndarray, lag: int) -> float:
    x = x - x.mean()
    return float(np.dot(x[:-lag], x[lag:]) / np.dot(x, x))


def test_shape_index_and_dtypes(bars):
    assert list(bars.columns) == ["open", "high", "low", "close", "volume"]
    assert all(dtype == np.float64 for dtype in bars.dtypes)
    assert isinstance(bars.index, pd.DatetimeIndex)
    assert bars.index.name == "timestamp"
    assert str(bars.index.tz) == "UTC"
    assert bars.index.is_monotonic_increasing and bars.index.is_unique
    assert not bars.isna().any().any()


def test_deterministic_for_a_seed():
    a = synthetic_bars("MGC", days=3, seed=7)
    pd.testing.assert_frame_equal(a, synthetic_bars("MGC", days=3, seed=7))
    assert not a["close"].equals(synthetic_bars("MGC", days=3, seed=8)["close"])


def test_five_days_from_sunday_are_monday_to_friday():
    b = synthetic_bars(days=5, start="2024-01-07")
    local = b.index.tz_convert(NY)
    assert local[0] == pd.Timestamp("2024-01-07 18:00", tz=NY)
    assert local[-1] == pd.Timestamp("2024-01-12 16:59", tz=NY)
    trading_date = (local + pd.Timedelta(hours=6)).normalize().day_name()
    assert list(pd.unique(trading_date)) == ["Monday", "Tuesday", "Wednesday", "Thursday", "Friday"]


def test_closed_hours_across_dst_change():
    b = synthetic_bars(days=15, start="2024-03-01")  # DST starts Sunday 2024-03-10
    local = b.index.tz_convert(NY)
    minute = _ny_minute(b.index)
    assert not (local.day_of_week == 5).any()  # Saturday
    assert not ((minute >= 17 * 60) & (minute < 18 * 60)).any()
    assert not ((local.day_of_week == 4) & (minute >= 17 * 60)).any()  # Friday evening
    assert not ((local.day_of_week == 6) & (minute < 18 * 60)).any()  # Sunday before 18:00
    opens = b.index[local.strftime("%a %H:%M") == "Sun 18:00"]
    assert [ts.hour for ts in opens] == [23, 22, 22]  # 18:00 EST, then EDT, in UTC


def test_follows_the_session_calendar_including_early_closes():
    b = synthetic_bars(days=10, start="2024-11-24")  # Thanksgiving week
    assert session_frame(b.index)["in_session"].all()
    local = b.index.tz_convert(NY)
    thanksgiving = local.date == dt.date(2024, 11, 28)
    hours = local[thanksgiving].hour
    assert thanksgiving.any() and not ((hours >= 13) & (hours < 18)).any()


def test_no_bars_in_christmas_session():
    b = synthetic_bars(days=10, start="2024-12-16")
    local = b.index.tz_convert(NY)
    xmas = (local >= pd.Timestamp("2024-12-24 17:00", tz=NY)) & (
        local < pd.Timestamp("2024-12-25 18:00", tz=NY)
    )
    assert not xmas.any()
    assert (local.date == dt.date(2024, 12, 26)).any()
    assert not ((local >= pd.Timestamp("2024-12-31 17:00", tz=NY)) & (
        local < pd.Timestamp("2025-01-01 18:00", tz=NY))).any()  # fmt: skip


def test_bars_per_session(bars):
    local = bars.index.tz_convert(NY)
    counts = pd.Series(1, index=(local + pd.Timedelta(hours=6)).date).groupby(level=0).size()
    assert len(counts) == 60
    early = {d for d in counts.index if holidays(d.year).get(d)}  # e.g. MLK closes at 13:00
    assert early and counts[[d for d in counts.index if d not in early]].between(1320, 1380).all()
    assert counts.sum() < 60 * 1380  # a few quiet minutes are missing


def test_ohlc_consistent_and_on_tick_grid(bars):
    o, h, lo, c, v = (bars[k].to_numpy() for k in ["open", "high", "low", "close", "volume"])
    assert (lo <= np.minimum(o, c)).all() and (np.maximum(o, c) <= h).all()
    assert (lo > 0).all()
    for prices in (o, h, lo, c):
        ticks = prices / 0.25
        assert np.abs(ticks - np.rint(ticks)).max() < 1e-9
    gold = synthetic_bars("MGC", days=2)
    ticks = gold[["open", "high", "low", "close"]].to_numpy() / 0.1
    assert np.abs(ticks - np.rint(ticks)).max() < 1e-6
    assert np.array_equal(v, np.rint(v)) and (v >= 0).all()
    step = np.diff(bars.index.asi8) == 60 * 1_000_000_000
    assert np.mean(np.abs(o[1:] - c[:-1])[step] <= 0.25) > 0.95  # open near previous close


def test_start_price_and_tick_size_options():
    b = synthetic_bars("XYZ", days=1, start_price=50.0, tick_size=0.01)
    assert abs(b["open"].iloc[0] - 50.0) <= 0.02
    assert abs(synthetic_bars("MGC", days=1)["open"].iloc[0] - 2000) < 1
    assert abs(synthetic_bars("ES", days=1)["open"].iloc[0] - 4500) < 1
    with pytest.raises(ConfigError):
        synthetic_bars("MES", days=0)
    with pytest.raises(ConfigError):
        synthetic_bars("XYZ", days=1)  # unknown symbol without a tick size


def test_volatility_clusters_but_returns_do_not_correlate(bars):
    r = _consecutive_returns(bars)
    abs_acf = [_acf(np.abs(r), lag) for lag in range(1, 11)]
    ret_acf = [_acf(r, lag) for lag in range(1, 11)]
    assert min(abs_acf) > 0.1, abs_acf
    assert max(abs(a) for a in ret_acf) < 0.05, ret_acf


def test_fat_tails(bars):
    r = _consecutive_returns(bars)
    assert pd.Series(r).kurt() > 5
    v = bars["volume"].to_numpy()
    assert np.quantile(v, 0.999) > 5 * np.median(v)  # heavy right tail of volume


def test_intraday_u_shape(bars):
    minute = _ny_minute(bars.index)[1:]
    step = np.diff(bars.index.asi8) == 60 * 1_000_000_000
    abs_r = np.abs(np.diff(np.log(bars["close"].to_numpy())))
    volume = bars["volume"].to_numpy()[1:]
    open_w = step & (minute >= 570) & (minute < 600)
    noon_w = step & (minute >= 720) & (minute < 780)
    night_w = step & (minute >= 60) & (minute < 180)
    assert abs_r[open_w].mean() > 1.4 * abs_r[noon_w].mean()
    assert volume[open_w].mean() > 2.5 * volume[noon_w].mean()
    assert volume[noon_w].mean() > 2 * volume[night_w].mean()
    close_w = step & (minute >= 930) & (minute < 960)
    assert volume[close_w].mean() > 1.5 * volume[noon_w].mean()


def test_weekend_gaps(bars):
    ts = bars.index.asi8
    gap = np.abs(bars["open"].to_numpy()[1:] - bars["close"].to_numpy()[:-1])
    weekend = np.diff(ts) > 40 * 3600 * 1_000_000_000
    assert weekend.sum() >= 10
    assert np.median(gap[weekend]) >= 4 * 0.25
    assert np.median(gap[weekend]) > 4 * np.mean(gap[~weekend])


def test_missing_minutes_only_overnight(bars):
    ts = bars.index.asi8
    holes = np.flatnonzero(np.diff(ts) == 2 * 60 * 1_000_000_000)
    assert len(holes) > 60
    hole_minute = _ny_minute(pd.DatetimeIndex(ts[holes] + 60 * 1_000_000_000, tz="UTC"))
    assert ((hole_minute >= 20 * 60) | (hole_minute < 3 * 60)).all()


def test_ar1_numpy_matches_lfilter():
    rng = np.random.default_rng(0)
    x = rng.standard_normal(10_001)
    expected = np.empty_like(x)
    state = 0.7
    for i, xi in enumerate(x):
        state = 0.98 * state + xi
        expected[i] = state
    np.testing.assert_allclose(synthetic._ar1_blocks(x, 0.98, 0.7), expected, atol=1e-9)
    np.testing.assert_allclose(synthetic.ar1(x, 0.98, 0.7), expected, atol=1e-9)


@pytest.mark.parametrize("suffix", [".parquet", ".csv"])
def test_write_raw_round_trip(tmp_path, suffix):
    b = synthetic_bars(days=1)
    path = write_raw(b, tmp_path / "sub" / f"MES{suffix}")
    back = pd.read_csv(path) if suffix == ".csv" else pd.read_parquet(path)
    assert list(back.columns) == ["timestamp", "open", "high", "low", "close", "volume"]
    stamps = pd.DatetimeIndex(pd.to_datetime(back["timestamp"], utc=True))
    assert np.array_equal(stamps.as_unit("ns").asi8, b.index.asi8)
    np.testing.assert_allclose(back["close"].to_numpy(), b["close"].to_numpy())
