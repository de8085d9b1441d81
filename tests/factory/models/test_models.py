"""Training data, the model registry's contract (every model), metrics and run_training."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest

from factory.data.config import DatasetConfig
from factory.data.dataset import build_dataset
from factory.data.synthetic import synthetic_bars, write_raw
from factory.errors import ConfigError, FactoryError
from factory.evaluation.metrics import predictions_sha256
from factory.evaluation.scores import classification_report
from factory.models import MODELS, get_model, load_model
from factory.training.checkpoint import CheckpointStore
from factory.training.context import Checkpoint, StopTraining, Superseded, TrainingContext
from factory.training.local_context import LocalContext
from factory.training.train import run_training
from factory.training.training_data import load_training_data

# small, fast, and long enough to checkpoint a few times (no early stop before the end)
TEST_PARAMS = {
    "xgboost": {
        "profile": "tiny",
        "n_estimators": "30",
        "early_stopping_rounds": "30",
        "checkpoint_every_rounds": "10",
    },
    "lightgbm": {
        "profile": "tiny",
        "n_estimators": "30",
        "early_stopping_rounds": "30",
        "checkpoint_every_rounds": "10",
        "nthread": "1",  # OpenMP threads spin: on a busy CPU 2 threads take 5-10x longer
    },
    "catboost": {
        "profile": "tiny",
        "n_estimators": "30",
        "early_stopping_rounds": "30",
        "checkpoint_every_rounds": "10",
    },
    "lstm": {"profile": "tiny", "epochs": "3", "patience": "3"},
    "gru": {"profile": "tiny", "epochs": "3", "patience": "3"},
    "tcn": {"profile": "tiny", "epochs": "3", "patience": "3"},
    "patchtst": {"profile": "tiny", "epochs": "3", "patience": "3"},
    "itransformer": {"profile": "tiny", "epochs": "3", "patience": "3"},
    "tft": {"profile": "tiny", "epochs": "3", "patience": "3"},
}


def test_every_model_has_test_params():
    assert set(TEST_PARAMS) == set(MODELS)


def params_of(name: str, **extra: str):
    overrides = {k: v for k, v in (TEST_PARAMS[name] | extra).items() if k != "profile"}
    return get_model(name).params_from("tiny", overrides)


@pytest.fixture(scope="module", autouse=True)
def one_torch_thread():
    """Tiny nets gain nothing from a second thread, and OpenMP threads spin: on a busy
    2-core CPU the deep models' tests take 4-5x longer with 2 threads than with 1."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def dataset_dir(tmp_path_factory):
    home = tmp_path_factory.mktemp("home")
    raw = write_raw(synthetic_bars("MES", days=6, seed=3), home / "MES_1m.parquet")
    config = DatasetConfig(symbol="MES", tick_size=0.25, tick_value_usd=1.25, horizons=(5, 10))
    return build_dataset(raw, config, home).dataset_dir


@pytest.fixture(scope="module")
def data(dataset_dir):
    return load_training_data(dataset_dir, 5)


class MemoryContext:
    """A TrainingContext in memory; `accept=False` makes every save superseded."""

    def __init__(self, accept: bool = True, checkpoints: list | None = None) -> None:
        self.job_id, self.attempt = "job", 1
        self.accept = accept
        self.checkpoints = checkpoints if checkpoints is not None else []
        self.save_calls = 0
        self.reports: list[tuple[int, int]] = []

    def report(self, step, total, metrics=None):
        self.reports.append((step, total))

    def should_stop(self):
        return False

    def save_checkpoint(self, step, files, state):
        self.save_calls += 1
        if not self.accept:
            return False
        state = json.loads(json.dumps(state))  # what a real store gives back
        self.checkpoints.append(Checkpoint(step, self.attempt, dict(files), state))
        return True

    def latest_checkpoint(self):
        return self.checkpoints[-1] if self.checkpoints else None


@pytest.fixture(scope="module")
def fitted(data, tmp_path_factory):
    """name -> (model, test probabilities, context) of an uninterrupted tiny run."""
    out = {}
    for name in MODELS:
        store = CheckpointStore(tmp_path_factory.mktemp(f"ck-{name}"), "job")
        ctx = LocalContext(store)
        model = get_model(name)(params_of(name)).fit(data, ctx)
        out[name] = (model, model.predict_proba(data, "test"), ctx)
    return out


# --- training data ---------------------------------------------------------------------


def test_training_data_arrays(data):
    assert data.X.dtype == np.float32 and data.X.flags.c_contiguous
    assert data.y.dtype == np.int64 and len(data.y) == len(data.X)
    seen = set()
    for split in ("train", "val", "test"):
        rows = data.split_rows(split)
        assert len(rows) > 0 and np.all(np.diff(rows) > 0)
        assert set(np.unique(data.y[rows])) <= {0, 1, 2}
        assert np.isfinite(data.X[rows]).all()
        assert not seen & set(rows.tolist())
        seen |= set(rows.tolist())
    assert data.rows["train"].max() < data.rows["val"].min() < data.rows["test"].min()
    y = data.labels("train")
    expected = len(y) / (3 * np.bincount(y, minlength=3))
    np.testing.assert_allclose(data.class_weights, expected)


def test_tabular_and_sequence_share_rows(data):
    X, y = data.tabular("val")
    windows, y_seq = data.sequence("val", 8)
    np.testing.assert_array_equal(y, y_seq)
    assert len(windows) == len(X)
    np.testing.assert_array_equal(windows[3][-1], X[3])  # windows end at the decision row
    assert windows.batch(np.arange(4)).shape == (4, 8, data.n_features)


def test_lookback_longer_than_the_dataset_is_refused(data):
    with pytest.raises(ConfigError, match="lookback_bars=64"):
        data.sequence("train", 65)


def test_unknown_horizon_names_the_available_ones(dataset_dir):
    with pytest.raises(ConfigError, match=r"horizons 5, 10"):
        load_training_data(dataset_dir, 7)
    assert load_training_data(dataset_dir).horizon == 5


# --- the registry and params -----------------------------------------------------------


def test_one_registry_entry_per_model():
    for name, entry in MODELS.items():
        cls = get_model(name)
        assert entry.name == cls.name == name and cls.Params is entry.params
        assert set(entry.profiles) == {"tiny", "default"}
        # a search space, where a model has one, names only its Params' fields (test_spaces)
        fields = set(entry.resolve({}).__dict__)
        assert entry.search_space is None or set(entry.search_space) <= fields
        assert entry.resolve({"profile": "tiny"}) == cls.params_from("tiny")


def test_the_registry_imports_no_heavy_library():
    """`submit` lists the models and checks their parameters: no torch, numpy, xgboost."""
    code = (
        "import sys, factory.models as m; m.resolve_params('tft', {'profile': 'tiny'});"
        "m.resolve_params('xgboost', {'max_depth': '3'}); m.MODELS['lstm'].profiles;"
        "heavy = ('torch', 'numpy', 'pandas', 'xgboost', 'lightgbm', 'catboost');"
        "print(','.join(h for h in heavy if h in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""


def test_unknown_model_lists_known_names():
    with pytest.raises(ConfigError, match="xgboost, lightgbm, catboost, lstm") as info:
        get_model("catboostt")
    assert "\n" not in str(info.value)


@pytest.mark.parametrize("name", sorted(MODELS))
def test_unknown_param_key_is_refused(name):
    with pytest.raises(ConfigError, match="use only") as info:
        get_model(name).params_from("tiny", {"learning_rat": "0.1"})
    assert "learning_rat" in str(info.value) and "\n" not in str(info.value)


@pytest.mark.parametrize("name", sorted(MODELS))
def test_param_values_are_cast_and_checked(name):
    cls = get_model(name)
    p = cls.params_from("tiny", {"learning_rate": "0.25", "seed": "7"})
    assert p.learning_rate == 0.25 and p.seed == 7 and p.profile == "tiny"
    assert cls.params_from("default", {}) != p
    with pytest.raises(ConfigError, match="seed"):
        cls.params_from("tiny", {"seed": "seven"})
    with pytest.raises(ConfigError, match="profile"):
        cls.params_from("huge", {})


# --- the contract, for every registered model ------------------------------------------


@pytest.mark.parametrize("name", sorted(MODELS))
def test_fit_gives_probabilities_and_metrics(name, data, fitted):
    model, proba, ctx = fitted[name]
    assert isinstance(ctx, TrainingContext)
    assert model.kind in ("tabular", "sequence")
    assert proba.shape == (len(data.rows["test"]), 3) and proba.dtype == np.float64
    assert np.isfinite(proba).all() and (proba >= 0).all()
    np.testing.assert_allclose(proba.sum(axis=1), 1.0, rtol=0, atol=1e-12)
    metrics = classification_report(data.labels("test"), proba)
    assert 0 <= metrics["macro_f1"] <= 1 and 0 < metrics["log_loss"] < 5
    summary = model.fit_summary()
    assert summary["resumed"] is False and summary["bit_exact"] is True
    assert summary["checkpoint_steps"] == ctx.checkpoint_steps and len(ctx.checkpoint_steps) >= 3
    assert ctx.last_report is not None


@pytest.mark.parametrize("name", sorted(MODELS))
def test_save_load_round_trip(name, data, fitted, tmp_path):
    model, proba, _ = fitted[name]
    model.save(tmp_path / "bundle")
    assert not list((tmp_path / "bundle").glob("*.pkl"))
    loaded = load_model(tmp_path / "bundle")
    assert type(loaded) is type(model) and loaded.params == model.params
    assert loaded.predict_proba(data, "test").tobytes() == proba.tobytes()


def _stop_after_first_checkpoint(store):
    box = {}
    box["ctx"] = LocalContext(store, stop=lambda: len(box["ctx"].checkpoint_steps) >= 1)
    return box["ctx"]


@pytest.mark.parametrize("name", sorted(MODELS))
def test_resumed_equals_uninterrupted(name, data, fitted, tmp_path):
    _, whole, _ = fitted[name]
    store = CheckpointStore(tmp_path, "job")
    first = _stop_after_first_checkpoint(store)
    with pytest.raises(StopTraining):
        get_model(name)(params_of(name)).fit(data, first)
    assert len(first.checkpoint_steps) in (1, 2)  # the first, and maybe one at the stop
    second = LocalContext(store)
    model = get_model(name)(params_of(name)).fit(data, second)
    assert second.resumed_from == first.checkpoint_steps[-1]
    summary = model.fit_summary()
    assert summary["resumed"] is True and summary["resumed_from"] == second.resumed_from
    assert summary["bit_exact"] is True
    assert model.predict_proba(data, "test").tobytes() == whole.tobytes()


def test_lstm_resumes_from_mid_epoch_wall_time_checkpoints(data, fitted, tmp_path):
    """Saving every batch (by wall time) must not change the result, nor must a resume
    from the middle of an epoch."""
    _, whole, _ = fitted["lstm"]
    params = params_of("lstm", checkpoint_every_s="1e-9")
    store = CheckpointStore(tmp_path, "job")
    box = {}
    box["ctx"] = LocalContext(store, stop=lambda: len(box["ctx"].checkpoint_steps) >= 5)
    with pytest.raises(StopTraining):
        get_model("lstm")(params).fit(data, box["ctx"])
    assert box["ctx"].checkpoint_steps == [1, 2, 3, 4, 5]
    model = get_model("lstm")(params).fit(data, LocalContext(store))
    assert model.resumed_from_ == 5
    assert model.predict_proba(data, "test").tobytes() == whole.tobytes()


SPACED = {"checkpoint_min_interval_s": "3600", "checkpoint_every_s": "3600"}


@pytest.mark.parametrize("name", sorted(MODELS))
def test_min_interval_skips_boundaries_but_never_a_stop(name, data, fitted, monkeypatch):
    """A boundary younger than checkpoint_min_interval_s after the last checkpoint is
    skipped, but a stop request (a hand-back) always checkpoints: stopped at its first
    step, then resumed, a fit checkpoints there and at its end only, and trains the
    same model as an uninterrupted run."""
    import factory.models.boosting as boosting

    monkeypatch.setattr(boosting, "STOP_POLL_S", 0.0)  # ask at every round
    _, whole, uninterrupted = fitted[name]
    final = uninterrupted.checkpoint_steps[-1]
    assert len(uninterrupted.checkpoint_steps) > 2  # the tiny profile: every boundary
    stopping = MemoryContext()
    stopping.should_stop = lambda: True
    with pytest.raises(StopTraining):
        get_model(name)(params_of(name, **SPACED)).fit(data, stopping)
    assert len(stopping.checkpoints) == 1 and stopping.checkpoints[0].step < final
    resumed = MemoryContext(checkpoints=list(stopping.checkpoints))
    model = get_model(name)(params_of(name, **SPACED)).fit(data, resumed)
    assert model.resumed_from_ == stopping.checkpoints[0].step
    assert [c.step for c in resumed.checkpoints[1:]] == [final]  # no boundary in between
    assert resumed.reports[0][0] == model.resumed_from_  # progress starts where it resumed
    assert model.predict_proba(data, "test").tobytes() == whole.tobytes()
    again = MemoryContext(checkpoints=list(resumed.checkpoints))  # a kill before finalize
    get_model(name)(params_of(name, **SPACED)).fit(data, again)
    assert again.reports == [(final, resumed.reports[-1][1])] and again.save_calls == 0


def test_min_interval_must_not_exceed_the_wall_time_bound():
    with pytest.raises(ConfigError, match="checkpoint_min_interval_s"):
        params_of("xgboost", checkpoint_min_interval_s="200", checkpoint_every_s="100")
    with pytest.raises(ConfigError, match="checkpoint_min_interval_s"):
        params_of("lstm", checkpoint_min_interval_s="-1")
    assert get_model("catboost").params_from("default").checkpoint_min_interval_s == 60.0


def test_xgboost_with_sampling_resumed_is_not_bit_exact(data, tmp_path):
    params = params_of("xgboost", subsample="0.8", colsample_bytree="0.8")
    store = CheckpointStore(tmp_path, "job")
    with pytest.raises(StopTraining):
        get_model("xgboost")(params).fit(data, _stop_after_first_checkpoint(store))
    model = get_model("xgboost")(params).fit(data, LocalContext(store))
    assert model.fit_summary()["resumed"] is True
    assert model.fit_summary()["bit_exact"] is False


@pytest.mark.parametrize("name", sorted(MODELS))
def test_superseded_save_raises_and_writes_nothing_more(name, data):
    ctx = MemoryContext(accept=False)
    with pytest.raises(Superseded):
        get_model(name)(params_of(name)).fit(data, ctx)
    assert ctx.save_calls == 1 and ctx.checkpoints == []


@pytest.mark.parametrize("name", sorted(MODELS))
def test_a_checkpoint_of_other_params_is_refused(name, data):
    ctx = MemoryContext()
    ctx.should_stop = lambda: True  # a checkpoint at the first step, then StopTraining
    with pytest.raises(StopTraining):
        get_model(name)(params_of(name)).fit(data, ctx)
    assert len(ctx.checkpoints) == 1
    with pytest.raises(FactoryError, match="other parameters"):
        get_model(name)(params_of(name, seed="5")).fit(data, ctx)


# --- metrics and run_training ----------------------------------------------------------


def test_classification_report_and_sha():
    y = np.array([0, 1, 2, 2])
    proba = np.eye(3)[[0, 1, 2, 1]] * 0.9 + 0.1 / 3
    m = classification_report(y, proba, np.ones(3) / 3)
    assert m["accuracy"] == 0.75 and m["n"] == 4
    assert 0 < m["macro_f1"] < 1 and m["log_loss"] > 0
    # a class absent from y_true still counts in the log-loss labels
    assert np.isfinite(classification_report(np.array([0, 0]), proba[:2])["log_loss"])
    p32 = proba.astype(np.float32)
    assert predictions_sha256(p32) == predictions_sha256(p32.astype(np.float64))
    assert predictions_sha256(proba) != predictions_sha256(proba[::-1])
    assert predictions_sha256(np.asfortranarray(proba)) == predictions_sha256(proba)


def test_run_training_result_is_json_and_bundled(dataset_dir, tmp_path):
    params = dict(TEST_PARAMS["xgboost"])
    ctx = MemoryContext()
    result = run_training(dataset_dir, "xgboost", None, params, ctx, bundle_dir=tmp_path / "b")
    assert json.loads(json.dumps(result)) == result
    assert result["model"] == "xgboost" and result["horizon"] == 5
    assert set(result["metrics"]) == {"val", "test"}
    assert result["resumed"] is False and result["resumed_from"] is None
    assert result["checkpoint_steps"] == [10, 20, 30] and result["best_iteration"] >= 0
    assert len(result["test_predictions_sha256"]) == 64 and result["seconds"] > 0
    bundle = json.loads((tmp_path / "b" / "bundle.json").read_text())
    assert {"config.json", "model.ubj", "result.json"} <= set(bundle["files"])
    loaded = load_model(tmp_path / "b")
    data = load_training_data(dataset_dir, 5)
    assert (
        predictions_sha256(loaded.predict_proba(data, "test"))
        == (result["test_predictions_sha256"])
    )
