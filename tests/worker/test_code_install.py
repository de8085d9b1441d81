"""Code identity survives installation, and a worker runs each job with its plan's code.

The plan of the field: a plan submitted from one copy of the code (a laptop's checkout)
runs on a worker installed from another (a Colab tab): the worker installs the plan's
wheel for the job, or (`--install never`) leaves it queued without spinning.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from jobs.versioning import PACKAGES, code_version
from tests.conftest import REPO_ROOT
from tests.runner import job_result, job_state, run_factory, wait_for

pytestmark = pytest.mark.slow


def _pip_install_target(wheel: Path, target: Path) -> None:
    cmd = [sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--no-index"]
    subprocess.run([*cmd, "--target", str(target), str(wheel)], check=True, timeout=300)


def _version_of(root: Path) -> str:
    """The code version as the code installed under `root` computes it, in its own process."""
    out = subprocess.run(
        [sys.executable, "-c", "from factory.version import code_version; print(code_version())"],
        cwd=root,
        env={**os.environ, "PYTHONPATH": str(root)},
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    return out.stdout.strip()


def test_a_wheel_built_from_the_checkout_reports_the_checkout_version(tmp_path):
    """What `pip install git+...` or a wheel on Drive gives equals the checkout's version."""
    wheels, checkout = tmp_path / "wheels", tmp_path / "checkout"
    checkout.mkdir()  # a copy of the checkout: a build writes build/ and *.egg-info beside it
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(REPO_ROOT / name, checkout / name)
    for package in PACKAGES:
        shutil.copytree(
            REPO_ROOT / package, checkout / package, ignore=shutil.ignore_patterns("__py*")
        )
    build = [sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation"]
    subprocess.run(
        [*build, "-w", str(wheels), str(checkout)],
        check=True,
        timeout=300,
    )
    _pip_install_target(next(wheels.glob("*.whl")), tmp_path / "site")
    assert _version_of(tmp_path / "site") == code_version()
    assert "+src." in code_version()


def test_factory_version_prints_the_code_version():
    proc = run_factory("--version")
    assert proc.returncode == 0, proc.stderr
    assert code_version() in proc.stdout


def variant_source(tmp_path: Path) -> Path:
    """A copy of this code with one changed comment: another code version."""
    root = tmp_path / "variant"
    for package in PACKAGES:
        shutil.copytree(REPO_ROOT / package, root / package, ignore=shutil.ignore_patterns("__py*"))
    init = root / "factory" / "__init__.py"
    init.write_text(init.read_text() + "# a variant of the code, for tests\n")
    return root


def submit_from(source: Path, cluster, *extra: str) -> dict:
    """`submit` run from the code under `source` (as from another machine's checkout)."""
    args = ["--models", "xgboost", "--symbol", "MES", "--dataset", str(cluster.dataset)]
    args += ["--horizon", "5", "--no-cv", "--no-ensemble", "--json", *extra]
    args += ["--redis-url", cluster.url, "--home", str(cluster.home), "--param", "profile=tiny"]
    proc = subprocess.run(
        [sys.executable, "-m", "submitter.submit", *args],
        cwd=source,
        env={**os.environ, "PYTHONPATH": str(source)},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)


def _train_job(plan: dict) -> str:
    return next(j["id"] for j in plan["jobs"] if j["kind"] == "train")


def test_submit_ships_a_wheel_whose_code_is_the_plan_code(cluster, tmp_path):
    source = variant_source(tmp_path)
    variant = _version_of(source)
    assert variant != code_version()
    plan = submit_from(source, cluster)
    ledger = json.loads((cluster.home / "ledger" / f"{plan['plan_id']}.json").read_text())
    wheel = cluster.home / ledger["submitted"]["code_wheel"]
    assert ledger["submitted"]["code"] == variant and wheel.is_file()
    assert not Path(ledger["submitted"]["code_wheel"]).is_absolute()
    _pip_install_target(wheel, tmp_path / "site")
    assert _version_of(tmp_path / "site") == variant
    again = submit_from(source, cluster)
    assert again["created"] is False


def test_a_worker_running_other_code_installs_the_plans_wheel_for_the_job(cluster, tmp_path):
    source = variant_source(tmp_path)
    plan = submit_from(source, cluster)
    job = _train_job(plan)
    proc = run_factory(
        "worker", "--burst", "--redis-url", cluster.url, "--home", str(cluster.home),
        "--data-cache", str(tmp_path / "cache"), "--lease-ttl", "4",
        env={**os.environ, "TMPDIR": str(tmp_path)},  # its own <tmp>/mlf-code: a fresh session
        timeout=300,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    result = job_result(cluster.client, job)
    assert result is not None, proc.stderr[-2000:]
    assert result["code_version"] == _version_of(source) != code_version()
    assert "installing code" in proc.stderr


def test_install_never_leaves_the_job_queued_without_spinning(cluster, tmp_path):
    source = variant_source(tmp_path)
    plan = submit_from(source, cluster)
    job = _train_job(plan)
    started = time.monotonic()
    proc = run_factory(
        "worker", "--burst", "--install", "never", "--redis-url", cluster.url,
        "--home", str(cluster.home), timeout=120,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert time.monotonic() - started < 60
    assert "only jobs this worker cannot run are queued" in proc.stderr
    assert "--install never" in job_state(cluster.client, job)["error"]
    client = cluster.client
    assert client.lrange("rq:queue:mlf", 0, -1) == [job.encode()]
    assert client.llen("rq:queue:mlf:intermediate") == 0
    assert not client.exists(f"mlf:attempts:{job}")
    # a long-running worker refuses it once, and neither spins nor re-enqueues it
    worker = cluster.worker("w-never", "--install", "never")
    wait_for(lambda: "left queued" in (cluster.home / "w-never.log").read_text(), 60, "a refusal")
    time.sleep(3)
    log = (cluster.home / "w-never.log").read_text()
    assert log.count("left queued for another worker") == 1
    assert worker.poll() is None
    assert client.lrange("rq:queue:mlf", 0, -1) == [job.encode()]
    assert client.llen("rq:queue:mlf:intermediate") == 0
