"""Prior shift and calibration on validation rows (factory.models.calibration)."""

from __future__ import annotations

import numpy as np
import pytest

from factory.evaluation.scores import classification_report, top_label_calibration_error
from factory.models.calibration import Calibration, fit_temperature, prior_shift

PRIOR = np.array([0.06, 0.88, 0.06])  # mostly flat, as at horizon 5


def _draw(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Labels from PRIOR and the true probabilities of each row (a learnable signal)."""
    rng = np.random.default_rng(seed)
    logits = np.log(PRIOR) + rng.normal(0, 1.2, (n, 3))
    true = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    y = np.array([rng.choice(3, p=p) for p in true])
    return y, true


def _balanced(true: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """What a model trained with `weights` reports: the true probabilities reweighted."""
    q = true * weights
    return q / q.sum(axis=1, keepdims=True)


def test_the_prior_shift_undoes_balanced_class_weights():
    y, true = _draw(4000, 0)
    weights = 1 / (3 * np.bincount(y, minlength=3) / len(y))
    raw = _balanced(true, weights)
    assert np.allclose(prior_shift(raw, weights), true)
    before = classification_report(y, raw, PRIOR)["log_loss_skill"]
    after = classification_report(y, prior_shift(raw, weights), PRIOR)["log_loss_skill"]
    assert before < 0 < after  # the balanced world's probabilities look worse than the prior
    with pytest.raises(ValueError, match="3 positives"):
        prior_shift(raw, np.array([1.0, 0.0, 1.0]))


def test_temperature_scaling_recovers_an_overconfident_model():
    y, true = _draw(6000, 1)
    sharp = true**3 / (true**3).sum(axis=1, keepdims=True)  # temperature 1/3
    assert fit_temperature(sharp, y) == pytest.approx(3.0, rel=0.15)


@pytest.mark.parametrize("method", ["temperature", "sigmoid", "isotonic"])
def test_calibration_on_validation_lowers_the_calibration_error(method):
    weights = np.ones(3)
    y_val, true_val = _draw(5000, 2)
    y_test, true_test = _draw(5000, 3)
    distort = lambda p: p**2.5 / (p**2.5).sum(axis=1, keepdims=True)  # noqa: E731
    calibration = Calibration.fit(distort(true_val), y_val, weights, method)
    raw_test = distort(true_test)
    before = top_label_calibration_error(y_test, raw_test)
    after = top_label_calibration_error(y_test, calibration.apply(raw_test))
    assert after < before / 2
    again = Calibration.from_dict(calibration.to_dict())
    assert np.array_equal(again.apply(raw_test), calibration.apply(raw_test))


def test_a_model_calibrates_on_its_validation_rows_only(small_dataset, tmp_path):
    """Corrupt every label outside the validation split: the calibration is unchanged."""
    import dataclasses

    from factory.models import get_model, resolve_params
    from factory.training.checkpoint import CheckpointStore
    from factory.training.local_context import LocalContext
    from factory.training.training_data import load_training_data

    data = load_training_data(small_dataset, 5)
    params = resolve_params("xgboost", {"profile": "tiny", "calibration": "isotonic"})
    ctx = LocalContext(CheckpointStore(tmp_path, "calibration"))
    model = get_model("xgboost")(params).fit(data, ctx).calibrate(data)
    fitted = model.calibration_.to_dict()
    y = data.y.copy()
    others = np.setdiff1d(np.arange(len(y)), data.split_rows("val"))
    y[others] = (y[others] + 1) % 3
    model.calibrate(dataclasses.replace(data, y=y))
    assert model.calibration_.to_dict() == fitted
    y[data.split_rows("val")] = (y[data.split_rows("val")] + 1) % 3
    model.calibrate(dataclasses.replace(data, y=y))
    assert model.calibration_.to_dict() != fitted  # the test can fail


def test_a_bad_record_or_method_is_refused():
    with pytest.raises(ValueError, match="not one this code reads"):
        Calibration.from_dict({"class_weights": [1, 1, 1], "method": "magic", "state": {}})
    with pytest.raises(ValueError, match="is not one of"):
        Calibration.fit(np.full((3, 3), 1 / 3), np.arange(3), np.ones(3), "magic")


def test_a_train_result_shows_the_skill_before_and_after_calibration(small_dataset, tmp_path):
    from factory.training.checkpoint import CheckpointStore
    from factory.training.local_context import LocalContext
    from factory.training.train import train_model

    ctx = LocalContext(CheckpointStore(tmp_path, "before-after"))
    result, _ = train_model(small_dataset, "xgboost", 5, {"profile": "tiny"}, ctx)
    after, before = result["metrics"]["test"], result["calibration"]["test_uncalibrated"]
    assert result["calibration"]["method"] == "sigmoid"  # auto, for a tabular model
    assert after["log_loss_skill"] > before["log_loss_skill"]
    assert after["calibration_error"] < before["calibration_error"]
    assert after["reliability"]["count"] and sum(after["reliability"]["count"]) == after["n"]
