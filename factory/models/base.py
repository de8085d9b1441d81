"""The one interface every model implements, and its parameter handling.

A model is scikit-learn style: `__init__` only stores its parameters; `fit(data, ctx)`
trains through a TrainingContext (reports, checkpoints, stop requests, resume) and
sets learned attributes, whose names end in `_`; `calibrate(data)` fits the map from
its probabilities to the market's on the validation rows; `predict_proba(data, split)`
gives (n, 3) float64 probabilities whose rows sum to 1 (a subclass implements
`_raw_proba`, what it learned; see factory.models.calibration); `save(dir)` and
`load(dir)` write and read a bundle without pickle (JSON config, with the learned
attributes named in `LEARNED`, plus the model's own weight format).

A checkpoint's JSON state records its `format` (CHECKPOINT_FORMAT; none before format
2, read as 1); a fit refuses, in one line, a checkpoint of a format it does not read,
of another model or of other parameters.

Parameters are a frozen dataclass per model (`Params`) with a `profile` field and its
`PROFILES`: "tiny" trains in seconds on a CPU (tests, smoke runs), "default" has real
sizes. `params_from(profile, overrides)` casts the string overrides by field type and
rejects unknown keys (models/params.py).
"""

from __future__ import annotations

import dataclasses
import json
import random
import time
from abc import ABC, abstractmethod
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from factory.errors import FactoryError
from factory.models.calibration import Calibration
from factory.models.params import POST_FIT_PARAMS, params_from
from factory.training.context import Checkpoint, StopTraining, Superseded, TrainingContext
from factory.training.training_data import TrainingData
from factory.training.weights import train_row_weights

CONFIG_FILE = "config.json"
CHECKPOINT_FORMAT = 2  # 2: boosting models share one loop (models/boosting.py)
READS_FORMATS = (1, 2)


def normalize_proba(proba: np.ndarray) -> np.ndarray:
    """(n, 3) float64, C-contiguous, each row divided by its sum."""
    out = np.array(proba, dtype=np.float64, order="C", copy=True)
    out /= out.sum(axis=1, keepdims=True)
    return out


def host_rng_state() -> dict[str, Any]:
    """The python `random` and global numpy RNG states, as JSON-able values."""
    version, internal, gauss = random.getstate()
    np_state = np.random.get_state(legacy=False)
    np_state["state"] = dict(np_state["state"], key=np_state["state"]["key"].tolist())
    return {"python": [version, list(internal), gauss], "numpy": np_state}


def set_host_rng_state(state: dict[str, Any]) -> None:
    """Restore what `host_rng_state()` returned."""
    version, internal, gauss = state["python"]
    random.setstate((version, tuple(internal), gauss))
    np_state = state["numpy"]
    key = np.asarray(np_state["state"]["key"], dtype=np.uint32)
    np.random.set_state(dict(np_state, state=dict(np_state["state"], key=key)))


class Model(ABC):
    """Base class of every model; see the module docstring for the contract."""

    name: ClassVar[str]
    kind: ClassVar[str]  # "tabular" | "sequence"
    Params: ClassVar[type]  # a frozen dataclass with its PROFILES
    LEARNED: ClassVar[tuple[str, ...]]  # learned attributes (less the "_") of a bundle
    SUMMARY: ClassVar[dict[str, str]] = {}  # fit_summary field -> learned attribute

    calibration_: Calibration | None = None  # set by calibrate() or a bundle
    importance_: dict[str, Any] | None = None  # set after a fit: a bundle plots it

    def __init__(self, params: Any = None) -> None:
        self.params = params

    # --- parameters ---------------------------------------------------------------

    @classmethod
    def params_from(cls, profile: str = "default", overrides: dict[str, Any] | None = None):
        return params_from(cls.Params, profile, dict(overrides or {}))

    def _resolve_params(self) -> Any:
        """The parameters, or the default profile's when none were given."""
        if self.params is None:
            self.params = self.params_from("default")
        return self.params

    # --- training -------------------------------------------------------------------

    @abstractmethod
    def fit(self, data: TrainingData, ctx: TrainingContext) -> Model: ...

    def _train_weights(self, data: TrainingData) -> np.ndarray:
        """The weights of `data`'s train rows, in their order: the balanced class weights,
        times label uniqueness under `sample_weight` (factory.training.weights)."""
        p = self._resolve_params()
        return train_row_weights(data, p.sample_weight, p.time_decay)

    @abstractmethod
    def _raw_proba(self, data: TrainingData, split: str) -> np.ndarray:
        """The probabilities the fitted model learned (those of its balanced training)."""

    def predict_proba(self, data: TrainingData, split: str) -> np.ndarray:
        """The market's probabilities of `split`'s rows: the raw ones, prior-shifted and
        calibrated by `calibration_` (factory.models.calibration)."""
        raw = self._raw_proba(data, split)
        return raw if self.calibration_ is None else self.calibration_.apply(raw)

    def calibrate(self, data: TrainingData) -> Model:
        """Fit `calibration_` on the validation rows (its `calibration` parameter's
        method, after the prior shift of the class weights it trained with)."""
        method = self.params.calibration
        if method == "auto":
            method = "temperature" if self.kind == "sequence" else "sigmoid"
        raw = self._raw_proba(data, "val")
        self.calibration_ = Calibration.fit(raw, data.labels("val"), data.class_weights, method)
        return self

    def gain_importance(self) -> dict[str, Any] | None:
        """{"type", "values" (one per feature)}: the library's own gain importance of a
        boosting model; None for a model without one (factory.evaluation.importance)."""
        return None

    def fit_summary(self) -> dict[str, Any]:
        """What the last fit did, JSON-able (result fields shared by every model)."""
        return {
            "resumed": self.resumed_from_ is not None,
            "resumed_from": self.resumed_from_,
            "checkpoint_steps": list(self.checkpoint_steps_),
            "bit_exact": bool(self.bit_exact_),
            "stop_reason": self.stop_reason_,
        } | {field: getattr(self, attr) for field, attr in self.SUMMARY.items()}

    def _end_fit(self, state: dict[str, Any]) -> None:
        """What every fit learns from its final train state: why it ended, and whether
        it is bit-exact (a resume or a cut can make it not)."""
        self.stop_reason_ = state["stop_reason"]
        self.bit_exact_ = bool(state["bit_exact"])

    def _begin_fit(self, data: TrainingData, ctx: TrainingContext) -> Checkpoint | None:
        self._resolve_params()
        self.feature_names_in_ = list(data.feature_columns)
        self.n_features_in_ = data.n_features
        self.horizon_ = data.horizon
        self.checkpoint_steps_: list[int] = []
        self._last_saved_step: int | None = None
        self._last_save_t = time.monotonic()  # nothing to lose yet: counts as a save
        checkpoint = ctx.latest_checkpoint()
        self.resumed_from_ = checkpoint.step if checkpoint is not None else None
        return checkpoint

    def _save(self, ctx: TrainingContext, step: int, files: dict[str, bytes], state: dict) -> None:
        """Save a checkpoint; Superseded when the context refuses it (fenced)."""
        state = {"format": CHECKPOINT_FORMAT, "model": self.name} | state
        state["params"] = dataclasses.asdict(self.params)
        if not ctx.save_checkpoint(step, files, state):
            raise Superseded(f"{self.name}: checkpoint at step {step} refused: superseded")
        self.checkpoint_steps_.append(step)
        self._last_saved_step = step
        self._last_save_t = time.monotonic()

    def _since_save_s(self) -> float:
        """Seconds since the last checkpoint (or since this fit began)."""
        return time.monotonic() - self._last_save_t

    def _boundary_save_due(self) -> bool:
        """Whether a round/epoch boundary checkpoints: not while the last checkpoint is
        younger than `checkpoint_min_interval_s` (see params.TrainingParams)."""
        return self._since_save_s() >= self.params.checkpoint_min_interval_s

    def _report_resumed(self, ctx: TrainingContext, total: int) -> None:
        """Progress of a resumed fit starts at its checkpoint's step: a fit resumed from
        its final checkpoint trains (and reports) nothing more."""
        if self.resumed_from_ is not None:
            ctx.report(self.resumed_from_, total)

    def _check_resumable(self, checkpoint: Checkpoint) -> None:
        version = checkpoint.state.get("format", 1)
        if version not in READS_FORMATS:
            raise FactoryError(
                f"the checkpoint at step {checkpoint.step} has format {version!r}, this code "
                f"reads formats {', '.join(map(str, READS_FORMATS))}; fix: resume it with the "
                "code that wrote it, or use a new job id"
            )
        # a parameter added since the checkpoint was written counts at its default (what
        # the older code did); the calibration is fitted after training: any resumes
        fields = dataclasses.fields(self.params)
        added = {f.name: f.default for f in fields if f.default is not dataclasses.MISSING}
        saved = added | dict(checkpoint.state.get("params") or {})
        mine = dataclasses.asdict(self.params)
        for key in POST_FIT_PARAMS:
            saved.pop(key, None)
            mine.pop(key, None)
        if checkpoint.state.get("model") != self.name or saved != mine:
            raise FactoryError(
                f"the checkpoint at step {checkpoint.step} was written by another model or "
                f"other parameters ({checkpoint.state.get('model')}); fix: use a new job id"
            )

    def _stop_if_asked(
        self, ctx: TrainingContext, step: int, snapshot=None, asked: bool = False
    ) -> None:
        """When a stop is asked: checkpoint (unless `step` was just saved), StopTraining.

        `snapshot()` returns the (files, state) of a checkpoint at `step`; `asked` says
        the stop was already seen (a context may answer True only once).
        """
        if not (asked or ctx.should_stop()):
            return
        if self._last_saved_step != step:
            files, state = snapshot()
            self._save(ctx, step, files, state)
        raise StopTraining(f"{self.name}: stopped at step {step} on request (checkpointed)")

    # --- bundles --------------------------------------------------------------------

    def _config(self) -> dict[str, Any]:
        return {
            "model": self.name,
            "kind": self.kind,
            "params": dataclasses.asdict(self.params),
            "feature_names_in": self.feature_names_in_,
            "horizon": self.horizon_,
        }

    def _write_config(self, directory: Path) -> None:
        learned = {key: getattr(self, f"{key}_") for key in self.LEARNED}
        config = self._config() | {"learned": learned}
        if self.calibration_ is not None:
            config["calibration"] = self.calibration_.to_dict()
        # keys sorted: canonical bytes, whatever order a resume restored the history in
        (directory / CONFIG_FILE).write_text(json.dumps(config, indent=1, sort_keys=True))
        if getattr(self, "importance_", None):  # set by factory.training.train
            from factory.evaluation.importance import IMPORTANCE_PNG, plot_importance

            plot_importance(self.importance_, directory / IMPORTANCE_PNG, self.name)

    @classmethod
    def _read_config(cls, directory: Path) -> Model:
        """The model of a bundle's config, its learned attributes set (weights not yet)."""
        config = json.loads((Path(directory) / CONFIG_FILE).read_text())
        if config.get("model") != cls.name:
            raise FactoryError(
                f"{directory}: holds a {config.get('model')!r} model, not {cls.name!r}"
            )
        model = cls(cls.Params(**config["params"]))
        model.feature_names_in_ = list(config["feature_names_in"])
        model.n_features_in_ = len(model.feature_names_in_)
        model.horizon_ = config["horizon"]
        for key in cls.LEARNED:
            setattr(model, f"{key}_", config["learned"][key])
        # a bundle written before calibration existed predicts its raw probabilities
        calibration = config.get("calibration")
        model.calibration_ = Calibration.from_dict(calibration) if calibration else None
        return model

    @abstractmethod
    def save(self, directory: str | Path) -> Path: ...

    @classmethod
    @abstractmethod
    def load(cls, directory: str | Path) -> Model: ...

    def _check_fitted(self) -> None:
        if not hasattr(self, "feature_names_in_"):
            raise FactoryError(f"this {self.name} model is not fitted; fix: call fit() first")
