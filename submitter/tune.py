"""`submit --tune`: the arguments of a hyperparameter search and the plan they make.

    submit --tune xgboost,lstm --trials 40 [--metric log_loss] [--tune-hours H] ...

The tuned models join --models (which may then be left out); each gets a study of
--trials trial jobs, then a train and CV of its best configuration (jobs.search_plan).
"""

from __future__ import annotations

import argparse

DEFAULT_TRIALS = 20  # jobs.search_plan.DEFAULT_TRIALS (not imported: the CLI starts fast)
METRICS = "log_loss, brier, calibration_error, accuracy, macro_f1, log_loss_skill, brier_skill"


def add_tune_args(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("hyperparameter search (see `factory models --space MODEL`)")
    g.add_argument(
        "--tune",
        metavar="MODELS",
        help="comma-separated models to search (each in its own study, trials in parallel "
        "across workers), then train and cross-validate each one's best configuration",
    )
    g.add_argument(
        "--trials",
        type=int,
        default=DEFAULT_TRIALS,
        help=f"trials per tuned model (default {DEFAULT_TRIALS})",
    )
    g.add_argument(
        "--metric",
        default="log_loss",
        help=f"what a trial scores on the validation split (default log_loss; one of {METRICS})",
    )
    g.add_argument(
        "--tune-hours",
        type=float,
        default=0.0,
        metavar="H",
        help="ask no new trial once H hours passed since the first trial started (running "
        "trials finish; default: no time budget)",
    )


def _names(text: str | None) -> tuple[str, ...]:
    return tuple(m.strip() for m in (text or "").split(",") if m.strip())


def models_of(args: argparse.Namespace) -> tuple[str, ...]:
    """--models, then the tuned models it does not name yet."""
    models = _names(args.models)
    return models + tuple(m for m in _names(getattr(args, "tune", None)) if m not in models)


def tuned(plan, args: argparse.Namespace):
    """`plan` with its searches (jobs.search_plan.tune_plan), or `plan` without --tune."""
    if not getattr(args, "tune", None):
        return plan
    from jobs.search_plan import Tune, tune_plan

    tune = Tune(_names(args.tune), args.trials, args.metric, args.tune_hours)
    return tune_plan(plan, tune)
