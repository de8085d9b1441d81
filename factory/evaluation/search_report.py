"""The files a search adds to a plan's report (`<home>/results/<plan_id>/`):

    search.json                    per tuned model: its study, metric, direction, trial
                                   counts, the best trials (best first) with their params,
                                   and every trial's (number, state, value)
    optimization_history.png       per tuned model: each complete trial's validation
                                   metric by trial number, the best so far as a line

Built from the trial jobs' final results (the same records the study was told), so it
needs neither Redis nor Optuna. Plots use matplotlib's Agg canvas (no display).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

TOP = 5  # best trials listed per model
STATES = ("complete", "pruned", "failed", "skipped")


def summarize(results: list[dict[str, Any]]) -> dict[str, Any]:
    """One tuned model's summary from its trial results (the same study)."""
    first = results[0]
    minimize = first.get("direction", "minimize") == "minimize"
    trials = sorted(
        (
            {"number": r["trial_number"], "state": r.get("state"), "value": r.get("value")}
            | ({"params": r["params"]} if r.get("params") else {})
            for r in results
            if isinstance(r.get("trial_number"), int)
        ),
        key=lambda t: t["number"],
    )
    complete = [t for t in trials if t["state"] == "complete"]
    best = sorted(complete, key=lambda t: t["value"] if minimize else -t["value"])[:TOP]
    counts = {s: sum(r.get("state") == s for r in results) for s in STATES}
    return {
        "study": first.get("study"),
        "metric": first.get("metric"),
        "direction": first.get("direction"),
        "counts": counts,
        "best": best,
        "history": [{k: t[k] for k in ("number", "state", "value")} for t in trials],
    }


def write_search_report(
    trial_results: dict[str, list[dict[str, Any]]], out_dir: str | Path
) -> dict[str, Path]:
    """search.json and optimization_history.png for {model: its trial results}; {} when
    the plan searched nothing."""
    if not trial_results:
        return {}
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    summary = {model: summarize(rs) for model, rs in sorted(trial_results.items()) if rs}
    paths = {"search_json": out / "search.json"}
    paths["search_json"].write_text(json.dumps({"searches": summary}, indent=1))
    paths["history_png"] = plot_history(summary, out / "optimization_history.png")
    return paths


def plot_history(summary: dict[str, dict], path: Path) -> Path:
    """One panel per model: complete trials' values by number, and the best so far."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(7.0, 3.0 * max(1, len(summary))), dpi=100)
    FigureCanvasAgg(fig)
    for i, (model, s) in enumerate(summary.items()):
        ax = fig.add_subplot(len(summary), 1, i + 1)
        done = [t for t in s["history"] if t["state"] == "complete" and t["value"] is not None]
        xs = [t["number"] for t in done]
        ys = [float(t["value"]) for t in done]
        ax.scatter(xs, ys, s=14, color="tab:blue", label="trial")
        pick = min if s.get("direction") == "minimize" else max
        best = [pick(ys[: k + 1]) for k in range(len(ys))]
        ax.step(xs, best, where="post", color="tab:red", label="best so far")
        pruned = [t["number"] for t in s["history"] if t["state"] == "pruned"]
        for number in pruned:
            ax.axvline(number, color="0.85", linewidth=0.8, zorder=0)
        ax.set_title(f"{model}: validation {s.get('metric')} ({len(pruned)} pruned, grey)")
        ax.set_xlabel("trial")
        ax.set_ylabel(str(s.get("metric")))
        if done:
            ax.legend(loc="best", fontsize=8)
    fig.tight_layout()
    fig.savefig(path)
    return path
