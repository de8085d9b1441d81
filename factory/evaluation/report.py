"""The leaderboard of a plan: one row per model and one for the ensemble, on the test period.

`build_leaderboard` flattens train / CV / ensemble results into rows; `write_report`
writes them, sorted by a chosen metric, to a folder (normally `<home>/results/<plan_id>/`):

    leaderboard.csv    scalar metrics, one row per model
    leaderboard.md     the same as a Markdown table
    leaderboard.json   {"sort_by", "leaderboard": [rows], "overfitting"}: what `factory
                       results --json` prints
    leaderboard.png    the sort metric per model (bars)
    equity.png         cumulative daily P&L of each model's test backtest
    confusion.png      test confusion matrices (rows: true class, columns: predicted)
    reliability.png    each model's reliability diagram on test (top label)
    pbo.png            the PBO's logits (CSCV over the models' daily test P&L), when computed

The odds of a fluke (`overfitting_report`, factory.evaluation.overfitting), from the daily
P&L of every row's test backtest (the models and the ensemble: the choices a reader of
the leaderboard picks from), aligned by trading day:
- `pbo`: the probability of backtest overfitting by CSCV across those rows, in up to 16
  blocks of test days (fewer when there are fewer days; "not available" with the reason
  when too few days or fewer than 2 rows trade);
- `deflated_sharpe`: each row's deflated Sharpe ratio, N = every strategy tried (the rows
  plus the complete trials of the plan's searches, each with its test backtest), V = the
  variance of their daily Sharpe ratios; the row's `deflated_sharpe` column is its DSR;
- `searches`: per tuned model, the PBO across its complete trials.

Plots use matplotlib's Agg canvas directly (no pyplot state, no display needed).
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from factory.errors import ConfigError
from factory.evaluation.backtest import daily_matrix
from factory.evaluation.overfitting import (
    DEFAULT_BLOCKS,
    blocks_for,
    deflated_sharpe,
    pbo,
    sharpe_ratios,
)

COLUMNS = [
    "model",
    "kind",
    "n",
    "accuracy",
    "macro_f1",
    "log_loss",
    "log_loss_skill",
    "brier",
    "brier_skill",
    "calibration_error",
    "cv_folds",
    "cv_log_loss",
    "cv_macro_f1",
    "trades",
    "hit_rate",
    "pnl_usd",
    "sharpe",
    "deflated_sharpe",
    "max_drawdown_usd",
]
LOWER_IS_BETTER = {"log_loss", "brier", "calibration_error", "cv_log_loss", "max_drawdown_usd"}
SORTABLE = [c for c in COLUMNS[3:] if c != "cv_folds"]
BACKTEST_KEYS = ("trades", "hit_rate", "pnl_usd", "sharpe", "max_drawdown_usd")
CLASS_NAMES = ("down", "flat", "up")


def _cv_summary(cv_results: list[dict[str, Any]] | None) -> dict[str, Any]:
    if not cv_results:
        return {"cv_folds": 0, "cv_log_loss": None, "cv_macro_f1": None}
    tests = [r["metrics"]["test"] for r in cv_results]
    weights = np.array([t["n"] for t in tests], dtype=np.float64)
    return {
        "cv_folds": len(cv_results),
        "cv_log_loss": float(np.average([t["log_loss"] for t in tests], weights=weights)),
        "cv_macro_f1": float(np.mean([t["macro_f1"] for t in tests])),
    }


def leaderboard_row(
    name: str, result: dict[str, Any], cv_results: list[dict[str, Any]] | None = None
) -> dict[str, Any]:
    """One row: the test metrics of a train or ensemble result (+ its CV folds' summary),
    with `confusion_matrix` and `equity` (daily dates and P&L) kept for the plots."""
    test = result["metrics"]["test"]
    backtest = test.get("backtest") or {}
    row: dict[str, Any] = {"model": name, "kind": result.get("kind", "")}
    for key in COLUMNS[2:10]:
        row[key] = test.get(key)
    row |= _cv_summary(cv_results)
    for key in BACKTEST_KEYS:
        row[key] = backtest.get(key)
    row["confusion_matrix"] = test.get("confusion_matrix")
    row["reliability"] = test.get("reliability")
    row["importance"] = result.get("importance")  # factory.evaluation.importance
    row["equity"] = backtest.get("daily")
    return row


def build_leaderboard(
    train_results: dict[str, dict[str, Any]],
    cv_results: dict[str, list[dict[str, Any]]] | None = None,
    ensemble_result: dict[str, Any] | None = None,
) -> list[dict[str, Any]]:
    """Rows for every trained model and, when given, the ensemble (named ensemble:<method>)."""
    cv_results = cv_results or {}
    rows = [leaderboard_row(m, r, cv_results.get(m)) for m, r in train_results.items()]
    if ensemble_result is not None:
        name = f"ensemble:{ensemble_result.get('method', '')}".rstrip(":")
        rows.append(leaderboard_row(name, ensemble_result))
    return rows


def _pbo(matrix: pd.DataFrame) -> dict[str, Any]:
    out = pbo(matrix.to_numpy(), blocks_for(len(matrix), DEFAULT_BLOCKS)).summary()
    return out | {"names": list(matrix.columns)}


def _trial_daily(trial_results: list[dict[str, Any]]) -> dict[str, dict[str, dict]]:
    """{model: {"<model>#trial<number>": daily P&L}} of the complete trials that carry a
    test backtest."""
    out: dict[str, dict[str, dict]] = {}
    for r in trial_results:
        test = (r.get("metrics") or {}).get("test") or {}
        daily = (test.get("backtest") or {}).get("daily")
        if r.get("state") == "complete" and daily:
            model = r.get("model", "")
            out.setdefault(model, {})[f"{model}#trial{r.get('trial_number')}"] = daily
    return out


def overfitting_report(
    rows: list[dict[str, Any]], trial_results: list[dict[str, Any]] | None = None
) -> dict[str, Any]:
    """The odds of a fluke of a leaderboard (see the module docstring); JSON-able."""
    series = {r["model"]: r["equity"] for r in rows if r.get("equity")}
    trials = _trial_daily(trial_results or [])
    everything = series | {k: v for t in trials.values() for k, v in t.items()}
    matrix = daily_matrix(everything)
    srs = sharpe_ratios(matrix.to_numpy()) if len(matrix) else np.array([])
    defined = srs[np.isfinite(srs)]
    variance = float(defined.var(ddof=1)) if len(defined) > 1 else 0.0
    n = max(1, len(everything))
    dsr = {name: deflated_sharpe(matrix[name], n, variance).to_dict() for name in series}
    return {
        "strategies": len(everything),
        "models": list(series),
        "trials": n,
        "days": len(matrix),
        "sharpe_variance": variance,
        "pbo": _pbo(matrix[list(series)]),
        "deflated_sharpe": dsr,
        "searches": {m: _pbo(matrix[list(t)]) for m, t in trials.items()},
    }


def sort_rows(rows: list[dict[str, Any]], sort_by: str) -> list[dict[str, Any]]:
    """Best first by `sort_by` (lower first for losses); rows without a value last."""
    if sort_by not in SORTABLE:
        raise ConfigError(f"unknown sort metric {sort_by!r}; fix: use one of {', '.join(SORTABLE)}")
    sign = 1.0 if sort_by in LOWER_IS_BETTER else -1.0

    def key(row: dict[str, Any]) -> tuple[int, float]:
        value = row.get(sort_by)
        if value is None or (isinstance(value, float) and math.isnan(value)):
            return (1, 0.0)
        return (0, sign * float(value))

    return sorted(rows, key=key)


def _fmt(value: Any) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return ""
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)


def _markdown(frame: pd.DataFrame, sort_by: str) -> str:
    lines = [f"# Leaderboard (test period, sorted by {sort_by})", ""]
    lines.append("| " + " | ".join(frame.columns) + " |")
    lines.append("|" + "|".join("---" for _ in frame.columns) + "|")
    for record in frame.to_dict("records"):
        lines.append("| " + " | ".join(_fmt(v) for v in record.values()) + " |")
    return "\n".join(lines) + "\n"


def _figure(width: float, height: float):
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height), dpi=100)
    FigureCanvasAgg(fig)
    return fig


def _plot_bars(rows: list[dict], sort_by: str, path: Path) -> Path:
    fig = _figure(max(4.0, 1.0 + 0.9 * len(rows)), 3.5)
    ax = fig.add_subplot()
    names = [r["model"] for r in rows]
    values = [np.nan if r.get(sort_by) is None else float(r[sort_by]) for r in rows]
    ax.bar(names, values, color="tab:blue")
    ax.set_ylabel(sort_by)
    ax.set_title(f"test {sort_by}")
    ax.tick_params(axis="x", labelrotation=30)
    fig.tight_layout()
    fig.savefig(path)
    return path


def _plot_equity(rows: list[dict], path: Path) -> Path:
    fig = _figure(8.0, 4.0)
    ax = fig.add_subplot()
    for r in rows:
        eq = r.get("equity")
        if eq and eq.get("date"):
            dates = pd.to_datetime(eq["date"])
            ax.plot(dates, np.cumsum(eq["pnl_usd"]), marker="o", markersize=3, label=r["model"])
    ax.axhline(0.0, color="grey", linewidth=0.8)
    ax.set_ylabel("cumulative P&L (USD, net of costs)")
    ax.set_title("test-period backtest")
    if ax.get_legend_handles_labels()[0]:
        ax.legend(fontsize="small")
    fig.autofmt_xdate()
    fig.tight_layout()
    fig.savefig(path)
    return path


def _plot_confusion(rows: list[dict], path: Path) -> Path:
    shown = [r for r in rows if r.get("confusion_matrix")]
    fig = _figure(3.2 * max(1, len(shown)), 3.4)
    for i, r in enumerate(shown):
        ax = fig.add_subplot(1, len(shown), i + 1)
        cm = np.asarray(r["confusion_matrix"], dtype=np.float64)
        ax.imshow(cm, cmap="Blues")
        for (a, b), v in np.ndenumerate(cm):
            ax.text(b, a, f"{int(v)}", ha="center", va="center", fontsize=8)
        ax.set_xticks(range(3), CLASS_NAMES)
        ax.set_yticks(range(3), CLASS_NAMES)
        ax.set_xlabel("predicted")
        if i == 0:
            ax.set_ylabel("true")
        ax.set_title(r["model"], fontsize=9)
    fig.tight_layout()
    fig.savefig(path)
    return path


def _plot_reliability(rows: list[dict], path: Path) -> Path:
    fig = _figure(5.0, 4.2)
    ax = fig.add_subplot()
    ax.plot([0, 1], [0, 1], color="grey", linestyle="--", linewidth=1, label="calibrated")
    for r in rows:
        curve = r.get("reliability")
        if curve and curve.get("confidence"):
            ax.plot(
                curve["confidence"], curve["accuracy"], marker="o", markersize=3, label=r["model"]
            )
    ax.set_xlabel("top-label probability (bin mean)")
    ax.set_ylabel("accuracy of those rows")
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1)
    ax.set_title("reliability on test")
    ax.legend(fontsize="small")
    fig.tight_layout()
    fig.savefig(path)
    return path


def pbo_line(p: dict[str, Any]) -> str:
    """One line on a PBO summary: its figure and what it was computed on, or why not."""
    if not p.get("available"):
        return f"PBO not available: {p.get('reason')}"
    return (
        f"PBO {p['pbo']:.3f} across {p['strategies']} strategies ({p['combinations']} splits "
        f"of {p['rows']} test days in {p['blocks']} blocks; the in-sample best lost out "
        f"of sample in {p['oos_loss_probability']:.0%} of them)"
    )


def _overfitting_markdown(o: dict[str, Any]) -> str:
    lines = ["", "## Odds of a fluke", "", pbo_line(o["pbo"]), ""]
    for model, p in o["searches"].items():
        lines += [f"search {model}: {pbo_line(p)}", ""]
    lines.append(
        f"Deflated Sharpe ratio: N = {o['trials']} strategies tried, variance of their daily "
        f"Sharpe ratios {o['sharpe_variance']:.4g}."
    )
    keys = ("sharpe_annual", "skew", "kurtosis", "sr0_annual", "psr", "dsr")
    lines += ["", "| model | " + " | ".join(keys) + " |", "|---" * (len(keys) + 1) + "|"]
    for model, d in o["deflated_sharpe"].items():
        cells = [_fmt(d.get(k)) for k in keys] if d["available"] else [d["reason"]]
        lines.append(f"| {model} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def _plot_pbo(p: dict[str, Any], path: Path) -> Path:
    fig = _figure(5.0, 3.5)
    ax = fig.add_subplot()
    hist = p["logit_histogram"]
    edges = np.asarray(hist["edges"])
    ax.bar(edges[:-1], hist["counts"], width=np.diff(edges), align="edge", color="tab:blue")
    ax.axvline(0.0, color="tab:red", linewidth=1)
    ax.set_xlabel("logit of the in-sample best's out-of-sample rank")
    ax.set_ylabel("splits")
    ax.set_title(f"PBO {p['pbo']:.3f} ({p['combinations']} splits)")
    fig.tight_layout()
    fig.savefig(path)
    return path


def write_report(
    rows: list[dict[str, Any]],
    out_dir: str | Path,
    sort_by: str = "log_loss",
    overfitting: dict[str, Any] | None = None,
) -> dict[str, Path]:
    """Write the leaderboard files and plots (see the module docstring); their paths.
    `overfitting`: `overfitting_report`'s (computed from `rows` alone when not given)."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    overfitting = overfitting if overfitting is not None else overfitting_report(rows)
    dsr = overfitting["deflated_sharpe"]
    rows = [r | {"deflated_sharpe": dsr.get(r["model"], {}).get("dsr")} for r in rows]
    ordered = sort_rows(rows, sort_by)
    frame = pd.DataFrame([{c: r.get(c) for c in COLUMNS} for r in ordered], columns=COLUMNS)
    paths = {
        "csv": out / "leaderboard.csv",
        "markdown": out / "leaderboard.md",
        "json": out / "leaderboard.json",
    }
    frame.to_csv(paths["csv"], index=False)
    paths["markdown"].write_text(_markdown(frame, sort_by) + _overfitting_markdown(overfitting))
    board = [{c: r.get(c) for c in COLUMNS} for r in ordered]
    record = {"sort_by": sort_by, "leaderboard": board, "overfitting": overfitting}
    paths["json"].write_text(json.dumps(record, indent=1))
    paths["leaderboard_png"] = _plot_bars(ordered, sort_by, out / "leaderboard.png")
    paths["equity_png"] = _plot_equity(ordered, out / "equity.png")
    paths["confusion_png"] = _plot_confusion(ordered, out / "confusion.png")
    paths["reliability_png"] = _plot_reliability(ordered, out / "reliability.png")
    from factory.evaluation.importance import write_importance  # importance.csv and .md

    paths |= write_importance(ordered, out)  # {} unless a row carries an importance
    if overfitting["pbo"].get("available"):
        paths["pbo_png"] = _plot_pbo(overfitting["pbo"], out / "pbo.png")
    return paths
