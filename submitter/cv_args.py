"""`submit`'s cross-validation arguments: the scheme and its parameters.

    submit --cv purged [--folds 5]                              # the default
    submit --cv walk-forward [--steps 5] [--window expanding|sliding]
    submit --cv cpcv [--groups 6] [--test-groups 2]

Each split is one cv job per model (factory.training.cv_schemes describes the schemes).
A flag of another scheme than the one chosen is refused rather than ignored.
"""

from __future__ import annotations

import argparse
from typing import Any

SCHEMES = ("purged", "walk-forward", "cpcv")  # factory.training.cv_schemes.SCHEMES
# flag -> (its scheme, default); defaults as factory.training.cv_schemes.CvScheme's
FLAGS = {
    "folds": ("purged", 5),
    "steps": ("walk-forward", 5),
    "window": ("walk-forward", "expanding"),
    "groups": ("cpcv", 6),
    "test_groups": ("cpcv", 2),
}


def add_cv_args(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group(
        "cross-validation (one cv job per split and model; purge and embargo as always)"
    )
    g.add_argument(
        "--cv",
        choices=SCHEMES,
        default="purged",
        help="purged: purged k-fold (default); walk-forward: train on the past, test the "
        "next block, step by step; cpcv: combinatorial purged CV (AFML ch. 12)",
    )
    g.add_argument("--folds", type=int, metavar="N", help="purged: folds (default 5)")
    g.add_argument(
        "--steps",
        type=int,
        metavar="N",
        help="walk-forward: test steps (default 5); the train period is cut into N+1 blocks "
        "by count and step s tests block s+1, so the first block is never tested",
    )
    g.add_argument(
        "--window",
        choices=("expanding", "sliding"),
        help="walk-forward: train on every block before the test block (expanding, default) "
        "or on the one block just before it (sliding)",
    )
    g.add_argument(
        "--groups",
        type=int,
        metavar="N",
        help="cpcv: groups the train period is cut into by count (default 6)",
    )
    g.add_argument(
        "--test-groups",
        type=int,
        metavar="K",
        help="cpcv: groups each split tests (default 2): C(N,K) splits, whose out-of-fold "
        "predictions make C(N-1,K-1) test paths",
    )
    g.add_argument("--no-cv", action="store_true", help="no cross-validation jobs")


def cv_fields(args: argparse.Namespace) -> dict[str, Any]:
    """The Submission fields of the CV arguments (jobs.submission.Submission)."""
    from jobs.submission import SubmitError

    out: dict[str, Any] = {"scheme": args.cv, "cv": not args.no_cv}
    for name, (scheme, default) in FLAGS.items():
        value = getattr(args, name)
        flag = "--" + name.replace("_", "-")
        if value is not None and scheme != args.cv:
            raise SubmitError(
                f"{flag} is for --cv {scheme}, not --cv {args.cv}; fix: drop {flag} or "
                f"pass --cv {scheme}"
            )
        out[name] = default if value is None else value
    return out
