"""One attempt of one job, inside the work horse: its lease, stop flag, staged output,
fenced finalize and promotion.

The worker parent claimed the lease (attempt N) before it forked and described it in
the environment (jobs.attempt_env). A runner (jobs.kinds) writes an output that must
appear only once (a bundle, a fold's out-of-fold folder) into `staged_dir()`, a local
folder named after the attempt, and records `final_dir()` in its result. `publish`
copies it into the shared storage's `models/.staged/<job>-<N>`, asking the lease again
before each chunk (a superseded attempt writes nothing there), makes the result final
through the fenced compare-and-set (jobs.lease) and, only when it won, renames the
copy into place; an attempt that lost its lease removes what it staged and copied and
publishes nothing. `remove_leftovers`, run as an attempt starts, removes the shared
copies earlier attempts of the job left behind (killed mid-copy or before renaming).
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from factory.files import copy_tree_guarded
from factory.layout import STAGED, Layout
from factory.training.context import Superseded
from jobs.attempt_env import AttemptEnv, stop_requested
from jobs.durable import DurabilityCheck, NoCheck, make_check, wait_durable
from jobs.handoff import record_output
from jobs.lease import REDIS_OUTAGE_S, Lease, Leases, RedisUnreachable, call_with_retry

log = logging.getLogger("jobs.attempt")


@dataclass
class Attempt:
    lease: Lease
    leases: Leases
    env: AttemptEnv
    staged_: Path | None = field(default=None, init=False)  # set by staged_dir()
    shared_: Path | None = field(default=None, init=False)  # its copy in the storage
    durable_: DurabilityCheck | None = field(default=None, init=False)  # built when needed

    @classmethod
    def of(cls, job_id: str, worker_name: str, connection, env: AttemptEnv) -> Attempt:
        """The attempt `env` describes of `job_id`, run by `worker_name`."""
        lease = Lease(job_id, worker_name, env.attempt)
        return cls(lease, Leases(connection, env.lease_ttl_s), env)

    @property
    def job_id(self) -> str:
        return self.lease.job_id

    @property
    def home(self) -> Path:
        return self.env.home

    @property
    def layout(self) -> Layout:
        return Layout(self.env.home)

    @staticmethod
    def stop_requested() -> bool:
        """Whether the worker asked this attempt to checkpoint and hand its job back."""
        return stop_requested()

    def staged_dir(self) -> Path:
        """Where this attempt writes its one-time output before it is final: a local
        folder (nothing reaches the shared storage before `publish` checks the lease)."""
        root = Path(tempfile.gettempdir()) / "mlf-staged"
        self.staged_ = root / self.layout.staged_bundle_dir(self.job_id, self.lease.attempt).name
        shutil.rmtree(self.staged_, ignore_errors=True)  # a previous try in this same VM
        self.staged_.parent.mkdir(parents=True, exist_ok=True)
        return self.staged_

    def remove_leftovers(self) -> list[str]:
        """Remove the shared copies (`models/.staged/<job>-<n>`) that attempts before this
        one left behind; the names removed."""
        root, prefix = self.layout.models_root() / STAGED, f"{self.job_id}-"
        removed = []
        for path in sorted(root.glob(f"{prefix}*")) if root.is_dir() else ():
            number = path.name[len(prefix) :]
            if number.isdigit() and int(number) < self.lease.attempt and path.is_dir():
                shutil.rmtree(path, ignore_errors=True)
                removed.append(path.name)
        if removed:
            log.info("job %s attempt %s: removed %s", *self._name(), removed)
        return removed

    def _guard(self) -> None:
        """Raise Superseded unless this attempt still holds its lease (the worker's last
        renewal answers while it is fresh, else Redis)."""
        if self.env.lease_held_locally():
            return
        try:
            holds = call_with_retry(self.leases.holds, self.lease, window_s=self.env.lease_ttl_s)
        except RedisUnreachable as exc:
            raise Superseded(str(exc)) from exc
        if not holds:
            raise Superseded(f"job {self.job_id} attempt {self.lease.attempt} lost its lease")

    def _upload(self) -> None:
        """Copy the local staged folder into the shared storage (lease-guarded)."""
        if self.staged_ is None or not self.staged_.exists():
            return
        self.shared_ = self.layout.staged_bundle_dir(self.job_id, self.lease.attempt)
        shutil.rmtree(self.shared_, ignore_errors=True)
        copy_tree_guarded(self.staged_, self.shared_, self._guard)

    def confirm_durable(self, paths: list[Path], what: str) -> None:
        """Before `what` is published: wait, up to storage_visibility_wait_s, until the
        platform confirms `paths` reached durable storage (jobs.durable; nothing to
        wait for by default). What it does not confirm is published anyway, and said."""
        if self.durable_ is None:
            self.durable_ = make_check(self.env.durability, self.home)
        if isinstance(self.durable_, NoCheck) or not paths:
            return
        began, wait_s = time.monotonic(), self.env.storage_visibility_wait_s
        missing = wait_durable(paths, self.durable_, wait_s)
        took, name = time.monotonic() - began, self.durable_.name
        if missing:
            log.warning(
                "job %s attempt %s: %s: %d of %d files not confirmed durable by %s within "
                "%.0f s (first: %s); published anyway (its consumers wait, then fall back "
                "or re-run this job)",
                *self._name(),
                what,
                len(missing),
                len(paths),
                name,
                wait_s,
                missing[0].name,
            )
        else:
            log.info(
                "job %s attempt %s: %s confirmed durable by %s in %.1f s",
                *self._name(),
                what,
                name,
                took,
            )

    def final_dir(self) -> Path:
        """Where that output lives once this attempt's result is final."""
        return self.layout.bundle_dir(self.job_id)

    def publish(self, result: dict[str, Any], progress: dict | None) -> bool:
        """Make `result` final (fenced) and promote the staged output; False when a
        newer attempt owns the job (nothing of this one is left then)."""
        result["attempt"] = self.lease.attempt
        if self.staged_ is not None and self.staged_.exists():
            record_output(result, self.staged_)  # the consumer checks what it reads
        try:
            self._upload()
            if self.shared_ is not None:
                files = sorted(p for p in self.shared_.rglob("*") if p.is_file())
                self.confirm_durable(files, "output")
        except Superseded as exc:
            log.warning("job %s attempt %s: output not copied (%s)", *self._name(), exc)
            self.discard()
            return False
        try:  # waiting out a long outage cannot make the compare-and-set wrong
            final = call_with_retry(
                self.leases.finalize,
                self.lease,
                json.dumps(result),
                progress,
                window_s=REDIS_OUTAGE_S,
            )
        except RedisUnreachable as exc:
            log.error("job %s attempt %s: result not written (%s)", *self._name(), exc)
            final = False
        if not final:
            self.discard()
            return False
        if self.shared_ is not None:
            self._promote(self.shared_, self.final_dir())
        self._remove_local()
        return True

    def discard(self) -> None:
        """Remove what this attempt staged and copied (it will never be final)."""
        self._remove_local()
        if self.shared_ is not None:
            shutil.rmtree(self.shared_, ignore_errors=True)

    def _remove_local(self) -> None:
        if self.staged_ is not None:
            shutil.rmtree(self.staged_, ignore_errors=True)

    @staticmethod
    def _promote(staged: Path, final: Path) -> None:
        if final.exists():
            shutil.rmtree(final)
        final.parent.mkdir(parents=True, exist_ok=True)
        os.replace(staged, final)

    def _name(self) -> tuple[str, int]:
        return self.job_id, self.lease.attempt
