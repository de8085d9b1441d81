"""The worker's parent process never initialises CUDA (issue 16): a forked work horse
cannot use CUDA once its parent has, so the parent must not even import torch, neither
when its modules are imported nor while its horse trains a deep model. Seen from the
outside: the shared libraries mapped into the process (/proc/<pid>/maps)."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest

from tests.conftest import REPO_ROOT
from tests.runner import job_result

TORCH_LIBS = ("libtorch", "libc10", "libcuda", "libcudart")
DEEP = ("profile=tiny", "epochs=2", "patience=2")

pytestmark = pytest.mark.skipif(not Path("/proc/self/maps").is_file(), reason="needs /proc")


def torch_libs(pid: int) -> set[str]:
    """The torch and CUDA libraries that process `pid` has loaded (empty if it is gone)."""
    try:
        maps = Path(f"/proc/{pid}/maps").read_text()
    except (FileNotFoundError, ProcessLookupError, PermissionError):
        return set()
    names = {line.rsplit("/", 1)[-1] for line in maps.splitlines() if "/" in line}
    return {n for n in names if n.startswith(TORCH_LIBS)}


def test_the_worker_modules_import_neither_torch_nor_cuda():
    code = (
        "import sys, submitter.cli, worker.cli, worker.worker, worker.run, worker.colab, "
        "jobs.entry, jobs.kinds; print(','.join(m for m in ('torch', 'torch.cuda') "
        "if m in sys.modules))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=REPO_ROOT, capture_output=True, text=True, check=True
    )
    assert out.stdout.strip() == ""


def test_the_parent_never_loads_torch_while_its_horse_trains(cluster):
    plan = cluster.submit("lstm", DEEP)
    job = next(j["id"] for j in plan["jobs"] if j["kind"] == "train")
    worker = cluster.worker("w1")
    parent_libs: set[str] = set()
    horse_libs: set[str] = set()
    deadline = time.monotonic() + 180
    while job_result(cluster.client, job) is None:
        assert time.monotonic() < deadline, "timed out waiting for the lstm job"
        assert worker.poll() is None, "the worker exited"
        parent_libs |= torch_libs(worker.pid)
        for child in psutil.Process(worker.pid).children(recursive=True):
            horse_libs |= torch_libs(child.pid)
        time.sleep(0.1)
    parent_libs |= torch_libs(worker.pid)
    assert job_result(cluster.client, job)["model"] == "lstm"
    assert any(n.startswith("libtorch") for n in horse_libs)  # the probe sees torch...
    assert parent_libs == set()  # ...and the parent never had it
