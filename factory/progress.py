"""A progress bar per phase, on stderr; silent when disabled (e.g. under --json)."""

from __future__ import annotations

import sys
import time
from contextlib import contextmanager
from typing import TextIO


class PhaseProgress:
    """Shows `[####......] 3/7 features  1.2 s` as each phase starts and ends."""

    def __init__(self, phases: list[str], enabled: bool = True, stream: TextIO | None = None):
        self.phases = phases
        self.enabled = enabled
        self.stream = stream or sys.stderr
        self.seconds: dict[str, float] = {}
        self._tty = bool(getattr(self.stream, "isatty", lambda: False)())

    def _draw(self, done: int, name: str, note: str, final: bool) -> None:
        if not self.enabled:
            return
        width = 20
        filled = int(width * done / len(self.phases))
        line = (
            f"[{'#' * filled}{'.' * (width - filled)}] {done}/{len(self.phases)} {name:<10} {note}"
        )
        if self._tty:
            self.stream.write("\r" + line.ljust(70) + ("\n" if final else ""))
        elif final:
            self.stream.write(line + "\n")
        self.stream.flush()

    @contextmanager
    def phase(self, name: str):
        index = self.phases.index(name)
        self._draw(index, name, "...", final=False)
        start = time.perf_counter()
        try:
            yield
        finally:
            self.seconds[name] = round(time.perf_counter() - start, 3)
        self._draw(index + 1, name, f"{self.seconds[name]:.2f} s", final=True)
