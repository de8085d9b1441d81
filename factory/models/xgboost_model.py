"""XGBoost multiclass classifier on the shared chunked loop of models/boosting.py.

Each chunk continues the previous booster with `xgb.train(..., xgb_model=...)` from
its UBJ bytes, exactly as a resumed run does; a checkpoint holds those bytes.

Without row/column sampling the trees do not depend on where chunks end, so a resumed
run equals an uninterrupted one bit for bit. With sampling they do: a run that was
resumed, or whose chunk was cut by wall time, reports `bit_exact: false`.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import xgboost as xgb

from factory.models.boosting import BoostingModel, Session
from factory.models.boosting_params import XGBoostParams
from factory.training.training_data import N_CLASSES, TrainingData


def booster_params(p: XGBoostParams) -> dict[str, Any]:
    return {
        "objective": "multi:softprob",
        "num_class": N_CLASSES,
        "eval_metric": "mlogloss",
        "tree_method": "hist",
        "device": p.device,
        "learning_rate": p.learning_rate,
        "max_depth": p.max_depth,
        "min_child_weight": p.min_child_weight,
        "subsample": p.subsample,
        "colsample_bytree": p.colsample_bytree,
        "reg_lambda": p.reg_lambda,
        "max_bin": p.max_bin,
        "seed": p.seed,
        "nthread": p.nthread,
        "verbosity": 0,
    }


def _matrix(p: XGBoostParams, data: TrainingData, split: str, ref=None, w=None) -> xgb.DMatrix:
    """`split`'s rows, weighted by `w` (default: the class weights)."""
    X, y = data.tabular(split)
    w = data.class_weights[y] if w is None else w
    return xgb.QuantileDMatrix(X, y, weight=w, ref=ref, max_bin=p.max_bin, nthread=p.nthread)


class _Rounds(xgb.callback.TrainingCallback):
    """Hands each round's validation log-loss to `after_round`; its False ends training."""

    def __init__(self, after_round: Callable[[float], bool]) -> None:
        super().__init__()
        self.after_round = after_round

    def after_iteration(self, model, epoch: int, evals_log) -> bool:
        return not self.after_round(float(evals_log["val"]["mlogloss"][-1]))


class _XGBoostSession(Session):
    def __init__(
        self, p: XGBoostParams, data: TrainingData, raw: bytes | None, weights: np.ndarray
    ) -> None:
        self.p = p
        self.raw = raw  # the booster, as UBJ bytes
        self.dtrain = _matrix(p, data, "train", w=weights)
        self.dval = _matrix(p, data, "val", ref=self.dtrain)

    def train(self, start: int, until: int, after_round: Callable[[float], bool]) -> None:
        booster = xgb.train(
            booster_params(self.p),
            self.dtrain,
            num_boost_round=until - start,
            evals=[(self.dval, "val")],
            verbose_eval=False,
            xgb_model=bytearray(self.raw) if self.raw is not None else None,
            callbacks=[_Rounds(after_round)],
        )
        self.raw = bytes(booster.save_raw("ubj"))

    def dump(self) -> bytes:
        return self.raw

    def final(self, rounds: int) -> xgb.Booster:
        booster = xgb.Booster(model_file=bytearray(self.raw))
        booster.set_param({"nthread": self.p.nthread})
        return booster


class XGBoostModel(BoostingModel):
    name = "xgboost"
    Params = XGBoostParams
    CHECKPOINT_FILE = "booster.ubj"
    MODEL_FILE = "model.ubj"
    GAIN_TYPE = "total_gain"

    def _session(self, data: TrainingData, raw: bytes | None) -> Session:
        return _XGBoostSession(self.params, data, raw, self._train_weights(data))

    def _upgrade_format1(self, train: dict[str, Any]) -> dict[str, Any]:
        """Format 1 kept `time_cut` (a chunk cut by wall time) and no record of earlier
        resumes; resumed now, such a run is bit-exact only without sampling."""
        train = {k: v for k, v in train.items() if k != "time_cut"}
        return train | {"bit_exact": not self.params.sampling}

    def _predict(self, X: np.ndarray, n_trees: int) -> np.ndarray:
        return self.booster_.inplace_predict(X, iteration_range=(0, n_trees))

    def _gain(self) -> np.ndarray:
        booster = self.booster_[: self.best_iteration_ + 1]
        score = booster.get_score(importance_type=self.GAIN_TYPE)  # {"f<i>": gain}, used only
        return np.array([score.get(f"f{i}", 0.0) for i in range(self.n_features_in_)])

    def _write_booster(self, path: Path) -> None:
        self.booster_.save_model(str(path))

    @classmethod
    def _read_booster(cls, path: Path, params: XGBoostParams) -> xgb.Booster:
        booster = xgb.Booster()
        booster.load_model(str(path))
        booster.set_param({"nthread": params.nthread})
        return booster
