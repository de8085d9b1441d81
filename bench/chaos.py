"""Chaos on lagging storage: a plan of xgboost and lstm (tiny), 2 folds and the
ensemble, run undisturbed on plain storage, then on Drive-like lagging storage
(tests/lagging_storage.py: every worker its own late view) through `--kills`
disruptions (SIGKILLs of busy workers, one of them a freeze past the lease) and a
Redis restart (tests/chaos_run.py). Prints kills, recovery from kill to resumed
training (p50/p95), work lost per kill, jobs re-run because an output never arrived,
failed jobs, duplicate outputs, zombie writes, and whether every prediction equals the
undisturbed run's.

    python bench/chaos.py [--kills 20] [--every 4] [--workers 2] [--seed 0] [--json]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
from dataclasses import asdict
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from factory.data.config import DatasetConfig  # noqa: E402
from factory.data.dataset import build_dataset  # noqa: E402
from factory.data.synthetic import synthetic_bars, write_raw  # noqa: E402
from tests.chaos_run import Chaos, run_plan  # noqa: E402


def _dataset(folder: Path) -> Path:
    raw = write_raw(synthetic_bars("MES", days=6, seed=1), folder / "MES_1m.parquet")
    config = DatasetConfig(symbol="MES", tick_size=0.25, tick_value_usd=1.25, horizons=(5,))
    return build_dataset(raw, config, folder / "home").dataset_dir


def _pct(values: list[float], q: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--kills", type=int, default=20, help="disruptions (one is a freeze)")
    p.add_argument("--every", type=float, default=4.0, help="seconds between disruptions")
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--json", action="store_true")
    args = p.parse_args(argv)
    chaos = Chaos(kills=args.kills, kill_every_s=args.every, seed=args.seed)
    with tempfile.TemporaryDirectory(prefix="mlf-chaos-") as tmp:
        base = Path(tmp)
        dataset = _dataset(base / "data")
        plain = run_plan(base / "plain", dataset, None, workers=args.workers)
        out = run_plan(base / "chaos", dataset, chaos, workers=args.workers, timeout_s=3600)
    figures = {
        "delays": asdict(chaos.delays),
        "kills": out.kills,
        "freezes": out.freezes,
        "redis_restarts": out.redis_restarts,
        "recovery_p50_s": _pct(out.recoveries_s, 0.5),
        "recovery_p95_s": _pct(out.recoveries_s, 0.95),
        "work_lost_mean_s": statistics.fmean(out.lost_s) if out.lost_s else None,
        "work_lost_max_s": max(out.lost_s, default=None),
        "output_reruns": out.output_reruns,
        "failed_jobs": len(out.failed),
        "duplicate_outputs": len(out.duplicates),
        "zombie_writes": len(out.zombies),
        "predictions_equal": out.fingerprints() == plain.fingerprints(),
        "seconds_plain": round(plain.seconds, 1),
        "seconds_chaos": round(out.seconds, 1),
    }
    if args.json:
        print(json.dumps(figures))
        return 0
    d = chaos.delays
    print(
        f"lagging storage: uploads {d.upload_s[0]}-{d.upload_s[1]} s late ({d.slow_p:.0%} "
        f"{d.slow_s} s late), seen by others {d.visible_s[0]}-{d.visible_s[1]} s after"
    )
    for key, value in figures.items():
        if key != "delays":
            shown = f"{value:.1f}" if isinstance(value, float) else value
            print(f"  {key:<20} {shown}")
    return 0 if figures["predictions_equal"] and not out.failed and not out.zombies else 1


if __name__ == "__main__":
    sys.exit(main())
