"""`factory results`: the leaderboard of a plan (written by its report job)."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from submitter.common import add_connection_args, home_of, table

LOWER_IS_BETTER = {"log_loss", "brier", "calibration_error", "cv_log_loss", "max_drawdown_usd"}
COLUMNS = [
    ("model", "model"),
    ("accuracy", "accuracy"),
    ("macro F1", "macro_f1"),
    ("log loss", "log_loss"),
    ("brier", "brier"),
    ("calib err", "calibration_error"),
    ("cv log loss", "cv_log_loss"),
    ("trades", "trades"),
    ("hit rate", "hit_rate"),
    ("P&L $", "pnl_usd"),
    ("sharpe", "sharpe"),
    ("DSR", "deflated_sharpe"),
]


class ResultsError(Exception):
    user_facing = True


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("results", help="the leaderboard of a plan, and where its plots are")
    p.add_argument("--plan", help="plan id (default: the newest plan under --home)")
    p.add_argument("--sort-by", default="log_loss", help="metric to sort by (default log_loss)")
    p.add_argument("--json", action="store_true", help="one object with a `leaderboard` list")
    add_connection_args(p)
    p.set_defaults(handler=run_results)


def _plan_id(home: Path, plan: str | None) -> str:
    from jobs.storage import Layout

    if plan:
        return plan
    ledgers = sorted(Layout(home).ledger_dir().glob("plan-*.json"), key=lambda p: p.stat().st_mtime)
    if not ledgers:
        raise ResultsError(f"no plans under {home}; fix: pass --home or --plan")
    return ledgers[-1].stem


def _sorted(rows: list[dict], key: str) -> list[dict]:
    if rows and key not in rows[0]:
        raise ResultsError(f"unknown metric {key!r}; fix: use one of {', '.join(sorted(rows[0]))}")
    missing = [r for r in rows if r.get(key) is None]
    present = [r for r in rows if r.get(key) is not None]
    present.sort(key=lambda r: r[key], reverse=key not in LOWER_IS_BETTER)
    return present + missing


def run_results(args: argparse.Namespace) -> int:
    from jobs.storage import Layout

    home = home_of(args)
    plan_id = _plan_id(home, args.plan)
    folder = Layout(home).results_dir(plan_id)  # the report's files, on this machine's mount
    path = folder / "leaderboard.json"
    if not path.is_file():
        raise ResultsError(
            f"no results for {plan_id} yet (its report job has not finished); "
            f"fix: watch `factory status --plan {plan_id}`"
        )
    board = json.loads(path.read_text())
    rows = _sorted(board["leaderboard"], args.sort_by)
    search = search_of(folder)  # a plan of `submit --tune`: its best trials
    if args.json:
        overfitting = {"overfitting": board["overfitting"]} if "overfitting" in board else {}
        board = {"plan_id": plan_id, "sort_by": args.sort_by, "leaderboard": rows}
        print(json.dumps(board | overfitting | search))
        return 0
    shown = [{k: (f"{v:.4f}" if isinstance(v, float) else v) for k, v in r.items()} for r in rows]
    print(f"plan {plan_id}: leaderboard by {args.sort_by}")
    print(table(shown, COLUMNS))
    print_overfitting(board.get("overfitting"))
    print_search(search)
    print(f"\nfiles: {folder}  (leaderboard.csv, leaderboard.md, *.png)")
    return 0


def _pbo_line(p: dict) -> str:
    if not p.get("available"):
        return f"not available: {p.get('reason')}"
    return (
        f"{p['pbo']:.3f} ({p['combinations']} splits of {p['rows']} test days in "
        f"{p['blocks']} blocks, {p['strategies']} strategies)"
    )


def print_overfitting(o: dict | None) -> None:
    """The odds of a fluke (factory.evaluation.overfitting, written by the report job):
    PBO across the rows and per search, and what the DSR column deflates for."""
    if not o:
        return
    print(f"\nprobability of backtest overfitting (PBO): {_pbo_line(o['pbo'])}")
    for model, p in o.get("searches", {}).items():
        print(f"PBO of search {model}'s trials: {_pbo_line(p)}")
    print(
        f"DSR: deflated Sharpe ratio, the probability that the true Sharpe beats what the "
        f"best of {o['trials']} unskilled strategies shows by luck (daily P&L's skew and "
        f"kurtosis counted)"
    )
    for model, d in o.get("deflated_sharpe", {}).items():
        if not d.get("available"):
            print(f"  {model}: not available: {d.get('reason')}")


TRIAL_COLUMNS = [("trial", "number"), ("value", "value"), ("params", "params")]


def search_of(folder: Path) -> dict:
    """{"searches": {model: summary}} from the report's search.json, else {} (no search)."""
    path = folder / "search.json"
    return json.loads(path.read_text()) if path.is_file() else {}


def print_search(search: dict) -> None:
    """Per tuned model: its study's trial counts and best trials with their parameters."""
    for model, s in search.get("searches", {}).items():
        counts = ", ".join(f"{n} {state}" for state, n in s["counts"].items() if n)
        print(f"\nsearch {model} ({s['study']}): {counts}; best by validation {s['metric']}")
        rows = [
            {
                "number": t["number"],
                "value": f"{t['value']:.5f}",
                "params": " ".join(f"{k}={_short(v)}" for k, v in t.get("params", {}).items()),
            }
            for t in s["best"]
        ]
        print(table(rows, TRIAL_COLUMNS))


def _short(value: str) -> str:
    """A sampled float to 4 significant digits (search.json keeps every digit)."""
    try:
        return f"{float(value):.4g}" if "." in value or "e" in value else value
    except ValueError:
        return value
