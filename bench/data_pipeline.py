"""Benchmark of the data factory: seconds per phase, bars per second, peak RSS.

Cases, each in its own process so that its peak RSS is its own:
  gold   the real XAUUSD 2017 file from ../shared/data/real (352,360 bars), if present
  synth  2,000,000 synthetic 1-minute bars (about 5.5 years)
Also the time of a bare `pandas.read_csv` of the gold file, in the same run, so the
ratio to it holds on a noisy machine. Targets: 2,000,000 bars in <= 60 s end to end,
peak RSS <= 4 GB.

    python bench/data_pipeline.py [--bars 2000000] [--horizons 5,10,15,20] [--json]
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # runnable from a checkout without `pip install -e .`
GOLD = ROOT.parent / "shared" / "data" / "real" / "XAUUSD_1m_2017_histdata.csv.gz"
BARS_PER_SESSION = 1330  # fewer than 1380: missing minutes and early closes


def _peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _build(raw: Path, symbol: str, tz: str, horizons: tuple[int, ...], home: Path) -> dict:
    from factory.data.config import DatasetConfig
    from factory.data.dataset import build_dataset
    from factory.data.symbols import symbol_spec

    spec = symbol_spec(symbol)
    config = DatasetConfig(symbol=spec.symbol, tick_size=spec.tick_size, tz=tz, horizons=horizons)
    start = time.perf_counter()
    result = build_dataset(raw, config, home)
    seconds = time.perf_counter() - start
    manifest = result.manifest
    return {
        "input_bars": manifest.rows["raw"],
        "decision_rows": manifest.rows["decision"],
        "n_features": len(manifest.feature_columns),
        "seconds_total": round(seconds, 2),
        "seconds_per_phase": {k: v for k, v in manifest.seconds.items() if k != "total"},
        "bars_per_s": round(manifest.rows["raw"] / seconds),
    }


def run_case(case: str, n_bars: int, horizons: tuple[int, ...]) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        home = Path(tmp)
        if case == "gold":
            out = _build(GOLD, "MGC", "America/New_York", horizons, home)
        elif case == "synth":
            from factory.data.synthetic import synthetic_bars, write_raw

            start = time.perf_counter()
            bars = synthetic_bars("MES", days=n_bars // BARS_PER_SESSION + 1, seed=7).iloc[:n_bars]
            raw = write_raw(bars, home / "MES_1m.parquet")
            generate_s = time.perf_counter() - start
            del bars
            out = _build(raw, "MES", "UTC", horizons, home)
            out["generate_s"] = round(generate_s, 2)
        elif case == "read_csv":
            import pandas as pd

            start = time.perf_counter()
            frame = pd.read_csv(GOLD, sep=";", header=None)
            seconds = time.perf_counter() - start
            out = {
                "input_bars": len(frame),
                "seconds_total": round(seconds, 2),
                "bars_per_s": round(len(frame) / seconds),
            }
        else:
            raise SystemExit(f"unknown case {case!r}")
    out["peak_rss_mb"] = round(_peak_rss_mb())
    return out


def _child(case: str, args: argparse.Namespace) -> dict:
    cmd = [
        sys.executable,
        __file__,
        "--case",
        case,
        "--bars",
        str(args.bars),
        "--horizons",
        args.horizons,
    ]
    proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        return {"error": proc.stderr.strip().splitlines()[-1] if proc.stderr else "failed"}
    return json.loads(proc.stdout.strip().splitlines()[-1])


def _print_table(results: dict) -> None:
    print(f"{'case':<10}{'bars':>11}{'seconds':>9}{'bars/s':>11}{'peak RSS MB':>13}  phases (s)")
    for case, r in results.items():
        if "error" in r:
            print(f"{case:<10} error: {r['error']}")
            continue
        phases = " ".join(f"{k}={v:.2f}" for k, v in r.get("seconds_per_phase", {}).items())
        print(
            f"{case:<10}{r['input_bars']:>11,}{r['seconds_total']:>9.2f}"
            f"{r.get('bars_per_s', 0):>11,}{r['peak_rss_mb']:>13,}  {phases}"
        )
    gold, bare = results.get("gold", {}), results.get("read_csv", {})
    if "seconds_total" in gold and bare.get("seconds_total"):
        print(
            f"gold pipeline / bare pandas.read_csv: "
            f"{gold['seconds_total'] / bare['seconds_total']:.1f}x"
        )
    synth = results.get("synth", {})
    if "seconds_total" in synth:
        ok = synth["seconds_total"] <= 60 and synth["peak_rss_mb"] <= 4096
        print(f"target (<= 60 s, <= 4096 MB for 2M bars): {'met' if ok else 'NOT met'}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--case", help=argparse.SUPPRESS)
    parser.add_argument("--bars", type=int, default=2_000_000, help="synthetic bars")
    parser.add_argument("--horizons", default="5,10,15,20")
    parser.add_argument("--json", action="store_true", help="print the results as JSON")
    args = parser.parse_args()
    horizons = tuple(int(h) for h in args.horizons.split(","))
    if args.case:
        print(json.dumps(run_case(args.case, args.bars, horizons)))
        return 0
    cases = ["read_csv", "gold", "synth"] if GOLD.exists() else ["synth"]
    if not GOLD.exists():
        print(f"note: {GOLD} not found: the gold cases are skipped", file=sys.stderr)
    results = {case: _child(case, args) for case in cases}
    if args.json:
        print(json.dumps(results, indent=2))
    else:
        _print_table(results)
    return 0 if all("error" not in r for r in results.values()) else 1


if __name__ == "__main__":
    sys.exit(main())
