"""XGBoost multiclass classifier, trained in checkpointed chunks of boosting rounds.

Rounds are trained in chunks ending at multiples of `checkpoint_every_rounds` (a chunk
also ends early `checkpoint_every_s` after the last checkpoint, or when a stop is
asked); each chunk continues the previous booster with `xgb.train(..., xgb_model=...)`
from its UBJ bytes, exactly as a resumed run does. A chunk end is a checkpoint
(booster UBJ + JSON state) unless the last one is younger than
`checkpoint_min_interval_s`; the end of training and a stop always checkpoint. Early
stopping on the validation log-loss is kept across chunks in that state (best
iteration, rounds since the best).

Without row/column sampling the trees do not depend on where chunks end, so a resumed
run equals an uninterrupted one bit for bit. With sampling they do: a run that was
resumed, or whose chunks were cut by wall time, reports `bit_exact: false`.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Any

import numpy as np
import xgboost as xgb

from factory.models.base import Model, normalize_proba
from factory.models.boosting_params import XGBoostParams
from factory.training.context import TrainingContext
from factory.training.training_data import N_CLASSES, TrainingData

log = logging.getLogger("factory.models.xgboost")

BOOSTER_FILE = "booster.ubj"
MODEL_FILE = "model.ubj"
STOP_POLL_S = 1.0


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


def _fresh_state() -> dict[str, Any]:
    return {
        "rounds": 0,
        "best_iteration": -1,
        "best_score": None,
        "since_best": 0,
        "last_val_mlogloss": None,
        "done": False,
        "stop_reason": None,
        "time_cut": False,
    }


class _ChunkMonitor(xgb.callback.TrainingCallback):
    """Tracks validation log-loss across chunks; ends a chunk on patience, time or stop."""

    def __init__(
        self,
        state: dict,
        params: XGBoostParams,
        ctx: TrainingContext,
        chunk_end: int,
        since_save_s: float = 0.0,
    ) -> None:
        super().__init__()
        self.state = state
        self.chunk_end = chunk_end
        self.params = params
        self.ctx = ctx
        self.last_poll = time.monotonic()
        self.last_save = self.last_poll - since_save_s  # checkpoint_every_s counts from it
        self.stop_asked = False
        self.time_cut = False

    def after_iteration(self, model, epoch: int, evals_log) -> bool:
        st = self.state
        score = float(evals_log["val"]["mlogloss"][-1])
        st["last_val_mlogloss"] = score
        if st["best_score"] is None or score < st["best_score"]:
            st.update(best_score=score, best_iteration=st["rounds"], since_best=0)
        else:
            st["since_best"] += 1
        st["rounds"] += 1
        if st["since_best"] >= self.params.early_stopping_rounds:
            st.update(done=True, stop_reason="early_stopping")
            return True
        now = time.monotonic()
        if now - self.last_poll >= STOP_POLL_S:
            self.last_poll = now
            self.stop_asked = bool(self.ctx.should_stop())
            if self.stop_asked:
                return True
        if now - self.last_save >= self.params.checkpoint_every_s:
            self.time_cut = True  # checkpoint now, wherever the round is
            st["time_cut"] = st["time_cut"] or st["rounds"] < self.chunk_end
            return True
        return False


class XGBoostModel(Model):
    name = "xgboost"
    kind = "tabular"
    Params = XGBoostParams

    def fit(self, data: TrainingData, ctx: TrainingContext) -> XGBoostModel:
        p = self._resolve_params()
        checkpoint = self._begin_fit(data, ctx)
        state, raw = _fresh_state(), None
        if checkpoint is not None:
            self._check_resumable(checkpoint)
            self._report_resumed(ctx, p.n_estimators)
            state, raw = dict(checkpoint.state["train"]), checkpoint.files[BOOSTER_FILE]
        dtrain, dval = self._matrices(data)
        while not state["done"]:
            raw, monitor = self._train_chunk(raw, dtrain, dval, state, ctx)
            if state["rounds"] >= p.n_estimators and not state["done"]:
                state.update(done=True, stop_reason="n_estimators")
            snapshot = _snapshot(raw, state)
            if state["done"] or monitor.time_cut or self._boundary_save_due():
                self._save(ctx, state["rounds"], *snapshot())
            ctx.report(state["rounds"], p.n_estimators, _report_metrics(state))
            if not state["done"]:
                self._stop_if_asked(ctx, state["rounds"], snapshot, asked=monitor.stop_asked)
        self._finish(raw, state)
        return self

    def _matrices(self, data: TrainingData) -> tuple[xgb.DMatrix, xgb.DMatrix]:
        p = self.params
        X, y = data.tabular("train")
        w = data.class_weights[y]
        dtrain = xgb.QuantileDMatrix(X, y, weight=w, max_bin=p.max_bin, nthread=p.nthread)
        Xv, yv = data.tabular("val")
        wv = data.class_weights[yv]
        dval = xgb.QuantileDMatrix(
            Xv, yv, weight=wv, ref=dtrain, max_bin=p.max_bin, nthread=p.nthread
        )
        return dtrain, dval

    def _train_chunk(self, raw, dtrain, dval, state: dict, ctx: TrainingContext):
        """Train up to the next multiple of checkpoint_every_rounds (or less, see monitor)."""
        p = self.params
        every = p.checkpoint_every_rounds
        chunk_end = min(p.n_estimators, (state["rounds"] // every + 1) * every)
        monitor = _ChunkMonitor(state, p, ctx, chunk_end, since_save_s=self._since_save_s())
        booster = xgb.train(
            booster_params(p),
            dtrain,
            num_boost_round=chunk_end - state["rounds"],
            evals=[(dval, "val")],
            verbose_eval=False,
            xgb_model=bytearray(raw) if raw is not None else None,
            callbacks=[monitor],
        )
        return bytes(booster.save_raw("ubj")), monitor

    def _finish(self, raw: bytes, state: dict) -> None:
        booster = xgb.Booster(model_file=bytearray(raw))
        booster.set_param({"nthread": self.params.nthread})
        self.booster_ = booster
        self.best_iteration_ = int(state["best_iteration"])
        self.best_score_ = state["best_score"]
        self.n_rounds_ = int(state["rounds"])
        self.stop_reason_ = state["stop_reason"]
        cut = self.resumed_from_ is not None or state["time_cut"]
        self.bit_exact_ = not (self.params.sampling and cut)

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
        proba = self.booster_.inplace_predict(X, iteration_range=(0, self.best_iteration_ + 1))
        return normalize_proba(np.asarray(proba).reshape(len(X), N_CLASSES))

    def save(self, directory: str | Path) -> Path:
        self._check_fitted()
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        self.booster_.save_model(str(directory / MODEL_FILE))
        learned = {
            "best_iteration": self.best_iteration_,
            "best_score": self.best_score_,
            "n_rounds": self.n_rounds_,
            "stop_reason": self.stop_reason_,
        }
        self._write_config(directory, learned)
        return directory

    @classmethod
    def load(cls, directory: str | Path) -> XGBoostModel:
        model, learned = cls._read_config(Path(directory))
        booster = xgb.Booster()
        booster.load_model(str(Path(directory) / MODEL_FILE))
        booster.set_param({"nthread": model.params.nthread})
        model.booster_ = booster
        model.best_iteration_ = int(learned["best_iteration"])
        model.best_score_ = learned["best_score"]
        model.n_rounds_ = int(learned["n_rounds"])
        model.stop_reason_ = learned["stop_reason"]
        return model


def _snapshot(raw: bytes, state: dict):
    """The (files, state) of a checkpoint at the current round, made when asked."""
    return lambda: ({BOOSTER_FILE: raw}, {"train": dict(state)})


def _report_metrics(state: dict) -> dict[str, float]:
    out = {"best_iteration": float(state["best_iteration"])}
    if state["last_val_mlogloss"] is not None:
        out["val_mlogloss"] = state["last_val_mlogloss"]
        out["best_val_mlogloss"] = state["best_score"]
    return out
