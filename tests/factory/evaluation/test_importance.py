"""Feature importance (factory.evaluation.importance): a planted feature ranks first,
gain for every boosting model, windows permuted whole, the table across models."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from factory.evaluation.importance import (
    feature_importance,
    importance_table,
    plot_importance,
    top_features,
    window_data,
    write_importance,
)
from factory.models import get_model, resolve_params
from factory.training.checkpoint import CheckpointStore
from factory.training.local_context import LocalContext
from factory.training.training_data import TrainingData, balanced_class_weights

N_FEATURES = 8
PLANTED = "f5"


def planted_data(tmp_path, n=3000, seed=0) -> TrainingData:
    """Noise features; the label is the sign class of f5 (a smoothed series, so a window
    model sees it too) plus noise; rows split 60/20/20 in time."""
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, N_FEATURES)).astype(np.float32)
    signal = X[:, 5]
    noisy = signal + 0.5 * rng.standard_normal(n)
    y = np.digitize(noisy, [-0.6, 0.6]).astype(np.int64)  # 0 / 1 / 2
    rows = np.arange(16, n)
    cut1, cut2 = int(len(rows) * 0.6), int(len(rows) * 0.8)
    split = {"train": rows[:cut1], "val": rows[cut1:cut2], "test": rows[cut2:]}
    return TrainingData(
        X=np.ascontiguousarray(X),
        y=y,
        rows=split,
        class_weights=balanced_class_weights(y[split["train"]]),
        horizon=1,
        lookback_bars=16,
        feature_columns=tuple(f"f{i}" for i in range(N_FEATURES)),
        dataset_id="planted",
        dataset_dir=tmp_path,
        index=pd.date_range("2024-01-02", periods=n, freq="1min", tz="UTC"),
    )


@pytest.fixture(scope="module")
def planted(tmp_path_factory):
    return planted_data(tmp_path_factory.mktemp("planted"))


@pytest.fixture(scope="module", autouse=True)
def one_torch_thread():
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def fitted(name, data, home, **values):
    params = resolve_params(name, {"profile": "tiny"} | values)
    model = get_model(name)(params).fit(data, LocalContext(CheckpointStore(home, name)))
    return model.calibrate(data)


@pytest.mark.parametrize(
    ("name", "values"),
    [("xgboost", {}), ("lightgbm", {"nthread": "1"}), ("catboost", {}), ("lstm", {})],
)
def test_the_planted_feature_ranks_first(name, values, planted, tmp_path):
    model = fitted(name, planted, tmp_path, **values)
    out = feature_importance(model, planted, rows=400, repeats=2, seed=0)
    json.dumps(out)  # JSON-able
    perm = out["permutation"]
    assert perm["rows"] == 400 and perm["repeats"] == 2 and len(perm["top"]) == N_FEATURES
    assert perm["top"][0]["feature"] == PLANTED, perm["top"][:3]
    assert perm["top"][0]["value"] > 5 * max(abs(r["value"]) for r in perm["top"][1:])
    if model.kind == "tabular":  # every boosting model has its library's gain too
        gain = out["gain"]
        assert gain["type"] == type(model).GAIN_TYPE
        assert gain["top"][0]["feature"] == PLANTED
        assert sum(r["value"] for r in gain["top"]) == pytest.approx(1.0)
    else:
        assert "gain" not in out
    # the same seed, the same figures; the data is left as it was
    before = planted.X.copy()
    again = feature_importance(model, planted, rows=400, repeats=2, seed=0)
    assert again["permutation"]["top"] == perm["top"]
    np.testing.assert_array_equal(planted.X, before)


def test_importance_can_be_skipped(planted, tmp_path):
    model = fitted("xgboost", planted, tmp_path, n_estimators="5")
    out = feature_importance(model, planted, rows=0, repeats=1, seed=0)
    assert out["permutation"] == {"skipped": "importance_rows=0"} and out["gain"]["top"]


def test_window_data_lays_windows_end_to_end(planted):
    rows = planted.split_rows("val")[[0, 7, 30]]
    small = window_data(planted, rows, 4)
    windows, y = small.sequence("val", 4)
    original, y0 = planted.sequence("val", 4)
    for i, row in enumerate(rows):
        position = int(np.flatnonzero(planted.split_rows("val") == row)[0])
        np.testing.assert_array_equal(windows[i], original[position])
        assert y[i] == y0[position]
    tab, _ = window_data(planted, rows, 1).tabular("val")
    np.testing.assert_array_equal(tab, planted.X[rows])


def test_top_features_orders_and_cuts():
    names = [f"f{i}" for i in range(30)]
    top = top_features(names, [float(i % 7) for i in range(30)], top=20)
    assert len(top) == 20 and top[0] == {"feature": "f6", "value": 6.0}
    assert [r["feature"] for r in top[:3]] == ["f6", "f13", "f20"]  # ties: feature order


def _result(records, gain=None):
    out = {"importance": {"permutation": {"top": records}}}
    if gain:
        out["importance"]["gain"] = {"type": "gain", "top": gain}
    return out


def test_importance_table_across_models(tmp_path):
    a = _result([{"feature": "x", "value": 0.3}, {"feature": "y", "value": 0.1}])
    b = _result(
        [{"feature": "y", "value": 0.2}, {"feature": "z", "value": 0.05}],
        gain=[{"feature": "z", "value": 1.0}],
    )
    skipped = {"importance": {"permutation": {"skipped": "importance_rows=0"}}}
    table = importance_table({"a": a, "b": b, "c": skipped}, top=2)
    assert list(table.columns) == ["feature", "a", "b", "models", "mean_rank"]
    assert table["feature"].tolist() == ["y", "x", "z"]  # mean ranks 1.5, 2, 2.5
    assert table["models"].tolist() == [2, 1, 1]
    assert np.isnan(table.loc[table.feature == "x", "b"].item())
    gain = importance_table([{"model": "b"} | b], kind="gain")
    assert gain["feature"].tolist() == ["z"] and gain["b"].tolist() == [1.0]
    assert importance_table({"c": skipped}).empty
    paths = write_importance({"a": a, "b": b}, tmp_path)
    assert pd.read_csv(paths["importance_csv"])["feature"].tolist() == ["y", "x", "z"]
    text = paths["importance_md"].read_text()
    assert "| feature | a | b | models | mean_rank |" in text and "## Gain" in text
    assert write_importance({"c": skipped}, tmp_path / "none") == {}


def test_plot_importance(tmp_path):
    records = [{"feature": f"f{i}", "value": 1.0 / (i + 1), "std": 0.01} for i in range(20)]
    block = {"permutation": {"rows": 100, "top": records}}
    path = plot_importance(block, tmp_path / "importance.png", "xgboost")
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert plot_importance({"permutation": {"skipped": "x"}}, tmp_path / "no.png", "m") is None
    assert not (tmp_path / "no.png").exists()
