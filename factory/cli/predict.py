"""`factory predict`: probabilities per bar from a model or ensemble bundle and raw bars.

The bundle's checksums are verified first; features are built by the dataset
pipeline's own code. Only argparse is imported at module level.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

CLASS_NAMES = {-1: "down", 0: "flat", 1: "up"}


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "predict",
        help="predict every bar of a raw file with a model or ensemble bundle",
        description="Verify the bundle's checksums, build features from the raw 1-minute bars "
        "with the same code as training, and predict each decision bar that has complete "
        "features. Writes parquet or CSV (by --out's suffix); without --out, prints a summary.",
    )
    p.add_argument("--bundle", required=True, type=Path, help="a train or ensemble bundle folder")
    p.add_argument("--raw", required=True, type=Path, help="parquet or CSV of 1-minute bars")
    p.add_argument("--tz", help="timezone of naive timestamps (default: the training dataset's)")
    p.add_argument("--out", type=Path, help="output file: .parquet, .pq, .csv or .csv.gz")
    p.add_argument("--json", action="store_true", help="print one JSON object (the summary)")
    p.set_defaults(handler=run_predict)


def _summary(frame, args: argparse.Namespace) -> dict:
    counts = frame["pred"].value_counts()
    return {
        "bundle": str(args.bundle),
        "raw": str(args.raw),
        "rows": len(frame),
        "first": frame.index[0].isoformat(),
        "last": frame.index[-1].isoformat(),
        "predicted": {name: int(counts.get(k, 0)) for k, name in CLASS_NAMES.items()},
        "out": str(args.out) if args.out else None,
    }


def run_predict(args: argparse.Namespace) -> int:
    from factory.inference import output_format, predict_raw, write_predictions

    if args.out:
        output_format(args.out)  # a bad suffix fails before any work
    frame = predict_raw(args.bundle, args.raw, args.tz)
    if args.out:
        write_predictions(frame, args.out)
    summary = _summary(frame, args)
    if args.json:
        print(json.dumps(summary))
        return 0
    p = summary["predicted"]
    print(
        f"predicted {summary['rows']} bars {summary['first']} .. {summary['last']}: "
        f"down {p['down']}  flat {p['flat']}  up {p['up']}"
    )
    if args.out:
        print(f"  wrote {args.out}")
    else:
        print(frame.tail(5).to_string(float_format=lambda v: f"{v:.4f}"))
    sys.stdout.flush()
    return 0
