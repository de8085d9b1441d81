"""Fixtures for tests with real workers: a Redis, a home, a dataset, a submit helper."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from tests.runner import run_factory, start_worker, stop

# an xgboost run of ~10 s with a checkpoint every 5 rounds: long enough to kill mid-way
SLOW_XGB = (
    "profile=tiny",
    "n_estimators=300",
    "checkpoint_every_rounds=5",
    "early_stopping_rounds=1000",
    "learning_rate=0.05",
    "max_depth=6",
    "max_bin=256",
)


@dataclass
class Cluster:
    url: str
    home: Path
    dataset: Path
    server: object
    workers: list = field(default_factory=list)

    def submit(
        self, models: str = "xgboost", params=SLOW_XGB, *extra: str, cv: bool = False
    ) -> dict:
        flags = ["--folds", "3"] if cv else ["--no-cv", "--no-ensemble"]
        args = [
            "--models",
            models,
            "--symbol",
            "MES",
            "--dataset",
            str(self.dataset),
            "--horizon",
            "5",
            *flags,
            "--redis-url",
            self.url,
            "--home",
            str(self.home),
            "--json",
            *extra,
        ]
        for p in params:
            args += ["--param", p]
        proc = run_factory_submit(*args)
        assert proc.returncode == 0, proc.stderr
        return json.loads(proc.stdout)

    def worker(self, name: str, *extra: str):
        proc = start_worker(self.url, self.home, name, *extra)
        self.workers.append(proc)
        return proc

    def factory(self, *args: str):
        return run_factory(*args, "--redis-url", self.url, "--home", str(self.home))

    @property
    def client(self):
        return self.server.client()


def run_factory_submit(*args: str):
    import subprocess
    import sys

    from tests.conftest import REPO_ROOT

    return subprocess.run(
        [sys.executable, "-m", "submitter.submit", *args],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


@pytest.fixture
def cluster(redis_server, small_dataset, tmp_path):
    c = Cluster(redis_server.url, tmp_path / "home", small_dataset, redis_server)
    c.home.mkdir()
    yield c
    for proc in c.workers:
        stop(proc)
