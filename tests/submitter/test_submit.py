"""`submit`: validation before anything is enqueued, idempotency, one-line errors."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from tests.conftest import REPO_ROOT
from tests.runner import run_factory


def submit(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "submitter.submit", *args],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


@pytest.fixture
def base_args(redis_server, small_dataset, tmp_path):
    return [
        "--symbol",
        "MES",
        "--dataset",
        str(small_dataset),
        "--horizon",
        "5",
        "--redis-url",
        redis_server.url,
        "--home",
        str(tmp_path / "home"),
    ]


def test_the_same_submission_twice_creates_nothing_new(base_args, redis_server):
    first = submit("--models", "xgboost,lstm", "--folds", "3", *base_args, "--json")
    assert first.returncode == 0, first.stderr
    plan = json.loads(first.stdout)
    kinds = sorted(j["kind"] for j in plan["jobs"])
    assert kinds == ["cv"] * 6 + ["ensemble", "report", "train", "train"]
    keys_before = sorted(redis_server.client().keys("*"))
    second = submit("--models", "xgboost,lstm", "--folds", "3", *base_args)
    assert second.returncode == 0 and "already submitted" in second.stdout
    assert sorted(redis_server.client().keys("*")) == keys_before
    ledger_path = f"{base_args[-1]}/ledger/{plan['plan_id']}.json"
    with open(ledger_path) as fh:
        ledger = json.load(fh)
    assert len(ledger["jobs"]) == len(plan["jobs"])


@pytest.mark.parametrize(
    ("flags", "splits"),
    [
        (["--cv", "walk-forward", "--steps", "3", "--window", "sliding"], 3),
        (["--cv", "cpcv", "--groups", "4", "--test-groups", "2"], 6),
    ],
)
def test_each_cv_scheme_submits_one_cv_job_per_split(base_args, flags, splits):
    proc = submit("--models", "xgboost,lstm", *flags, *base_args, "--json")
    assert proc.returncode == 0, proc.stderr
    plan = json.loads(proc.stdout)
    kinds = sorted(j["kind"] for j in plan["jobs"])
    assert kinds == ["cv"] * (2 * splits) + ["ensemble", "report", "train", "train"]
    with open(f"{base_args[-1]}/ledger/{plan['plan_id']}.json") as fh:
        ledger = json.load(fh)
    scheme = {"scheme": flags[1], **ledger["submitted"]["cv"]}
    assert ledger["submitted"]["cv"]["scheme"] == flags[1]
    for job in ledger["jobs"]:
        if job["spec"]["kind"] in ("cv", "ensemble"):
            assert job["spec"]["cv"] == scheme and job["spec"]["folds"] == splits


def test_submit_help_documents_the_cv_schemes():
    out = submit("--help").stdout
    for flag in (
        "--cv",
        "walk-forward",
        "cpcv",
        "--steps",
        "--window",
        "--groups",
        "--test-groups",
    ):
        assert flag in out


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--models", "xgboost,randomforest"], "unknown model(s) ['randomforest']"),
        (["--models", "xgboost", "--param", "max_dept=3"], "unknown parameter(s) max_dept"),
        (["--models", "xgboost", "--param", "max_depth=deep"], "max_depth='deep' is not a valid"),
        (["--models", "xgboost", "--param", "lstm.epochs=3"], "not in --models"),
        (["--models", "xgboost", "--param", "noequals"], "is not KEY=VALUE"),
        (["--models", "xgboost", "--steps", "3"], "--steps is for --cv walk-forward"),
        (["--models", "xgboost", "--cv", "cpcv", "--folds", "3"], "--folds is for --cv purged"),
        (["--models", "xgboost", "--cv", "cpcv", "--test-groups", "6"], "--test-groups 6"),
    ],
)
def test_bad_submissions_fail_in_one_line_and_enqueue_nothing(
    base_args, redis_server, extra, message
):
    proc = submit(*extra, *base_args)
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and message in lines[0] and lines[0].startswith("error:")
    assert redis_server.client().keys("*") == []


def test_an_unreachable_redis_is_one_line_and_hides_the_password(small_dataset, tmp_path):
    proc = submit(
        "--models",
        "xgboost",
        "--symbol",
        "MES",
        "--dataset",
        str(small_dataset),
        "--horizon",
        "5",
        "--redis-url",
        "redis://:hunter2@127.0.0.1:1/0",
        "--home",
        str(tmp_path),
    )
    assert proc.returncode == 2
    assert "cannot reach Redis" in proc.stderr and "fix:" in proc.stderr
    assert "hunter2" not in proc.stderr + proc.stdout


def test_status_without_plans_says_what_to_do(redis_server, tmp_path):
    proc = run_factory("status", "--redis-url", redis_server.url, "--home", str(tmp_path))
    assert proc.returncode == 0 and "submit" in proc.stdout


def test_submit_help_starts_without_heavy_imports():
    code = (
        "import sys, submitter.submit as s; s.build_parser();"
        "print([m for m in ('torch', 'pandas', 'xgboost') if m in sys.modules])"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=REPO_ROOT, capture_output=True, text=True, check=True
    )
    assert out.stdout.strip() == "[]"


def test_a_folder_as_raw_is_named_as_a_folder(base_args, redis_server, tmp_path):
    args = [a for a in base_args]
    at = args.index("--dataset")
    args[at : at + 2] = ["--raw", str(tmp_path)]
    proc = submit("--models", "xgboost", *args)
    assert proc.returncode == 2
    assert proc.stderr.strip() == (
        f"error: {tmp_path}: is a directory, not a file of bars; "
        "fix: pass one file inside it: a CSV, a parquet or a zip of CSV files"
    )
    assert redis_server.client().keys("*") == []


def test_tz_auto_is_accepted_and_reaches_the_data_job(base_args, redis_server, tmp_path):
    from factory.data.synthetic import synthetic_bars

    raw = tmp_path / "MES_1m.csv"
    synthetic_bars("MES", days=3).to_csv(raw)
    args = [a for a in base_args]
    at = args.index("--dataset")
    args[at : at + 2] = ["--raw", str(raw)]
    proc = submit("--models", "xgboost", "--tz", "auto", *args, "--json")
    assert proc.returncode == 0, proc.stderr
    ledger = json.loads(
        (tmp_path / "home" / "ledger" / f"{json.loads(proc.stdout)['plan_id']}.json").read_text()
    )
    data = next(j["spec"] for j in ledger["jobs"] if j["spec"]["kind"] == "data")
    assert data["dataset"]["config"]["tz"] == "auto"
