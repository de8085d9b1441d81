"""Test-only shared storage that behaves like Google Drive across Colab sessions.

The model (issue 11):

- There is one shared copy (`shared/`, what Drive's servers hold) and one local view
  per session (`views/<name>/`, what that session's mount shows). A worker is told its
  view is the storage root (`--home views/<name>`), so every session sees the storage
  at a path of its own, as a laptop, a Colab tab and a container do.
- A write lands in the writer's view at once. It reaches the shared copy only after
  an upload delay: uniform in `upload_s`, and with probability `slow_p` the slow
  delay `slow_s` instead (large or appended files have been seen 30 minutes late).
  A deletion travels the same way. A file is uploaded with the bytes it holds when
  its delay is over; one still being written (changed within `settle_s`) waits.
- Another session's view shows a file of the shared copy only after a further
  visibility delay (uniform in `visible_s`). A local change made in the meantime wins
  (it will be uploaded); the download is dropped.
- `kill(name)` is a session that dies: whatever it wrote and had not uploaded never
  arrives, and its view is gone. `view(name)` afterwards is a fresh session: a new
  view that shows the shared copy after the visibility delay.
- `freeze(name)` / `thaw(name)` hold a session's uploads (a frozen VM syncs nothing).

Delays are seconds of wall time. One thread (`start()`, `stop()`) polls every
`poll_s`; a test reads the shared copy with `shared_path(rel)` and waits on
`settled()` (nothing pending). Random choices use `seed`, so a failing run can be
replayed as far as thread timing allows.
"""

from __future__ import annotations

import os
import random
import shutil
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

_TMP = ".lagsync-"  # the syncer's own temporary files (never synced)


@dataclass(frozen=True)
class Delays:
    upload_s: tuple[float, float] = (0.5, 3.0)
    slow_p: float = 0.05
    slow_s: float = 60.0
    visible_s: tuple[float, float] = (0.5, 2.0)
    settle_s: float = 0.2
    poll_s: float = 0.1


@dataclass
class _Pending:
    due: float
    rel: str


@dataclass
class _View:
    name: str
    root: Path
    session: int  # a new session of the same name is another writer
    known: dict[str, tuple[int, int]] = field(default_factory=dict)  # rel -> (mtime_ns, size)
    seen: dict[str, int] = field(default_factory=dict)  # rel -> shared version shown
    uploads: dict[str, float] = field(default_factory=dict)  # rel -> due
    downloads: dict[str, tuple[float, int]] = field(default_factory=dict)  # rel -> (due, ver)
    frozen: bool = False


class LaggingStorage:
    """A shared folder and per-session views that sync late, and lose what a dead
    session had not uploaded (see the module docstring)."""

    def __init__(self, base: Path, delays: Delays = Delays(), seed: int = 0) -> None:
        self.base = Path(base)
        self.shared = self.base / "shared"
        self.shared.mkdir(parents=True, exist_ok=True)
        self.delays = delays
        self._rng = random.Random(seed)
        self._views: dict[str, _View] = {}
        self._versions: dict[str, tuple[int, int]] = {}  # rel -> (version, writer session)
        self._version = 0
        self._sessions = 0
        self._lock = threading.RLock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.lost: list[tuple[str, str]] = []  # (session, rel) writes that never arrived
        self._adopt_shared()

    # ---- sessions ---------------------------------------------------------------------
    def view(self, name: str) -> Path:
        """The storage root session `name` sees (a fresh, empty view for a new session,
        filled from the shared copy after the visibility delay)."""
        with self._lock:
            if name not in self._views:
                root = self.base / "views" / name
                shutil.rmtree(root, ignore_errors=True)
                root.mkdir(parents=True)
                self._sessions += 1
                self._views[name] = _View(name, root, self._sessions)
            return self._views[name].root

    def kill(self, name: str) -> list[str]:
        """Session `name` dies: its unsynced writes are lost, and so is its view."""
        with self._lock:
            view = self._views.pop(name, None)
            if view is None:
                return []
            lost = sorted(view.uploads)
            self.lost += [(name, rel) for rel in lost]
            shutil.rmtree(view.root, ignore_errors=True)
            return lost

    def freeze(self, name: str) -> None:
        with self._lock:
            self._views[name].frozen = True

    def thaw(self, name: str) -> None:
        with self._lock:
            self._views[name].frozen = False

    # ---- reading the shared copy --------------------------------------------------------
    def shared_path(self, rel: str) -> Path:
        return self.shared / rel

    def pending(self) -> int:
        with self._lock:
            return sum(len(v.uploads) + len(v.downloads) for v in self._views.values())

    def settled(self, timeout_s: float) -> bool:
        """Wait until nothing is pending (every write uploaded, every view current)."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            with self._lock:
                self._scan_all()
                if self.pending() == 0:
                    return True
            time.sleep(self.delays.poll_s)
        return False

    # ---- the sync thread ----------------------------------------------------------------
    def start(self) -> LaggingStorage:
        self._thread = threading.Thread(target=self._run, name="lagging-storage", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10)

    def __enter__(self) -> LaggingStorage:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    def _run(self) -> None:
        while not self._stop.wait(self.delays.poll_s):
            with self._lock:
                self.step(time.monotonic())

    def step(self, now: float) -> None:
        """One poll: notice local writes, then upload and show what is due."""
        self._scan_all(now)
        for view in list(self._views.values()):
            if not view.frozen:
                self._upload_due(view, now)
            self._download_due(view, now)
            self._schedule_downloads(view, now)

    # ---- internals ----------------------------------------------------------------------
    def _adopt_shared(self) -> None:
        for rel in _files(self.shared):
            self._bump(rel, 0)

    def _bump(self, rel: str, origin: int) -> None:
        self._version += 1
        self._versions[rel] = (self._version, origin)

    def _upload_delay(self) -> float:
        if self._rng.random() < self.delays.slow_p:
            return self.delays.slow_s
        return self._rng.uniform(*self.delays.upload_s)

    def _scan_all(self, now: float | None = None) -> None:
        now = time.monotonic() if now is None else now
        for view in self._views.values():
            current = {rel: _stamp(view.root / rel) for rel in _files(view.root)}
            for rel, stamp in current.items():
                if stamp is not None and view.known.get(rel) != stamp:
                    view.known[rel] = stamp
                    view.downloads.pop(rel, None)  # the local change wins
                    view.uploads.setdefault(rel, now + self._upload_delay())
            for rel in set(view.known) - set(current):
                del view.known[rel]  # deleted locally: the deletion is uploaded too
                view.uploads.setdefault(rel, now + self._upload_delay())

    def _upload_due(self, view: _View, now: float) -> None:
        for rel, due in sorted(view.uploads.items(), key=lambda kv: kv[1]):
            if due > now:
                continue
            source = view.root / rel
            stamp = _stamp(source)
            if stamp is not None and time.time_ns() - stamp[0] < self.delays.settle_s * 1e9:
                continue  # still being written
            del view.uploads[rel]
            if stamp is None:
                (self.shared / rel).unlink(missing_ok=True)
                self._bump(rel, view.session)
            elif _copy(source, self.shared / rel):
                self._bump(rel, view.session)
            view.seen[rel] = self._versions[rel][0]

    def _schedule_downloads(self, view: _View, now: float) -> None:
        for rel, (version, origin) in self._versions.items():
            if origin == view.session or view.seen.get(rel, 0) >= version:
                continue
            if rel in view.uploads or rel in view.downloads:
                continue
            view.downloads[rel] = (now + self._rng.uniform(*self.delays.visible_s), version)

    def _download_due(self, view: _View, now: float) -> None:
        for rel, (due, version) in list(view.downloads.items()):
            if due > now:
                continue
            del view.downloads[rel]
            view.seen[rel] = version
            target, source = view.root / rel, self.shared / rel
            if source.exists():
                if _copy(source, target):
                    view.known[rel] = _stamp(target)
            else:
                target.unlink(missing_ok=True)
                view.known.pop(rel, None)


def _files(root: Path) -> list[str]:
    out = []
    for dirpath, _dirs, names in os.walk(root):
        for name in names:
            if not name.startswith(_TMP):
                out.append((Path(dirpath) / name).relative_to(root).as_posix())
    return out


def _stamp(path: Path) -> tuple[int, int] | None:
    try:
        st = path.stat()
    except OSError:
        return None
    return st.st_mtime_ns, st.st_size


def _copy(source: Path, target: Path) -> bool:
    """Copy `source` over `target` atomically; False if `source` vanished meanwhile."""
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.parent / f"{_TMP}{os.getpid()}-{threading.get_ident()}-{target.name}"
    try:
        shutil.copyfile(source, tmp)
    except FileNotFoundError:
        return False
    os.replace(tmp, target)
    return True
