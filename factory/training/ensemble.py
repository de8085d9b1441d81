"""Stacking of out-of-fold probabilities, evaluated on the test period.

`assemble_oof` lines up every model's OOF probabilities on the same decision rows
(timestamps): a row without a prediction from every model is dropped for all, and
the count is reported. Tabular and sequence models predict the same decision rows
(factory.training.training_data), so in practice nothing is dropped unless a fold is missing.

The meta-learners ("logistic", "greedy") are in factory.training.stacking.

The ensemble stacks on whichever CV scheme ran (factory.training.cv_schemes.stacking_oof),
and only ever on rows predicted out of sample:
- purged k-fold: every eligible row, predicted once by the fold that tested it;
- walk-forward: the rows of the tested blocks only (the first block is never tested,
  so it has no OOF prediction and the meta-learner never sees it);
- cpcv: CPCV's path 0, one prediction per row from the first split that tested it (a
  single model's prediction, as a member's own test prediction is); the result also
  scores every member on each of the phi paths (`cv_paths`), the spread AFML ch. 12
  is after.

`run_ensemble` fits the meta-learner on the aligned OOF rows, then predicts the test
period with the members' `train` bundles (checksums verified) and evaluates it as a
train job's test split is evaluated; factory.bundle.save_ensemble_bundle writes a
self-contained bundle (the member bundles are copied inside) that factory.bundle loads.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from factory.bundle import ENSEMBLE, PROBA_COLUMNS, load_bundle, save_ensemble_bundle
from factory.errors import ConfigError, FactoryError
from factory.evaluation.backtest import DEFAULT_THRESHOLD
from factory.evaluation.metrics import predictions_sha256
from factory.evaluation.scores import class_prior, classification_report
from factory.training.cv_schemes import CvScheme, assemble_paths, stacking_oof
from factory.training.results import job_result, scores, with_backtest
from factory.training.stacking import meta_learner
from factory.training.training_data import load_training_data


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


def _short(metrics: dict[str, Any]) -> dict[str, Any]:
    keys = ("n", "accuracy", "macro_f1", "log_loss", "log_loss_skill", "brier")
    return {k: metrics[k] for k in keys}


def _member_metrics(on_oof: tuple, on_test: tuple) -> dict[str, Any]:
    """A member's short scores on the OOF rows and on the test period, each given as
    (labels, probabilities, prior)."""
    return {
        "oof": _short(classification_report(*on_oof)),
        "test": _short(classification_report(*on_test)),
    }


def path_metrics(frames: list[pd.DataFrame], scheme: CvScheme) -> list[dict[str, Any]]:
    """A model's short scores on each CPCV test path (prior: the path's class frequencies)."""
    out = []
    for path in assemble_paths(frames, scheme.groups, scheme.test_groups):
        y, p = path["y"].to_numpy(dtype=np.int64), path[list(PROBA_COLUMNS)].to_numpy()
        out.append(_short(classification_report(y, p, class_prior(y))))
    return out


def _check_members(oof_by_model: dict[str, list], bundles_by_model: dict[str, Any]) -> list[str]:
    """The member names: those with both OOF predictions and a bundle (at least two)."""
    members = list(oof_by_model)
    if set(bundles_by_model) != set(members) or len(members) < 2:
        raise ConfigError(
            f"an ensemble needs >= 2 members with both OOF predictions and a bundle; got OOF "
            f"for {sorted(oof_by_model)} and bundles for {sorted(bundles_by_model)}"
        )
    return members


def run_ensemble(
    dataset_dir: str | Path,
    horizon: int | None,
    oof_by_model: dict[str, list[pd.DataFrame]],
    bundles_by_model: dict[str, str | Path],
    method: str = "logistic",
    bundle_dir: str | Path | None = None,
    threshold: float = DEFAULT_THRESHOLD,
    meta_params: dict[str, Any] | None = None,
    scheme: CvScheme | None = None,
) -> tuple[dict[str, Any], Path | None]:
    """Fit the meta-learner on aligned OOF rows, evaluate on the test period with the
    members' bundles; (JSON-able result, the ensemble bundle or None). `scheme` is the
    CV scheme the OOF frames come from (None: purged k-fold); for cpcv each model's
    frames must be in split order (frames[i]: split i's)."""
    start = time.perf_counter()
    members = _check_members(oof_by_model, bundles_by_model)
    meta = meta_learner(method, **(meta_params or {}))
    cv = scheme or CvScheme()
    aligned, dropped = assemble_oof({m: stacking_oof(f, cv) for m, f in oof_by_model.items()})
    y_oof = aligned["y"].to_numpy()
    oof = [model_proba(aligned, m) for m in members]
    meta.fit(oof, y_oof)

    data = load_training_data(dataset_dir, horizon)
    bundles = {m: load_bundle(bundles_by_model[m]) for m in members}
    test = [bundles[m].predict_proba(data, "test") for m in members]
    proba = meta.predict_proba(test)
    y_test, prior = data.labels("test"), class_prior(data.labels("train"))
    oof_prior = class_prior(y_oof)
    metrics = scores(y_test, proba, prior)
    with_backtest(metrics, data, data.split_rows("test"), proba, threshold)
    fields = {"meta": meta.to_dict(), "oof_rows": len(aligned), "oof_rows_dropped": int(dropped)}
    fields["metrics"] = {
        "test": metrics,
        "oof_fit": _short(classification_report(y_oof, meta.predict_proba(oof), oof_prior)),
    }
    fields["member_metrics"] = {
        m: _member_metrics((y_oof, p, oof_prior), (y_test, t, prior))
        for m, p, t in zip(members, oof, test, strict=True)
    }
    fields["cv"] = cv.describe() | {"stacked_on": "path 0" if cv.name == "cpcv" else "oof"}
    if cv.name == "cpcv":
        fields["cv_paths"] = {m: path_metrics(oof_by_model[m], cv) for m in members}
    fields["test_predictions_sha256"] = predictions_sha256(proba)
    head = {"method": method, "members": members}
    result = job_result(ENSEMBLE, ENSEMBLE, data, start, fields, head=head)
    out = None
    if bundle_dir is not None:
        out = save_ensemble_bundle(result, {m: b.directory for m, b in bundles.items()}, bundle_dir)
        result["bundle"] = str(out)
    return result, out
