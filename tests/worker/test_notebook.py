"""The worker notebook, executed as a user would run it, processes a submitted job."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import sysconfig
import time
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

from tests.conftest import REPO_ROOT
from tests.runner import job_result, job_state
from tests.worker.test_code_install import submit_from, variant_source
from tests.worker.test_recovery import _train_id


def _with_parameters(path, values: dict) -> nbformat.NotebookNode:
    nb = nbformat.read(path, as_version=4)
    cell = next(c for c in nb.cells if "parameters" in c.metadata.get("tags", []))
    cell.source += "\n" + "\n".join(f"{k} = {v!r}" for k, v in values.items())
    return nb


def fresh_venv(tmp_path: Path) -> Path:
    """A new virtual environment that has the dependencies but not ml-factory (a fresh
    Colab VM has torch, pandas, ... but not our code): this interpreter's site-packages
    are on its path as a plain directory, so their .pth files (the editable install of
    this checkout among them) are not run. Returns the environment's python."""
    venv = tmp_path / "fresh-venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    python = venv / "bin" / "python"
    site = subprocess.run(
        [str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        capture_output=True, text=True, check=True,
    ).stdout.strip()  # fmt: skip
    deps = {sysconfig.get_paths()["purelib"], sysconfig.get_paths()["platlib"]}
    Path(site, "deps-of-the-runtime.pth").write_text("\n".join(sorted(deps)) + "\n")
    probe = subprocess.run(
        [str(python), "-c", "import importlib.util as u; print(u.find_spec('jobs'))"],
        capture_output=True, text=True, check=True, cwd=tmp_path,
        env={k: v for k, v in os.environ.items() if k != "PYTHONPATH"},
    )  # fmt: skip
    assert probe.stdout.strip() == "None", "the fresh environment must not see ml-factory"
    return python


def kernel_for(python: Path, tmp_path: Path, monkeypatch) -> str:
    """A Jupyter kernel spec that runs `python` (found through JUPYTER_PATH)."""
    spec_dir = tmp_path / "jupyter" / "kernels" / "fresh"
    spec_dir.mkdir(parents=True)
    argv = [str(python), "-m", "ipykernel_launcher", "-f", "{connection_file}"]
    (spec_dir / "kernel.json").write_text(json.dumps({"argv": argv, "display_name": "fresh"}))
    monkeypatch.setenv("JUPYTER_PATH", str(tmp_path / "jupyter"))
    monkeypatch.delenv("PYTHONPATH", raising=False)
    return "fresh"


def _plan_code(home: Path, plan: dict) -> str:
    return json.loads((home / "ledger" / f"{plan['plan_id']}.json").read_text())["submitted"][
        "code"
    ]


@pytest.mark.slow
def test_the_worker_notebook_works_on_a_fresh_runtime(cluster, tmp_path, monkeypatch):
    """Only REDIS_URL and the storage folder set: the notebook installs the newest shipped
    wheel, and a job of a plan with other code runs with that plan's code."""
    pytest.importorskip("ipykernel", reason="the notebook test needs a Jupyter kernel")
    older = cluster.submit(params=("profile=tiny",))  # this checkout's code
    newer = submit_from(variant_source(tmp_path), cluster)  # other code, shipped last
    jobs = [_train_id(older), _train_id(newer)]
    kernel = kernel_for(fresh_venv(tmp_path), tmp_path, monkeypatch)
    nb = _with_parameters(
        REPO_ROOT / "notebooks" / "worker.ipynb",
        {"REDIS_URL": cluster.url, "STORAGE_ROOT": str(cluster.home), "BURST": True},
    )
    workdir = tmp_path / "content"
    workdir.mkdir()
    started = time.time()
    NotebookClient(
        nb, timeout=600, kernel_name=kernel, resources={"metadata": {"path": str(workdir)}}
    ).execute()
    results = [job_result(cluster.client, job) for job in jobs]
    assert all(r is not None and r["attempt"] == 1 for r in results), results
    codes = [_plan_code(cluster.home, plan) for plan in (older, newer)]
    assert [r["code_version"] for r in results] == codes and codes[0] != codes[1]
    outputs = "".join(o.get("text", "") for c in nb.cells for o in c.get("outputs", []))
    assert "installing" in outputs and "GPU:" in outputs
    first_claim = min(float(job_state(cluster.client, job)["lease_at"]) for job in jobs)
    print(f"fresh runtime: {first_claim - started:.1f} s from kernel start to the first claim")


def test_the_submit_notebook_parameters_cell_is_tagged():
    nb = nbformat.read(REPO_ROOT / "notebooks" / "submit.ipynb", as_version=4)
    assert any("parameters" in c.metadata.get("tags", []) for c in nb.cells)
