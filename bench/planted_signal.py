"""Every model on planted-signal bars: what calibration does, and whether it learns.

Synthetic MES bars with the effects of factory.data.signals planted (all of them by
default), horizon 5. For each model at `--profile` (tiny by default):
  skill      test log-loss skill against the train prior (1 - loss / loss of prior)
  brier      test Brier skill against the prior
  ece        test top-label calibration error
  f1 / chance  test macro-F1 of the model's decision, and the macro-F1 that calls made
             independently of the labels with the same class frequencies would get
skill, brier and ece before calibration (the model's raw, class-balanced probabilities)
and all after (prior shift + the model's `calibration`, fitted on the validation rows); the
skill of the same model trained on a copy whose labels are shuffled (it must not beat
the prior). Run it on your own machine to check the whole pipeline there:

    python bench/planted_signal.py [--models xgboost,lstm] [--days 20] [--json out.json]
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # runnable from a checkout without `pip install -e .`

import numpy as np  # noqa: E402

from factory.data.config import DatasetConfig  # noqa: E402
from factory.data.dataset import build_dataset  # noqa: E402
from factory.data.signals import SIGNALS, parse_signals  # noqa: E402
from factory.data.synthetic import synthetic_bars, write_raw  # noqa: E402
from factory.evaluation.scores import (  # noqa: E402
    chance_macro_f1,
    class_prior,
    classification_report,
    decide,
)
from factory.models import MODELS, get_model, resolve_params  # noqa: E402
from factory.training.checkpoint import CheckpointStore  # noqa: E402
from factory.training.local_context import LocalContext  # noqa: E402
from factory.training.training_data import load_training_data  # noqa: E402


def _figures(y, proba, prior) -> dict[str, float]:
    report = classification_report(y, proba, prior)
    return {
        "skill": report["log_loss_skill"],
        "brier": report["brier_skill"],
        "ece": report["calibration_error"],
        "f1": report["macro_f1"],
        "chance": chance_macro_f1(y, decide(proba, prior)),
    }


def run_model(name: str, data, shuffled, home: Path, profile: str) -> dict:
    start = time.perf_counter()
    row: dict = {"model": name}
    for tag, d in (("planted", data), ("shuffled", shuffled)):
        params = resolve_params(name, {"profile": profile})
        ctx = LocalContext(CheckpointStore(home, f"{name}-{tag}"))
        model = get_model(name)(params).fit(d, ctx).calibrate(d)
        y, prior = d.labels("test"), class_prior(d.labels("train"))
        after = _figures(y, model.predict_proba(d, "test"), prior)
        if tag == "planted":
            row["before"] = _figures(y, model._raw_proba(d, "test"), prior)
            row["after"] = after
            row["calibration"] = model.calibration_.method
        else:
            row["shuffled_skill"] = after["skill"]
    row["seconds"] = round(time.perf_counter() - start, 1)
    return row


def _datasets(home: Path, days: int, signals: tuple[str, ...], seed: int = 3):
    bars = synthetic_bars("MES", days=days, seed=seed, signals=signals)
    raw = write_raw(bars, home / f"MES_planted_{seed}.parquet")
    config = DatasetConfig(symbol="MES", tick_size=0.25, horizons=(5,), lookback_bars=32)
    data = load_training_data(build_dataset(raw, config, home).dataset_dir, 5)
    y, rng = data.y.copy(), np.random.default_rng(0)
    for split in ("train", "val", "test"):
        rows = data.split_rows(split)
        y[rows] = rng.permutation(y[rows])
    return data, dataclasses.replace(data, y=y)


def _table(rows: list[dict]) -> str:
    head = (
        f"{'model':<13}{'cal':<12}{'skill':>8}{'brier':>8}{'ece':>7}"
        f"  ->{'skill':>8}{'brier':>8}{'ece':>7}{'f1':>7}{'chance':>8}{'shuffled':>10}{'s':>6}"
    )
    lines = [head, "-" * len(head)]
    for r in rows:
        b, a = r["before"], r["after"]
        lines.append(
            f"{r['model']:<13}{r['calibration']:<12}"
            f"{b['skill']:>8.4f}{b['brier']:>8.4f}{b['ece']:>7.3f}  ->"
            f"{a['skill']:>8.4f}{a['brier']:>8.4f}{a['ece']:>7.3f}{a['f1']:>7.3f}"
            f"{a['chance']:>8.3f}{r['shuffled_skill']:>10.4f}{r['seconds']:>6.0f}"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", default=",".join(MODELS))
    parser.add_argument("--signal", default=",".join(sorted(SIGNALS)))
    parser.add_argument("--days", type=int, default=20)
    parser.add_argument("--profile", default="tiny")
    parser.add_argument("--json", type=Path, help="also write the figures here")
    args = parser.parse_args(argv)
    names = [m.strip() for m in args.models.split(",") if m.strip()]
    with tempfile.TemporaryDirectory() as tmp:
        data, shuffled = _datasets(Path(tmp), args.days, parse_signals(args.signal))
        rows = [run_model(n, data, shuffled, Path(tmp), args.profile) for n in names]
    print(f"planted: {args.signal}; {args.days} sessions; test rows {len(data.labels('test'))}")
    print("before calibration (raw, class-balanced)        after (prior shift + calibration)")
    print(_table(rows))
    failed = [r["model"] for r in rows if r["after"]["skill"] <= 0 or r["shuffled_skill"] > 0]
    print(
        "every model beats the prior, none on shuffled labels"
        if not failed
        else f"NOT LEARNED OR LEAKING: {', '.join(failed)}"
    )
    if args.json:
        args.json.write_text(json.dumps({"signal": args.signal, "rows": rows}, indent=1))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
