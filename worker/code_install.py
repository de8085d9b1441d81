"""Run a job with the code its plan names: install the plan's wheel into this session.

`submit` ships the plan's code as `<home>/code/<wheel>` and records its sha256 in
Redis (jobs.code_wheel). A worker whose own code differs (`--install auto`):

1. waits a bounded time for the wheel to reach its storage view (Drive is lazy)
   and for its bytes to match the recorded sha256;
2. installs it with pip (`--no-deps --target`) into a session-local folder, one
   per code version, and checks that the installed source hashes to the version;
3. forks the work horse as usual; the horse, before it imports any job code,
   puts that folder first on sys.path and forgets the project's modules, so the
   job runs entirely on the plan's code. The parent (a notebook kernel, maybe)
   keeps the code it imported.

The contract between a worker and a horse of other code is the environment and
exit codes of jobs.entry (ENV_*, EXIT_*), which must stay stable across versions.
"""

from __future__ import annotations

import importlib
import logging
import os
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import redis

from jobs.code_wheel import recorded_sha256, wheel_matches, wheel_path
from jobs.versioning import PACKAGES, code_version, is_code_version

log = logging.getLogger("worker")
INSTALL_MODES = ("auto", "never")


class CodeUnavailable(Exception):
    """This worker cannot run the job's code now; another worker (or a later try) may,
    unless `permanent` (no worker can: the spec names no code that can exist)."""

    def __init__(self, message: str, permanent: bool = False) -> None:
        super().__init__(message)
        self.permanent = permanent


@dataclass
class CodeInstaller:
    home: Path
    connection: redis.Redis
    folder: Path  # session-local: one sub-folder per installed code version
    mode: str = "auto"
    wheel_wait_s: float = 60.0

    def __post_init__(self) -> None:
        if self.mode not in INSTALL_MODES:
            raise ValueError(f"install mode {self.mode!r}: choose from {', '.join(INSTALL_MODES)}")

    def code_for(self, version: str) -> Path | None:
        """None when this worker runs `version` itself, else the folder holding it."""
        if version == code_version():
            return None
        if not is_code_version(version):
            raise CodeUnavailable(
                f"job needs code {version!r}, which is not a source-hashed version "
                f"(this worker runs {code_version()}); fix: resubmit the plan with this code",
                permanent=True,
            )
        wheel = wheel_path(self.home, version)
        if self.mode == "never":
            raise CodeUnavailable(
                f"job needs code {version}, this worker runs {code_version()} and was started "
                f"with --install never; fix: start a worker with --install auto, or "
                f"`pip install {wheel}`"
            )
        target = self.folder / version
        if (target / ".complete").is_file():
            return target
        self._install(self._wait_for_wheel(version, wheel), version, target)
        return target

    def _wait_for_wheel(self, version: str, wheel: Path) -> Path:
        """The wheel once it is on this storage view with the recorded checksum."""
        try:
            expected = recorded_sha256(self.connection, version)
        except ValueError as exc:
            raise CodeUnavailable(str(exc)) from exc
        deadline = time.monotonic() + self.wheel_wait_s
        seen = "missing"
        while True:
            if wheel_matches(wheel, expected):
                return wheel
            if wheel.is_file():
                seen = "there, but its checksum differs from the one submit recorded (syncing?)"
            if time.monotonic() >= deadline:
                raise CodeUnavailable(
                    f"job needs code {version}: {wheel} is {seen} after "
                    f"{self.wheel_wait_s:.0f} s; fix: check that this worker's --home is the "
                    "storage the plan was submitted to"
                )
            time.sleep(2.0)

    def _install(self, wheel: Path, version: str, target: Path) -> None:
        log.info("installing code %s from %s", version, wheel)
        started = time.monotonic()
        staging = self.folder / f".{version}.{os.getpid()}.partial"  # workers share the folder
        shutil.rmtree(staging, ignore_errors=True)
        cmd = [sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--no-index"]
        cmd += ["--disable-pip-version-check", "--target", str(staging), str(wheel)]
        out = subprocess.run(cmd, capture_output=True, text=True, timeout=300, check=False)
        if out.returncode != 0:
            tail = (out.stderr or out.stdout).strip().splitlines()[-1:] or ["no output"]
            raise CodeUnavailable(f"pip could not install {wheel.name}: {tail[0]}")
        installed = code_version(staging)
        if installed != version:
            shutil.rmtree(staging, ignore_errors=True)
            raise CodeUnavailable(f"{wheel.name} holds code {installed}, not {version}")
        (staging / ".complete").write_text(version)
        try:
            staging.rename(target)
        except OSError:  # another worker of this session installed it first
            shutil.rmtree(staging, ignore_errors=True)
            if not (target / ".complete").is_file():
                raise
        log.info("code %s installed in %.1f s", version, time.monotonic() - started)


def switch_to(folder: Path) -> None:
    """In a fresh work horse: import the project's packages from `folder` from now on."""
    sys.path.insert(0, str(folder))
    for name in list(sys.modules):
        if name.partition(".")[0] in PACKAGES:
            del sys.modules[name]
    importlib.invalidate_caches()


__all__ = ["INSTALL_MODES", "CodeInstaller", "CodeUnavailable", "switch_to"]
