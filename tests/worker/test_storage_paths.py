"""One storage, two paths to it: a plan submitted through one runs on workers that reach the
storage through another (a laptop's Drive folder and a Colab tab's /content/drive); the
submitter's path is gone by the time the workers start.

Every path that a spec, a result, the ledger or a manifest records is relative to the
storage root, so nothing in them may name either path (or any absolute path)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.runner import job_result, run_factory, start_worker, wait_for

MODELS = "xgboost,lightgbm"  # two models: the ensemble reads the others' bundles
PARAMS = ("profile=tiny",)


def _strings(value):
    if isinstance(value, dict):
        for k, v in value.items():
            yield from _strings(k)
            yield from _strings(v)
    elif isinstance(value, list):
        for v in value:
            yield from _strings(v)
    elif isinstance(value, str):
        yield value


def _machine_paths(doc, roots: list[str]) -> list[str]:
    return [s for s in _strings(doc) if s.startswith("/") or any(r in s for r in roots)]


def _redis_docs(client) -> dict[str, object]:
    """Every JSON value under the runner's keys (plans, results, checkpoint records)."""
    docs: dict[str, object] = {}
    for key in client.scan_iter("mlf:*"):
        kind = client.type(key).decode()
        values = [client.get(key)] if kind == "string" else []
        values += client.lrange(key, 0, -1) if kind == "list" else []
        values += list(client.hgetall(key).values()) if kind == "hash" else []
        for i, raw in enumerate(values):
            try:
                docs[f"{key.decode()}[{i}]"] = json.loads(raw)
            except (ValueError, UnicodeDecodeError):
                docs[f"{key.decode()}[{i}]"] = raw.decode(errors="replace")
    return docs


def _submit(cluster, home: Path, raw: Path) -> dict:
    from tests.worker.conftest import run_factory_submit

    args = ["--models", MODELS, "--symbol", "MES", "--raw", str(raw), "--horizon", "5"]
    args += ["--folds", "2", "--redis-url", cluster.url, "--home", str(home), "--json"]
    for p in PARAMS:
        args += ["--param", p]
    proc = run_factory_submit(*args)
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)


@pytest.mark.slow
def test_a_plan_submitted_through_one_path_runs_through_another(cluster, tmp_path):
    from factory.data.synthetic import synthetic_bars, write_raw
    from factory.files import file_sha256

    raw = write_raw(synthetic_bars("MES", days=6, seed=5), tmp_path / "laptop" / "MES_1m.parquet")
    laptop, view = tmp_path / "laptop-drive", tmp_path / "colab-drive"
    laptop.symlink_to(cluster.home)  # the same storage, reached through two paths
    view.symlink_to(cluster.home)
    plan = _submit(cluster, laptop, raw)
    laptop.unlink()  # the workers' machine has no such path
    assert file_sha256(cluster.home / "data" / "raw" / "MES_1m.parquet") == file_sha256(raw)
    for name in ("w1", "w2"):
        cluster.workers.append(start_worker(cluster.url, view, name))
    report = next(j["id"] for j in plan["jobs"] if j["kind"] == "report")
    wait_for(lambda: job_result(cluster.client, report), 120, "the report")
    results = {j["id"]: job_result(cluster.client, j["id"]) for j in plan["jobs"]}
    assert all(results.values()), results
    data = next(r for r in results.values() if r["kind"] == "data")
    train = next(r for r in results.values() if r["kind"] == "train")
    ensemble = next(r for r in results.values() if r["kind"] == "ensemble")
    assert data["dataset_dir"].startswith("data/processed/MES/")
    assert train["bundle"].startswith("models/") and (view / train["bundle"]).is_dir()
    assert ensemble["dataset_dir"] == data["dataset_dir"] and (view / ensemble["bundle"]).is_dir()
    assert sorted(results[report]["files"].values())[0].startswith("results/")

    roots = [str(tmp_path), str(tmp_path.resolve())]
    docs = _redis_docs(cluster.client)
    ledger = cluster.home / "ledger" / f"{plan['plan_id']}.json"
    spec = json.loads(ledger.read_text())["jobs"][0]["spec"]
    assert spec["dataset"]["raw_path"] == "data/raw/MES_1m.parquet"
    files = [p for p in cluster.home.rglob("*.json") if ".cache" not in p.parts]
    assert any(p.name == "manifest.json" for p in files) and ledger in files
    docs |= {str(p): json.loads(p.read_text()) for p in files}
    bad = {name: found for name, doc in docs.items() if (found := _machine_paths(doc, roots))}
    assert not bad, bad

    for args in (("results", "--plan", plan["plan_id"]), ("recover", "--plan", plan["plan_id"])):
        out = run_factory(*args, "--redis-url", cluster.url, "--home", str(view))
        assert out.returncode == 0, out.stderr
    predict = run_factory("predict", "--bundle", str(view / ensemble["bundle"]), "--raw", str(raw))
    assert predict.returncode == 0, predict.stderr


def test_a_result_naming_an_absolute_path_is_refused(redis_server, tmp_path):
    from factory.layout import StoragePathError
    from jobs import keys
    from jobs.attempt import Attempt
    from jobs.attempt_env import AttemptEnv
    from jobs.kinds import Run, dataset_of
    from jobs.spec import JobSpec

    client = redis_server.client()
    client.set(keys.result("data-1"), json.dumps({"dataset_dir": "/etc"}))
    spec = JobSpec(kind="train", symbol="MES", code="x", dataset={"from_job": "data-1"})
    run = Run(spec, Attempt.of("train-1", "w", client, AttemptEnv(tmp_path, attempt=1)), client, [])
    with pytest.raises(StoragePathError, match="'/etc' is absolute or leaves the storage root"):
        dataset_of(run)
    escaping = JobSpec(kind="train", symbol="MES", code="x", dataset={"dataset_dir": "../x"})
    with pytest.raises(StoragePathError, match=r"dataset_dir '\.\./x'"):
        dataset_of(Run(escaping, run.attempt, client, []))
