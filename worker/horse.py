"""The work horse: what it does first (never outlive its worker), and how its worker
signals and waits for it without ever touching a process that is not the horse."""

from __future__ import annotations

import contextlib
import ctypes
import os
import signal
import threading
import time

PR_SET_PDEATHSIG = 1


def die_with_parent(parent_pid: int, poll_s: float = 1.0) -> None:
    """SIGKILL this process when its parent dies (Linux prctl), with a polling fallback."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
    except (OSError, AttributeError):
        pass  # not Linux: the watchdog below still holds
    if os.getppid() != parent_pid:  # the parent died before prctl took effect
        os._exit(1)

    def watch() -> None:
        while True:
            if os.getppid() != parent_pid:
                os.kill(os.getpid(), signal.SIGKILL)
            time.sleep(poll_s)

    threading.Thread(target=watch, name="parent-watchdog", daemon=True).start()


def unreaped_child(pid: int) -> bool:
    """Whether `pid` is a child of this process not reaped yet (running, or exited and a
    zombie): either way the pid is still this child's, never another process's."""
    if pid <= 0 or pid == os.getpid():
        return False
    if hasattr(os, "waitid"):
        try:
            os.waitid(os.P_PID, pid, os.WEXITED | os.WNOHANG | os.WNOWAIT)
        except ChildProcessError:  # not our child, or reaped already
            return False
        return True
    import psutil

    try:
        return psutil.Process(pid).ppid() == os.getpid()
    except psutil.Error:
        return False


def signal_child(pid: int, sig: int, group: bool) -> bool:
    """Send `sig` to the work horse `pid` if it is our unreaped child; with `group`, to its
    process group (the horse and what it started) when the horse leads one of its own (RQ's
    horse calls setpgrp). Never to pid 0, to this process or to this process's group (in a
    notebook: the Jupyter kernel). False when nothing was sent."""
    if not unreaped_child(pid):
        return False
    try:
        pgid = os.getpgid(pid)
        if group and pgid == pid and pgid != os.getpgrp():
            os.killpg(pgid, sig)
        else:
            os.kill(pid, sig)
    except ProcessLookupError:
        return False
    return True


def wait_until_exited(pid: int) -> bool:
    """Block until the child `pid` has exited, without reaping it; False where the OS has
    no waitid (macOS before Python 3.13): then nothing was waited for."""
    if not hasattr(os, "waitid"):
        return False
    with contextlib.suppress(ChildProcessError):  # not ours: the caller's wait4 says so
        os.waitid(os.P_PID, pid, os.WEXITED | os.WNOWAIT)
    return True
