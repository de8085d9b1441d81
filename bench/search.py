"""Search benchmark: trials per hour of `submit --tune` on N real workers, against the
same trials run one after another in one process.

1. Workers: a fresh redis-server, a small synthetic MES dataset, `submit --tune xgboost
   --trials T` (no CV, no ensemble), then N `factory worker` processes. Timed: from the
   first trial job's claim to the last trial's final result (the search itself; the
   final train and report are not counted), and from the workers' launch (their start
   included, as a fresh Colab tab pays it).
2. One process: the very same trials (the parameters the study sampled, read back from
   the trial results; a trial the pruner stopped is trained to the round it was stopped
   at), trained one after another with `factory.training.train.train_model` in this
   process with a local checkpoint store at the same cadence: no queue, no Redis, no
   process start per trial.

Each trial uses `--nthread` threads (default 1: two workers then use two cores, as two
Colab tabs would use their own). On a machine with fewer cores than workers x nthread
the workers compete for them.

    python bench/search.py [--trials 12] [--workers 2] [--nthread 1] [--rounds 200] [--json]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.recovery import _dataset, _kill_tree, _popen, _wait  # noqa: E402
from tests.redis_server import RedisServer  # noqa: E402  (a real redis-server on a free port)


def trial_params(rounds: int, nthread: int) -> list[str]:
    return [
        "profile=tiny",
        f"n_estimators={rounds}",
        "early_stopping_rounds=100000",  # every trial runs its rounds (or is pruned)
        "checkpoint_every_rounds=20",
        f"nthread={nthread}",
        "max_bin=256",
    ]


def _submit(url: str, home: Path, dataset: Path, trials: int, params: list[str]) -> dict:
    cmd = [sys.executable, "-m", "submitter.submit", "--tune", "xgboost", "--trials", str(trials)]
    cmd += ["--symbol", "MES", "--dataset", str(dataset), "--horizon", "5", "--no-cv"]
    cmd += ["--no-ensemble", "--redis-url", url, "--home", str(home), "--json"]
    for p in params:
        cmd += ["--param", f"xgboost.{p}"]
    out = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, check=True)
    return json.loads(out.stdout)


def _worker(url: str, home: Path, name: str) -> subprocess.Popen:
    cmd = [sys.executable, "-m", "submitter.cli", "worker", "--redis-url", url]
    cmd += ["--home", str(home), "--name", name, "--data-cache", str(home / ".cache")]
    return _popen(cmd, home / f"{name}.log")


def on_workers(tmp: Path, dataset: Path, trials: int, workers: int, params: list[str]) -> dict:
    """The search on `workers` real workers: its timings and the trials' results."""
    with RedisServer(tmp / "redis") as server:
        client = server.client()
        home = tmp / "home"
        home.mkdir()
        plan = _submit(server.url, home, dataset, trials, params)
        ids = [j["id"] for j in plan["jobs"] if j["kind"] == "trial"]
        calls_before = _calls(client)
        launched = time.time()
        procs = [_worker(server.url, home, f"w{i}") for i in range(workers)]
        try:
            _wait(lambda: all(client.exists(f"mlf:result:{j}") for j in ids), 3600, 0.2)
        finally:
            for proc in procs:
                _kill_tree(proc)
        states = [client.hgetall(f"mlf:state:{j}") for j in ids]
        first = min(float(s[b"lease_at"]) for s in states)
        last = max(float(s[b"finished_at"]) for s in states)
        results = [json.loads(client.get(f"mlf:result:{j}")) for j in ids]
        calls = _calls(client) - calls_before
    return {
        "commands": calls,
        "search_s": last - first,
        "with_start_s": last - launched,
        "results": sorted(results, key=lambda r: r.get("trial_number", -1)),
    }


def _calls(client) -> int:
    """Commands the server has run so far (INFO commandstats; a script counts once per
    command inside it, as a metered Redis bills them)."""
    stats = client.info("commandstats")
    return sum(v["calls"] for k, v in stats.items() if k != "cmdstat_info")


def in_one_process(dataset: Path, results: list[dict], params: list[str], tmp: Path) -> float:
    """Seconds to train the same trials one after another in this process."""
    from factory.training.checkpoint import CheckpointStore
    from factory.training.local_context import LocalContext
    from factory.training.train import train_model

    base = dict(p.split("=", 1) for p in params)
    start = time.perf_counter()
    for r in results:
        if r.get("state") not in ("complete", "pruned"):
            continue  # a failed trial trained nothing to compare
        values = base | r.get("params", {})
        if r.get("state") == "pruned":
            values["n_estimators"] = str(r["pruned_at_step"])
        ctx = LocalContext(CheckpointStore(tmp / "sequential", f"trial-{r['trial_number']}"))
        train_model(dataset, "xgboost", 5, values, ctx)
    return time.perf_counter() - start


def _per_hour(trials: int, seconds: float) -> float:
    return round(trials / seconds * 3600, 1)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--trials", type=int, default=12)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--nthread", type=int, default=1, help="threads per trial")
    ap.add_argument("--rounds", type=int, default=200, help="boosting rounds per trial")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    params = trial_params(args.rounds, args.nthread)
    with tempfile.TemporaryDirectory(prefix="bench-search-") as tmp_:
        tmp = Path(tmp_)
        dataset = _dataset(tmp)
        load = [os.getloadavg()[0]]
        par = on_workers(tmp, dataset, args.trials, args.workers, params)
        load.append(os.getloadavg()[0])
        seq_s = in_one_process(dataset, par["results"], params, tmp)
        load.append(os.getloadavg()[0])
    states = [r["state"] for r in par["results"]]
    odd = [r for r in par["results"] if r["state"] not in ("complete", "pruned")]
    for r in odd:
        print(f"trial {r.get('trial_number')} {r['state']}: {r.get('error')}", file=sys.stderr)
    out = {
        "trials": args.trials,
        "pruned": states.count("pruned"),
        "failed": len(odd),
        "workers": args.workers,
        "nthread": args.nthread,
        "rounds": args.rounds,
        "workers_search_s": round(par["search_s"], 1),
        "workers_with_start_s": round(par["with_start_s"], 1),
        "one_process_s": round(seq_s, 1),
        "trials_per_hour_workers": _per_hour(args.trials, par["search_s"]),
        "trials_per_hour_workers_with_start": _per_hour(args.trials, par["with_start_s"]),
        "trials_per_hour_one_process": _per_hour(args.trials, seq_s),
        "speedup": round(seq_s / par["search_s"], 2),
        "trial_job_s": round(sum(r.get("seconds", 0) for r in par["results"]), 1),
        "redis_commands_per_trial": round(par["commands"] / args.trials),
        "cores": os.cpu_count(),
        "load_avg_1m": [round(x, 2) for x in load],
    }
    if args.json:
        print(json.dumps(out))
        return 0
    n = args.workers
    print(
        f"{args.trials} xgboost trials ({out['pruned']} pruned), {args.rounds} rounds, "
        f"{args.nthread} thread(s) each"
    )
    print(
        f"  {n} workers:     {out['workers_search_s']:>7.1f} s  "
        f"{out['trials_per_hour_workers']:>8.1f} trials/h  "
        f"({out['trials_per_hour_workers_with_start']:.1f} counting the workers' start)"
    )
    print(
        f"  one process:   {out['one_process_s']:>7.1f} s  "
        f"{out['trials_per_hour_one_process']:>8.1f} trials/h"
    )
    print(f"  speedup:       {out['speedup']:.2f}x")
    print(
        f"  the trial jobs' own run time: {out['trial_job_s']:.1f} s in all; "
        f"{out['redis_commands_per_trial']} Redis commands a trial (RQ's and the workers' "
        "included; INFO commandstats also counts the commands inside a script)"
    )
    print(
        f"  {out['cores']} cores; 1-min load before / after the workers / after: "
        f"{out['load_avg_1m']}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
