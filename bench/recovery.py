"""Recovery benchmark: ml-factory's leases against plain RQ with `Retry`, side by side.

1. Kill-to-resume: a training worker is SIGKILLed (its whole process tree) at a random
   moment after its first checkpoint while another worker is idle; measured is the
   time until training runs again on the idle worker (ours: the new attempt has
   loaded its checkpoint; plain RQ: the job function started again), p50 and p95,
   and the work lost per kill (seconds of training redone).
2. Redis commands per worker-hour, busy and idle: the commands a worker sends (seen
   with MONITOR; an EVALSHA counts once) and, for reference, also those its Lua
   scripts run inside Redis.

Defaults are the product's defaults (lease TTL 30 s, reaper every 5 s; RQ's own
maintenance interval for plain RQ). Plain RQ is slow to notice a dead worker
(~10 minutes per kill), so it runs fewer kills by default (--rq-kills).

    python bench/recovery.py [--kills 10] [--rq-kills 2] [--measure-s 120] [--json]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import random
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.redis_server import RedisServer  # noqa: E402  (a real redis-server on a free port)

# default profile (checkpoint every 100 rounds / 2 minutes), long enough to stay busy
DEFAULT_XGB = [
    "n_estimators=20000",
    "early_stopping_rounds=20000",
    "subsample=1",
    "colsample_bytree=1",
]
SLOW_XGB = [
    "profile=tiny",
    "n_estimators=2000",
    "checkpoint_every_rounds=10",
    "early_stopping_rounds=5000",
    "learning_rate=0.02",
    "max_depth=6",
    "max_bin=256",
]


def _popen(cmd: list[str], log: Path) -> subprocess.Popen:
    out = open(log, "ab")  # noqa: SIM115 - owned by the process
    return subprocess.Popen(
        cmd,
        cwd=ROOT,
        stdout=out,
        stderr=subprocess.STDOUT,
        start_new_session=True,
        env=dict(os.environ, PYTHONUNBUFFERED="1"),
    )


def _kill_tree(proc: subprocess.Popen) -> None:
    import psutil

    try:
        pids = [proc.pid] + [c.pid for c in psutil.Process(proc.pid).children(recursive=True)]
    except psutil.NoSuchProcess:
        return
    for pid in pids:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    proc.wait()


def _wait(predicate, timeout: float, interval: float = 0.1):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise TimeoutError


def _dataset(home: Path) -> Path:
    from factory.data.config import DatasetConfig
    from factory.data.dataset import build_dataset
    from factory.data.synthetic import synthetic_bars, write_raw

    raw = write_raw(synthetic_bars("MES", days=6, seed=5), home / "MES_1m.parquet")
    config = DatasetConfig(symbol="MES", tick_size=0.25, horizons=(5,), lookback_bars=32)
    return build_dataset(raw, config, home).dataset_dir


def _worker(url: str, home: Path, name: str) -> subprocess.Popen:
    cmd = [
        sys.executable,
        "-m",
        "submitter.cli",
        "worker",
        "--redis-url",
        url,
        "--home",
        str(home),
        "--name",
        name,
    ]
    return _popen(cmd, home / f"{name}.log")


def _state(client, job_id: str) -> dict[str, str]:
    return {k.decode(): v.decode() for k, v in client.hgetall(f"mlf:state:{job_id}").items()}


def _submit(url: str, home: Path, dataset: Path, seed: int, params=None) -> str:
    args = [
        sys.executable,
        "-m",
        "submitter.submit",
        "--models",
        "xgboost",
        "--symbol",
        "MES",
        "--dataset",
        str(dataset),
        "--horizon",
        "5",
        "--no-cv",
        "--no-ensemble",
        "--redis-url",
        url,
        "--home",
        str(home),
        "--json",
        "--param",
        f"seed={seed}",
    ]
    for p in SLOW_XGB if params is None else params:
        args += ["--param", p]
    out = subprocess.run(args, cwd=ROOT, capture_output=True, text=True, check=True)
    return next(j["id"] for j in json.loads(out.stdout)["jobs"] if j["kind"] == "train")


def ours_one_kill(server, home: Path, dataset: Path, seed: int) -> dict:
    client = server.client()
    job = _submit(server.url, home, dataset, seed)
    busy = _worker(server.url, home, f"busy{seed}")
    _wait(lambda: int(_state(client, job).get("checkpoint_step") or 0) > 0, 120)
    idle = _worker(server.url, home, f"idle{seed}")
    time.sleep(3.0 + random.uniform(0.0, 8.0))  # a random moment; the idle worker waits
    _kill_tree(busy)
    killed, killed_wall = time.monotonic(), time.time()
    try:
        _wait(
            lambda: (
                _state(client, job).get("attempt") == "2"
                and _state(client, job).get("resumed_from") not in (None, "")
            ),
            300,
        )
    except TimeoutError:
        _kill_tree(idle)
        tail = (home / f"idle{seed}.log").read_text()[-2000:]
        print(f"kill {seed}: not resumed within 300 s; idle worker log:\n{tail}", file=sys.stderr)
        return {"seconds": None, "lost_s": None}
    seconds = time.monotonic() - killed
    resumed_from = int(_state(client, job)["resumed_from"])
    records = [json.loads(r) for r in client.lrange(f"mlf:ckpts:{job}", 0, -1)]
    used = next(r for r in records if r["step"] == resumed_from)
    _kill_tree(idle)
    # the training done between the checkpoint it resumed from and the kill is redone
    return {"seconds": seconds, "lost_s": killed_wall - used["created_at"]}


def plain_train(seed: int) -> int:
    """The plain-RQ job: marks its start in Redis, then trains from scratch for a while."""
    from rq import get_current_job

    job = get_current_job()
    job.connection.rpush(f"bench:starts:{job.id}", f"{time.time():.3f}")
    deadline = time.monotonic() + 600
    while time.monotonic() < deadline:  # stands in for training with no checkpoints
        time.sleep(0.5)
    return seed


def rq_one_kill(server, home: Path, seed: int, timeout_s: float) -> dict:
    from rq import Queue, Retry
    from rq.serializers import JSONSerializer

    client = server.client()
    queue = Queue("plain", connection=client, serializer=JSONSerializer)
    job = queue.enqueue(
        "bench.recovery.plain_train",
        seed,
        retry=Retry(max=3),
        job_id=f"plain-{seed}",
        job_timeout=3600,
    )
    code = (
        "import sys, redis; from rq import Worker; from rq.serializers import "
        "JSONSerializer; w = Worker(['plain'], connection=redis.Redis.from_url(sys.argv[1]),"
        " serializer=JSONSerializer, name=sys.argv[2]); w.work()"
    )
    busy = _popen([sys.executable, "-c", code, server.url, f"rq-busy{seed}"], home / "rq.log")
    _wait(lambda: client.llen(f"bench:starts:{job.id}") >= 1, 60)
    idle = _popen([sys.executable, "-c", code, server.url, f"rq-idle{seed}"], home / "rq.log")
    time.sleep(3.0 + random.uniform(0.0, 8.0))
    _kill_tree(busy)
    killed = time.monotonic()
    try:
        _wait(lambda: client.llen(f"bench:starts:{job.id}") >= 2, timeout_s, interval=1.0)
        seconds: float | None = time.monotonic() - killed
    except TimeoutError:
        seconds = None
    _kill_tree(idle)
    return {"seconds": seconds, "lost_s": "all (restarts from zero)"}


def _count_commands(client, seconds: float) -> tuple[int, int, dict]:
    """Commands clients sent (MONITOR, without those a Lua script ran) and all commands."""
    import threading

    counts = {"client": 0, "lua": 0}
    names: dict[str, int] = {}
    stop = threading.Event()

    def listen() -> None:
        with client.monitor() as monitor:
            for entry in monitor.listen():
                if stop.is_set():
                    return
                kind = "lua" if entry.get("client_type") == "lua" else "client"
                counts[kind] += 1
                if kind == "client":
                    name = entry["command"].split(" ")[0].upper()
                    names[name] = names.get(name, 0) + 1

    thread = threading.Thread(target=listen, daemon=True)
    thread.start()
    time.sleep(seconds)
    stop.set()
    return counts["client"], counts["client"] + counts["lua"], names


def commands_per_hour(tmp: Path, dataset: Path, measure_s: float) -> dict:
    """Commands of one worker alone, busy and then idle, scaled to an hour."""
    out = {}
    for phase in ("busy", "idle"):
        with RedisServer(tmp / f"redis-{phase}") as server:
            home = tmp / f"home-{phase}"
            home.mkdir()
            if phase == "busy":  # the product's default checkpoint cadence, not the kill test's
                _submit(server.url, home, dataset, 999, DEFAULT_XGB)
            worker = _worker(server.url, home, f"count-{phase}")
            time.sleep(10.0)  # start-up is not steady state
            sent, total, names = _count_commands(server.client(socket_timeout=None), measure_s)
            _kill_tree(worker)
            scale = 3600 / measure_s
            out[phase] = round(sent * scale)
            out[f"{phase}_incl_script_internals"] = round(total * scale)
            out[f"{phase}_by_command"] = {k: round(v * scale) for k, v in sorted(names.items())}
    return out


def _pct(values: list[float], q: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    return round(ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))], 1)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--kills", type=int, default=10)
    parser.add_argument("--rq-kills", type=int, default=2)
    parser.add_argument("--rq-timeout-s", type=float, default=1500)
    parser.add_argument("--measure-s", type=float, default=120)
    parser.add_argument("--json", action="store_true")
    parser.add_argument(
        "--only-commands", action="store_true", help="measure only Redis commands per worker-hour"
    )
    args = parser.parse_args()
    random.seed(0)
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(os.environ.get("BENCH_TMP") or tmp_name)
        dataset = _dataset(tmp)
        ours, plain = [], []
        if args.only_commands:
            args.kills = args.rq_kills = 0
        for i in range(args.kills):  # a fresh Redis per kill: no job leaks into the next
            home = tmp / f"ours-{i}"
            home.mkdir()
            with RedisServer(tmp / f"redis-ours-{i}") as server:
                ours.append(ours_one_kill(server, home, dataset, i))
            print(f"ours kill {i + 1}: {ours[-1]}", file=sys.stderr, flush=True)
        for i in range(args.rq_kills):
            with RedisServer(tmp / f"redis-rq-{i}") as server:
                plain.append(rq_one_kill(server, tmp, i, args.rq_timeout_s))
            print(f"plain RQ kill {i + 1}: {plain[-1]}", file=sys.stderr, flush=True)
        commands = commands_per_hour(tmp, dataset, args.measure_s)
    report = _report(ours, plain, commands, args)
    print(json.dumps(report, indent=2) if args.json else _table(report))
    return 0


def _report(ours, plain, commands, args) -> dict:
    ours_s = [o["seconds"] for o in ours if o["seconds"] is not None]
    plain_s = [p["seconds"] for p in plain if p["seconds"] is not None]
    lost = [o["lost_s"] for o in ours if o["lost_s"] is not None]
    return {
        "ours": {
            "not_resumed": len(ours) - len(ours_s),
            "kills": len(ours),
            "p50_s": _pct(ours_s, 0.5),
            "p95_s": _pct(ours_s, 0.95),
            "lost_s_mean": round(statistics.mean(lost), 1) if lost else None,
            "lost_s_max": round(max(lost), 1) if lost else None,
        },
        "plain_rq": {
            "kills": len(plain),
            "p50_s": _pct(plain_s, 0.5),
            "p95_s": _pct(plain_s, 0.95),
            "not_resumed_within_s": [args.rq_timeout_s] * (len(plain) - len(plain_s)),
            "lost": "all work: the job restarts from zero",
        },
        "redis_commands_per_worker_hour": commands,
    }


def _table(r: dict) -> str:
    o, p, c = r["ours"], r["plain_rq"], r["redis_commands_per_worker_hour"]
    lines = [
        f"{'':<12}{'kills':>6}{'p50 s':>9}{'p95 s':>9}  work lost per kill",
        f"{'ml-factory':<12}{o['kills']:>6}{o['p50_s']!s:>9}{o['p95_s']!s:>9}  "
        f"mean {o['lost_s_mean']} s, max {o['lost_s_max']} s",
        f"{'plain RQ':<12}{p['kills']:>6}{p['p50_s']!s:>9}{p['p95_s']!s:>9}  {p['lost']}"
        + (
            f" ({len(p['not_resumed_within_s'])} not resumed in time)"
            if p["not_resumed_within_s"]
            else ""
        ),
        f"target p95 <= 45 s: {'met' if (o['p95_s'] or 1e9) <= 45 else 'NOT met'}",
        f"Redis commands sent per worker-hour: busy {c['busy']}, idle {c['idle']} "
        f"(target <= 1000: {'met' if max(c['busy'], c['idle']) <= 1000 else 'NOT met'}); "
        f"counting commands run inside Lua scripts too: busy "
        f"{c['busy_incl_script_internals']}, idle {c['idle_incl_script_internals']}",
        f"  busy by command: {c['busy_by_command']}",
        f"  idle by command: {c['idle_by_command']}",
    ]
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
