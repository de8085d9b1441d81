"""CatBoost multiclass classifier on the shared chunked loop of models/boosting.py.

Each chunk is one `fit(iterations=chunk_end, save_snapshot=True)`: CatBoost continues
from the snapshot file when there is one and writes it again when the chunk ends (a
callback that returns False ends it early). A checkpoint holds that file's bytes; a
resumed run puts them back into a fresh temporary folder and goes on. A snapshot holds
the whole learning state (trees, approximations, RNG), so a resumed run equals an
uninterrupted one bit for bit, with row/feature sampling too, and wherever the chunks
were cut (same thread count).

Files are written only into that temporary folder (snapshot, CatBoost's train_dir).
"""

from __future__ import annotations

import json
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
from catboost import CatBoostClassifier, Pool

from factory.models.boosting import BoostingModel, Session
from factory.models.boosting_params import CatBoostParams
from factory.training.training_data import TrainingData

SNAPSHOT_FILE = "snapshot.cbsnapshot"
_RUN_KEYS = ("train_finish_time", "model_guid")  # metadata of the run, not of the model
TRAIN_DIR = "train_dir"  # what a bundle's model.cbm records as CatBoost's train_dir
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


class _Rounds:
    """CatBoost callback: each round's validation log-loss to `after_round`, whose False
    ends the fit; counts the rounds."""

    def __init__(self, after_round: Callable[[float], bool]) -> None:
        self.after_round = after_round
        self.rounds = 0

    def after_iteration(self, info) -> bool:
        self.rounds += 1
        return self.after_round(info.metrics["validation"]["MultiClass"][-1])


class _CatBoostSession(Session):
    def __init__(
        self, p: CatBoostParams, data: TrainingData, raw: bytes | None, weights: np.ndarray
    ) -> None:
        self.p = p
        X, y = data.tabular("train")
        self.train_pool = Pool(X, y, weight=weights)
        self.train_pool.quantize(border_count=p.border_count)  # once, not at every chunk
        Xv, yv = data.tabular("val")
        self.val_pool = Pool(Xv, yv, weight=data.class_weights[yv])
        self.tmp = tempfile.TemporaryDirectory(prefix="catboost-")
        self.snapshot = Path(self.tmp.name) / SNAPSHOT_FILE
        if raw is not None:
            self.snapshot.write_bytes(raw)
        self.model: CatBoostClassifier | None = None

    def _fit_to(self, iterations: int, callback: _Rounds | None) -> CatBoostClassifier:
        """Continue the snapshot (if any) up to `iterations` rounds."""
        params = booster_params(self.p, iterations, str(self.snapshot.parent))
        model = CatBoostClassifier(**params)
        model.fit(
            self.train_pool,
            eval_set=self.val_pool,
            save_snapshot=True,
            snapshot_file=str(self.snapshot),
            snapshot_interval=NEVER_S,
            callbacks=[callback] if callback is not None else None,
        )
        return model

    def train(self, start: int, until: int, after_round: Callable[[float], bool]) -> None:
        rounds = _Rounds(after_round)
        self.model = self._fit_to(until, rounds)
        if self.model.tree_count_ != start + rounds.rounds:
            raise RuntimeError(
                f"catboost: {self.model.tree_count_} trees after the chunk, "
                f"expected {start + rounds.rounds}"
            )

    def dump(self) -> bytes:
        return self.snapshot.read_bytes()

    def final(self, rounds: int) -> CatBoostClassifier:
        if self.model is None:  # resumed from the last checkpoint: rebuild, train nothing
            self.model = self._fit_to(rounds, None)
        return self.model

    def close(self) -> None:
        self.tmp.cleanup()


def canonical_copy(booster: CatBoostClassifier) -> CatBoostClassifier:
    """A copy of `booster` whose saved bytes do not depend on when or where it was trained:
    without the finish time and the random model guid, with the session's temporary
    train_dir (as written, JSON-escaped or not) replaced by a fixed name."""
    copy = booster.copy()
    meta = copy.get_metadata()
    for key in _RUN_KEYS:
        if key in meta:
            del meta[key]
    train_dir = _train_dir(meta)
    for key in list(meta.keys()):
        value = meta[key]
        for form in (train_dir, train_dir.replace("/", "\\/")) if train_dir else ():
            value = value.replace(form, TRAIN_DIR)
        meta[key] = value
    return copy


def _train_dir(meta: Any) -> str | None:
    try:
        train_dir = json.loads(meta["output_options"]).get("train_dir")
    except (KeyError, ValueError, AttributeError):
        return None
    return train_dir if isinstance(train_dir, str) and train_dir else None


class CatBoostModel(BoostingModel):
    name = "catboost"
    Params = CatBoostParams
    CHECKPOINT_FILE = SNAPSHOT_FILE
    MODEL_FILE = "model.cbm"
    exact_resume = exact_cuts = True
    GAIN_TYPE = "PredictionValuesChange"

    def _session(self, data: TrainingData, raw: bytes | None) -> Session:
        return _CatBoostSession(self.params, data, raw, self._train_weights(data))

    def _predict(self, X: np.ndarray, n_trees: int) -> np.ndarray:
        return self.booster_.predict_proba(X, ntree_end=n_trees, thread_count=self.params.nthread)

    def _gain(self) -> np.ndarray:
        booster = self.booster_.copy()
        if booster.tree_count_ > self.best_iteration_ + 1:
            booster.shrink(ntree_end=self.best_iteration_ + 1)  # the trees it predicts with
        return np.asarray(booster.get_feature_importance(type=self.GAIN_TYPE))

    def _write_booster(self, path: Path) -> None:
        canonical_copy(self.booster_).save_model(str(path), format="cbm")

    @classmethod
    def _read_booster(cls, path: Path, params: CatBoostParams) -> CatBoostClassifier:
        booster = CatBoostClassifier()
        booster.load_model(str(path), format="cbm")
        return booster
