"""The `submit` command: build the plan and enqueue it, idempotently."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from submitter.common import add_connection_args, connection_of, home_of
from submitter.cv_args import add_cv_args, cv_fields
from submitter.tune import add_tune_args, models_of, tuned


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="submit",
        description="Submit a plan: a data job, then one train job per model (CV folds, the "
        "ensemble and the report have their place in the plan). Submitting the same thing "
        "twice creates nothing new.",
    )
    p.add_argument(
        "--models", help="comma-separated, e.g. xgboost,lstm (may be left out with --tune)"
    )
    p.add_argument("--symbol", required=True, help="e.g. MES, MGC")
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument(
        "--raw",
        type=Path,
        help="1-minute bars (parquet or CSV); a file outside --home is copied to "
        "<home>/data/raw/ first (checksummed)",
    )
    src.add_argument(
        "--dataset",
        type=Path,
        help="a dataset folder built by `factory data`; one outside --home is copied to "
        "<home>/data/processed/<SYMBOL>/<id>/ first (checksummed)",
    )
    p.add_argument("--tz", default="UTC", help="timezone of naive timestamps (default UTC)")
    p.add_argument("--tick-size", type=float, help="for symbols without a known spec")
    p.add_argument("--horizon", type=int, default=20, help="label horizon in bars (default 20)")
    add_cv_args(p)  # --cv purged|walk-forward|cpcv, its parameters, --no-cv (submitter.cv_args)
    p.add_argument("--no-ensemble", action="store_true", help="no ensemble job")
    p.add_argument(
        "--param",
        action="append",
        default=[],
        metavar="[MODEL.]KEY=VALUE",
        help="hyperparameter override; without MODEL. it applies to every model "
        "(e.g. profile=tiny)",
    )
    p.add_argument(
        "--preemption-budget",
        type=int,
        metavar="N",
        help="fail a job of this plan whose worker died N+1 times in a row with no new "
        "checkpoint in between (default: the reaping worker's --preemption-budget, 20)",
    )
    add_tune_args(p)
    add_connection_args(p)
    p.add_argument("--json", action="store_true", help="print one JSON object")
    return p


def run(args: argparse.Namespace) -> int:
    from jobs.plan import enqueue_plan
    from jobs.status import job_rows
    from jobs.submission import Submission, SubmitError, plan_for
    from submitter.status import print_rows

    models = models_of(args)  # --models and --tune (submitter.tune)
    if args.preemption_budget is not None and args.preemption_budget < 0:
        raise SubmitError(
            f"--preemption-budget {args.preemption_budget} is negative; fix: give 0 or more"
        )
    sub = Submission(
        models=models,
        symbol=args.symbol,
        raw=args.raw,
        dataset=args.dataset,
        tz=args.tz,
        horizon=args.horizon,
        **cv_fields(args),
        ensemble=not args.no_ensemble,
        params=tuple(args.param),
        tick_size=args.tick_size,
        home=home_of(args),
    )
    plan = tuned(plan_for(sub), args)  # every check before anything touches Redis
    connection = connection_of(args)
    created = enqueue_plan(connection, plan, sub.home)
    if args.preemption_budget is not None:
        from jobs.reaper import set_preemption_budget

        set_preemption_budget(connection, [e.job_id for e in plan.entries], args.preemption_budget)
    rows = job_rows(connection, plan)
    if args.json:
        print(json.dumps({"plan_id": plan.plan_id, "created": created, "jobs": rows}))
        return 0
    verb = "submitted" if created else "already submitted (nothing new enqueued)"
    print(f"plan {plan.plan_id} {verb}: {len(plan.entries)} jobs")
    print_rows(rows)
    print(f"\nwatch it with: factory status --plan {plan.plan_id} --watch")
    return 0


def main(argv: list[str] | None = None) -> int:
    from submitter.cli import run_handler

    args = build_parser().parse_args(argv)
    args.handler = run
    return run_handler(args)


if __name__ == "__main__":
    sys.exit(main())
