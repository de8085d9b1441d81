"""Recovery benchmark: ml-factory's leases against plain RQ with `Retry`, side by side.

1. Kill-to-resume: a training worker is SIGKILLed (its whole process tree) at a random
   moment after its first checkpoint while another worker is idle; measured is the
   time until training runs again on the idle worker (ours: the new attempt has
   loaded its checkpoint; plain RQ: the job function started again), p50 and p95,
   and the work lost per kill (seconds of training redone).
2. Redis commands per worker-hour (issue 11's bill: <= 250 busy, <= 100 idle, <= 3
   connections per worker): a busy worker alone, an idle one alone, five idle ones
   (the fleet shares one reaper pass per mark) and an idle one beside a busy one; the
   commands each worker's connections send (MONITOR, attributed by connection name; an
   EVALSHA counts once, MULTI/EXEC and each command inside count) and the most
   connections one worker held at once.

Defaults are the product's defaults (lease TTL 36 s, renewal every 24 s; RQ's own
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

# default profile (checkpoint every 100 rounds, at most once a minute, at least every two),
# long enough to stay busy through the measurement (each phase checks it did)
DEFAULT_XGB = [
    "n_estimators=1000000",
    "early_stopping_rounds=1000000",
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


class _Meter:
    """Redis commands per client connection (MONITOR), attributed to workers by their
    connection names (CLIENT LIST: worker.run names them), and their connections."""

    def __init__(self, client) -> None:
        import threading

        self.client = client
        self.names: dict[str, str] = {}  # "host:port" -> client name
        self.sent: dict[str, int] = {}  # name -> commands sent (an EVALSHA counts once)
        self.inside: dict[str, int] = {}  # commands Lua scripts ran, fleet-wide
        self.by_command: dict[str, dict[str, int]] = {}
        self.connections: dict[str, int] = {}  # name -> most connections seen at once
        self._stop = threading.Event()
        self._threads = [
            threading.Thread(target=self._listen, daemon=True),
            threading.Thread(target=self._sample, daemon=True),
        ]

    def _refresh(self) -> dict[str, int]:
        counts: dict[str, int] = {}
        for c in self.client.client_list():
            name = c.get("name") or "unnamed"
            self.names[c["addr"]] = name
            counts[name] = counts.get(name, 0) + 1
        return counts

    def _sample(self) -> None:
        while not self._stop.wait(1.0):
            for name, n in self._refresh().items():
                self.connections[name] = max(self.connections.get(name, 0), n)

    def _listen(self) -> None:
        with self.client.monitor() as monitor:
            for entry in monitor.listen():
                if self._stop.is_set():
                    return
                addr = f"{entry.get('client_address')}:{entry.get('client_port')}"
                if entry.get("client_type") == "lua":
                    self.inside["lua"] = self.inside.get("lua", 0) + 1
                    continue
                command_line = entry["command"]
                if command_line.upper().startswith("CLIENT SETNAME "):
                    # a new connection names itself first: exact even for one that
                    # closes before CLIENT LIST is read (a work horse's, a probe's)
                    self.names[addr] = command_line.split(" ", 2)[2]
                elif addr not in self.names:
                    self._refresh()
                name = self.names.get(addr, "unnamed")
                self.sent[name] = self.sent.get(name, 0) + 1
                command = command_line.split(" ")[0].upper()
                per = self.by_command.setdefault(name, {})
                per[command] = per.get(command, 0) + 1

    def run(self, seconds: float) -> _Meter:
        for thread in self._threads:
            thread.start()
        time.sleep(seconds)
        self._stop.set()
        return self


WORKER_PREFIX = "mlf-worker:"  # worker.run.CLIENT_NAME_PREFIX
WARMUP_S = 90.0  # a busy phase is measured from then on (past its first checkpoint)


def _phase(tmp: Path, dataset: Path, phase: str, idle: int, busy: int, seconds: float) -> dict:
    """Workers idle and busy side by side for `seconds`: each kind's commands per
    worker-hour (mean over its workers) and the most connections any worker held."""
    with RedisServer(tmp / f"redis-{phase}") as server:
        home = tmp / f"home-{phase}"
        home.mkdir()
        procs, names, jobs = [], {"busy": [], "idle": []}, []
        for i in range(busy):  # the product's default checkpoint cadence, not the kill test's
            jobs.append(_submit(server.url, home, dataset, 900 + i, DEFAULT_XGB))
            procs.append(_worker(server.url, home, f"{phase}-busy{i}"))
            names["busy"].append(f"{WORKER_PREFIX}{phase}-busy{i}")
        if busy:
            client = server.client()
            _wait(lambda: client.llen("rq:queue:mlf") == 0, 60)  # all taken by the busy ones
        for i in range(idle):
            procs.append(_worker(server.url, home, f"{phase}-idle{i}"))
            names["idle"].append(f"{WORKER_PREFIX}{phase}-idle{i}")
        # start-up is not steady state: the first checkpoint, and each script's first call
        # (EVALSHA, NOSCRIPT, SCRIPT LOAD, EVALSHA once per Redis server), come before
        time.sleep(WARMUP_S if busy else 15.0)
        meter = _Meter(server.client(socket_timeout=None, client_name="bench-meter")).run(seconds)
        statuses = [_state(server.client(), job).get("status") for job in jobs]
        if any(status != "started" for status in statuses):  # a busy figure must be busy
            raise RuntimeError(f"phase {phase}: a busy job left training early: {statuses}")
        for proc in procs:
            _kill_tree(proc)
    scale = 3600 / seconds
    out: dict = {}
    for kind, members in names.items():
        if not members:
            continue
        # RQ renames the connection it registers the worker on to the bare worker name
        # (CLIENT SETNAME): both names are that worker's
        both = [(n, n[len(WORKER_PREFIX) :]) for n in members]
        sent = [sum(meter.sent.get(a, 0) for a in pair) * scale for pair in both]
        out[kind] = round(statistics.mean(sent))
        commands: dict[str, float] = {}
        for pair in both:
            for alias in pair:
                for c, k in meter.by_command.get(alias, {}).items():
                    commands[c] = commands.get(c, 0) + k * scale / len(members)
        out[f"{kind}_by_command"] = {c: round(v) for c, v in sorted(commands.items())}
        out[f"{kind}_connections_max"] = max(
            sum(meter.connections.get(a, 0) for a in pair) for pair in both
        )
    out["inside_scripts_per_hour"] = round(meter.inside.get("lua", 0) * scale)
    # commands from connections of no worker (the submitter's are before the window):
    # anything here is a worker connection the meter failed to attribute
    out["unattributed_per_hour"] = round(meter.sent.get("unnamed", 0) * scale)
    out["unattributed_by_command"] = meter.by_command.get("unnamed", {})
    return out


PHASES = {"busy": (0, 1), "idle": (1, 0), "idle5": (5, 0), "beside_busy": (1, 1)}


def commands_per_hour(tmp: Path, dataset: Path, measure_s: float, phases=PHASES) -> dict:
    """Commands per worker-hour: a busy worker alone, an idle one alone, five idle ones
    (an idle fleet shares one reaper pass), and an idle one beside a busy one."""
    return {name: _phase(tmp, dataset, name, *PHASES[name], measure_s) for name in phases}


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
        "--phases", default=",".join(PHASES), help=f"command phases to run ({','.join(PHASES)})"
    )
    parser.add_argument(
        "--only-commands", action="store_true", help="measure only Redis commands per worker-hour"
    )
    parser.add_argument(
        "--no-commands", action="store_true", help="measure only recovery, not Redis commands"
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
        phases = [p for p in args.phases.split(",") if p]
        unknown = sorted(set(phases) - set(PHASES))
        if unknown:
            parser.error(f"unknown phases {unknown}; known: {', '.join(PHASES)}")
        commands = (
            {} if args.no_commands else commands_per_hour(tmp, dataset, args.measure_s, phases)
        )
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


TARGETS = {"busy": 250, "idle": 100, "connections": 3, "p95_s": 45}


def _verdict(ok: bool) -> str:
    return "met" if ok else "NOT met"


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
    ]
    if o["kills"]:
        lines.append(
            f"target recovery p95 <= {TARGETS['p95_s']} s: "
            + _verdict((o["p95_s"] or 1e9) <= TARGETS["p95_s"])
        )
    if not c:
        return "\n".join(lines)
    if set(c) != set(PHASES):  # --phases: a subset, as measured
        return "\n".join([*lines, json.dumps(c, indent=1)])
    busy, idle, idle5, beside = c["busy"], c["idle"], c["idle5"], c["beside_busy"]
    conns = max(
        busy["busy_connections_max"],
        idle["idle_connections_max"],
        idle5["idle_connections_max"],
        beside["busy_connections_max"],
        beside["idle_connections_max"],
    )
    lines += [
        "Redis commands sent per worker-hour (an EVALSHA counts once; MULTI, EXEC and "
        "each command of a transaction count):",
        f"  busy alone            {busy['busy']:>6}  (target <= {TARGETS['busy']}: "
        f"{_verdict(busy['busy'] <= TARGETS['busy'])})",
        f"  idle alone            {idle['idle']:>6}  (target <= {TARGETS['idle']}: "
        f"{_verdict(idle['idle'] <= TARGETS['idle'])})",
        f"  idle, 5 idle workers  {idle5['idle']:>6}  per worker",
        f"  idle beside a busy one{beside['idle']:>6}  (the busy one: {beside['busy']})",
        f"  most connections held by one worker: {conns} (target <= "
        f"{TARGETS['connections']}: {_verdict(conns <= TARGETS['connections'])})",
        f"  busy by command: {busy['busy_by_command']}",
        f"  idle by command: {idle['idle_by_command']}",
        f"  idle beside busy by command: {beside['idle_by_command']}",
    ]
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
