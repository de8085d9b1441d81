"""CatBoost multiclass classifier, checkpointed with CatBoost's own snapshots.

Rounds are trained in chunks ending at multiples of `checkpoint_every_rounds` (a chunk
ends early `checkpoint_every_s` after the last checkpoint, on early stopping, or when a
stop is asked: a callback returns False). A chunk end checkpoints unless the last
checkpoint is younger than `checkpoint_min_interval_s` (the end and a stop always do).
Each chunk is one `fit(iterations=chunk_end, save_snapshot=True)`: CatBoost continues
from the snapshot file when there is one and writes it again when the chunk ends. A
checkpoint is that file's bytes + JSON state (early stopping across chunks,
models/boosting.py); a resumed run puts the file back into a fresh temporary folder and
goes on. A snapshot holds the whole learning state (trees, approximations, RNG), so a
resumed run equals an uninterrupted one bit for bit, with row/feature sampling too, and
wherever the chunks were cut (same thread count).

Files are written only into that temporary folder (snapshot, CatBoost's train_dir).
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
from catboost import CatBoostClassifier, Pool

from factory.models.base import Model, normalize_proba
from factory.models.boosting import (
    Poller,
    fresh_state,
    next_boundary,
    record_round,
    report_metrics,
)
from factory.models.boosting_params import CatBoostParams
from factory.training.context import TrainingContext
from factory.training.training_data import N_CLASSES, TrainingData

SNAPSHOT_FILE = "snapshot.cbsnapshot"
MODEL_FILE = "model.cbm"
NEVER_S = 10**9  # snapshot_interval: CatBoost writes the snapshot only when a chunk ends


def booster_params(p: CatBoostParams, iterations: int, train_dir: str) -> dict[str, Any]:
    out = {
        "loss_function": "MultiClass",
        "eval_metric": "MultiClass",
        "iterations": iterations,
        "learning_rate": p.learning_rate,
        "depth": p.depth,
        "l2_leaf_reg": p.l2_leaf_reg,
        "border_count": p.border_count,
        "rsm": p.rsm,
        "bootstrap_type": p.bootstrap_type,
        "boosting_type": "Plain",
        # no categorical features; pinned because CatBoost derives it from `iterations`
        # (1 below 200, 4 from 200 on), which grows chunk by chunk, and then refuses the
        # snapshot ("params differ")
        "max_ctr_complexity": 1,
        "random_seed": p.seed,
        "thread_count": p.nthread,
        "use_best_model": False,  # the best iteration is ours (predict with ntree_end)
        "allow_writing_files": True,  # snapshots need it; all into train_dir
        "train_dir": train_dir,
        "verbose": False,
    }
    if p.bootstrap_type == "Bayesian":
        out["bagging_temperature"] = p.bagging_temperature
    elif p.bootstrap_type in ("Bernoulli", "MVS"):
        out["subsample"] = p.subsample
    return out


class _ChunkMonitor:
    """CatBoost callback: tracks the validation log-loss; ends a chunk on patience,
    wall time or a stop request."""

    def __init__(
        self, state: dict, params: CatBoostParams, poller: Poller, since_save_s: float = 0.0
    ) -> None:
        self.state = state
        self.params = params
        self.poller = poller
        self.last_save = time.monotonic() - since_save_s
        self.time_cut = False

    def after_iteration(self, info) -> bool:
        st, p = self.state, self.params
        score = info.metrics["validation"]["MultiClass"][-1]
        record_round(st, score, p.early_stopping_rounds, p.n_estimators)
        if st["done"] or self.poller.poll():
            return False
        self.time_cut = time.monotonic() - self.last_save >= p.checkpoint_every_s
        return not self.time_cut


class CatBoostModel(Model):
    name = "catboost"
    kind = "tabular"
    Params = CatBoostParams

    def fit(self, data: TrainingData, ctx: TrainingContext) -> CatBoostModel:
        self._resolve_params()
        checkpoint = self._begin_fit(data, ctx)
        state = fresh_state()
        with tempfile.TemporaryDirectory(prefix="catboost-") as tmp:
            snapshot = Path(tmp) / SNAPSHOT_FILE
            if checkpoint is not None:
                self._check_resumable(checkpoint)
                self._report_resumed(ctx, self.params.n_estimators)
                state = dict(checkpoint.state["train"])
                snapshot.write_bytes(checkpoint.files[SNAPSHOT_FILE])
            pools = self._pools(data)
            model = None
            while not state["done"]:
                model = self._train_chunk(pools, snapshot, state, ctx)
            if model is None:  # resumed from the last checkpoint: rebuild, train nothing
                model = self._fit_to(pools, snapshot, state["rounds"], None)
        self._finish(model, state)
        return self

    def _pools(self, data: TrainingData) -> tuple[Pool, Pool]:
        X, y = data.tabular("train")
        train = Pool(X, y, weight=data.class_weights[y])
        train.quantize(border_count=self.params.border_count)  # once, not at every chunk
        Xv, yv = data.tabular("val")
        return train, Pool(Xv, yv, weight=data.class_weights[yv])

    def _fit_to(self, pools, snapshot: Path, iterations: int, callback) -> CatBoostClassifier:
        """Continue the snapshot (if any) up to `iterations` rounds."""
        model = CatBoostClassifier(**booster_params(self.params, iterations, str(snapshot.parent)))
        model.fit(
            pools[0],
            eval_set=pools[1],
            save_snapshot=True,
            snapshot_file=str(snapshot),
            snapshot_interval=NEVER_S,
            callbacks=[callback] if callback is not None else None,
        )
        return model

    def _train_chunk(self, pools, snapshot: Path, state: dict, ctx: TrainingContext):
        """Train to the next checkpoint boundary (or less) and save the snapshot there."""
        p = self.params
        poller = Poller(ctx)
        chunk_end = next_boundary(state["rounds"], p.checkpoint_every_rounds, p.n_estimators)
        monitor = _ChunkMonitor(state, p, poller, since_save_s=self._since_save_s())
        model = self._fit_to(pools, snapshot, chunk_end, monitor)
        if model.tree_count_ != state["rounds"]:
            raise RuntimeError(
                f"catboost: {model.tree_count_} trees after the chunk, expected {state['rounds']}"
            )

        def files_and_state():
            return {SNAPSHOT_FILE: snapshot.read_bytes()}, {"train": dict(state)}

        if state["done"] or monitor.time_cut or self._boundary_save_due():
            self._save(ctx, state["rounds"], *files_and_state())
        ctx.report(state["rounds"], p.n_estimators, report_metrics(state))
        if not state["done"]:
            self._stop_if_asked(ctx, state["rounds"], files_and_state, asked=poller.asked)
        return model

    def _finish(self, model: CatBoostClassifier, state: dict) -> None:
        self.booster_ = model
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
        proba = self.booster_.predict_proba(
            X, ntree_end=self.best_iteration_ + 1, thread_count=self.params.nthread
        )
        return normalize_proba(np.asarray(proba).reshape(len(X), N_CLASSES))

    def save(self, directory: str | Path) -> Path:
        self._check_fitted()
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        self.booster_.save_model(str(directory / MODEL_FILE), format="cbm")
        learned = {
            "best_iteration": self.best_iteration_,
            "best_score": self.best_score_,
            "n_rounds": self.n_rounds_,
            "stop_reason": self.stop_reason_,
        }
        self._write_config(directory, learned)
        return directory

    @classmethod
    def load(cls, directory: str | Path) -> CatBoostModel:
        model, learned = cls._read_config(Path(directory))
        booster = CatBoostClassifier()
        booster.load_model(str(Path(directory) / MODEL_FILE), format="cbm")
        model.booster_ = booster
        model.best_iteration_ = int(learned["best_iteration"])
        model.best_score_ = learned["best_score"]
        model.n_rounds_ = int(learned["n_rounds"])
        model.stop_reason_ = learned["stop_reason"]
        return model
