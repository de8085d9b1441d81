"""Stacking of out-of-fold probabilities, evaluated on the test period.

`assemble_oof` lines up every model's OOF probabilities on the same decision rows
(timestamps): a row without a prediction from every model is dropped for all, and
the count is reported. Tabular and sequence models predict the same decision rows
(factory.training.training_data), so in practice nothing is dropped unless a fold is missing.

Meta-learners (JSON-able, no pickle):
- "logistic" (default): multinomial logistic regression with an L2 penalty on the
  members' log-probabilities (3 features per member);
- "greedy": Caruana's ensemble selection with replacement on log-loss: the weights are
  how often each member was picked into the average that minimises OOF log-loss.

`run_ensemble` fits the meta-learner on the aligned OOF rows, then predicts the test
period with the members' `train` bundles (checksums verified) and evaluates it as a
train job's test split is evaluated; `save_ensemble_bundle` writes a self-contained
bundle (the member bundles are copied inside) that factory.inference can load.
"""

from __future__ import annotations

import json
import shutil
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import log_loss

from factory.errors import ConfigError, FactoryError
from factory.evaluation.backtest import DEFAULT_THRESHOLD, backtest_dataset_rows
from factory.evaluation.metrics import classification_metrics, predictions_sha256
from factory.evaluation.scores import LABELS, class_prior, classification_report
from factory.files import atomic_dir
from factory.training.cv import PROBA_COLUMNS
from factory.training.train import DATASET_FILE, RESULT_FILE, dataset_info, write_checksums
from factory.training.training_data import load_training_data
from factory.version import code_version

EPS = 1e-6
ENSEMBLE_FILE = "ensemble.json"
MEMBERS_DIR = "members"


def assemble_oof(frames: dict[str, list[pd.DataFrame]]) -> tuple[pd.DataFrame, int]:
    """One frame on the timestamps that every model predicted: columns `y` and
    `<model>:p_down|p_flat|p_up`; and how many timestamps were dropped."""
    if not frames:
        raise ConfigError("no models to assemble")
    per_model = {}
    for name, parts in frames.items():
        df = pd.concat(list(parts)).sort_index() if len(parts) else pd.DataFrame()
        if df.empty:
            raise FactoryError(f"model {name}: no out-of-fold predictions")
        dup = int(df.index.duplicated().sum())
        if dup:
            raise FactoryError(
                f"model {name}: {dup} decision rows are predicted by more than one fold; "
                "fix: pass each fold once, all from one fold layout"
            )
        per_model[name] = df
    union = pd.DatetimeIndex([])
    common = None
    for df in per_model.values():
        union = union.union(df.index)
        common = df.index if common is None else common.intersection(df.index)
    aligned = pd.DataFrame(index=common.sort_values())
    for name, df in per_model.items():
        part = df.loc[aligned.index]
        if "y" not in aligned:
            aligned["y"] = part["y"].to_numpy(dtype=np.int64)
        elif not np.array_equal(aligned["y"].to_numpy(), part["y"].to_numpy()):
            raise FactoryError(
                f"model {name}: labels differ from the other models' on the same rows; "
                "fix: use OOF predictions of one dataset and horizon"
            )
        for col in PROBA_COLUMNS:
            aligned[f"{name}:{col}"] = part[col].to_numpy(dtype=np.float64)
    return aligned, len(union) - len(aligned)


def model_proba(aligned: pd.DataFrame, name: str) -> np.ndarray:
    """(n, 3) probabilities of model `name` from an `assemble_oof` frame."""
    return aligned[[f"{name}:{c}" for c in PROBA_COLUMNS]].to_numpy(dtype=np.float64)


def _normalize(p: np.ndarray) -> np.ndarray:
    p = np.clip(np.asarray(p, dtype=np.float64), EPS, None)
    return p / p.sum(axis=1, keepdims=True)


class LogisticStacker:
    """Multinomial logistic regression (L2, strength 1/C) on members' log-probabilities."""

    method = "logistic"

    def __init__(self, C: float = 1.0, max_iter: int = 1000) -> None:
        self.C = float(C)
        self.max_iter = int(max_iter)

    @staticmethod
    def _features(probas: list[np.ndarray]) -> np.ndarray:
        return np.hstack([np.log(_normalize(p)) for p in probas])

    def fit(self, probas: list[np.ndarray], y: np.ndarray) -> LogisticStacker:
        lr = LogisticRegression(C=self.C, max_iter=self.max_iter)
        lr.fit(self._features(probas), np.asarray(y, dtype=np.int64))
        coef = np.zeros((len(LABELS), lr.coef_.shape[1]))
        intercept = np.full(len(LABELS), -30.0)  # a class absent from y: ~0 probability
        classes = [int(c) for c in lr.classes_]
        if len(classes) == 2:  # binary: sklearn keeps one row, for the second class
            coef[classes[1]], intercept[classes[1]] = lr.coef_[0], lr.intercept_[0]
            coef[classes[0]], intercept[classes[0]] = 0.0, 0.0
        else:
            for row, c in enumerate(classes):
                coef[c], intercept[c] = lr.coef_[row], lr.intercept_[row]
        self.coef_, self.intercept_ = coef, intercept
        return self

    def predict_proba(self, probas: list[np.ndarray]) -> np.ndarray:
        z = self._features(probas) @ self.coef_.T + self.intercept_
        z -= z.max(axis=1, keepdims=True)
        e = np.exp(z)
        return e / e.sum(axis=1, keepdims=True)

    def to_dict(self) -> dict[str, Any]:
        return {
            "method": self.method,
            "C": self.C,
            "max_iter": self.max_iter,
            "coef": self.coef_.tolist(),
            "intercept": self.intercept_.tolist(),
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> LogisticStacker:
        meta = cls(d["C"], d["max_iter"])
        meta.coef_ = np.asarray(d["coef"], dtype=np.float64)
        meta.intercept_ = np.asarray(d["intercept"], dtype=np.float64)
        return meta


class GreedySelection:
    """Ensemble selection with replacement (Caruana et al. 2004) on log-loss."""

    method = "greedy"

    def __init__(self, rounds: int = 50) -> None:
        self.rounds = int(rounds)

    def fit(self, probas: list[np.ndarray], y: np.ndarray) -> GreedySelection:
        probas = [_normalize(p) for p in probas]
        counts = np.zeros(len(probas), dtype=np.int64)
        total = np.zeros_like(probas[0])
        best_counts, best_score = None, np.inf
        for r in range(1, self.rounds + 1):
            scores = [log_loss(y, (total + p) / r, labels=LABELS) for p in probas]
            pick = int(np.argmin(scores))
            counts[pick] += 1
            total += probas[pick]
            if scores[pick] < best_score - 1e-12:
                best_score, best_counts = scores[pick], counts.copy()
        self.weights_ = best_counts / best_counts.sum()
        return self

    def predict_proba(self, probas: list[np.ndarray]) -> np.ndarray:
        out = sum(w * _normalize(p) for w, p in zip(self.weights_, probas, strict=True))
        return out / out.sum(axis=1, keepdims=True)

    def to_dict(self) -> dict[str, Any]:
        return {"method": self.method, "rounds": self.rounds, "weights": self.weights_.tolist()}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> GreedySelection:
        meta = cls(d["rounds"])
        meta.weights_ = np.asarray(d["weights"], dtype=np.float64)
        return meta


META_LEARNERS = {"logistic": LogisticStacker, "greedy": GreedySelection}


def meta_learner(method: str, **params: Any):
    if method not in META_LEARNERS:
        raise ConfigError(f"unknown ensemble method {method!r}; fix: use one of logistic, greedy")
    return META_LEARNERS[method](**params)


def meta_from_dict(d: dict[str, Any]):
    return META_LEARNERS[d["method"]].from_dict(d)


def _short(metrics: dict[str, Any]) -> dict[str, Any]:
    keys = ("n", "accuracy", "macro_f1", "log_loss", "log_loss_skill", "brier")
    return {k: metrics[k] for k in keys}


def run_ensemble(
    dataset_dir: str | Path,
    horizon: int | None,
    oof_by_model: dict[str, list[pd.DataFrame]],
    bundles_by_model: dict[str, str | Path],
    method: str = "logistic",
    bundle_dir: str | Path | None = None,
    threshold: float = DEFAULT_THRESHOLD,
    meta_params: dict[str, Any] | None = None,
) -> tuple[dict[str, Any], Path | None]:
    """Fit the meta-learner on aligned OOF rows, evaluate on the test period with the
    members' bundles; (JSON-able result, the ensemble bundle or None)."""
    from factory.inference import load_bundle

    start = time.perf_counter()
    members = list(oof_by_model)
    if set(bundles_by_model) != set(members) or len(members) < 2:
        raise ConfigError(
            f"an ensemble needs >= 2 members with both OOF predictions and a bundle; got OOF "
            f"for {sorted(oof_by_model)} and bundles for {sorted(bundles_by_model)}"
        )
    meta = meta_learner(method, **(meta_params or {}))
    aligned, dropped = assemble_oof(oof_by_model)
    y_oof = aligned["y"].to_numpy()
    oof = [model_proba(aligned, m) for m in members]
    meta.fit(oof, y_oof)

    data = load_training_data(dataset_dir, horizon)
    bundles = {m: load_bundle(bundles_by_model[m]) for m in members}
    test = [bundles[m].predict_proba(data, "test") for m in members]
    proba = meta.predict_proba(test)
    y_test = data.labels("test")
    prior = class_prior(data.labels("train"))
    metrics = classification_report(y_test, proba, prior) | classification_metrics(y_test, proba)
    metrics["backtest"] = backtest_dataset_rows(
        data.dataset_dir, data.horizon, data.split_rows("test"), proba, threshold
    )
    oof_prior = class_prior(y_oof)
    result = {
        "model": "ensemble",
        "kind": "ensemble",
        "method": method,
        "members": members,
        "horizon": data.horizon,
        "dataset_id": data.dataset_id,
        "dataset_dir": str(data.dataset_dir),
        "meta": meta.to_dict(),
        "oof_rows": len(aligned),
        "oof_rows_dropped": int(dropped),
        "metrics": {
            "test": metrics,
            "oof_fit": _short(classification_report(y_oof, meta.predict_proba(oof), oof_prior)),
        },
        "member_metrics": {
            m: {
                "oof": _short(classification_report(y_oof, p, oof_prior)),
                "test": _short(classification_report(y_test, t, prior)),
            }
            for m, p, t in zip(members, oof, test, strict=True)
        },
        "test_predictions_sha256": predictions_sha256(proba),
        "code_version": code_version(),
    }
    result["seconds"] = round(time.perf_counter() - start, 3)
    out = None
    if bundle_dir is not None:
        out = save_ensemble_bundle(result, {m: b.directory for m, b in bundles.items()}, bundle_dir)
        result["bundle"] = str(out)
    return result, out


def save_ensemble_bundle(
    result: dict[str, Any],
    member_dirs: dict[str, Path],
    directory: str | Path,
    dataset_dir: str | Path | None = None,
) -> Path:
    """ensemble.json (method, members, meta-learner) + the member bundles under
    members/<name>/ + result + dataset info (from `dataset_dir`, else the result's) +
    checksums of every file, atomically."""
    dataset_dir = dataset_dir or result["dataset_dir"]
    with atomic_dir(directory) as tmp:
        for name, src in member_dirs.items():
            shutil.copytree(src, tmp / MEMBERS_DIR / name)
        spec = {k: result[k] for k in ("method", "members", "horizon", "dataset_id", "meta")}
        (tmp / ENSEMBLE_FILE).write_text(json.dumps(spec, indent=1))
        (tmp / RESULT_FILE).write_text(json.dumps(result, indent=1))
        (tmp / DATASET_FILE).write_text(json.dumps(dataset_info(dataset_dir), indent=1))
        meta = {"model": "ensemble", "kind": "ensemble", "horizon": result["horizon"]}
        meta |= {"dataset_id": result["dataset_id"], "members": result["members"]}
        write_checksums(tmp, meta)
    return Path(directory)
