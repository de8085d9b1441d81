"""`factory data`: build a dataset from raw bars (or synthetic ones), with no Redis.

Only argparse is imported at module level: the `factory` command lists this
subcommand without paying for pandas or torch.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "data",
        help="build a model-ready dataset from 1-minute bars (phases 1-5)",
        description="Ingest, validate, clean, featurise, label and split 1-minute bars into "
        "<home>/data/processed/<SYMBOL>/<dataset_id>/. A second run with the same input and "
        "options finds the cached dataset.",
    )
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--raw", type=Path, help="parquet or CSV (optionally .gz) of 1-minute bars")
    src.add_argument(
        "--synthetic",
        action="store_true",
        help="generate realistic synthetic bars (see --days, --seed)",
    )
    p.add_argument("--symbol", required=True, help="e.g. MES, MGC (sets tick size and value)")
    p.add_argument(
        "--tz",
        default="UTC",
        help="timezone of naive timestamps (default UTC; 'auto' detects it from "
        "the daily break); tz-aware input is converted",
    )
    p.add_argument("--timeframe", default="1min", help="decision bar size (default 1min)")
    p.add_argument(
        "--horizons",
        default="5,10,15,20",
        help="label horizons in decision bars (default 5,10,15,20)",
    )
    p.add_argument("--lookback", type=int, default=64, help="sequence window length (default 64)")
    p.add_argument("--tick-size", type=float, help="needed for symbols without a known spec")
    p.add_argument("--tick-value", type=float, help="USD per tick (defaults from the spec)")
    p.add_argument("--days", type=int, default=20, help="sessions of synthetic bars (default 20)")
    p.add_argument("--seed", type=int, default=0, help="seed of synthetic bars (default 0)")
    p.add_argument(
        "--signal",
        metavar="NAME[,NAME]",
        help="with --synthetic: plant known, learnable effects (time_of_day, momentum, "
        "reversal; see factory/data/signals.py) to check that models can learn here",
    )
    p.add_argument("--home", help="storage root (default $FACTORY_HOME, else ./factory_home)")
    p.add_argument("--json", action="store_true", help="print one JSON object instead of progress")
    p.set_defaults(handler=run_data)


def _parse_horizons(text: str) -> tuple[int, ...]:
    from factory.errors import ConfigError

    try:
        return tuple(int(h) for h in text.split(",") if h.strip())
    except ValueError as exc:
        raise ConfigError(
            f"--horizons {text!r} is not a list of integers; fix: e.g. --horizons 5,10,15,20"
        ) from exc


def _synthetic_raw(args: argparse.Namespace, spec, layout) -> Path:
    """`--synthetic`: the raw file of synthetic bars under the root, written once."""
    from factory.data.signals import parse_signals
    from factory.data.synthetic import synthetic_bars, write_raw
    from factory.layout import ensure_writable

    if args.days < 1:
        from factory.errors import ConfigError

        raise ConfigError("--days must be >= 1")
    ensure_writable(layout.raw_dir())
    signals = parse_signals(args.signal)
    target = layout.synthetic_raw_file(spec.symbol, args.days, args.seed, signals)
    if not target.exists():
        bars = synthetic_bars(
            spec.symbol, days=args.days, seed=args.seed, tick_size=spec.tick_size, signals=signals
        )
        write_raw(bars, target)
    return target


def run_data(args: argparse.Namespace) -> int:
    from factory.data.config import DatasetConfig
    from factory.data.dataset import PHASES, build_dataset
    from factory.data.symbols import symbol_spec
    from factory.layout import Layout
    from factory.progress import PhaseProgress

    layout = Layout.at(args.home)
    spec = symbol_spec(args.symbol, args.tick_size, args.tick_value)
    config = DatasetConfig(
        symbol=spec.symbol,
        tick_size=spec.tick_size,
        tick_value_usd=spec.tick_value_usd,
        tz=args.tz,
        timeframe=args.timeframe,
        horizons=_parse_horizons(args.horizons),
        lookback_bars=args.lookback,
    )
    if args.signal and not args.synthetic:
        from factory.errors import ConfigError

        raise ConfigError("--signal plants effects into synthetic bars; fix: add --synthetic")
    raw = _synthetic_raw(args, spec, layout) if args.synthetic else args.raw
    progress = PhaseProgress(PHASES, enabled=not args.json)
    result = build_dataset(raw, config, layout.home, progress)
    summary = result.summary()
    if args.json:
        print(json.dumps(summary))
        return 0
    for warning in summary["warnings"]:
        print(f"warning: {warning}", file=sys.stderr)
    verb = "found cached dataset" if result.cached else "built dataset"
    took = "built" if result.cached else "in"
    print(
        f"{verb} {result.dataset_id}: {summary['rows']} rows x {summary['n_features']} "
        f"features ({took} {summary['seconds']:.1f} s)"
    )
    print(f"  {result.dataset_dir}")
    for h, counts in summary["label_counts"].items():
        print(
            f"  h={h}: down {counts['-1']}  flat {counts['0']}  up {counts['1']}  "
            f"unlabelled {counts['unlabelled']}"
        )
    sys.stdout.flush()
    return 0
