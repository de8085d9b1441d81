"""The worker notebook, executed as a user would run it, processes a submitted job."""

from __future__ import annotations

import nbformat
import pytest
from nbclient import NotebookClient

from tests.conftest import REPO_ROOT
from tests.runner import job_result
from tests.worker.test_recovery import _train_id


def _with_parameters(path, values: dict) -> nbformat.NotebookNode:
    nb = nbformat.read(path, as_version=4)
    cell = next(c for c in nb.cells if "parameters" in c.metadata.get("tags", []))
    cell.source += "\n" + "\n".join(f"{k} = {v!r}" for k, v in values.items())
    return nb


def test_the_worker_notebook_processes_a_submitted_job(cluster):
    pytest.importorskip("ipykernel", reason="the notebook test needs a Jupyter kernel")
    plan = cluster.submit(params=("profile=tiny",))
    job = _train_id(plan)
    nb = _with_parameters(
        REPO_ROOT / "notebooks" / "worker.ipynb",
        {
            "REDIS_URL": cluster.url,
            "STORAGE_ROOT": str(cluster.home),
            "BURST": True,
            "WORKER_NAME": "notebook",
        },
    )
    NotebookClient(
        nb, timeout=600, kernel_name="python3", resources={"metadata": {"path": str(REPO_ROOT)}}
    ).execute()
    result = job_result(cluster.client, job)
    assert result is not None and result["attempt"] == 1
    outputs = "".join(o.get("text", "") for c in nb.cells for o in c.get("outputs", []))
    assert "GPU:" in outputs


def test_the_submit_notebook_parameters_cell_is_tagged():
    nb = nbformat.read(REPO_ROOT / "notebooks" / "submit.ipynb", as_version=4)
    assert any("parameters" in c.metadata.get("tags", []) for c in nb.cells)
