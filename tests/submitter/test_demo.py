"""`factory demo --chaos` at a tiny size: every job finishes exactly once."""

from __future__ import annotations

import json
import os
import subprocess
import sys

from jobs.connection import connect
from jobs.embedded import embedded_url, stop_embedded
from jobs.plan import read_ledger
from tests.conftest import REPO_ROOT


def test_demo_with_chaos_finishes_every_job_exactly_once(tmp_path):
    home = tmp_path / "home"
    env = {k: v for k, v in os.environ.items() if k != "REDIS_URL"}
    try:
        proc = subprocess.run(
            [
                sys.executable,
                "-m",
                "submitter.cli",
                "demo",
                "--workers",
                "2",
                "--models",
                "xgboost,lstm",
                "--chaos",
                "--days",
                "8",
                "--folds",
                "2",
                "--home",
                str(home),
                "--param",
                "profile=tiny",
                "--param",
                "lstm.epochs=8",
                "--param",
                "lstm.patience=100",
                "--param",
                "xgboost.n_estimators=300",
                "--param",
                "xgboost.early_stopping_rounds=1000",
                "--param",
                "xgboost.checkpoint_every_rounds=5",
                "--param",
                "xgboost.learning_rate=0.05",
                "--param",
                "xgboost.max_depth=6",
            ],
            cwd=REPO_ROOT,
            env=env,
            capture_output=True,
            text=True,
            timeout=900,
            check=False,
        )
        assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
        assert "chaos: SIGKILL worker" in proc.stdout and "resumed on" in proc.stdout
        assert "leaderboard" in proc.stdout
        client = connect(embedded_url(home), home)
        plan_id = next(p.stem for p in (home / "ledger").glob("plan-*.json"))
        plan = read_ledger(home, plan_id)
        built = list(plan.entries)
        for entry in built:
            raw = client.get(f"mlf:result:{entry.job_id}")
            assert raw is not None, f"{entry.job_id} has no result"
            assert json.loads(raw)["attempt"] >= 1
        attempts = [int(client.get(f"mlf:attempts:{e.job_id}")) for e in built]
        assert max(attempts) >= 2  # the chaos victim ran twice and has one result
    finally:
        stop_embedded(home)
