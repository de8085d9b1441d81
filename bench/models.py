"""Benchmark of the model registry on this machine (prints figures; not a test).

Every registered model at each profile, on a synthetic dataset of `--rows` decision rows:
  params     trainable parameters (deep) or trees x leaves at the profile's size
  samples/s  training rows x rounds (boosting) or x epochs (deep) per second
  s/unit     seconds per 100 rounds (boosting, steady state between checkpoints) or per
             epoch (deep, `~`: a bounded number of batches timed, extrapolated to the
             epoch, validation not included)
  ckpt       time inside `save_checkpoint` / training time at the profile's cadence
             (deep: one save's time x the saves an epoch makes, one per
             `checkpoint_every_s` plus the epoch end, / the epoch). Target <= 3 %.
Also our training loop against a bare PyTorch loop over the same batches (lstm, same
network, optimizer, batch size; target <= 1.10x), and LightGBM's seconds per round with
its automatic col/row-wise choice, force_col_wise and force_row_wise (random rows, and
the dataset's features tiled). Checkpoints go to a local temporary CheckpointStore.

    python bench/models.py [--models xgboost,lstm] [--profiles tiny,default]
                           [--rows 100000] [--quick] [--json]
"""

from __future__ import annotations

import argparse
import contextlib
import itertools
import json
import math
import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # runnable from a checkout without `pip install -e .`
BARS_PER_SESSION = 1334  # synthetic 1-minute bars per Globex session

SIZES = {  # quick / full
    "rows": (15_000, 100_000),
    "rounds": ({"tiny": 30, "default": 30}, {"tiny": 100, "default": 200}),
    "batches": ({"tiny": 10, "default": 2}, {"tiny": 100, "default": 12}),  # timed
    "deep_max_s": (5.0, 30.0),
    "deep_batch_cap": ({"default": 32}, {}),  # quick: default-profile batches cut to 32
    "bare_batches": ({"tiny": 30}, {"tiny": 200, "default": 6}),  # quick: tiny only
    "bare_reps": (2, 2),
    "lgbm_rows": (100_000, 1_000_000),
    "lgbm_rounds": (2, 3),
}


def build_data(rows: int, home: Path):
    from factory.data.config import DatasetConfig
    from factory.data.dataset import build_dataset
    from factory.data.synthetic import synthetic_bars, write_raw
    from factory.training.training_data import load_training_data

    days = math.ceil(rows / BARS_PER_SESSION)
    raw = write_raw(synthetic_bars("MES", days=days, seed=11), home / "MES_1m.parquet")
    config = DatasetConfig(symbol="MES", tick_size=0.25, tick_value_usd=1.25, horizons=(5,))
    return load_training_data(build_dataset(raw, config, home).dataset_dir, 5)


class TimedContext:
    """A LocalContext that times `save_checkpoint`, records reports, stops on demand."""

    def __init__(self, directory: Path, stop_after: int | None = None, max_s: float = 1e9):
        from factory.training.checkpoint import CheckpointStore
        from factory.training.local_context import LocalContext

        self.inner = LocalContext(CheckpointStore(directory, "bench"))
        self.job_id, self.attempt = self.inner.job_id, self.inner.attempt
        self.stop_after, self.max_s = stop_after, max_s
        self.save_s, self.saves, self.last_bytes = 0.0, 0, 0
        self.reports: list[tuple[float, int, int]] = []  # (perf_counter, step, total)
        self.cpu: list[float] = []  # process_time at each report

    def report(self, step, total, metrics=None):
        self.reports.append((time.perf_counter(), int(step), int(total)))
        self.cpu.append(time.process_time())

    def should_stop(self):
        if self.stop_after is None or not self.reports:
            return False
        first, last = self.reports[0], self.reports[-1]
        over_time = last[0] - first[0] >= self.max_s and len(self.reports) >= 2
        return last[1] >= self.stop_after or over_time

    def save_checkpoint(self, step, files, state):
        start = time.perf_counter()
        ok = self.inner.save_checkpoint(step, files, state)
        self.save_s += time.perf_counter() - start
        self.saves += 1
        self.last_bytes = sum(len(b) for b in files.values())
        return ok

    def latest_checkpoint(self):
        return self.inner.latest_checkpoint()

    def per_step(self, cpu: bool = False) -> float:
        """Median seconds (or CPU seconds) per step between consecutive reports (a median:
        the CPU may be shared, and bursts of load should not count)."""
        pts = self.reports
        if cpu:
            pts = [(c, s, t) for c, (_, s, t) in zip(self.cpu, self.reports, strict=True)]
        rates = sorted(
            (t1 - t0) / max(s1 - s0, 1) for (t0, s0, _), (t1, s1, _) in itertools.pairwise(pts)
        )
        return rates[len(rates) // 2]


def trees_x_leaves(name: str, p) -> str:
    n = p.n_estimators
    shapes = {
        "xgboost": lambda: f"{3 * n} trees x <={2**p.max_depth} leaves",
        "lightgbm": lambda: f"{3 * n} trees x <={p.num_leaves} leaves",
        "catboost": lambda: f"{n} trees x {2**p.depth} leaves (x3 values)",
    }
    return shapes[name]() if name in shapes else "n/a"


def boosting_figures(name: str, profile: str, data, rounds: int, tmp: Path) -> dict:
    from factory.models import get_model

    cls = get_model(name)
    p = cls.params_from(profile, {"n_estimators": rounds, "early_stopping_rounds": rounds})
    ctx = TimedContext(tmp)
    start = time.perf_counter()
    model = cls(p).fit(data, ctx)
    fit_s = time.perf_counter() - start
    done = model.n_rounds_
    steady = len(ctx.reports) >= 2
    per_round = ctx.per_step() if steady else fit_s / done
    return {
        "params": trees_x_leaves(name, cls.params_from(profile)),
        "rounds": done,
        "fit_s": round(fit_s, 2),
        "setup_s": round(max(ctx.reports[0][0] - start - per_round * ctx.reports[0][1], 0), 2),
        "samples_per_s": round(len(data.rows["train"]) / per_round),
        "s_per_100_rounds": round(per_round * 100, 2),
        "checkpoints": ctx.saves,
        "checkpoint_every_rounds": p.checkpoint_every_rounds,
        "ckpt_share": round(ctx.save_s / fit_s, 4),
        "ckpt_mb": round(ctx.last_bytes / 2**20, 2),
        "extrapolated": False,
        "note": "" if steady else "one checkpoint: s/100 rounds includes the setup",
    }


def deep_figures(name: str, profile: str, data, size: dict, tmp: Path) -> dict:
    """Time a bounded number of batches (the report after the first batch starts the
    clock) and extrapolate to the epoch. With `deep_batch_cap` (quick) a larger batch is
    cut to the cap and the rate per sample is taken as the same (said in `note`)."""
    from factory.models import get_model
    from factory.training.context import StopTraining

    cls = get_model(name)
    over: dict = {"report_every_batches": 1}
    cap, note = size["deep_batch_cap"].get(profile), ""
    if cap and cls.params_from(profile).batch_size > cap:
        over["batch_size"] = cap
        note = f"batch cut to {cap}"
    p = cls.params_from(profile, over)
    ctx = TimedContext(tmp, stop_after=size["batches"][profile] + 1, max_s=size["deep_max_s"])
    start = time.perf_counter()
    with contextlib.suppress(StopTraining):
        cls(p).fit(data, ctx)
    per_batch = ctx.per_step()
    net = cls.build_net(data.n_features, p)
    epoch_s = per_batch * len(data.rows["train"]) / p.batch_size
    save_each = ctx.save_s / max(ctx.saves, 1)
    per_epoch = math.floor(epoch_s / p.checkpoint_every_s) + 1
    return {
        "params": sum(t.numel() for t in net.parameters() if t.requires_grad),
        "batches_timed": ctx.reports[-1][1] - 1,
        "batch_size": p.batch_size,
        "setup_s": round(ctx.reports[0][0] - start - per_batch, 2),
        "samples_per_s": round(p.batch_size / per_batch),
        "s_per_epoch": round(epoch_s, 2),
        "checkpoints": ctx.saves,
        "save_s_each": round(save_each, 4),
        "ckpt_share": round(save_each * per_epoch / epoch_s, 4),
        "ckpt_mb": round(ctx.last_bytes / 2**20, 2),
        "extrapolated": True,
        "note": note,
    }


def _bare_loop(cls, p, data, n: int) -> tuple[float, float]:
    """Median seconds and CPU seconds per batch (the first left out) of a plain PyTorch
    loop over the batches our loop takes."""
    import torch
    import torch.nn.functional as F

    torch.manual_seed(p.seed)
    net = cls.build_net(data.n_features, p)
    opt = torch.optim.AdamW(net.parameters(), lr=p.learning_rate, weight_decay=p.weight_decay)
    windows, y = data.sequence("train", p.lookback)
    y, w = torch.from_numpy(y), torch.tensor(data.class_weights, dtype=torch.float32)
    order = torch.randperm(len(windows), generator=torch.Generator().manual_seed(p.seed))
    net.train()
    times, cpu = [], []
    for b in range(n):
        start, start_cpu = time.perf_counter(), time.process_time()
        idx = order[b * p.batch_size : (b + 1) * p.batch_size]
        x = torch.from_numpy(windows.batch(idx.numpy()))
        opt.zero_grad(set_to_none=True)
        loss = F.cross_entropy(net(x), y[idx], weight=w)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(net.parameters(), p.grad_clip)
        opt.step()
        times.append(time.perf_counter() - start)
        cpu.append(time.process_time() - start_cpu)
    return sorted(times[1:])[(n - 1) // 2], sorted(cpu[1:])[(n - 1) // 2]


def ours_vs_bare(profile: str, data, batches: int, reps: int, tmp: Path, name="lstm") -> dict:
    """Our loop's median seconds per batch (from its per-batch reports) against a bare
    loop's; `reps` times each, interleaved, the fastest of each kept (the CPU is shared).
    Also in process CPU time, which other processes disturb less."""
    from factory.models import get_model
    from factory.training.context import StopTraining

    cls = get_model(name)
    p = cls.params_from(profile, {"report_every_batches": 1})
    ours, bare, ours_cpu, bare_cpu = [], [], [], []
    for i in range(reps):
        ctx = TimedContext(tmp / f"ours-{i}", stop_after=batches + 1)
        with contextlib.suppress(StopTraining):
            cls(p).fit(data, ctx)
        ours.append(ctx.per_step())  # the clock starts after the first batch
        ours_cpu.append(ctx.per_step(cpu=True))
        wall, cpu = _bare_loop(cls, p, data, batches + 1)
        bare.append(wall)
        bare_cpu.append(cpu)
    return {
        "model": name,
        "profile": profile,
        "batches": batches,
        "batch_size": p.batch_size,
        "ours_s_per_batch": round(min(ours), 5),
        "bare_s_per_batch": round(min(bare), 5),
        "ratio": round(min(ours) / min(bare), 3),
        "ratio_cpu": round(min(ours_cpu) / min(bare_cpu), 3),
    }


def lightgbm_col_wise(X, y, rounds: int) -> dict:
    """Seconds per round (default-profile params) with LightGBM's automatic col/row-wise
    choice, force_col_wise and force_row_wise."""
    import lightgbm as lgb

    from factory.models.boosting_params import LightGBMParams
    from factory.models.lightgbm_model import booster_params

    messages: list[str] = []

    class _Log:
        def info(self, msg: str) -> None:
            messages.append(msg)

        warning = info

    lgb.register_logger(_Log())
    out: dict = {"rows": len(X), "cols": X.shape[1], "rounds": rounds}
    for mode in ("auto", "force_col_wise", "force_row_wise"):
        params = booster_params(LightGBMParams()) | {"verbosity": 1, "force_col_wise": False}
        params[mode] = mode != "auto"
        messages.clear()
        start = time.perf_counter()
        booster = lgb.Booster(params, lgb.Dataset(X, y, params=params))
        setup = time.perf_counter() - start
        times = []
        for _ in range(rounds):
            start = time.perf_counter()
            booster.update()
            times.append(time.perf_counter() - start)
        chosen = [m.split("Auto-choosing ")[1].split(" ")[0] for m in messages if "Auto-" in m]
        out[mode] = {
            "setup_s": round(setup, 2),
            "s_per_round": round(sorted(times)[len(times) // 2], 3),
            "chosen": chosen[0] if chosen else "forced",
        }
        del booster
    return out


def lightgbm_inputs(rows: int, data) -> dict:
    """~`rows` random rows x 100, and the dataset's train features tiled to ~`rows`."""
    import numpy as np

    rng = np.random.default_rng(0)
    X, y = data.tabular("train")
    tiles = max(rows // len(X), 1)
    return {
        "random": (rng.standard_normal((rows, 100), dtype=np.float32), rng.integers(0, 3, rows)),
        "dataset_tiled": (np.tile(X, (tiles, 1)), np.tile(y, tiles)),
    }


def run(args) -> dict:
    from factory.models import MODELS, get_model

    quick = 0 if args.quick else 1
    size = {k: v[quick] for k, v in SIZES.items()}
    rows = args.rows or size["rows"]
    names = args.models.split(",") if args.models else list(MODELS)
    profiles = args.profiles.split(",")
    load = [round(x, 1) for x in os.getloadavg()]
    out: dict = {"machine": {"cpus": os.cpu_count(), "loadavg_start": load}, "models": []}
    with tempfile.TemporaryDirectory(prefix="bench-models-") as tmp_dir:
        tmp = Path(tmp_dir)
        start = time.perf_counter()
        data = build_data(rows, tmp / "home")
        out["data"] = {
            "decision_rows": len(data.X),
            "train_rows": len(data.rows["train"]),
            "features": data.n_features,
            "build_s": round(time.perf_counter() - start, 1),
        }
        for name in names:
            deep = hasattr(get_model(name), "build_net")
            for profile in profiles:
                began = time.perf_counter()
                where = tmp / f"ck-{name}-{profile}"
                if deep:
                    figures = deep_figures(name, profile, data, size, where)
                else:
                    figures = boosting_figures(name, profile, data, size["rounds"][profile], where)
                row = {"model": name, "profile": profile, "kind": "deep" if deep else "boosting"}
                out["models"].append(row | figures)
                took = f"{time.perf_counter() - began:.0f} s"
                print(f"  {name} {profile}: {took}", file=sys.stderr, flush=True)
        if "lstm" in names:
            bare = size["bare_batches"]
            out["ours_vs_bare"] = [
                ours_vs_bare(p, data, bare[p], size["bare_reps"], tmp / f"bare-{p}")
                for p in profiles
                if p in bare
            ]
        if "lightgbm" in names:
            inputs = lightgbm_inputs(size["lgbm_rows"], data)
            out["lightgbm_col_wise"] = {
                what: lightgbm_col_wise(X, y, size["lgbm_rounds"])
                for what, (X, y) in inputs.items()
            }
    out["seconds"] = round(time.perf_counter() - start, 1)
    out["machine"]["loadavg_end"] = [round(x, 1) for x in os.getloadavg()]
    return out


def _model_line(r: dict) -> str:
    if r["kind"] == "deep":
        unit = f"~{r['s_per_epoch']:.1f}/epoch"
        how = f"{r['batches_timed']} batches of {r['batch_size']} timed"
    else:
        unit = f"{r['s_per_100_rounds']:.2f}/100 rnd"
        how = f"{r['rounds']} rounds, {r['checkpoints']} checkpoint(s)"
    how += f"; {r['note']}" if r["note"] else ""
    params = f"{r['params']:,}" if isinstance(r["params"], int) else r["params"]
    return (
        f"{r['model']:<13}{r['profile']:<8}{params:>34}{r['samples_per_s']:>10,}"
        f"{unit:>16}{r['ckpt_share'] * 100:>7.2f}%{r['ckpt_mb']:>8.1f}  {how}"
    )


def _print_table(out: dict) -> None:
    d, m = out["data"], out["machine"]
    print(
        f"data: {d['decision_rows']:,} decision rows ({d['train_rows']:,} train), "
        f"{d['features']} features; {m['cpus']} CPUs, load average {m['loadavg_start'][0]} at "
        f"the start, {m['loadavg_end'][0]} at the end (other processes share the CPUs)"
    )
    head = f"{'model':<13}{'profile':<8}{'params':>34}{'samples/s':>10}{'s/unit':>16}"
    print(f"{head}{'ckpt':>8}{'ckpt MB':>8}")
    for r in out["models"]:
        print(_model_line(r))
    print("~ extrapolated to the epoch from the batches timed (validation not included)")
    for r in out.get("ours_vs_bare", []):
        print(
            f"{r['model']} {r['profile']}: our loop {r['ours_s_per_batch'] * 1000:.1f} ms/batch, "
            f"bare PyTorch {r['bare_s_per_batch'] * 1000:.1f} ms/batch (batch {r['batch_size']}, "
            f"{r['batches']} batches): {r['ratio']:.2f}x, in CPU time {r['ratio_cpu']:.2f}x "
            "(target <= 1.10x)"
        )
    for what, lg in out.get("lightgbm_col_wise", {}).items():
        auto, col, row = lg["auto"], lg["force_col_wise"], lg["force_row_wise"]
        print(
            f"lightgbm s/round on {lg['rows']:,} x {lg['cols']} ({what}, median of "
            f"{lg['rounds']}): auto (chose {auto['chosen']}) {auto['s_per_round']:.2f}, "
            f"force_col_wise {col['s_per_round']:.2f}, force_row_wise {row['s_per_round']:.2f}"
        )
    print(f"total {out['seconds']:.0f} s")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", help="comma-separated registry names (default: all)")
    parser.add_argument("--profiles", default="tiny,default")
    parser.add_argument("--rows", type=int, help="decision rows (default 100000; quick 15000)")
    parser.add_argument("--quick", action="store_true", help="small sizes (< 2 minutes)")
    parser.add_argument("--json", action="store_true", help="print the results as JSON")
    args = parser.parse_args()
    out = run(args)
    if args.json:
        print(json.dumps(out, indent=1))
    else:
        _print_table(out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
