"""Submit, work and status over rediss:// with a password and a self-signed certificate."""

from __future__ import annotations

import json
import subprocess
import sys

from tests.conftest import REPO_ROOT
from tests.redis_server import RedisServer, tls_binary
from tests.runner import run_factory

PASSWORD = "tls-s3cret-pw"


def test_submit_work_and_status_over_tls(small_dataset, tmp_path):
    tls_binary()  # skips with the reason when no redis-server here speaks TLS
    home = tmp_path / "home"
    with RedisServer(tmp_path / "redis", password=PASSWORD, tls=True) as server:
        assert server.url.startswith("rediss://")
        sub = subprocess.run(
            [
                sys.executable,
                "-m",
                "submitter.submit",
                "--models",
                "xgboost",
                "--symbol",
                "MES",
                "--dataset",
                str(small_dataset),
                "--horizon",
                "5",
                "--no-cv",
                "--param",
                "profile=tiny",
                "--redis-url",
                server.url,
                "--home",
                str(home),
            ],
            cwd=REPO_ROOT,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        assert sub.returncode == 0, sub.stderr
        work = run_factory("worker", "--burst", "--redis-url", server.url, "--home", str(home))
        assert work.returncode == 0, work.stderr
        status = run_factory("status", "--json", "--redis-url", server.url, "--home", str(home))
        assert status.returncode == 0, status.stderr
        train = next(j for j in json.loads(status.stdout)["jobs"] if j["kind"] == "train")
        assert train["status"] == "finished"
        for proc in (sub, work, status):
            assert PASSWORD not in proc.stdout + proc.stderr
