"""What the checkpointed boosting models (lightgbm, catboost) share.

Their JSON checkpoint state: rounds trained, early stopping on the validation log-loss
kept across chunks and resumes (best iteration, best score, rounds since the best),
and why training ended. `Poller` asks the context whether to stop at most once a second.
"""

from __future__ import annotations

import time
from typing import Any

from factory.training.context import TrainingContext

STOP_POLL_S = 1.0


def fresh_state() -> dict[str, Any]:
    return {
        "rounds": 0,
        "best_iteration": -1,
        "best_score": None,
        "since_best": 0,
        "last_val_mlogloss": None,
        "done": False,
        "stop_reason": None,
        "bit_exact": True,
    }


def record_round(state: dict[str, Any], score: float, patience: int, n_estimators: int) -> None:
    """One more round whose validation log-loss is `score`; sets `done` when training ends."""
    score = float(score)
    state["last_val_mlogloss"] = score
    if state["best_score"] is None or score < state["best_score"]:
        state.update(best_score=score, best_iteration=state["rounds"], since_best=0)
    else:
        state["since_best"] += 1
    state["rounds"] += 1
    if state["since_best"] >= patience:
        state.update(done=True, stop_reason="early_stopping")
    elif state["rounds"] >= n_estimators:
        state.update(done=True, stop_reason="n_estimators")


def next_boundary(rounds: int, every: int, n_estimators: int) -> int:
    """The next multiple of `every` after `rounds`, at most `n_estimators`."""
    return min(n_estimators, (rounds // every + 1) * every)


def report_metrics(state: dict[str, Any]) -> dict[str, float]:
    out = {"best_iteration": float(state["best_iteration"])}
    if state["last_val_mlogloss"] is not None:
        out["val_mlogloss"] = state["last_val_mlogloss"]
        out["best_val_mlogloss"] = state["best_score"]
    return out


class Poller:
    """`ctx.should_stop()`, asked at most every STOP_POLL_S; `asked` stays True once seen."""

    def __init__(self, ctx: TrainingContext) -> None:
        self.ctx = ctx
        self.last = time.monotonic()
        self.asked = False

    def poll(self) -> bool:
        now = time.monotonic()
        if not self.asked and now - self.last >= STOP_POLL_S:
            self.last = now
            self.asked = bool(self.ctx.should_stop())
        return self.asked
