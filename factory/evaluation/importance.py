"""Feature importance of a fitted model: permutation on validation rows, and gain.

- **Permutation importance** (every model): the rise of the validation log-loss (of the
  model's calibrated probabilities) when one feature's values are shuffled across
  rows, the others left alone. At most `rows` validation rows are used (a fixed-seed
  subsample), each feature is shuffled `repeats` times (mean and standard deviation
  over those). A sequence model sees each row's whole lookback window: its feature is
  permuted across rows for every timestep of the window at once (window i gets
  window pi(i)'s values of that feature), so the shuffle breaks the feature's link to
  the label, not its time structure. Costs features x repeats predictions of `rows`
  rows. scikit-learn's `permutation_importance` wants 2-D inputs and an estimator's
  score, which windows and our `predict_proba(data, split)` are not: hence this loop.
- **Gain importance** (boosting models): the library's own. xgboost `total_gain`,
  lightgbm `gain` (both: the loss reduction of every split on the feature, over the
  trees up to the best iteration), catboost `PredictionValuesChange` (its default
  importance: how much the prediction moves with the feature). Given as shares that
  sum to 1.

`feature_importance` gives a train result's "importance" block (the top TOP features of
each kind); `plot_importance` a model's importance.png; `importance_table` the table
across the models of a plan, which `write_importance` puts in the report folder as
importance.csv and importance.md. JSON-able throughout; nothing here imports a model.
"""

from __future__ import annotations

import dataclasses
import math
import time
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from sklearn.metrics import log_loss

from factory.training.training_data import NO_LABEL, TrainingData

TOP = 20
IMPORTANCE_PNG = "importance.png"
KINDS = ("permutation", "gain")


def window_data(data: TrainingData, rows: np.ndarray, lookback: int) -> TrainingData:
    """`data` reduced to the windows of `rows` (the "val" split of the result), laid end
    to end: window i is rows [i * lookback, (i + 1) * lookback) of the new X, so one
    feature of whole windows can be permuted across rows (lookback 1: tabular rows)."""
    rows = np.asarray(rows, dtype=np.int64)
    steps = np.arange(lookback, dtype=np.int64)
    source = (rows[:, None] - (lookback - 1) + steps[None, :]).reshape(-1)
    y = np.full(len(source), NO_LABEL, dtype=np.int64)
    ends = np.arange(len(rows), dtype=np.int64) * lookback + (lookback - 1)
    y[ends] = data.y[rows]
    empty = np.zeros(0, dtype=np.int64)
    return dataclasses.replace(
        data,
        X=np.ascontiguousarray(data.X[source]),
        y=y,
        rows={"train": empty, "val": ends, "test": empty},
        index=data.index[source],
        t1_rows=None,
    )


def _loss(model: Any, data: TrainingData, y: np.ndarray) -> float:
    return float(log_loss(y, model.predict_proba(data, "val"), labels=[0, 1, 2]))


def permutation_importance(
    model: Any, data: TrainingData, rows: int, repeats: int, seed: int
) -> dict[str, Any]:
    """Each feature's rise in validation log-loss when permuted (see the module
    docstring): {metric, rows, repeats, seed, baseline_log_loss, mean, std, seconds},
    mean and std in the order of data.feature_columns."""
    start = time.perf_counter()
    rng = np.random.default_rng(seed)
    val = data.split_rows("val")
    if len(val) > rows:
        val = np.sort(rng.choice(val, size=rows, replace=False))
    lookback = int(model.params.lookback) if model.kind == "sequence" else 1
    small = window_data(data, val, lookback)
    y = data.y[val]
    base = _loss(model, small, y)
    cube = small.X.reshape(len(val), lookback, small.n_features)  # a view: edits reach X
    rises = np.zeros((small.n_features, repeats), dtype=np.float64)
    for j in range(small.n_features):
        original = cube[:, :, j].copy()
        for r in range(repeats):
            cube[:, :, j] = original[rng.permutation(len(val))]
            rises[j, r] = _loss(model, small, y) - base
        cube[:, :, j] = original
    return {
        "metric": "validation log-loss rise",
        "rows": len(val),
        "repeats": int(repeats),
        "seed": int(seed),
        "baseline_log_loss": base,
        "mean": rises.mean(axis=1).tolist(),
        "std": rises.std(axis=1).tolist(),
        "seconds": round(time.perf_counter() - start, 3),
    }


def top_features(names: list[str], values: list[float], top: int = TOP, std=None) -> list[dict]:
    """The `top` largest values, largest first (ties: feature order), as records."""
    order = sorted(range(len(names)), key=lambda i: (-values[i], i))[:top]
    out = []
    for i in order:
        record = {"feature": names[i], "value": float(values[i])}
        if std is not None:
            record["std"] = float(std[i])
        out.append(record)
    return out


def feature_importance(
    model: Any, data: TrainingData, rows: int, repeats: int, seed: int, top: int = TOP
) -> dict[str, Any]:
    """A train result's "importance": {"permutation": {..., "top"} or {"skipped"}, and
    for boosting models "gain": {"type", "top"}}; `rows` 0 skips the permutation."""
    names = list(data.feature_columns)
    out: dict[str, Any] = {}
    if rows > 0:
        perm = permutation_importance(model, data, rows, repeats, seed)
        mean, std = perm.pop("mean"), perm.pop("std")
        out["permutation"] = perm | {"top": top_features(names, mean, top, std)}
    else:
        out["permutation"] = {"skipped": "importance_rows=0"}
    gain = model.gain_importance()
    if gain is not None:
        values = np.asarray(gain["values"], dtype=np.float64)
        total = values.sum()
        shares = (values / total if total > 0 else values).tolist()
        out["gain"] = {"type": gain["type"], "top": top_features(names, shares, top)}
    return out


# --- the plot and the table ----------------------------------------------------------


def _figure(width: float, height: float):
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height), dpi=100)
    FigureCanvasAgg(fig)
    return fig


def plot_importance(importance: dict[str, Any], path: str | Path, title: str) -> Path | None:
    """importance.png: a panel of horizontal bars per kind present (largest on top);
    None (nothing written) when neither kind has features."""
    panels = [k for k in KINDS if (importance.get(k) or {}).get("top")]
    if not panels:
        return None
    fig = _figure(5.0 * len(panels), 0.5 + 0.28 * TOP)
    for i, kind in enumerate(panels):
        block = importance[kind]
        records = block["top"][::-1]
        ax = fig.add_subplot(1, len(panels), i + 1)
        errors = [r.get("std", 0.0) for r in records] if kind == "permutation" else None
        ax.barh([r["feature"] for r in records], [r["value"] for r in records], xerr=errors)
        ax.tick_params(axis="y", labelsize=7)
        if kind == "permutation":
            ax.set_xlabel(f"validation log-loss rise ({block['rows']} rows)")
        else:
            ax.set_xlabel(f"share of {block['type']}")
        ax.set_title(f"{title}: {kind}", fontsize=9)
    fig.tight_layout()
    fig.savefig(path)
    return Path(path)


def _named(results: Mapping[str, dict] | Iterable[dict]) -> dict[str, dict]:
    if isinstance(results, Mapping):
        return {str(name): r for name, r in results.items()}
    return {str(r.get("model", i)): r for i, r in enumerate(results)}


def importance_table(
    results: Mapping[str, dict] | Iterable[dict], kind: str = "permutation", top: int = TOP
) -> pd.DataFrame:
    """Features (rows) by model (columns): each model's `kind` importance of the features
    in its top `top` (NaN elsewhere); `models` counts the models that rank a feature in
    their top, `mean_rank` its rank averaged over the models (top + 1 where absent).
    Sorted by mean_rank. `results`: {name: train result} or results with a "model"
    (leaderboard rows with an "importance" also do); those without `kind` are left out."""
    if kind not in KINDS:
        raise ValueError(f"kind {kind!r} is not one of {', '.join(KINDS)}")
    ranked = {}
    for name, result in _named(results).items():
        records = ((result.get("importance") or {}).get(kind) or {}).get("top")
        if records:
            ranked[name] = records[:top]
    if not ranked:
        return pd.DataFrame(columns=["feature", "models", "mean_rank"])
    features = list(dict.fromkeys(r["feature"] for recs in ranked.values() for r in recs))
    frame = pd.DataFrame({"feature": features})
    ranks = pd.DataFrame(index=features)
    for name, records in ranked.items():
        values = {r["feature"]: r["value"] for r in records}
        frame[name] = [values.get(f, math.nan) for f in features]
        ranks[name] = [
            next((i + 1 for i, r in enumerate(records) if r["feature"] == f), top + 1)
            for f in features
        ]
    frame["models"] = (ranks.to_numpy() <= top).sum(axis=1)
    frame["mean_rank"] = ranks.to_numpy(dtype=np.float64).mean(axis=1)
    return frame.sort_values(["mean_rank", "feature"], kind="stable").reset_index(drop=True)


def _markdown(frame: pd.DataFrame, heading: str) -> list[str]:
    def cell(v: Any) -> str:
        if isinstance(v, float):
            return "" if math.isnan(v) else f"{v:.4g}"
        return str(v)

    lines = [f"## {heading}", ""]
    if frame.empty:
        return [*lines, "none", ""]
    lines.append("| " + " | ".join(frame.columns) + " |")
    lines.append("|" + "|".join("---" for _ in frame.columns) + "|")
    for record in frame.itertuples(index=False):
        lines.append("| " + " | ".join(cell(v) for v in record) + " |")
    return [*lines, ""]


def write_importance(results: Mapping[str, dict] | Iterable[dict], out_dir: str | Path) -> dict:
    """importance.csv (the permutation table) and importance.md (both tables) in
    `out_dir`; their paths, or {} when no result carries an importance."""
    named = _named(results)
    tables = {kind: importance_table(named, kind) for kind in KINDS}
    if all(t.empty for t in tables.values()):
        return {}
    out = Path(out_dir)
    paths = {"importance_csv": out / "importance.csv", "importance_md": out / "importance.md"}
    tables["permutation"].to_csv(paths["importance_csv"], index=False)
    lines = ["# Feature importance (top 20 per model)", ""]
    lines += _markdown(tables["permutation"], "Permutation: validation log-loss rise")
    lines += _markdown(tables["gain"], "Gain (boosting models, share of the model's total)")
    paths["importance_md"].write_text("\n".join(lines))
    return paths
