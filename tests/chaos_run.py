"""A plan run under chaos on lagging storage (issue 11, point 4): the harness that
tests/worker/test_chaos_lagging.py and bench/chaos.py share.

One real redis-server (AOF on), a LaggingStorage (tests/lagging_storage.py: every
worker sees the storage through its own late-syncing view, at a path of its own), a
plan submitted to the shared copy (as a laptop's upload long done), and real
`factory worker` processes, each on its own view. While the plan runs, the chaos loop
SIGKILLs a busy worker every `kill_every_s` (its session and the writes it had not
uploaded die with it; a new session takes its place), freezes one busy worker past its
lease (SIGSTOP, and its uploads held) and then wakes it, and restarts Redis once.

`run_plan(..., chaos=None)` is the undisturbed run on plain local storage, whose
predictions the chaos run must equal. `Outcome` holds what the run shows: failed jobs,
duplicate outputs, zombie writes (checkpoint folders no published record names, `.tmp-*`
copies, staged leftovers), re-runs because an output never arrived, recovery times.
"""

from __future__ import annotations

import contextlib
import json
import random
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import redis

from jobs import keys
from tests.lagging_storage import Delays, LaggingStorage
from tests.redis_server import RedisServer
from tests.runner import (
    REPO_ROOT,
    TEST_TTL_S,
    job_result,
    job_state,
    signal_tree,
    start_worker,
)

PARAMS = (
    "xgboost.profile=tiny",
    "xgboost.n_estimators=150",
    "xgboost.checkpoint_every_rounds=5",
    "xgboost.early_stopping_rounds=1000",
    "xgboost.max_depth=6",
    "xgboost.max_bin=256",
    "lstm.profile=tiny",
    "lstm.epochs=6",
    "lstm.patience=6",
    "lstm.checkpoint_every_s=0.5",
)
FINGERPRINTS = ("test_predictions_sha256", "oof_sha256")
# uploads 0.2-2 s late (1 in 20: 20 s late), seen by other sessions 0.2-1 s after that
LAGGING = Delays(upload_s=(0.2, 2.0), slow_p=0.05, slow_s=20.0, visible_s=(0.2, 1.0))


@dataclass(frozen=True)
class Chaos:
    kills: int = 10
    kill_every_s: float = 4.0
    freeze_at_kill: int = 3  # the 3rd disruption is a freeze past the lease (0: none)
    redis_restart_at_kill: int = 6  # after the 6th, Redis restarts once (0: never)
    delays: Delays = LAGGING
    seed: int = 0


@dataclass
class Outcome:
    results: dict[str, dict]
    failed: list[str]
    duplicates: list[str]
    zombies: list[str]
    kills: int = 0
    freezes: int = 0
    redis_restarts: int = 0
    output_reruns: int = 0
    recoveries_s: list[float] = field(default_factory=list)
    lost_s: list[float] = field(default_factory=list)
    seconds: float = 0.0

    def fingerprints(self) -> dict[str, str]:
        return {
            f"{job_id}:{key}": result[key]
            for job_id, result in self.results.items()
            for key in FINGERPRINTS
            if key in result
        }


def submit(url: str, home: Path, dataset: Path) -> dict:
    cmd = [sys.executable, "-m", "submitter.submit", "--models", "xgboost,lstm"]
    cmd += ["--symbol", "MES", "--dataset", str(dataset), "--horizon", "5", "--folds", "2"]
    cmd += ["--redis-url", url, "--home", str(home), "--json"]
    for p in PARAMS:
        cmd += ["--param", p]
    out = subprocess.run(cmd, cwd=REPO_ROOT, capture_output=True, text=True, timeout=300)
    if out.returncode != 0:
        raise RuntimeError(f"submit failed: {out.stderr}")
    return json.loads(out.stdout)


class _Fleet:
    """The workers: each on its own view (lagging) or the one home (plain)."""

    def __init__(self, url: str, base: Path, storage: LaggingStorage | None, home: Path) -> None:
        self.url, self.base, self.storage, self.home = url, base, storage, home
        self.procs: dict[str, subprocess.Popen] = {}
        self.count = 0

    def start(self) -> str:
        self.count += 1
        name = f"w{self.count}"
        home = self.storage.view(name) if self.storage else self.home
        extra = ["--storage-visibility-wait", "30", "--data-cache", str(self.base / "cache" / name)]
        # a worker killed between winning a reap and requeueing leaves the job to the
        # reconciler: every 15 s here, not the default 15 min
        extra += ["--reconcile-interval", "15"]
        log = self.base / "logs" / f"{name}.log"
        log.parent.mkdir(parents=True, exist_ok=True)
        self.procs[name] = start_worker(self.url, home, name, *extra, log=log)
        return name

    def kill(self, name: str) -> None:
        signal_tree(self.procs.pop(name), signal.SIGKILL)
        if self.storage:
            self.storage.kill(name)

    def stop_all(self) -> None:
        for name in list(self.procs):
            proc = self.procs.pop(name)
            signal_tree(proc, signal.SIGKILL)
            proc.wait(timeout=30)


def _busy(client, job_ids: list[str], live: dict) -> list[tuple[str, str, dict]]:
    """(job, worker, state) of each started job whose worker is one of `live`."""
    out = []
    for job_id in job_ids:
        state = job_state(client, job_id)
        running = state.get("status") == "started" and state.get("worker") in live
        if running and job_result(client, job_id) is None:
            out.append((job_id, state["worker"], state))
    return out


class _Loop:
    """The chaos loop of one run (see the module docstring)."""

    def __init__(self, chaos: Chaos, fleet: _Fleet, server: RedisServer, job_ids, outcome):
        self.chaos, self.fleet, self.server = chaos, fleet, server
        self.job_ids, self.outcome = job_ids, outcome
        self.rng = random.Random(chaos.seed)
        self.watch: dict[str, float] = {}  # job -> when its worker was killed
        self.next_at = time.monotonic() + chaos.kill_every_s
        self.frozen: tuple[str, float] | None = None  # worker, when it wakes

    def tick(self, client) -> None:
        self._recovered(client)
        if self.frozen and time.monotonic() >= self.frozen[1]:
            self._thaw(self.frozen[0])
        done = self.outcome.kills + self.outcome.freezes
        if done >= self.chaos.kills or time.monotonic() < self.next_at:
            return
        live = {n: p for n, p in self.fleet.procs.items() if not self.frozen or n != self.frozen[0]}
        busy = _busy(client, self.job_ids, live)
        if not busy:
            return
        job_id, worker, state = self.rng.choice(busy)
        if done + 1 == self.chaos.freeze_at_kill:
            self._freeze(worker)
        else:
            self._kill(job_id, worker, state)
        restart = self.outcome.kills == self.chaos.redis_restart_at_kill
        if restart and not self.outcome.redis_restarts:
            self.server.restart(down_s=1.0)
            self.outcome.redis_restarts += 1
        self.next_at = time.monotonic() + self.chaos.kill_every_s

    def _kill(self, job_id: str, worker: str, state: dict) -> None:
        self.fleet.kill(worker)
        self.fleet.start()
        self.outcome.kills += 1
        self.watch[job_id] = time.monotonic()
        # work lost: training since its last checkpoint (or since its lease, if none yet)
        last = float(state.get("checkpoint_at") or 0) or float(state.get("lease_at") or 0)
        if last:
            self.outcome.lost_s.append(max(0.0, time.time() - last))

    def _freeze(self, worker: str) -> None:
        proc = self.fleet.procs[worker]
        signal_tree(proc, signal.SIGSTOP)
        if self.fleet.storage:
            self.fleet.storage.freeze(worker)
        self.frozen = (worker, time.monotonic() + 3 * TEST_TTL_S)  # its job is taken over
        self.outcome.freezes += 1

    def _thaw(self, worker: str) -> None:
        if self.fleet.storage:
            self.fleet.storage.thaw(worker)
        signal_tree(self.fleet.procs[worker], signal.SIGCONT)
        self.frozen = None

    def _recovered(self, client) -> None:
        for job_id, killed_at in list(self.watch.items()):
            state = job_state(client, job_id)
            resumed = state.get("status") == "started" and state.get("worker") in self.fleet.procs
            if resumed or job_result(client, job_id) is not None:
                self.outcome.recoveries_s.append(time.monotonic() - killed_at)
                del self.watch[job_id]


def _finished(client, report: str) -> bool:
    try:
        return job_result(client, report) is not None
    except redis.ConnectionError:  # the restart of the chaos loop: asked again soon
        return False


def _published(client, job_ids: list[str], seen: set[str]) -> None:
    """Add every checkpoint now published (job/dirname) to `seen` (Redis keeps the newest
    3 per job; polled often enough, `seen` holds every one ever published)."""
    pipe = client.pipeline()
    for job_id in job_ids:
        pipe.lrange(keys.checkpoints(job_id), 0, -1)
    for job_id, records in zip(job_ids, pipe.execute(), strict=True):
        seen.update(f"{job_id}/{json.loads(r)['dirname']}" for r in records)


def _leftovers(shared: Path, job_ids: list[str], seen: set[str]) -> tuple[list[str], list[str]]:
    """(duplicate outputs, zombie writes) in the shared copy: a zombie write is a folder
    no attempt ever published (a superseded attempt's), a `.tmp-*` copy or a staged one.
    A published checkpoint whose deletion a killed session never synced is not one."""
    models = shared / "models"
    names = {p.name for p in models.iterdir()} if models.is_dir() else set()
    duplicates = sorted(n for n in names - set(job_ids) - {".staged", ".local"})
    staged = models / ".staged"
    zombies = [f"models/.staged/{p.name}" for p in staged.iterdir()] if staged.is_dir() else []
    for job_id in job_ids:
        folder = shared / "checkpoints" / job_id
        if not folder.is_dir():
            continue
        zombies += [
            f"checkpoints/{job_id}/{p.name}"
            for p in folder.iterdir()
            if p.name != "manifest.json" and f"{job_id}/{p.name}" not in seen
        ]
    return duplicates, sorted(zombies)


def run_plan(
    base: Path, dataset_src: Path, chaos: Chaos | None, workers: int = 2, timeout_s: float = 900
) -> Outcome:
    """Run the plan of this module once (see the module docstring) and say what it shows."""
    started = time.monotonic()
    base.mkdir(parents=True, exist_ok=True)
    home = base / "storage" / "shared" if chaos else base / "home"  # LaggingStorage's
    dataset = home / "data" / "processed" / "MES" / dataset_src.name
    shutil.copytree(dataset_src, dataset)  # in the shared copy before the views exist
    with RedisServer(base / "redis", appendonly=True) as server:
        client = server.client()
        plan = submit(server.url, home, dataset)  # the plan's code wheel too
        storage = LaggingStorage(base / "storage", chaos.delays, chaos.seed) if chaos else None
        job_ids = [j["id"] for j in plan["jobs"]]
        report = next(j["id"] for j in plan["jobs"] if j["kind"] == "report")
        if storage:
            storage.start()
        fleet = _Fleet(server.url, base, storage, home)
        outcome = Outcome({}, [], [], [])
        loop = _Loop(chaos, fleet, server, job_ids, outcome) if chaos else None
        seen: set[str] = set()
        try:
            for _ in range(workers):
                fleet.start()
            deadline = time.monotonic() + timeout_s
            while not _finished(client, report):
                if time.monotonic() > deadline:
                    raise TimeoutError(f"the plan did not finish in {timeout_s:.0f} s")
                with contextlib.suppress(redis.ConnectionError):  # the restart
                    _published(client, job_ids, seen)
                    if loop:
                        loop.tick(client)
                time.sleep(0.1)
        finally:
            if loop and loop.frozen:
                loop._thaw(loop.frozen[0])
            fleet.stop_all()
            if storage:
                storage.settled(60)
                storage.stop()
        outcome.results = {j: job_result(client, j) for j in job_ids}
        states = {j: job_state(client, j) for j in job_ids}
        outcome.failed = [j for j, s in states.items() if s.get("status") == "failed"]
        outcome.output_reruns = sum(int(s.get("output_reruns") or 0) for s in states.values())
        _published(client, job_ids, seen)
        outcome.duplicates, outcome.zombies = _leftovers(home, job_ids, seen)
    outcome.seconds = time.monotonic() - started
    return outcome
