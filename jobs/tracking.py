"""W&B tracking of train / CV / ensemble jobs: configured by WANDB_PROJECT, never required.

The run id is derived from the job id and resumed with resume="allow", so a
requeued job continues the same run. Without WANDB_API_KEY the run is offline
(files under <home>/wandb, `wandb sync` them later). Any W&B failure is logged and
the job goes on: tracking must never cost a training run.
"""

from __future__ import annotations

import logging
import os
import re
from pathlib import Path
from typing import Any

log = logging.getLogger("jobs.tracking")


def run_id_for(job_id: str) -> str:
    return re.sub(r"[^A-Za-z0-9_-]", "-", job_id)[:64]


class Tracker:
    """A W&B run, or nothing at all when W&B is not configured (or fails)."""

    def __init__(self, run=None) -> None:
        self.run = run

    def log(self, metrics: dict[str, float], step: int) -> None:
        if self.run is None or not metrics:
            return
        try:
            self.run.log(dict(metrics), step=step)
        except Exception as exc:
            log.warning("W&B log failed (%s); tracking off for this job", type(exc).__name__)
            self.run = None

    def finish(self, summary: dict[str, Any]) -> None:
        if self.run is None:
            return
        try:
            self.run.summary.update(summary)
            self.run.finish()
        except Exception as exc:
            log.warning("W&B finish failed (%s)", type(exc).__name__)


def start(job_id: str, config: dict[str, Any], home: Path) -> Tracker:
    project = os.environ.get("WANDB_PROJECT")
    if not project:
        return Tracker()
    mode = os.environ.get("WANDB_MODE") or (
        "online" if os.environ.get("WANDB_API_KEY") else "offline"
    )
    try:
        import wandb

        run = wandb.init(
            project=project,
            id=run_id_for(job_id),
            resume="allow",
            mode=mode,
            config=config,
            dir=str(home),
            reinit=True,
        )
    except Exception as exc:
        log.warning(
            "W&B not started (%s: %s); the job runs untracked",
            type(exc).__name__,
            str(exc).splitlines()[0][:200] if str(exc) else "",
        )
        return Tracker()
    return Tracker(run)
