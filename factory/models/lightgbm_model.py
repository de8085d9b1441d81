"""LightGBM multiclass classifier, checkpointed every N boosting rounds.

One `lightgbm.train` call trains the remaining rounds; its callback keeps early stopping
on the validation log-loss (state that survives resumes, see models/boosting.py) and
writes a checkpoint (the model text + JSON state) at every multiple of
`checkpoint_every_rounds` unless the last one is younger than
`checkpoint_min_interval_s`, `checkpoint_every_s` after the last one, at the end and
when a stop is asked. A resumed run continues from the saved text with
`init_model=`: LightGBM starts it from the saved trees' raw scores, which equal the
scores the uninterrupted run accumulated, so without row/column sampling a resumed run
equals an uninterrupted one bit for bit (where checkpoints fall never matters: between
them the booster stays in memory). With bagging or feature_fraction the sampling RNG
restarts on resume, and such a run reports `bit_exact: false`.

`force_col_wise=True` always: LightGBM's automatic choice can pick the row-wise
histogram path, measured ~5x slower per round on 1M x 100 (bench/models.py).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import lightgbm as lgb
import numpy as np

from factory.models.base import Model, normalize_proba
from factory.models.boosting import Poller, fresh_state, record_round, report_metrics
from factory.models.boosting_params import LightGBMParams
from factory.training.context import TrainingContext
from factory.training.training_data import N_CLASSES, TrainingData

MODEL_FILE = "model.txt"  # the checkpoint's file and the bundle's


def booster_params(p: LightGBMParams) -> dict[str, Any]:
    return {
        "objective": "multiclass",
        "num_class": N_CLASSES,
        "metric": "multi_logloss",
        "learning_rate": p.learning_rate,
        "num_leaves": p.num_leaves,
        "max_depth": p.max_depth,
        "min_data_in_leaf": p.min_data_in_leaf,
        "feature_fraction": p.feature_fraction,
        "bagging_fraction": p.bagging_fraction,
        "bagging_freq": p.bagging_freq,
        "lambda_l2": p.lambda_l2,
        "max_bin": p.max_bin,
        "seed": p.seed,
        "num_threads": p.nthread,
        "deterministic": True,
        "force_col_wise": True,
        "verbosity": -1,
    }


class _Checkpointer:
    """The `lightgbm.train` callback: early stopping, checkpoints, stop requests."""

    order = 100  # after any other callback

    def __init__(self, model: LightGBMModel, ctx: TrainingContext, state: dict) -> None:
        self.model = model
        self.ctx = ctx
        self.state = state
        self.poller = Poller(ctx)
        self.text: str | None = None

    def __call__(self, env: lgb.callback.CallbackEnv) -> None:
        st, model = self.state, self.model
        p = model.params
        (_, _, score, _) = env.evaluation_result_list[0]
        record_round(st, score, p.early_stopping_rounds, p.n_estimators)
        asked = self.poller.poll()
        boundary = st["rounds"] % p.checkpoint_every_rounds == 0
        late = model._since_save_s() >= p.checkpoint_every_s
        if st["done"] or asked or late or (boundary and model._boundary_save_due()):
            self.checkpoint(env.model)
            if not st["done"]:
                self.model._stop_if_asked(self.ctx, st["rounds"], None, asked=asked)
        elif boundary:  # progress at every boundary, checkpointed or not
            self.ctx.report(st["rounds"], p.n_estimators, report_metrics(st))
        if st["done"]:
            raise lgb.callback.EarlyStopException(st["best_iteration"], [])

    def checkpoint(self, booster: lgb.Booster) -> None:
        st = self.state
        self.text = booster.model_to_string(num_iteration=-1)
        self.model._save(
            self.ctx, st["rounds"], {MODEL_FILE: self.text.encode()}, {"train": dict(st)}
        )
        self.ctx.report(st["rounds"], self.model.params.n_estimators, report_metrics(st))


class LightGBMModel(Model):
    name = "lightgbm"
    kind = "tabular"
    Params = LightGBMParams

    def fit(self, data: TrainingData, ctx: TrainingContext) -> LightGBMModel:
        p = self._resolve_params()
        checkpoint = self._begin_fit(data, ctx)
        state, text = fresh_state(), None
        if checkpoint is not None:
            self._check_resumable(checkpoint)
            self._report_resumed(ctx, p.n_estimators)
            state, text = dict(checkpoint.state["train"]), checkpoint.files[MODEL_FILE].decode()
            if p.sampling and not state["done"]:
                state["bit_exact"] = False  # the bagging / feature RNG restarts
        if not state["done"]:
            text = self._train(data, ctx, state, text)
        self._finish(text, state)
        return self

    def _train(self, data: TrainingData, ctx: TrainingContext, state: dict, text: str | None):
        """Train the remaining rounds; the model text of the last checkpoint."""
        p = self.params
        X, y = data.tabular("train")
        dtrain = lgb.Dataset(X, y, weight=data.class_weights[y])
        Xv, yv = data.tabular("val")
        dval = lgb.Dataset(Xv, yv, weight=data.class_weights[yv], reference=dtrain)
        saver = _Checkpointer(self, ctx, state)
        lgb.train(
            booster_params(p),
            dtrain,
            num_boost_round=p.n_estimators - state["rounds"],
            valid_sets=[dval],
            valid_names=["val"],
            init_model=lgb.Booster(model_str=text) if text is not None else None,
            callbacks=[saver],
            keep_training_booster=True,  # no text round trip at the end: we have it
        )
        return saver.text

    def _finish(self, text: str, state: dict) -> None:
        # from the text, as a loaded bundle: same predictions, and no training data held
        self.booster_ = lgb.Booster(model_str=text)
        self.best_iteration_ = int(state["best_iteration"])
        self.best_score_ = state["best_score"]
        self.n_rounds_ = int(state["rounds"])
        self.stop_reason_ = state["stop_reason"]
        self.bit_exact_ = bool(state["bit_exact"])

    def fit_summary(self) -> dict[str, Any]:
        return super().fit_summary() | {
            "best_iteration": self.best_iteration_,
            "best_val_mlogloss": self.best_score_,
            "rounds": self.n_rounds_,
            "stop_reason": self.stop_reason_,
        }

    def predict_proba(self, data: TrainingData, split: str) -> np.ndarray:
        self._check_fitted()
        X, _ = data.tabular(split)
        proba = self.booster_.predict(
            X, num_iteration=self.best_iteration_ + 1, num_threads=self.params.nthread
        )
        return normalize_proba(np.asarray(proba).reshape(len(X), N_CLASSES))

    def save(self, directory: str | Path) -> Path:
        self._check_fitted()
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        self.booster_.save_model(str(directory / MODEL_FILE), num_iteration=-1)
        learned = {
            "best_iteration": self.best_iteration_,
            "best_score": self.best_score_,
            "n_rounds": self.n_rounds_,
            "stop_reason": self.stop_reason_,
        }
        self._write_config(directory, learned)
        return directory

    @classmethod
    def load(cls, directory: str | Path) -> LightGBMModel:
        model, learned = cls._read_config(Path(directory))
        model.booster_ = lgb.Booster(model_file=str(Path(directory) / MODEL_FILE))
        model.best_iteration_ = int(learned["best_iteration"])
        model.best_score_ = learned["best_score"]
        model.n_rounds_ = int(learned["n_rounds"])
        model.stop_reason_ = learned["stop_reason"]
        return model
