"""Our queue and workers show up in the stock `rq info` (with -S json)."""

from __future__ import annotations

import shutil
import subprocess

import pytest

from tests.runner import wait_for


def test_rq_info_lists_our_queue_and_worker(cluster):
    rq = shutil.which("rq")
    if rq is None:
        pytest.skip("the rq command-line tool is not on PATH")
    cluster.submit(params=("profile=tiny",))
    cluster.worker("visible-worker")

    def info() -> str:
        out = subprocess.run(
            [rq, "info", "-u", cluster.url, "-S", "json"],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        return out.stdout if "visible-worker" in out.stdout else ""

    text = wait_for(info, 60, "rq info to show the worker")
    assert "mlf" in text
