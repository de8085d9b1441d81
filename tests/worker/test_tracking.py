"""W&B from a real worker: an offline run named after the job."""

from __future__ import annotations

from jobs.tracking import run_id_for
from tests.runner import job_result, run_factory
from tests.worker.test_recovery import _train_id


def test_a_worker_job_logs_an_offline_run_named_after_the_job(cluster, monkeypatch):
    monkeypatch.setenv("WANDB_PROJECT", "mlf-test")
    monkeypatch.setenv("WANDB_SILENT", "true")
    monkeypatch.delenv("WANDB_API_KEY", raising=False)
    plan = cluster.submit(params=("profile=tiny",))
    job = _train_id(plan)
    proc = run_factory(
        "worker", "--burst", "--redis-url", cluster.url, "--home", str(cluster.home), timeout=300
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert job_result(cluster.client, job) is not None
    runs = list((cluster.home / "wandb").glob(f"offline-run-*-{run_id_for(job)}"))
    assert runs, f"no offline run for {job} under {cluster.home / 'wandb'}"
