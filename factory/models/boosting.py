"""The one checkpointed, chunked training loop of the boosting models (BoostingModel).

Rounds are trained in chunks ending at multiples of `checkpoint_every_rounds`; a chunk
ends early on early stopping, `checkpoint_every_s` after the last checkpoint, or when
a stop is asked (`Poller`: at most once every STOP_POLL_S within a chunk; at every
chunk end too). A chunk end checkpoints unless the last checkpoint is younger than
`checkpoint_min_interval_s`; the end of training and a stop always checkpoint.

Each library (xgboost_model.py, lightgbm_model.py, catboost_model.py) supplies a small
`Session`: the booster of one fit and the data it trains on, which trains N more
rounds from the current booster (handing over each round's validation log-loss),
dumps the booster as checkpoint bytes, and gives the booster to predict with.

A checkpoint is those bytes (file `CHECKPOINT_FILE`) and a JSON state whose `train`
part (`fresh_state`) keeps early stopping across chunks and resumes (best iteration,
best score, rounds since the best), why training ended and whether the run is still
bit-exact: a resumed run is, unless the library's sampling RNG restarts on resume
(`exact_resume` False and the params sample rows or columns); so is a chunk cut by
wall time, unless the sampled trees depend on where chunks end (`exact_cuts` False).
Checkpoint format 1 (models/base.py) differs only in xgboost's `train` state, which
`XGBoostModel._upgrade_format1` rewrites.
"""

from __future__ import annotations

import contextlib
import time
from abc import ABC, abstractmethod
from collections.abc import Callable
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from factory.errors import FactoryError
from factory.models.base import Model, normalize_proba
from factory.training.context import Checkpoint, TrainingContext
from factory.training.training_data import N_CLASSES, TrainingData

STOP_POLL_S = 1.0


def fresh_state() -> dict[str, Any]:
    return {
        "rounds": 0,
        "best_iteration": -1,
        "best_score": None,
        "since_best": 0,
        "last_val_mlogloss": None,
        "done": False,
        "stop_reason": None,
        "bit_exact": True,
    }


TRAIN_KEYS = frozenset(fresh_state())


def record_round(state: dict[str, Any], score: float, patience: int, n_estimators: int) -> None:
    """One more round whose validation log-loss is `score`; sets `done` when training ends."""
    score = float(score)
    state["last_val_mlogloss"] = score
    if state["best_score"] is None or score < state["best_score"]:
        state.update(best_score=score, best_iteration=state["rounds"], since_best=0)
    else:
        state["since_best"] += 1
    state["rounds"] += 1
    if state["since_best"] >= patience:
        state.update(done=True, stop_reason="early_stopping")
    elif state["rounds"] >= n_estimators:
        state.update(done=True, stop_reason="n_estimators")


def next_boundary(rounds: int, every: int, n_estimators: int) -> int:
    """The next multiple of `every` after `rounds`, at most `n_estimators`."""
    return min(n_estimators, (rounds // every + 1) * every)


def report_metrics(state: dict[str, Any]) -> dict[str, float]:
    out = {"best_iteration": float(state["best_iteration"])}
    if state["last_val_mlogloss"] is not None:
        out["val_mlogloss"] = state["last_val_mlogloss"]
        out["best_val_mlogloss"] = state["best_score"]
    return out


class Poller:
    """`ctx.should_stop()`, asked at most every STOP_POLL_S; `asked` stays True once seen."""

    def __init__(self, ctx: TrainingContext) -> None:
        self.ctx = ctx
        self.last = time.monotonic()
        self.asked = False

    def poll(self) -> bool:
        now = time.monotonic()
        if not self.asked and now - self.last >= STOP_POLL_S:
            self.last = now
            self.asked = bool(self.ctx.should_stop())
        return self.asked


class Session(ABC):
    """One fit's booster and training data, as one boosting library handles them."""

    @abstractmethod
    def train(self, start: int, until: int, after_round: Callable[[float], bool]) -> None:
        """Train from the current booster (`start` rounds) up to `until` rounds; after each
        round, `after_round(validation log-loss)`: False ends the chunk there."""

    @abstractmethod
    def dump(self) -> bytes:
        """The current booster as checkpoint bytes (a resumed session starts from them)."""

    @abstractmethod
    def final(self, rounds: int) -> Any:
        """The booster to predict with, `rounds` rounds trained, as a bundle loads it."""

    def close(self) -> None:
        """Remove what the session wrote (nothing, unless a library writes files)."""
        return None


class _ChunkEnd:
    """`after_round` of one chunk: records the round; False ends the chunk (training
    ended, a stop was asked, or `checkpoint_every_s` passed: `time_cut`)."""

    def __init__(self, model: BoostingModel, state: dict[str, Any], poller: Poller) -> None:
        self.model = model
        self.state = state
        self.poller = poller
        self.time_cut = False

    def __call__(self, score: float) -> bool:
        st, p = self.state, self.model.params
        record_round(st, score, p.early_stopping_rounds, p.n_estimators)
        if st["done"] or self.poller.poll():
            return False
        self.time_cut = self.model._since_save_s() >= p.checkpoint_every_s
        return not self.time_cut


class BoostingModel(Model):
    """A boosting model: the loop, early stopping, summary and bundle, once; a library
    subclass adds its Session, its predictions and its booster files."""

    kind = "tabular"
    LEARNED = ("best_iteration", "best_score", "n_rounds", "stop_reason")
    SUMMARY: ClassVar[dict[str, str]] = {
        "best_iteration": "best_iteration_",
        "best_val_mlogloss": "best_score_",
        "rounds": "n_rounds_",
    }
    CHECKPOINT_FILE: ClassVar[str]  # the booster's file in a checkpoint
    MODEL_FILE: ClassVar[str]  # the booster's file in a bundle
    GAIN_TYPE: ClassVar[str]  # what `_gain` gives (the library's name for it)
    exact_resume: ClassVar[bool] = False  # a resume is bit-exact even with sampling
    exact_cuts: ClassVar[bool] = False  # where chunks end never matters, even with sampling

    @abstractmethod
    def _session(self, data: TrainingData, raw: bytes | None) -> Session:
        """A session on `data`, from the checkpoint bytes `raw` (None: a fresh booster)."""

    @abstractmethod
    def _predict(self, X: np.ndarray, n_trees: int) -> np.ndarray:
        """Class probabilities of the first `n_trees` rounds of `booster_`."""

    @abstractmethod
    def _gain(self) -> np.ndarray:
        """The library's own importance (GAIN_TYPE) of each feature, trees up to the best
        iteration where the library can limit them."""

    @abstractmethod
    def _write_booster(self, path: Path) -> None: ...

    @classmethod
    @abstractmethod
    def _read_booster(cls, path: Path, params: Any) -> Any: ...

    def _upgrade_format1(self, train: dict[str, Any]) -> dict[str, Any]:
        """A format-1 checkpoint's `train` state in today's keys (the same, by default)."""
        return train

    # --- training -------------------------------------------------------------------

    def fit(self, data: TrainingData, ctx: TrainingContext) -> BoostingModel:
        self._resolve_params()
        checkpoint = self._begin_fit(data, ctx)
        state, raw = fresh_state(), None
        if checkpoint is not None:
            state, raw = self._resume(checkpoint, ctx)
        with contextlib.closing(self._session(data, raw)) as session:
            while not state["done"]:
                self._train_chunk(session, state, ctx)
            self._finish(session.final(state["rounds"]), state)
        return self

    def _resume(self, checkpoint: Checkpoint, ctx: TrainingContext) -> tuple[dict, bytes]:
        """The train state and booster bytes of `checkpoint`, refused in one line unless
        this model, with these parameters, wrote them in a format it reads."""
        self._check_resumable(checkpoint)
        train = dict(checkpoint.state.get("train") or {})
        if checkpoint.state.get("format", 1) == 1:
            train = self._upgrade_format1(train)
        if set(train) != TRAIN_KEYS or self.CHECKPOINT_FILE not in checkpoint.files:
            raise FactoryError(
                f"{self.name}: the checkpoint at step {checkpoint.step} holds train state "
                f"{sorted(train)} and files {sorted(checkpoint.files)}, not what this code "
                "reads; fix: use a new job id"
            )
        self._report_resumed(ctx, self.params.n_estimators)
        if not (train["done"] or self.exact_resume) and self.params.sampling:
            train["bit_exact"] = False  # the sampling RNG restarts
        return train, checkpoint.files[self.CHECKPOINT_FILE]

    def _train_chunk(self, session: Session, state: dict, ctx: TrainingContext) -> None:
        """Train to the next boundary (or less, see _ChunkEnd); checkpoint, report and
        stop as due."""
        p = self.params
        start = state["rounds"]
        until = next_boundary(start, p.checkpoint_every_rounds, p.n_estimators)
        chunk = _ChunkEnd(self, state, Poller(ctx))
        session.train(start, until, chunk)
        if chunk.time_cut and state["rounds"] < until and not self.exact_cuts and p.sampling:
            state["bit_exact"] = False  # the sampled trees depend on where chunks end

        def snapshot() -> tuple[dict[str, bytes], dict[str, Any]]:
            return {self.CHECKPOINT_FILE: session.dump()}, {"train": dict(state)}

        if state["done"] or chunk.time_cut or self._boundary_save_due():
            self._save(ctx, state["rounds"], *snapshot())
        ctx.report(state["rounds"], p.n_estimators, report_metrics(state))
        if not state["done"]:
            self._stop_if_asked(ctx, state["rounds"], snapshot, asked=chunk.poller.asked)

    def _finish(self, booster: Any, state: dict) -> None:
        self._end_fit(state)
        self.booster_ = booster
        self.best_iteration_ = int(state["best_iteration"])
        self.best_score_ = state["best_score"]
        self.n_rounds_ = int(state["rounds"])

    # --- predictions and bundles ----------------------------------------------------

    def gain_importance(self) -> dict[str, Any]:
        self._check_fitted()
        values = np.asarray(self._gain(), dtype=np.float64)
        return {"type": self.GAIN_TYPE, "values": values.tolist()}

    def _raw_proba(self, data: TrainingData, split: str) -> np.ndarray:
        self._check_fitted()
        X, _ = data.tabular(split)
        proba = self._predict(X, self.best_iteration_ + 1)
        return normalize_proba(np.asarray(proba).reshape(len(X), N_CLASSES))

    def save(self, directory: str | Path) -> Path:
        self._check_fitted()
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        self._write_booster(directory / self.MODEL_FILE)
        self._write_config(directory)
        return directory

    @classmethod
    def load(cls, directory: str | Path) -> BoostingModel:
        model = cls._read_config(Path(directory))
        model.booster_ = cls._read_booster(Path(directory) / cls.MODEL_FILE, model.params)
        return model
