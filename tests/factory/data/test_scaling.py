"""Scaler: statistics from train rows only, float32 output, strict columns, round trip."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from factory.data.scaling import Scaler


def features(n: int = 1000, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    return pd.DataFrame(
        {
            "ret_1": rng.normal(0.0, 0.001, n),
            "vol": rng.lognormal(3.0, 1.0, n).astype(np.float32),
            "price": 4500.0 + rng.normal(0, 5, n),
            "flat": np.full(n, 7.0),
        }
    )


def train_mask(n: int = 1000) -> np.ndarray:
    rows = np.zeros(n, dtype=bool)
    rows[:700] = True
    return rows


def test_statistics_come_from_train_rows():
    X = features()
    rows = train_mask()
    sc = Scaler.fit(X, rows)
    assert sc.columns == tuple(X.columns)
    for j, name in enumerate(X.columns):
        v = X[name].to_numpy(dtype=np.float64)[rows]
        assert sc.mean[j] == pytest.approx(v.mean(), rel=1e-12, abs=1e-15)
        if name != "flat":
            assert sc.std[j] == pytest.approx(v.std(), rel=1e-12)
    assert sc.std[3] == 1.0  # zero spread -> 1


def test_only_train_rows_move_the_statistics():
    X = features()
    rows = train_mask()
    base = Scaler.fit(X, rows)
    for r in (700, 850, 999):  # val / test rows
        changed = X.copy()
        changed.iloc[r] = changed.iloc[r] * 1000 + 1
        assert Scaler.fit(changed, rows) == base
    for r in (0, 350, 699):  # train rows
        changed = X.copy()
        changed.iloc[r] = changed.iloc[r] * 1000 + 1
        other = Scaler.fit(changed, rows)
        assert all(a != b for a, b in zip(other.mean, base.mean, strict=True))


def test_non_finite_values_are_left_out():
    X = pd.DataFrame({"a": [1.0, np.nan, 3.0, np.inf, 100.0], "b": [np.nan] * 5})
    rows = np.array([True, True, True, True, False])
    sc = Scaler.fit(X, rows)
    assert sc.mean == (2.0, 0.0)
    assert sc.std == (1.0, 1.0)


def test_transform_is_float32_and_standardised():
    X = features()
    rows = train_mask()
    sc = Scaler.fit(X, rows)
    Z = sc.transform(X)
    assert Z.dtype == np.float32 and Z.shape == X.shape and Z.flags.c_contiguous
    np.testing.assert_allclose(Z[rows, :3].mean(axis=0), 0.0, atol=1e-5)
    np.testing.assert_allclose(Z[rows, :3].std(axis=0), 1.0, rtol=1e-4)
    np.testing.assert_allclose(Z[:, 3], 0.0)
    want = (X["price"].to_numpy() - sc.mean[2]) / sc.std[2]
    np.testing.assert_allclose(Z[:, 2], want.astype(np.float32), rtol=1e-6)


def test_transform_checks_columns():
    X = features()
    sc = Scaler.fit(X, train_mask())
    with pytest.raises(ValueError, match=r"missing \['vol'\]"):
        sc.transform(X.drop(columns="vol"))
    with pytest.raises(ValueError, match=r"unexpected \['extra'\]"):
        sc.transform(X.assign(extra=1.0))
    with pytest.raises(ValueError, match="different order"):
        sc.transform(X[["vol", "ret_1", "price", "flat"]])


def test_dict_round_trip_and_unknown_keys():
    sc = Scaler.fit(features(), train_mask())
    again = Scaler.from_dict(json.loads(json.dumps(sc.to_dict())))
    assert again == sc
    with pytest.raises(ValueError, match=r"unknown keys \['median'\]"):
        Scaler.from_dict({**sc.to_dict(), "median": [0.0] * 4})
    with pytest.raises(ValueError, match="missing keys"):
        Scaler.from_dict({"columns": ["a"], "mean": [0.0]})


def test_fit_rejects_bad_rows():
    X = features(10)
    with pytest.raises(ValueError, match="boolean mask"):
        Scaler.fit(X, np.arange(5))
    with pytest.raises(ValueError, match="no rows"):
        Scaler.fit(X, np.zeros(10, dtype=bool))
