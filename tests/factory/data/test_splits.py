"""Time split with purge and embargo: brute-force invariants on random inputs."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from factory.data.labels import triple_barrier
from factory.data.splits import EXCLUDED, TEST, TRAIN, VAL, time_split
from tests.conftest import random_bars

MIN = 60 * 1_000_000_000


def random_case(seed: int, n: int = 500):
    """A gappy index, a usable mask and label ends t1 (some NaT) of random length."""
    rng = np.random.default_rng(seed)
    # Mostly 1-minute steps, with random gaps of up to a few hours.
    steps = np.where(rng.random(n) < 0.05, rng.integers(2, 240, n), 1)
    start = pd.Timestamp("2024-01-08", tz="UTC")
    index = pd.DatetimeIndex(
        start + pd.to_timedelta(np.cumsum(steps), unit="min"), name="timestamp"
    )
    usable = rng.random(n) >= rng.uniform(0.0, 0.3)
    ts = index.as_unit("ns").asi8
    t1 = ts + rng.integers(1, rng.integers(2, 60), n) * MIN
    t1 = t1.view("datetime64[ns]").copy()
    t1[rng.random(n) < 0.01] = np.datetime64("NaT")
    embargo = pd.Timedelta(minutes=int(rng.integers(0, 45)))
    return index, usable, t1, embargo


def check_invariants(index, usable, t1, embargo, train_frac, val_frac, res):
    split = res.split
    n = len(index)
    assert split.dtype == np.int8 and split.shape == (n,)
    assert set(np.unique(split)) <= {EXCLUDED, TRAIN, VAL, TEST}
    assert (split[~usable] == EXCLUDED).all()

    ts = index.as_unit("ns").asi8
    t1_ns = t1.astype("datetime64[ns]").view(np.int64)
    t1_nat = np.isnat(t1)
    # Every kept earlier row against every kept later row, pair by pair.
    for a_split, b_split in ((TRAIN, VAL), (TRAIN, TEST), (VAL, TEST)):
        a = np.flatnonzero(split == a_split)
        b = np.flatnonzero(split == b_split)
        assert not t1_nat[a].any()
        assert (t1_ns[a][:, None] < ts[b][None, :]).all()
        assert (ts[a][:, None] <= ts[b][None, :] - embargo.value).all()
        assert a.max() < b.min()  # time order

    # The cut is by count of usable rows; test rows are never dropped.
    pos = np.flatnonzero(usable)
    n_train = int(np.floor(len(pos) * train_frac))
    n_val = int(np.floor(len(pos) * val_frac))
    assert (split[pos[n_train + n_val :]] == TEST).all()
    assert (split[pos[: n_train + n_val]] != TEST).all()
    assert (split[pos[:n_train]] != VAL).all()
    assert (split[pos[n_train : n_train + n_val]] != TRAIN).all()

    # Nothing is dropped that did not have to be: each dropped row breaks a rule.
    for earlier, offset in ((TRAIN, n_train), (VAL, n_train + n_val)):
        b_start = ts[pos[offset]]
        dropped = np.zeros(n, dtype=bool)
        lo = 0 if earlier == TRAIN else n_train
        dropped[pos[lo:offset]] = split[pos[lo:offset]] == EXCLUDED
        must = t1_nat | (t1_ns >= b_start) | (ts > b_start - embargo.value)
        assert (must[dropped]).all()

    c = res.counts
    assert c["train"] == (split == TRAIN).sum()
    assert c["val"] == (split == VAL).sum()
    assert c["test"] == (split == TEST).sum()
    assert c["excluded_unusable"] == (~usable).sum()
    dropped_total = sum(c[k] for k in c if k.startswith(("purged_", "embargoed_")))
    assert c["train"] + c["val"] + c["test"] + dropped_total + c["excluded_unusable"] == n
    assert (split == EXCLUDED).sum() == dropped_total + c["excluded_unusable"]


@pytest.mark.parametrize("seed", range(25))
def test_invariants_on_random_cases(seed):
    index, usable, t1, embargo = random_case(seed)
    rng = np.random.default_rng(seed)
    train_frac, val_frac = rng.uniform(0.4, 0.6), rng.uniform(0.15, 0.25)
    res = time_split(index, usable, t1, train_frac, val_frac, embargo)
    check_invariants(index, usable, t1, embargo, train_frac, val_frac, res)


def test_random_cases_exercise_purge_and_embargo():
    """The invariant test is only meaningful if both rules actually drop rows."""
    totals = {"purged": 0, "embargoed": 0, "purged_nat": 0}
    for seed in range(25):
        index, usable, t1, embargo = random_case(seed)
        res = time_split(index, usable, t1, 0.5, 0.2, embargo)
        for k, v in res.counts.items():
            for name in ("purged", "embargoed"):
                if k.startswith(name):
                    totals[name] += v
        boundary = np.flatnonzero(res.split == VAL)[0]
        totals["purged_nat"] += int(np.isnat(t1[:boundary]).sum() > 0)
    assert totals["purged"] > 0 and totals["embargoed"] > 0 and totals["purged_nat"] > 0


def test_nat_t1_in_train_is_purged():
    index = pd.date_range("2024-01-08", periods=100, freq="1min", tz="UTC", name="timestamp")
    t1 = (index + pd.Timedelta(minutes=1)).as_unit("ns").tz_localize(None).to_numpy().copy()
    t1[10] = np.datetime64("NaT")
    res = time_split(index, np.ones(100, bool), t1, 0.6, 0.2, pd.Timedelta(0))
    assert res.split[10] == EXCLUDED
    # t1 of row 59 is row 60 = first val row: purged; row 58 ends before it: kept.
    assert res.split[59] == EXCLUDED and res.split[58] == TRAIN
    assert res.counts["purged_train_val"] == 2
    assert res.counts["embargoed_train_val"] == 0


def test_embargo_drops_rows_just_before_the_boundary():
    index = pd.date_range("2024-01-08", periods=100, freq="1min", tz="UTC", name="timestamp")
    t1 = index.as_unit("ns").tz_localize(None).to_numpy()  # t1 = t: nothing to purge
    res = time_split(index, np.ones(100, bool), t1, 0.6, 0.2, pd.Timedelta(minutes=5))
    # Val starts at row 60; rows with t > t60 - 5 min are 56..59.
    assert (res.split[56:60] == EXCLUDED).all() and res.split[55] == TRAIN
    assert res.counts["embargoed_train_val"] == 4 and res.counts["purged_train_val"] == 0
    assert (res.split[76:80] == EXCLUDED).all() and res.split[75] == VAL
    assert (res.split[80:] == TEST).all()


def test_to_dict_is_json_and_boundaries_match():
    index, usable, t1, embargo = random_case(3)
    res = time_split(index, usable, t1, 0.6, 0.2, embargo)
    d = json.loads(json.dumps(res.to_dict()))
    assert set(d) == {"boundaries", "counts"}
    for code, name in ((TRAIN, "train"), (VAL, "val"), (TEST, "test")):
        rows = np.flatnonzero(res.split == code)
        assert pd.Timestamp(d["boundaries"][name]["first"]) == index[rows[0]]
        assert pd.Timestamp(d["boundaries"][name]["last"]) == index[rows[-1]]


def test_works_with_labels_t1_column():
    bars = random_bars(600, seed=5)
    atr = np.full(len(bars), 2.0)
    labels = triple_barrier(bars, atr, [5, 20], 2.0, 2.0)
    usable = labels["label_h20"].notna().to_numpy() & labels["label_h5"].notna().to_numpy()
    t1 = labels["t1_h20"]
    res = time_split(bars.index, usable, t1.to_numpy(), 0.7, 0.15, pd.Timedelta(minutes=20))
    check_invariants(
        bars.index,
        usable,
        t1.dt.tz_localize(None).to_numpy(),
        pd.Timedelta(minutes=20),
        0.7,
        0.15,
        res,
    )


def test_empty_split_raises_with_a_fix():
    index = pd.date_range("2024-01-08", periods=50, freq="1min", tz="UTC", name="timestamp")
    far = (index + pd.Timedelta(days=1)).as_unit("ns").tz_localize(None).to_numpy()
    with pytest.raises(ValueError, match=r"train split is empty.*fewer or shorter horizons"):
        time_split(index, np.ones(50, bool), far, 0.6, 0.2, pd.Timedelta(0))
    # 30 train rows, a 2-hour gap, then 10 val rows all within the 1-hour embargo of test.
    gapped = index[:30].append(index[30:] + pd.Timedelta(hours=2))
    near = gapped.as_unit("ns").tz_localize(None).to_numpy()
    with pytest.raises(ValueError, match=r"val split is empty after.*more data"):
        time_split(gapped, np.ones(50, bool), near, 0.6, 0.2, pd.Timedelta(hours=1))
    with pytest.raises(ValueError, match=r"train split is empty before"):
        time_split(index[:3], np.ones(3, bool), near[:3], 0.3, 0.3, pd.Timedelta(0))
    with pytest.raises(ValueError, match=r"train split is empty before.*0 usable rows"):
        time_split(index, np.zeros(50, bool), far, 0.6, 0.2, pd.Timedelta(0))


def test_rejects_bad_arguments():
    index = pd.date_range("2024-01-08", periods=10, freq="1min", tz="UTC")
    t1 = index.as_unit("ns").tz_localize(None).to_numpy()
    with pytest.raises(ValueError, match="one value per row"):
        time_split(index, np.ones(9, bool), t1, 0.6, 0.2, pd.Timedelta(0))
    with pytest.raises(ValueError, match="boolean"):
        time_split(index, np.ones(10, int), t1, 0.6, 0.2, pd.Timedelta(0))
    with pytest.raises(ValueError, match="test split"):
        time_split(index, np.ones(10, bool), t1, 0.8, 0.2, pd.Timedelta(0))
    with pytest.raises(ValueError, match="sorted"):
        time_split(index[::-1], np.ones(10, bool), t1, 0.6, 0.2, pd.Timedelta(0))
