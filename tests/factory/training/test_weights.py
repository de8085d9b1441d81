"""Sample weights by label uniqueness (factory.training.weights): against brute force,
from the train rows only, and reaching every model's fit."""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pandas as pd
import pytest

from factory.data.manifest import LABELS_FILE
from factory.errors import ConfigError
from factory.models import get_model, resolve_params
from factory.training.checkpoint import CheckpointStore
from factory.training.identity import train_job_id
from factory.training.local_context import LocalContext
from factory.training.training_data import load_training_data
from factory.training.weights import (
    average_uniqueness,
    combine,
    concurrency,
    sample_factors,
    time_decay,
    train_row_weights,
)


def brute_uniqueness(starts, ends):
    """AFML 4.4 by loops: concurrency bar by bar, then each label's mean of 1/c."""
    n_bars = max(ends) + 1
    count = [0] * n_bars
    for s, e in zip(starts, ends, strict=True):
        for u in range(s, e + 1):
            count[u] += 1
    out = []
    for s, e in zip(starts, ends, strict=True):
        out.append(sum(1.0 / count[u] for u in range(s, e + 1)) / (e - s + 1))
    return count, out


def brute_decay(u, last):
    """AFML snippet 4.11 (getTimeDecay), written out row by row."""
    cum, x = 0.0, []
    for value in u:
        cum += value
        x.append(cum)
    slope = (1.0 - last) / x[-1] if last >= 0 else 1.0 / ((last + 1.0) * x[-1])
    const = 1.0 - slope * x[-1]
    return [max(const + slope * v, 0.0) for v in x]


def random_spans(rng, n_labels, n_bars, max_len):
    starts = np.sort(rng.choice(n_bars - max_len, size=n_labels, replace=False))
    ends = starts + rng.integers(0, max_len + 1, size=n_labels)
    return starts, ends


@pytest.mark.parametrize("seed", range(5))
def test_uniqueness_equals_the_brute_force_reference(seed):
    rng = np.random.default_rng(seed)
    starts, ends = random_spans(rng, 60, 200, 12)
    count, expected = brute_uniqueness(starts.tolist(), ends.tolist())
    np.testing.assert_array_equal(concurrency(starts, ends), count)
    np.testing.assert_allclose(average_uniqueness(starts, ends), expected, rtol=1e-12)


def test_uniqueness_of_simple_cases():
    # alone: 1; five labels on the same five bars: 1/5 each; half-overlapping pair: 3/4
    assert average_uniqueness(np.array([3]), np.array([7])).tolist() == [1.0]
    np.testing.assert_allclose(average_uniqueness(np.zeros(5, int), np.full(5, 4)), 0.2)
    np.testing.assert_allclose(average_uniqueness(np.array([0, 2]), np.array([3, 5])), 0.75)
    with pytest.raises(ValueError):
        average_uniqueness(np.array([5]), np.array([4]))


@pytest.mark.parametrize("last", [1.0, 0.5, 0.0, -0.3, -0.9])
def test_time_decay_equals_afml_snippet(last):
    u = np.random.default_rng(1).uniform(0.1, 1.0, 40)
    np.testing.assert_allclose(time_decay(u, last), brute_decay(u.tolist(), last), rtol=1e-12)
    decay = time_decay(u, last)
    assert decay[-1] == pytest.approx(1.0) and np.all(np.diff(decay) >= 0)
    if last < 0:  # the oldest fraction -last of the cumulative uniqueness gets nothing
        old = np.cumsum(u) <= -last * u.sum()
        assert old.any() and np.all(decay[old] == 0)
    with pytest.raises(ConfigError):
        time_decay(u, -1.0)


def test_combine_keeps_each_class_total_and_orders_within_a_class():
    y = np.array([0, 0, 1, 1, 1, 2])
    class_w = np.array([1.0, 2 / 3, 2.0])
    factors = np.array([0.2, 0.6, 1.0, 0.5, 0.5, 0.3])
    w = combine(class_w, y, factors)
    for k in range(3):
        assert w[y == k].sum() == pytest.approx(class_w[y][y == k].sum())
    assert w[1] == pytest.approx(3 * w[0]) and w[2] == pytest.approx(2 * w[3])
    assert w.mean() == pytest.approx(1.0)


def test_factors_of_each_method():
    starts, ends = np.array([0, 1, 2, 10]), np.array([4, 5, 6, 12])
    u = average_uniqueness(starts, ends)
    np.testing.assert_array_equal(sample_factors("none", starts, ends), 1.0)
    np.testing.assert_allclose(sample_factors("uniqueness", starts, ends), u)
    decayed = sample_factors("uniqueness_decay", starts, ends, 0.0)
    np.testing.assert_allclose(decayed, u * time_decay(u, 0.0))
    with pytest.raises(ConfigError, match="sample_weight='magic' is unknown"):
        sample_factors("magic", starts, ends)


@pytest.fixture(scope="module")
def data(small_dataset):
    return load_training_data(small_dataset, 5)


def test_label_end_rows_are_the_labels_t1(data, small_dataset):
    t1 = pd.read_parquet(small_dataset / LABELS_FILE, columns=["t1_h5"])["t1_h5"]
    rows = data.split_rows("train")
    ends = data.t1_rows[rows]
    assert np.all(ends > rows) and np.all(ends - rows <= 5)  # horizon 5 rows at most
    np.testing.assert_array_equal(data.index[ends], pd.DatetimeIndex(t1.iloc[rows]))
    assert np.all(data.t1_rows[t1.isna().to_numpy()] == -1)


def test_train_weights_from_the_dataset_equal_brute_force(data):
    rows = data.split_rows("train")
    y = data.y[rows]
    _, u = brute_uniqueness(rows.tolist(), data.t1_rows[rows].tolist())
    expected = data.class_weights[y] * np.array(u)
    for k in range(3):
        expected[y == k] *= data.class_weights[k] * (y == k).sum() / expected[y == k].sum()
    np.testing.assert_allclose(train_row_weights(data, "uniqueness"), expected, rtol=1e-10)
    np.testing.assert_array_equal(train_row_weights(data, "none"), data.class_weights[y])


def test_train_weights_never_depend_on_validation_or_test_labels(data):
    before = train_row_weights(data, "uniqueness_decay", 0.2)
    other = data.t1_rows.copy()
    y = data.y.copy()
    for split in ("val", "test"):
        rows = data.split_rows(split)
        other[rows] = np.minimum(rows + 50, len(y) - 1)  # longer spans, over train rows too
        y[rows] = (y[rows] + 1) % 3
    changed = dataclasses.replace(data, t1_rows=other, y=y)
    np.testing.assert_array_equal(train_row_weights(changed, "uniqueness_decay", 0.2), before)
    # a fold's weights come from its own train rows (with_rows), not the split's
    train = data.split_rows("train")
    fold = data.with_rows(train=train[: len(train) // 2], val=train[len(train) // 2 :])
    u = average_uniqueness(fold.split_rows("train"), data.t1_rows[fold.split_rows("train")])
    expected = combine(fold.class_weights, fold.labels("train"), u)
    np.testing.assert_allclose(train_row_weights(fold, "uniqueness"), expected)


def test_sample_weight_params_are_checked():
    p = resolve_params("xgboost", {"sample_weight": "uniqueness_decay", "time_decay": "-0.5"})
    assert (p.sample_weight, p.time_decay) == ("uniqueness_decay", -0.5)
    assert resolve_params("lstm", {}).sample_weight == "none"
    with pytest.raises(ConfigError, match="sample_weight='often' is unknown"):
        resolve_params("lstm", {"sample_weight": "often"})
    with pytest.raises(ConfigError, match=r"time_decay=1.5 must lie in \(-1, 1\]"):
        resolve_params("xgboost", {"sample_weight": "uniqueness_decay", "time_decay": "1.5"})
    with pytest.raises(ConfigError, match="no effect with sample_weight=uniqueness"):
        resolve_params("catboost", {"sample_weight": "uniqueness", "time_decay": "0.1"})


def test_new_params_at_their_defaults_keep_the_job_id():
    args = ("v", "MES", "ds", "xgboost", 5)
    plain = train_job_id(*args, {"profile": "tiny"})
    spelled = {"profile": "tiny", "sample_weight": "none", "time_decay": "0.5"}
    assert train_job_id(*args, spelled | {"importance_rows": "300"}) == plain
    assert train_job_id(*args, {"profile": "tiny", "sample_weight": "uniqueness"}) != plain


# --- the weights reach each model's fit ---------------------------------------------------

FAST = {
    "xgboost": {"n_estimators": "15"},
    "lightgbm": {"n_estimators": "15", "nthread": "1"},
    "catboost": {"n_estimators": "15"},
    "lstm": {"epochs": "2"},
}


def _fit(name, data, tmp_path, tag, **values):
    params = resolve_params(name, {"profile": "tiny"} | FAST[name] | values)
    ctx = LocalContext(CheckpointStore(tmp_path, f"{name}-{tag}"))
    return get_model(name)(params).fit(data, ctx)


@pytest.fixture(scope="module")
def few(data):
    """Fewer rows: fits in seconds (one torch thread, as tests/factory/models do)."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield data.with_rows(
        train=data.split_rows("train")[:2000],
        val=data.split_rows("val")[:500],
        test=data.split_rows("test")[:500],
    )
    torch.set_num_threads(threads)


@pytest.mark.parametrize("name", list(FAST))
def test_the_weights_reach_the_fit(name, few, tmp_path, monkeypatch):
    """Weights on the "down" rows only: the raw probabilities lean to "down"; the same
    fit with the balanced class weights does not."""
    import factory.models.base as base

    data = few

    seen = []

    def down_only(d, method, decay):
        seen.append((method, len(d.split_rows("train"))))
        return np.where(d.labels("train") == 0, 1.0, 1e-4)

    plain = _fit(name, data, tmp_path, "plain")
    monkeypatch.setattr(base, "train_row_weights", down_only)
    skewed = _fit(name, data, tmp_path, "skewed", sample_weight="uniqueness")
    assert seen and seen[0] == ("uniqueness", len(data.split_rows("train")))
    p_plain = plain._raw_proba(data, "test")[:, 0].mean()
    p_skewed = skewed._raw_proba(data, "test")[:, 0].mean()
    assert p_skewed > p_plain + 0.1, (p_plain, p_skewed)  # lstm: ~0.34 -> ~0.47


def test_uniqueness_weights_change_the_model(few, tmp_path):
    data = few
    plain = _fit("xgboost", data, tmp_path, "a")
    weighted = _fit("xgboost", data, tmp_path, "b", sample_weight="uniqueness")
    assert not np.allclose(plain._raw_proba(data, "test"), weighted._raw_proba(data, "test"))


class _Memory:
    """A TrainingContext holding its checkpoints in memory."""

    def __init__(self, checkpoints=None):
        self.checkpoints = list(checkpoints or [])

    def report(self, step, total, metrics=None):
        return None

    def should_stop(self):
        return False

    def save_checkpoint(self, step, files, state):
        from factory.training.context import Checkpoint

        self.checkpoints.append(Checkpoint(step, 1, dict(files), json.loads(json.dumps(state))))
        return True

    def latest_checkpoint(self):
        return self.checkpoints[-1] if self.checkpoints else None


def test_a_checkpoint_resumes_across_post_fit_and_added_params(few):
    from factory.errors import FactoryError
    from factory.training.context import Checkpoint

    def model(**values):
        params = resolve_params("xgboost", {"profile": "tiny", "n_estimators": "10"} | values)
        return get_model("xgboost")(params)

    ctx = _Memory()
    model().fit(few, ctx)
    last = ctx.checkpoints[-1]
    # importance is used after training: another value resumes
    resumed = model(importance_rows="10", importance_repeats="1").fit(few, _Memory([last]))
    assert resumed.resumed_from_ == last.step
    # a checkpoint written before these params existed counts them at their defaults
    older = {k: v for k, v in last.state["params"].items() if k not in NEW_PARAMS}
    old = Checkpoint(last.step, 1, last.files, last.state | {"params": older})
    assert model().fit(few, _Memory([old])).resumed_from_ == last.step
    with pytest.raises(FactoryError, match="other parameters"):
        model(sample_weight="uniqueness").fit(few, _Memory([old]))


NEW_PARAMS = ("sample_weight", "time_decay", "importance_rows", "importance_repeats")
