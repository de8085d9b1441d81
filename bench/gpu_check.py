"""One prepared check of the GPU path (issue 16): run it once on a machine with CUDA.

For each deep model at its default profile, with AMP (CUDA: fp16 + GradScaler):
  - trains up to `steps` steps (bounded by `max_s`) at the profile's batch and at the
    largest batch that fits (doubling from the profile's batch while the peak memory
    stays under 90 % of the device's; out-of-memory ends the search), and gives
    samples/s, peak GPU memory and the training time of one epoch of 1,000,000
    decision rows at that rate (validation not included);
  - stops a short run (2 epochs) at its first checkpoint, resumes it with a fresh model
    from the checkpoint store (what a kill leaves behind) and says whether its test
    predictions equal an uninterrupted run's byte for byte on this device.
xgboost, lightgbm and catboost then train a few rounds on their GPU device where the
installed build supports it; where it does not, the table says why.

Without CUDA it runs its CPU variant: the tiny profile, bf16 autocast, a few steps, the
batch search capped at 4x (no memory limit is measured on a CPU); under 2 minutes.
It writes one JSON file (--out) and prints a table.

    python bench/gpu_check.py [--out gpu_check.json] [--models lstm,tft] [--cpu]
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import json
import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # runnable from a checkout without `pip install -e .`

from bench.models import TimedContext, build_data  # noqa: E402

DEEP_MODELS = ("lstm", "gru", "tcn", "patchtst", "itransformer", "tft")
ROWS_1M = 1_000_000
SIZES = {
    "cuda": {
        "profile": "default",
        "amp": "auto",
        "rows": 60_000,
        "resume_rows": 15_000,
        "steps": 300,
        "max_s": 12.0,
        "probe_steps": 3,
        "max_factor": 64,
        "memory_share": 0.9,
        "rounds": 50,
    },
    "cpu": {
        "profile": "tiny",
        "amp": "bf16",
        "rows": 5_000,
        "resume_rows": 5_000,
        "steps": 20,
        "max_s": 1.0,
        "probe_steps": 2,
        "max_factor": 4,
        "memory_share": None,
        "rounds": 10,
    },
}
NO_SAVES = {"checkpoint_every_s": 3600.0, "checkpoint_min_interval_s": 3600.0}


def device_info(use_cuda: bool) -> dict:
    import torch

    out = {"cuda": use_cuda, "torch": torch.__version__, "cpus": os.cpu_count()}
    if use_cuda:
        props = torch.cuda.get_device_properties(0)
        out |= {
            "name": props.name,
            "memory_gb": round(props.total_memory / 2**30, 1),
            "cuda_version": torch.version.cuda,
            "cudnn": torch.backends.cudnn.version(),
        }
    else:
        out["name"] = "cpu"
    return out


@contextlib.contextmanager
def oom_raises():
    """Out-of-memory raises (no halving) while a batch size is being tried."""
    import factory.models.deep_device as deep_device

    saved = deep_device.OOM_HALVING_DEVICES
    deep_device.OOM_HALVING_DEVICES = set()
    try:
        yield
    finally:
        deep_device.OOM_HALVING_DEVICES = saved


def deep_params(name: str, size: dict, batch: int, **extra):
    from factory.models import get_model

    over = {"batch_size": batch, "amp": size["amp"], "epochs": 1000, "patience": 1000}
    over |= {"report_every_batches": 1} | NO_SAVES | extra
    return get_model(name).params_from(size["profile"], over)


def train_rate(name: str, data, size: dict, batch: int, steps: int, tmp: Path) -> dict:
    """Samples/s (median step time, the first step left out), peak memory, steps run."""
    import torch

    from factory.models import get_model
    from factory.training.context import StopTraining

    cuda = torch.cuda.is_available() and size["memory_share"] is not None
    if cuda:
        gc.collect()  # what a failed probe left (its traceback's frames)
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats()
    p = deep_params(name, size, batch)
    ctx = TimedContext(tmp, stop_after=steps + 1, max_s=size["max_s"])
    with contextlib.suppress(StopTraining):
        get_model(name)(p).fit(data, ctx)
    per_step = ctx.per_step()
    rate = batch / per_step
    return {
        "batch": batch,
        "steps": ctx.reports[-1][1],
        "samples_per_s": round(rate),
        "peak_mem_mb": round(torch.cuda.max_memory_allocated() / 2**20) if cuda else None,
        "s_per_epoch_1m": round(ROWS_1M / rate, 1),
    }


def _fits(name: str, data, size: dict, batch: int, tmp: Path) -> bool:
    import torch

    try:
        with oom_raises():
            row = train_rate(name, data, size, batch, size["probe_steps"], tmp)
    except (torch.OutOfMemoryError, RuntimeError):  # cuDNN/cuBLAS fail as RuntimeError
        return False
    if size["memory_share"] is None:
        return True
    total = torch.cuda.get_device_properties(0).total_memory / 2**20
    return row["peak_mem_mb"] <= size["memory_share"] * total


def largest_batch(name: str, data, size: dict, start: int, tmp: Path) -> int:
    """Double the batch from `start` while it fits (and the train split holds 4 batches)."""
    best, batch = start, start * 2
    limit = min(start * size["max_factor"], len(data.rows["train"]) // 4)
    while batch <= limit and _fits(name, data, size, batch, tmp / f"probe-{batch}"):
        best, batch = batch, batch * 2
    return best


def resume_check(name: str, data, size: dict, tmp: Path) -> dict:
    """2 epochs uninterrupted against stopped at the first checkpoint and resumed by a
    fresh model from the store: the test predictions byte for byte."""
    from factory.models import get_model
    from factory.training.checkpoint import CheckpointStore
    from factory.training.context import StopTraining
    from factory.training.local_context import LocalContext

    cls = get_model(name)
    over = {"amp": size["amp"], "epochs": 2, "patience": 2, "checkpoint_min_interval_s": 0.0}
    p = cls.params_from(size["profile"], over)
    start = time.perf_counter()
    whole = cls(p).fit(data, LocalContext(CheckpointStore(tmp / "whole", "job")))
    store = CheckpointStore(tmp / "killed", "job")
    box = {}
    box["ctx"] = LocalContext(store, stop=lambda: len(box["ctx"].checkpoint_steps) >= 1)
    with contextlib.suppress(StopTraining):
        cls(p).fit(data, box["ctx"])
    resumed = cls(p).fit(data, LocalContext(store))
    ours, theirs = resumed.predict_proba(data, "test"), whole.predict_proba(data, "test")
    return {
        "equal": ours.tobytes() == theirs.tobytes(),
        "resumed_from": resumed.resumed_from_,
        "bit_exact_flag": resumed.fit_summary()["bit_exact"],
        "seconds": round(time.perf_counter() - start, 1),
    }


def deep_model(name: str, data, resume_data, size: dict, tmp: Path) -> dict:
    from factory.models import get_model

    start = time.perf_counter()
    batch = get_model(name).params_from(size["profile"]).batch_size
    runs = [train_rate(name, data, size, batch, size["steps"], tmp / "default") | {"at": "profile"}]
    big = largest_batch(name, data, size, batch, tmp / "search")
    if big != batch:
        row = train_rate(name, data, size, big, size["steps"], tmp / "largest")
        runs.append(row | {"at": "largest"})
    net = get_model(name).build_net(data.n_features, deep_params(name, size, batch))
    return {
        "model": name,
        "profile": size["profile"],
        "params": sum(t.numel() for t in net.parameters()),
        "largest_batch": big,
        "runs": runs,
        "resume": resume_check(name, resume_data, size, tmp / "resume"),
        "seconds": round(time.perf_counter() - start, 1),
    }


def _timed(fn) -> dict:
    """{"supported": True, "s_per_round": ...} or why not, in one line."""
    try:
        start = time.perf_counter()
        rounds = fn()
        return {"supported": True, "s_per_round": round((time.perf_counter() - start) / rounds, 4)}
    except Exception as exc:  # a build without GPU support raises its own error types
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        return {"supported": False, "note": first[:160]}


def xgboost_gpu(X, y, rounds: int, use_cuda: bool) -> dict:
    import xgboost as xgb

    if not xgb.build_info().get("USE_CUDA"):
        return {"supported": False, "note": "the installed xgboost build has no CUDA"}
    if not use_cuda:
        return {"supported": False, "note": "build has CUDA; no CUDA device here: not run"}
    params = {"objective": "multi:softprob", "num_class": 3, "device": "cuda", "max_depth": 6}

    def train() -> int:
        xgb.train(params, xgb.DMatrix(X, y), rounds)
        return rounds

    return _timed(train)


def lightgbm_gpu(X, y, rounds: int, use_cuda: bool) -> dict:
    import lightgbm as lgb

    notes = []
    for device in ("cuda", "gpu"):
        params = {"objective": "multiclass", "num_class": 3, "device_type": device}
        params |= {"verbosity": -1, "num_leaves": 63}

        def train(p=params) -> int:
            lgb.train(p, lgb.Dataset(X, y), rounds)
            return rounds

        row = _timed(train)
        if row["supported"]:
            return row | {"device": device}
        notes.append(f"{device}: {row['note']}")
    return {"supported": False, "note": "; ".join(notes)}


def catboost_gpu(X, y, rounds: int, use_cuda: bool) -> dict:
    from catboost import CatBoostClassifier
    from catboost.utils import get_gpu_device_count

    with open(os.devnull, "w") as null, contextlib.redirect_stderr(null):
        gpus = get_gpu_device_count()
    if not gpus:
        return {"supported": False, "note": "CatBoost sees no GPU (no device, or no driver)"}
    model = CatBoostClassifier(iterations=rounds, task_type="GPU", depth=6, verbose=False)

    def train() -> int:
        model.fit(X, y)
        return rounds

    return _timed(train)


def boosting(data, size: dict, use_cuda: bool) -> list[dict]:
    X, y = data.tabular("train")
    checks = {"xgboost": xgboost_gpu, "lightgbm": lightgbm_gpu, "catboost": catboost_gpu}
    rows = []
    for name, check in checks.items():
        start = time.perf_counter()
        try:
            row = check(X, y, size["rounds"], use_cuda)
        except ImportError as exc:  # a machine (e.g. a bare GPU box) may lack one of them
            row = {"supported": False, "note": f"not installed here ({exc.name})"}
        rows.append({"model": name, "rounds": size["rounds"]} | row)
        print(f"  {name}: {time.perf_counter() - start:.0f} s", file=sys.stderr, flush=True)
    return rows


def run(args) -> dict:
    import torch

    from factory.models import deep_device

    use_cuda = torch.cuda.is_available() and not args.cpu
    size = dict(SIZES["cuda" if use_cuda else "cpu"])
    names = args.models.split(",") if args.models else list(DEEP_MODELS)
    out: dict = {"variant": "cuda" if use_cuda else "cpu", "device": device_info(use_cuda)}
    if not use_cuda and not deep_device.cpu_runs_bf16_rnn():  # RNNs would refuse bf16
        size["amp"] = "off"
        print("this CPU has no bf16 kernel for recurrent layers: amp=off", file=sys.stderr)
    out["amp"] = size["amp"]
    start = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="gpu-check-") as tmp_dir:
        tmp = Path(tmp_dir)
        data = build_data(size["rows"], tmp / "data")
        resume_data = data
        if size["resume_rows"] != size["rows"]:
            resume_data = build_data(size["resume_rows"], tmp / "resume-data")
        out["data"] = {"decision_rows": len(data.X), "train_rows": len(data.rows["train"])}
        out["deep"] = []
        for name in names:
            began = time.perf_counter()
            try:
                row = deep_model(name, data, resume_data, size, tmp / name)
            except Exception as exc:  # one model's failure must not lose the others' figures
                row = {"model": name, "error": f"{type(exc).__name__}: {exc}"[:300]}
            out["deep"].append(row)
            Path(args.out).write_text(json.dumps(out, indent=1))  # what a timeout leaves
            took = time.perf_counter() - began
            print(f"  {name}: {took:.0f} s", file=sys.stderr, flush=True)
        out["boosting"] = [] if args.no_boosting else boosting(data, size, use_cuda)
    out["seconds"] = round(time.perf_counter() - start, 1)
    return out


def table(out: dict) -> str:
    d = out["device"]
    amp = out.get("amp", SIZES[out["variant"]]["amp"])
    lines = [
        f"device: {d['name']} ({out['variant']} variant, torch {d['torch']}, amp={amp}); "
        f"data: {out['data']['decision_rows']:,} decision rows",
        f"{'model':<13}{'profile':<8}{'params':>11}{'batch':>7}{'at':>9}{'steps':>6}"
        f"{'samples/s':>11}{'peak MB':>9}{'s/epoch 1M':>12}  resumed == uninterrupted",
    ]
    for m in out["deep"]:
        if "error" in m:
            lines.append(f"{m['model']:<13}FAILED: {m['error']}")
            continue
        r = m["resume"]
        same = f"{'yes' if r['equal'] else 'NO'} (from step {r['resumed_from']})"
        for i, run in enumerate(m["runs"]):
            peak = "n/a" if run["peak_mem_mb"] is None else f"{run['peak_mem_mb']:,}"
            lines.append(
                f"{m['model'] if i == 0 else '':<13}{m['profile'] if i == 0 else '':<8}"
                f"{m['params'] if i == 0 else '':>11}{run['batch']:>7}{run['at']:>9}"
                f"{run['steps']:>6}{run['samples_per_s']:>11,}{peak:>9}"
                f"{run['s_per_epoch_1m']:>12,.1f}  {same if i == 0 else ''}"
            )
    for b in out["boosting"]:
        if b["supported"]:
            how = f"GPU ({b.get('device', 'cuda')}): {b['s_per_round']:.3f} s/round"
        else:
            how = f"not run on a GPU: {b['note']}"
        lines.append(f"{b['model']:<13}{how}")
    lines.append(f"total {out['seconds']:.0f} s")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="gpu_check.json", help="the JSON file to write")
    parser.add_argument("--models", help="comma-separated deep models (default: all six)")
    parser.add_argument("--cpu", action="store_true", help="the CPU variant even with CUDA")
    parser.add_argument("--no-boosting", action="store_true", help="skip the boosting models")
    args = parser.parse_args(argv)
    out = run(args)
    Path(args.out).write_text(json.dumps(out, indent=1))
    print(table(out))
    print(f"written: {args.out}")
    return 0 if all("error" not in m and m["resume"]["equal"] for m in out["deep"]) else 1


if __name__ == "__main__":
    sys.exit(main())
