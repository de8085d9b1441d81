"""Do uniqueness sample weights help? Every model on planted-signal bars, side by side.

The planted-signal bars of bench/planted_signal.py (horizon 5, all signals by default),
built from each of `--data-seeds`; for each model at `--profile` (tiny by default) and
each `sample_weight` method (factory.training.weights: none, uniqueness,
uniqueness_decay with `--time-decay`), the same model seed, the test figures of its
calibrated probabilities:
  skill   log-loss skill against the train prior (1 - loss / loss of prior)
  brier   Brier skill against the prior
  f1      macro-F1 of the model's decision (chance: what calls independent of the labels
          with the same class frequencies would get)
and, per model, the mean over the data seeds of each method's figures minus those of
`none` (d_skill, d_f1). Run it on your own machine:

    python bench/uniqueness.py [--models xgboost,lstm] [--data-seeds 3,4,5] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # runnable from a checkout without `pip install -e .`

import numpy as np  # noqa: E402

from bench.planted_signal import _datasets  # noqa: E402
from factory.data.signals import SIGNALS, parse_signals  # noqa: E402
from factory.evaluation.scores import (  # noqa: E402
    chance_macro_f1,
    class_prior,
    classification_report,
    decide,
)
from factory.models import MODELS, get_model, resolve_params  # noqa: E402
from factory.models.params import SAMPLE_WEIGHTS  # noqa: E402
from factory.training.checkpoint import CheckpointStore  # noqa: E402
from factory.training.local_context import LocalContext  # noqa: E402
from factory.training.weights import weights_summary  # noqa: E402


def run_one(name: str, data, home: Path, profile: str, method: str, decay: float) -> dict:
    start = time.perf_counter()
    values = {"profile": profile, "sample_weight": method}
    if method == "uniqueness_decay":
        values["time_decay"] = str(decay)
    params = resolve_params(name, values)
    ctx = LocalContext(CheckpointStore(home, f"{name}-{method}-{time.monotonic_ns()}"))
    model = get_model(name)(params).fit(data, ctx).calibrate(data)
    y, prior = data.labels("test"), class_prior(data.labels("train"))
    proba = model.predict_proba(data, "test")
    report = classification_report(y, proba, prior)
    return {
        "model": name,
        "method": method,
        "skill": report["log_loss_skill"],
        "brier": report["brier_skill"],
        "f1": report["macro_f1"],
        "chance": chance_macro_f1(y, decide(proba, prior)),
        "seconds": round(time.perf_counter() - start, 1),
    }


def _table(rows: list[dict]) -> str:
    head = f"{'seed':>5} {'model':<13}{'method':<18}{'skill':>8}{'brier':>8}{'f1':>7}{'chance':>8}"
    lines = [head, "-" * len(head)]
    for r in rows:
        lines.append(
            f"{r['data_seed']:>5} {r['model']:<13}{r['method']:<18}{r['skill']:>8.4f}"
            f"{r['brier']:>8.4f}{r['f1']:>7.3f}{r['chance']:>8.3f}"
        )
    return "\n".join(lines)


def differences(rows: list[dict]) -> list[dict]:
    """Per model and method: the mean over data seeds of (figure - that of `none`)."""
    base = {(r["data_seed"], r["model"]): r for r in rows if r["method"] == "none"}
    out = []
    for model in dict.fromkeys(r["model"] for r in rows):
        for method in dict.fromkeys(r["method"] for r in rows if r["method"] != "none"):
            mine = [r for r in rows if r["model"] == model and r["method"] == method]
            pairs = [(r, base[(r["data_seed"], model)]) for r in mine]
            d_skill = [r["skill"] - b["skill"] for r, b in pairs]
            d_f1 = [r["f1"] - b["f1"] for r, b in pairs]
            out.append(
                {
                    "model": model,
                    "method": method,
                    "d_skill": float(np.mean(d_skill)),
                    "d_f1": float(np.mean(d_f1)),
                    "better_skill": sum(d > 0 for d in d_skill),
                    "seeds": len(pairs),
                }
            )
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", default=",".join(MODELS))
    parser.add_argument("--signal", default=",".join(sorted(SIGNALS)))
    parser.add_argument("--days", type=int, default=20)
    parser.add_argument("--data-seeds", default="3")
    parser.add_argument("--profile", default="tiny")
    parser.add_argument("--methods", default=",".join(SAMPLE_WEIGHTS))
    parser.add_argument("--time-decay", type=float, default=0.5)
    parser.add_argument("--json", type=Path, help="also write the figures here")
    args = parser.parse_args(argv)
    names = [m.strip() for m in args.models.split(",") if m.strip()]
    methods = [m.strip() for m in args.methods.split(",") if m.strip()]
    rows, weights = [], {}
    with tempfile.TemporaryDirectory() as tmp:
        for seed in (int(s) for s in args.data_seeds.split(",")):
            data, _ = _datasets(Path(tmp), args.days, parse_signals(args.signal), seed)
            weights[seed] = weights_summary(data, "uniqueness", args.time_decay)
            for name in names:
                for method in methods:
                    row = run_one(name, data, Path(tmp), args.profile, method, args.time_decay)
                    rows.append(row | {"data_seed": seed})
                    print(_table(rows[-1:]).splitlines()[-1], f"{row['seconds']:.0f}s", flush=True)
    print(f"\nplanted: {args.signal}; {args.days} sessions; time_decay {args.time_decay}")
    for seed, w in weights.items():
        print(f"data seed {seed}: train labels' mean uniqueness {w['mean_uniqueness']:.3f}")
    print(_table(rows))
    print(f"\n{'model':<13}{'method':<18}{'d_skill':>9}{'d_f1':>8}  better skill")
    for d in differences(rows):
        print(
            f"{d['model']:<13}{d['method']:<18}{d['d_skill']:>9.4f}{d['d_f1']:>8.3f}"
            f"  {d['better_skill']}/{d['seeds']}"
        )
    if args.json:
        record = {"rows": rows, "differences": differences(rows), "weights": weights}
        args.json.write_text(json.dumps(record, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
