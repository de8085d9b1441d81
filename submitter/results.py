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
    if args.json:
        print(json.dumps({"plan_id": plan_id, "sort_by": args.sort_by, "leaderboard": rows}))
        return 0
    shown = [{k: (f"{v:.4f}" if isinstance(v, float) else v) for k, v in r.items()} for r in rows]
    print(f"plan {plan_id}: leaderboard by {args.sort_by}")
    print(table(shown, COLUMNS))
    print(f"\nfiles: {folder}  (leaderboard.csv, leaderboard.md, *.png)")
    return 0
