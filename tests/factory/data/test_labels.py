"""Triple-barrier labels against a slow, obviously-correct reference, and causality."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from factory.data.labels import (
    BARRIER_DOUBLE,
    BARRIER_LOWER,
    BARRIER_TAIL,
    BARRIER_UNDEFINED,
    BARRIER_UPPER,
    BARRIER_VERTICAL,
    triple_barrier,
)
from factory.features.indicators import atr as atr_fn
from tests.conftest import random_bars

ALL_CODES = {
    BARRIER_UPPER,
    BARRIER_LOWER,
    BARRIER_VERTICAL,
    BARRIER_DOUBLE,
    BARRIER_TAIL,
    BARRIER_UNDEFINED,
}


def reference(bars, atr, horizons, up_mult, down_mult):
    """Row by row, bar by bar: the definition, written out plainly."""
    o, h, lo, c = (bars[k].tolist() for k in ("open", "high", "low", "close"))
    ts = list(bars.index)
    n = len(bars)
    out = {}
    for hz in horizons:
        label, code, t1, ret, exit_ret = [], [], [], [], []
        for t in range(n):
            ret.append(math.log(c[t + hz] / c[t]) if t + hz < n else math.nan)
            a = float(atr[t])
            if not (a > 0):  # NaN or <= 0
                label.append(pd.NA), code.append(4), t1.append(pd.NaT), exit_ret.append(math.nan)
                continue
            upper = c[t] + up_mult * a
            lower = c[t] - down_mult * a
            result = None
            for j in range(t + 1, min(t + hz, n - 1) + 1):
                up, dn = h[j] >= upper, lo[j] <= lower
                if up and dn:
                    result = (pd.NA, 2, ts[j], math.nan)
                elif up:
                    result = (1, 1, ts[j], math.log(max(o[j], upper) / c[t]))
                elif dn:
                    result = (-1, -1, ts[j], math.log(min(o[j], lower) / c[t]))
                if result is not None:
                    break
            if result is None and t + hz < n:
                result = (0, 0, ts[t + hz], math.log(c[t + hz] / c[t]))
            if result is None:
                result = (pd.NA, 3, pd.NaT, math.nan)
            label.append(result[0]), code.append(result[1])
            t1.append(result[2]), exit_ret.append(result[3])
        out[f"label_h{hz}"] = pd.array(label, dtype="Int8")
        out[f"barrier_h{hz}"] = np.array(code, dtype=np.int8)
        out[f"t1_h{hz}"] = pd.DatetimeIndex(t1).tz_convert("UTC").as_unit("ns")
        out[f"ret_h{hz}"] = np.array(ret)
        out[f"exit_ret_h{hz}"] = np.array(exit_ret)
    return pd.DataFrame(out, index=bars.index)


def tricky_bars(seed: int, n: int = 240) -> tuple[pd.DataFrame, np.ndarray]:
    """Random bars with gaps, huge-range bars, gapped opens, and bad atr values."""
    rng = np.random.default_rng(seed)
    # random_bars can come up short for a large gap_prob, so drop rows here instead.
    bars = random_bars(2 * n, seed=seed, gap_prob=0.0)
    bars = bars[rng.random(2 * n) >= 0.15].iloc[:n]
    o, h, lo, c = (bars[k].to_numpy().copy() for k in ("open", "high", "low", "close"))
    wide = rng.random(n) < 0.03  # both barriers inside one bar
    h[wide] = c[wide] * 1.02
    lo[wide] = c[wide] * 0.98
    gap = np.flatnonzero(rng.random(n) < 0.08)
    gap = gap[gap > 0]
    o[gap] = c[gap - 1] * np.exp(
        rng.choice([-1.0, 1.0], len(gap)) * rng.uniform(0.002, 0.01, len(gap))
    )
    h[:] = np.maximum(h, np.maximum(o, c))
    lo[:] = np.minimum(lo, np.minimum(o, c))
    bars = bars.assign(open=o, high=h, low=lo)
    atr = atr_fn(h, lo, c, int(rng.integers(2, 6))).copy()  # read-only under CoW
    atr[rng.random(n) < 0.03] = 0.0
    atr[rng.random(n) < 0.02] = -1.0
    atr[rng.random(n) < 0.02] = np.nan
    return bars, atr


def assert_frames_equal(got: pd.DataFrame, want: pd.DataFrame) -> None:
    assert list(got.columns) == list(want.columns)
    for col in want.columns:
        g, w = got[col], want[col]
        assert g.dtype == w.dtype, (col, g.dtype, w.dtype)
        if col.startswith(("ret_", "exit_ret_")):
            np.testing.assert_allclose(g.to_numpy(), w.to_numpy(), rtol=1e-12, atol=0, err_msg=col)
        else:
            pd.testing.assert_series_equal(g, w, check_names=False, obj=col)


@pytest.mark.parametrize("seed", range(12))
def test_matches_reference_on_random_paths(seed):
    rng = np.random.default_rng(1000 + seed)
    bars, atr = tricky_bars(seed)
    horizons = sorted(rng.choice(np.arange(1, 30), size=int(rng.integers(1, 5)), replace=False))
    up, down = rng.uniform(0.3, 3.0, size=2)
    got = triple_barrier(bars, atr, horizons, up, down)
    want = reference(bars, atr, horizons, up, down)
    assert got.index.equals(bars.index)
    assert_frames_equal(got, want)


def test_random_paths_cover_every_outcome():
    """The reference comparison above is only as good as the cases it meets."""
    seen: set[int] = set()
    gapped_exits = 0
    for seed in range(12):
        bars, atr = tricky_bars(seed)
        out = triple_barrier(bars, atr, [3, 12], 1.0, 1.5)
        for hz in (3, 12):
            seen |= set(np.unique(out[f"barrier_h{hz}"]).tolist())
            up = out[f"barrier_h{hz}"].to_numpy() == BARRIER_UPPER
            at_barrier = np.log((bars["close"] + 1.0 * atr) / bars["close"]).to_numpy()
            gapped_exits += int(
                (out[f"exit_ret_h{hz}"].to_numpy()[up] > at_barrier[up] + 1e-12).sum()
            )
    assert seen == ALL_CODES
    assert gapped_exits > 0


def _bars(rows, start="2024-01-08 00:00", step_min=None):
    """Bars from (open, high, low, close) tuples, one minute apart unless steps are given."""
    n = len(rows)
    steps = step_min or [1] * n
    index = pd.DatetimeIndex(
        pd.Timestamp(start, tz="UTC") + pd.to_timedelta(np.cumsum([0, *steps[1:]]), unit="min"),
        name="timestamp",
    )
    frame = pd.DataFrame(rows, columns=["open", "high", "low", "close"], index=index, dtype=float)
    frame["volume"] = 1.0
    return frame


def test_hand_built_cases():
    bars = _bars(
        [
            (100, 100, 100, 100),  # t=0 entry, barriers 102 / 98
            (100, 101, 99, 100),  # no touch
            (103, 104, 100, 103),  # gapped above upper: exit at open 103
            (100, 110, 90, 100),  # double touch for rows 1 and 2
            (100, 100.5, 99.5, 100),
        ],
        step_min=[1, 1, 7, 1, 1],  # a 7-minute gap does not stretch the horizon
    )
    atr = np.array([1.0, 5.0, np.nan, 1.0, 1.0])
    out = triple_barrier(bars, atr, [1, 2, 3], 2.0, 2.0)
    ts = bars.index
    # Row 0: h=1 vertical at row 1; h=2 and h=3 upper at row 2 exiting at the open.
    assert out.loc[ts[0], "barrier_h1"] == BARRIER_VERTICAL and out.loc[ts[0], "label_h1"] == 0
    assert out.loc[ts[0], "t1_h1"] == ts[1]
    for hz in (2, 3):
        assert out.loc[ts[0], f"barrier_h{hz}"] == BARRIER_UPPER
        assert out.loc[ts[0], f"t1_h{hz}"] == ts[2]
        assert out.loc[ts[0], f"exit_ret_h{hz}"] == pytest.approx(math.log(103 / 100))
    # Row 1: double touch at row 3 for h>=2, marked with no label.
    assert out.loc[ts[1], "barrier_h2"] == BARRIER_DOUBLE
    assert out.loc[ts[1], "label_h2"] is pd.NA
    assert out.loc[ts[1], "t1_h2"] == ts[3]
    assert np.isnan(out.loc[ts[1], "exit_ret_h2"])
    # Row 2: atr NaN.
    assert (out.loc[ts[2], ["barrier_h1", "barrier_h2", "barrier_h3"]] == BARRIER_UNDEFINED).all()
    assert pd.isna(out.loc[ts[2], "t1_h1"])
    # Row 3: one row ahead, no touch -> tail for h=2 but vertical for h=1.
    assert out.loc[ts[3], "barrier_h1"] == BARRIER_VERTICAL
    assert out.loc[ts[3], "barrier_h2"] == BARRIER_TAIL
    assert out.loc[ts[3], "label_h2"] is pd.NA and pd.isna(out.loc[ts[3], "t1_h2"])
    assert np.isnan(out.loc[ts[3], "ret_h2"])
    # Last row: nothing ahead.
    assert out.loc[ts[4], "barrier_h1"] == BARRIER_TAIL


def test_touch_near_the_end_is_a_valid_label():
    bars = _bars([(100, 100, 100, 100), (100, 100, 97, 97.5)])
    out = triple_barrier(bars, np.array([1.0, 1.0]), [20], 2.0, 2.0)
    assert out["barrier_h20"].iloc[0] == BARRIER_LOWER
    assert out["label_h20"].iloc[0] == -1
    assert out["exit_ret_h20"].iloc[0] == pytest.approx(math.log(98 / 100))
    assert np.isnan(out["ret_h20"].iloc[0])


def test_dtypes_and_columns():
    bars = random_bars(100, seed=3)
    atr = atr_fn(bars["high"].to_numpy(), bars["low"].to_numpy(), bars["close"].to_numpy(), 14)
    out = triple_barrier(bars, atr, [5, 10], 2.0, 2.0)
    assert list(out.columns) == [
        f"{k}_h{h}" for h in (5, 10) for k in ("label", "barrier", "t1", "ret", "exit_ret")
    ]
    assert out["label_h5"].dtype == "Int8"
    assert out["barrier_h5"].dtype == np.int8
    assert out["t1_h5"].dtype == "datetime64[ns, UTC]"
    assert out["ret_h5"].dtype == np.float64 and out["exit_ret_h5"].dtype == np.float64
    assert set(out["label_h10"].dropna().unique()) <= {-1, 0, 1}


def test_rejects_bad_input():
    bars = random_bars(20)
    with pytest.raises(ValueError, match="atr"):
        triple_barrier(bars, np.ones(19), [5], 1.0, 1.0)
    with pytest.raises(ValueError, match="horizons"):
        triple_barrier(bars, np.ones(20), [0], 1.0, 1.0)


@pytest.mark.parametrize("seed", range(6))
def test_labels_decided_before_a_cut_do_not_need_later_data(seed):
    rng = np.random.default_rng(seed)
    bars, atr = tricky_bars(seed, n=400)
    horizons = [2, 7, 19]
    full = triple_barrier(bars, atr, horizons, 1.2, 0.8)
    cut_at = int(rng.integers(50, 350))
    cut = bars.index[cut_at]
    part = triple_barrier(bars.iloc[:cut_at], atr[:cut_at], horizons, 1.2, 0.8)
    checked = 0
    for hz in horizons:
        decided = full[f"t1_h{hz}"].lt(cut).to_numpy()[:cut_at]
        assert part[f"t1_h{hz}"].notna().to_numpy().sum() == decided.sum()
        for col in ("label", "barrier", "t1", "exit_ret"):
            pd.testing.assert_series_equal(
                part[f"{col}_h{hz}"][decided], full[f"{col}_h{hz}"].iloc[:cut_at][decided]
            )
        vertical = decided & (part[f"barrier_h{hz}"].to_numpy() == BARRIER_VERTICAL)
        pd.testing.assert_series_equal(
            part[f"ret_h{hz}"][vertical], full[f"ret_h{hz}"].iloc[:cut_at][vertical]
        )
        checked += int(decided.sum())
    assert checked > 100
