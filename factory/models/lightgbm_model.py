"""LightGBM multiclass classifier on the shared chunked loop of models/boosting.py.

The booster stays in memory between chunks: the first chunk is a `lightgbm.train` call
(from the checkpoint's model text with `init_model=` on a resume) that keeps its
booster live and returns at the chunk's end; later chunks go on with
`Booster.update()`, as `lightgbm.train` itself does round by round. So where chunks
end never matters, sampling or not. A resumed run starts from the saved trees' raw
scores, which equal the scores the uninterrupted run accumulated, so without
row/column sampling it equals an uninterrupted one bit for bit; with bagging or
feature_fraction the sampling RNG restarts on resume, and such a run reports
`bit_exact: false`. A checkpoint holds the model text.

`force_col_wise=True` always: LightGBM's automatic choice can pick the row-wise
histogram path, measured ~5x slower per round on 1M x 100 (bench/models.py).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import lightgbm as lgb
import numpy as np

from factory.models.boosting import BoostingModel, Session
from factory.models.boosting_params import LightGBMParams
from factory.training.training_data import N_CLASSES, TrainingData

MODEL_FILE = "model.txt"  # the checkpoint's file and the bundle's
_NUM_ITERATIONS = re.compile(r"^\[num_iterations: \d+\]$", re.MULTILINE)


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


class _FirstChunk:
    """The `lightgbm.train` callback of a session's first chunk: each round's validation
    log-loss to `after_round`; its False, or the chunk's last round, ends the call."""

    order = 100  # after any other callback

    def __init__(self, after_round: Callable[[float], bool], rounds: int) -> None:
        self.after_round = after_round
        self.left = rounds

    def __call__(self, env: lgb.callback.CallbackEnv) -> None:
        (_, _, score, _) = env.evaluation_result_list[0]
        self.left -= 1
        if not self.after_round(score) or self.left == 0:
            raise lgb.callback.EarlyStopException(env.iteration, [])


class _LightGBMSession(Session):
    def __init__(
        self, p: LightGBMParams, data: TrainingData, raw: bytes | None, weights: np.ndarray
    ) -> None:
        self.p = p
        self.text = raw.decode() if raw is not None else None  # the booster's, if current
        self.booster: lgb.Booster | None = None  # live, with its training data
        X, y = data.tabular("train")
        self.dtrain = lgb.Dataset(X, y, weight=weights)
        Xv, yv = data.tabular("val")
        self.dval = lgb.Dataset(Xv, yv, weight=data.class_weights[yv], reference=self.dtrain)

    def train(self, start: int, until: int, after_round: Callable[[float], bool]) -> None:
        if self.booster is None:
            self.booster = lgb.train(
                booster_params(self.p),
                self.dtrain,
                num_boost_round=self.p.n_estimators - start,
                valid_sets=[self.dval],
                valid_names=["val"],
                init_model=lgb.Booster(model_str=self.text) if self.text is not None else None,
                callbacks=[_FirstChunk(after_round, until - start)],
                keep_training_booster=True,  # live: later chunks update it
            )
        else:
            for _ in range(until - start):
                self.booster.update()
                if not after_round(self.booster.eval_valid()[0][2]):
                    break
        self.text = None

    def dump(self) -> bytes:
        if self.text is None:
            self.text = self.booster.model_to_string(num_iteration=-1)
        return self.text.encode()

    def final(self, rounds: int) -> lgb.Booster:
        # from the text, as a loaded bundle: same predictions, and no training data held
        return lgb.Booster(model_str=self.dump().decode())


def canonical_model_text(booster: lgb.Booster, n_estimators: int) -> str:
    """The booster's model text with the same bytes however the run was chunked or resumed:
    its parameters section records the rounds asked of the last `lightgbm.train` call (the
    rounds left on a resume), written here as the run's planned total."""
    text = booster.model_to_string(num_iteration=-1)
    return _NUM_ITERATIONS.sub(f"[num_iterations: {int(n_estimators)}]", text)


class LightGBMModel(BoostingModel):
    name = "lightgbm"
    Params = LightGBMParams
    CHECKPOINT_FILE = MODEL_FILE
    MODEL_FILE = MODEL_FILE
    exact_cuts = True
    GAIN_TYPE = "gain"

    def _session(self, data: TrainingData, raw: bytes | None) -> Session:
        return _LightGBMSession(self.params, data, raw, self._train_weights(data))

    def _predict(self, X: np.ndarray, n_trees: int) -> np.ndarray:
        return self.booster_.predict(X, num_iteration=n_trees, num_threads=self.params.nthread)

    def _gain(self) -> np.ndarray:
        return self.booster_.feature_importance(self.GAIN_TYPE, iteration=self.best_iteration_ + 1)

    def _write_booster(self, path: Path) -> None:
        path.write_text(canonical_model_text(self.booster_, self.params.n_estimators))

    @classmethod
    def _read_booster(cls, path: Path, params: LightGBMParams) -> lgb.Booster:
        return lgb.Booster(model_file=str(path))
