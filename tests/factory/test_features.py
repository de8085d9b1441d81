"""The causal feature builder: shape, finiteness, zero volume, look-ahead, MTF completion."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from factory import features as feat
from factory.data.resample import resample_bars
from factory.data.sessions import session_frame
from factory.features import FAMILIES, build_features, feature_names, warmup_bars
from tests.conftest import random_bars

N_BARS = 20_000


def _bars(n: int = N_BARS, seed: int = 0, gap_prob: float = 0.02) -> pd.DataFrame:
    """Random 1-minute bars with random missing minutes.

    The gaps are dropped here rather than by random_bars(gap_prob=...), which can
    come up a few bars short of `n` for large n.
    """
    bars = random_bars(n, seed=seed, gap_prob=0.0)
    keep = np.random.default_rng(seed + 1).random(n) >= gap_prob
    return bars[keep]


def _features(bars: pd.DataFrame, tf: int) -> pd.DataFrame:
    decision = resample_bars(bars, tf)
    return build_features(bars, decision, tf, session_frame(decision.index))


def _assert_finite_after_warmup(frame: pd.DataFrame, tf: int) -> None:
    tail = frame.to_numpy()[warmup_bars(tf) :]
    bad = [c for c, ok in zip(frame.columns, np.isfinite(tail).all(axis=0), strict=True) if not ok]
    assert not bad, f"non-finite values after warmup in {bad}"


@pytest.fixture(scope="module")
def bars() -> pd.DataFrame:
    return _bars()


@pytest.fixture(scope="module")
def full_1m(bars) -> pd.DataFrame:
    return _features(bars, 1)


@pytest.fixture(scope="module")
def full_5m(bars) -> pd.DataFrame:
    return _features(bars, 5)


def test_shape_dtype_and_families(bars, full_1m):
    decision = resample_bars(bars, 1)
    assert full_1m.index.equals(decision.index)
    assert full_1m.shape[1] >= 60
    assert (full_1m.dtypes == np.float32).all()
    assert list(full_1m.columns) == list(feature_names(1))
    assert full_1m.columns.is_unique
    prefixes = {c.split("_")[0] for c in full_1m.columns}
    assert prefixes == set(FAMILIES)
    for family in FAMILIES:
        assert sum(c.startswith(family + "_") for c in full_1m.columns) >= 4, family


@pytest.mark.parametrize("tf", [1, 3, 5, 15, 60, 240])
def test_enough_features_and_finite_after_warmup(bars, tf):
    frame = _features(bars, tf)
    assert frame.shape[1] >= 60
    assert list(frame.columns) == list(feature_names(tf))
    _assert_finite_after_warmup(frame, tf)
    has_mtf = any(c.startswith("mtf_") for c in frame.columns)
    assert has_mtf == (tf < 240)


def test_warmup_is_tight_enough(full_1m, full_5m):
    """The warmup is an upper bound, but not a wildly loose one on regular data."""
    for frame, tf in ((full_1m, 1), (full_5m, 5)):
        finite = np.isfinite(frame.to_numpy()).all(axis=1)
        first_full_row = int(np.argmax(finite))
        assert first_full_row <= warmup_bars(tf) <= first_full_row + warmup_bars(tf) // 10 + 2


def test_zero_volume_throughout_is_finite(bars):
    flat_volume = bars.assign(volume=0.0)
    for tf in (1, 5):
        frame = _features(flat_volume, tf)
        _assert_finite_after_warmup(frame, tf)
        volu = frame.filter(like="volu_").to_numpy()[warmup_bars(tf) :]
        assert np.all(volu == volu[:1]), "volume features must be constant without volume"


def test_flat_prices_and_long_gaps_stay_finite():
    bars = _bars(N_BARS, seed=3)
    # A frozen market for 300 minutes (zero ranges, zero returns) ...
    frozen = bars.index[6000:6300]
    bars.loc[frozen, ["open", "high", "low", "close"]] = bars["close"].iloc[5999]
    bars.loc[frozen, "volume"] = 0.0
    # ... and a 30-hour outage (many missing 4h, 1h, 15m and 5m bins).
    outage = (bars.index >= bars.index[9000]) & (
        bars.index < bars.index[9000] + pd.Timedelta("30h")
    )
    bars = bars[~outage]
    for tf in (1, 5, 60):
        _assert_finite_after_warmup(_features(bars, tf), tf)


def test_scale_free(bars, full_5m):
    """Features do not depend on the price level."""
    scaled = bars.copy()
    scaled[["open", "high", "low", "close"]] *= 0.0137
    other = _features(scaled, 5).to_numpy()[warmup_bars(5) :]
    base = full_5m.to_numpy()[warmup_bars(5) :]
    np.testing.assert_allclose(other, base, rtol=2e-3, atol=2e-5)


# --- look-ahead --------------------------------------------------------------------------


def _assert_causal(bars: pd.DataFrame, tf: int, full: pd.DataFrame, seed: int, n_cuts: int = 4):
    """Features built on bars cut at a random minute equal the full build before the cut.

    The decision bar holding the last kept minute may be partial, so it is left out.
    """
    rng = np.random.default_rng(seed)
    low = min(len(bars) - 50, warmup_bars(tf) * tf + 200)
    for cut in sorted(rng.integers(low, len(bars), size=n_cuts)):
        part = _features(bars.iloc[:cut], tf)
        rows = len(part) - (1 if tf > 1 else 0)
        assert rows > warmup_bars(tf)
        assert part.index[:rows].equals(full.index[:rows])
        np.testing.assert_array_equal(
            part.to_numpy()[:rows], full.to_numpy()[:rows], err_msg=f"cut at minute {cut}"
        )


def test_no_lookahead_1m(bars, full_1m):
    _assert_causal(bars, 1, full_1m, seed=11)


def test_no_lookahead_5m(bars, full_5m):
    _assert_causal(bars, 5, full_5m, seed=12)


def test_lookahead_check_catches_a_leak(bars, monkeypatch):
    """The look-ahead check itself must fail on a feature that peeks one bar ahead."""
    honest = feat.returns.features

    def leaky(b):
        yield from honest(b)
        yield "ret_leak", np.r_[b.logc[1:], np.nan] - b.logc  # log c[t+1] - log c[t]

    monkeypatch.setattr(feat.returns, "features", leaky)
    feature_names.cache_clear()
    try:
        small = bars.iloc[:8000]
        full = _features(small, 1)
        assert "ret_leak" in full.columns
        with pytest.raises(AssertionError):
            _assert_causal(small, 1, full, seed=13, n_cuts=2)
    finally:
        monkeypatch.undo()
        feature_names.cache_clear()


# --- multi-timeframe: completed bars only ------------------------------------------------


def _htf(bars: pd.DataFrame, minutes: int) -> pd.DataFrame:
    return resample_bars(bars, minutes)


def test_mtf_sees_only_completed_bars_1m():
    bars = _bars(N_BARS, seed=5, gap_prob=0.0)
    frame = _features(bars, 1)
    htf = _htf(bars, 5)
    log_ret = np.log(htf["close"]).diff()

    def seen(decision_time: str, htf_start: str) -> None:
        row = frame.loc[pd.Timestamp(decision_time, tz="UTC")]
        expected = np.float32(log_ret.loc[pd.Timestamp(htf_start, tz="UTC")])
        assert row["mtf_5m_ret"] == expected, (decision_time, htf_start)

    seen("2024-01-10 10:02", "2024-01-10 09:55")  # 10:00-10:05 is still forming
    seen("2024-01-10 10:03", "2024-01-10 09:55")
    seen("2024-01-10 10:04", "2024-01-10 10:00")  # the 10:04 bar completes 10:00-10:05
    seen("2024-01-10 09:58", "2024-01-10 09:50")
    forming = np.float32(log_ret.loc[pd.Timestamp("2024-01-10 10:00", tz="UTC")])
    assert frame.loc[pd.Timestamp("2024-01-10 10:02", tz="UTC"), "mtf_5m_ret"] != forming

    # Distance of the decision close to the last completed 1h close, in 1h ATR units.
    t = pd.Timestamp("2024-01-10 10:42", tz="UTC")
    hour = _htf(bars, 60)
    close_0900 = hour.loc[pd.Timestamp("2024-01-10 09:00", tz="UTC"), "close"]
    dist = frame.loc[t, "mtf_1h_close_dist"]
    assert np.sign(dist) == np.sign(bars.loc[t, "close"] - close_0900)


def test_mtf_sees_only_completed_bars_5m():
    bars = _bars(N_BARS, seed=6, gap_prob=0.0)
    frame = _features(bars, 5)
    assert not any(c.startswith("mtf_5m_") for c in frame.columns)
    log_ret = np.log(_htf(bars, 15)["close"]).diff()
    cases = {  # decision bar start -> newest completed 15m bar start
        "2024-01-10 10:05": "2024-01-10 09:45",
        "2024-01-10 10:10": "2024-01-10 10:00",  # 10:10-10:15 completes 10:00-10:15
        "2024-01-10 10:15": "2024-01-10 10:00",
    }
    for decision_time, htf_start in cases.items():
        value = frame.loc[pd.Timestamp(decision_time, tz="UTC"), "mtf_15m_ret"]
        assert value == np.float32(log_ret.loc[pd.Timestamp(htf_start, tz="UTC")])


# --- edges -------------------------------------------------------------------------------


@pytest.mark.parametrize("tf", [1, 5])
def test_tiny_input_does_not_fail(tf):
    bars = _bars(12, seed=7, gap_prob=0.0)
    frame = _features(bars, tf)
    assert list(frame.columns) == list(feature_names(tf))
    assert len(frame) == len(resample_bars(bars, tf))


def test_misaligned_sessions_rejected(bars):
    decision = resample_bars(bars, 1)
    sessions = session_frame(decision.index[1:])
    with pytest.raises(ValueError, match="aligned"):
        build_features(bars, decision, 1, sessions)
