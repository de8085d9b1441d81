"""The session budget: a Colab session lives ~12 h; hand work back before it dies.

The session's age is counted from the start of the runtime's oldest Jupyter process
(server or kernel): a pooled Colab VM can be up for hours before a session is given
to it, so machine boot is only the fallback, used when no Jupyter process is found.
A caller that knows better says when the session ends (`--session-ends-in`). Near the
end a worker checkpoints and hands its job back (no attempt used), and it does not
start a job whose last observed duration cannot fit.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

import psutil

DEFAULT_MAX_SESSION_HOURS = 11.5
DEFAULT_HANDBACK_MARGIN_S = 180.0

# what a Jupyter server or kernel runs: a program's or module's name (without ".py")
JUPYTER_PROCESS_NAMES = (
    "jupyter",
    "jupyter-notebook",
    "jupyter-server",
    "jupyter-lab",
    "jupyter-kernel",
    "ipykernel_launcher",
    "colab_kernel_launcher",
)
# a process that vanished or is not ours to read while the processes are listed
_UNREADABLE = (psutil.NoSuchProcess, psutil.ZombieProcess, psutil.AccessDenied)

log = logging.getLogger(__name__)


class SessionStart(NamedTuple):
    """When the session started (epoch seconds), by which measure, in words."""

    at: float
    source: str  # "jupyter" or "uptime"
    detail: str  # e.g. "oldest Jupyter process (pid 123, started 10:02:11)"


def machine_uptime_s() -> float:
    """Seconds since machine boot from /proc/uptime; 0.0 (count from now) if unreadable."""
    try:
        return float(Path("/proc/uptime").read_text().split()[0])
    except (OSError, ValueError, IndexError) as e:
        log.warning("machine uptime unknown (%s): the session is counted from now", e)
        return 0.0


def machine_boot_time() -> float:
    """Epoch seconds of machine boot: psutil's, else from /proc/uptime."""
    try:
        return psutil.boot_time()
    except (OSError, RuntimeError) as e:
        log.warning("psutil.boot_time() failed (%s): using /proc/uptime", e)
        return time.time() - machine_uptime_s()


def _is_jupyter(cmdline: list[str], names: Iterable[str]) -> bool:
    """Whether a program or module in `cmdline` is named like a Jupyter server or kernel."""
    wanted = set(names)
    for arg in cmdline:
        base = os.path.basename(arg)
        if base.removesuffix(".py") in wanted:
            return True
    return False


def _oldest_jupyter(
    names: Iterable[str], processes: Iterable[psutil.Process] | None
) -> tuple[float, int] | None:
    """(create_time, pid) of the oldest process whose cmdline names Jupyter, or None.

    A process that exits, turns zombie or may not be read while the list is walked is
    skipped (counted in a debug line); any other error is raised.
    """
    names = tuple(names)
    oldest: tuple[float, int] | None = None
    skipped = 0
    for proc in psutil.process_iter() if processes is None else processes:
        try:
            if not _is_jupyter(proc.cmdline(), names):
                continue
            found = (proc.create_time(), proc.pid)
        except _UNREADABLE:
            skipped += 1
            continue
        if oldest is None or found < oldest:
            oldest = found
    if skipped:
        log.debug("session start: %d processes could not be read and were skipped", skipped)
    return oldest


def find_session_start(
    names: Iterable[str] = JUPYTER_PROCESS_NAMES,
    processes: Iterable[psutil.Process] | None = None,
) -> SessionStart:
    """The session's start: the create time of the runtime's oldest Jupyter process.

    `names` are the program/module names that mark a Jupyter server or kernel;
    `processes` the processes to look at (default: all of this machine's). Without a
    Jupyter process the session is counted from machine boot.
    """
    oldest = _oldest_jupyter(names, processes)
    if oldest is not None:
        at, pid = oldest
        return SessionStart(
            at, "jupyter", f"oldest Jupyter process (pid {pid}, started {_clock(at)})"
        )
    at = machine_boot_time()
    return SessionStart(at, "uptime", f"machine boot (booted {_clock(at)})")


def _clock(epoch: float) -> str:
    return time.strftime("%H:%M:%S", time.localtime(epoch))


@dataclass(frozen=True)
class SessionBudget:
    ends_at: float  # epoch seconds
    handback_margin_s: float = DEFAULT_HANDBACK_MARGIN_S
    source: str = "given"  # "jupyter", "uptime" or "--session-ends-in"
    source_detail: str = ""  # the measure in words, for the log

    @classmethod
    def start(
        cls,
        max_session_hours: float = DEFAULT_MAX_SESSION_HOURS,
        ends_in_s: float | None = None,
        handback_margin_s: float = DEFAULT_HANDBACK_MARGIN_S,
        session_start: SessionStart | None = None,
    ) -> SessionBudget:
        """`max_session_hours` after the session's start, or `ends_in_s` from now.

        The start is `session_start`, else `find_session_start()`'s; it is not looked
        up when `ends_in_s` is given.
        """
        if ends_in_s is not None:
            return cls(
                time.time() + ends_in_s,
                handback_margin_s,
                "--session-ends-in",
                f"--session-ends-in {ends_in_s:g} s",
            )
        started = session_start or find_session_start()
        return cls(
            started.at + max_session_hours * 3600,
            handback_margin_s,
            started.source,
            started.detail,
        )

    def describe(self) -> str:
        """One line for the log: the measure in use and how much session is left."""
        detail = self.source_detail or self.source
        return f"session budget from {detail}: {self.remaining_s() / 3600:.2f} h left"

    def remaining_s(self) -> float:
        return self.ends_at - time.time()

    def must_hand_back(self) -> bool:
        return self.remaining_s() <= self.handback_margin_s

    def fits(self, expected_s: float) -> bool:
        return expected_s + self.handback_margin_s <= self.remaining_s()
