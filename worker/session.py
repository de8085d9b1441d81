"""The session budget: a Colab session lives ~12 h; hand work back before it dies.

The session's age comes from the machine's uptime (a Colab VM boots with the
session). Near the end a worker checkpoints and hands its job back (no attempt
used), and it does not start a job whose last observed duration cannot fit.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

DEFAULT_MAX_SESSION_HOURS = 11.5
DEFAULT_HANDBACK_MARGIN_S = 180.0


def machine_uptime_s() -> float:
    try:
        return float(Path("/proc/uptime").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return 0.0  # unknown: count the session from now


@dataclass(frozen=True)
class SessionBudget:
    ends_at: float  # epoch seconds
    handback_margin_s: float = DEFAULT_HANDBACK_MARGIN_S

    @classmethod
    def start(
        cls,
        max_session_hours: float = DEFAULT_MAX_SESSION_HOURS,
        ends_in_s: float | None = None,
        handback_margin_s: float = DEFAULT_HANDBACK_MARGIN_S,
    ) -> SessionBudget:
        """From the machine's uptime, or from `ends_in_s` when the caller knows better."""
        now = time.time()
        if ends_in_s is not None:
            return cls(now + ends_in_s, handback_margin_s)
        started = now - machine_uptime_s()
        return cls(started + max_session_hours * 3600, handback_margin_s)

    def remaining_s(self) -> float:
        return self.ends_at - time.time()

    def must_hand_back(self) -> bool:
        return self.remaining_s() <= self.handback_margin_s

    def fits(self, expected_s: float) -> bool:
        return expected_s + self.handback_margin_s <= self.remaining_s()
