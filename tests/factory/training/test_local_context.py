"""LocalContext: the in-process TrainingContext, and a resume through it."""

from __future__ import annotations

import io

import numpy as np
import pytest

from factory.training.checkpoint import CheckpointStore
from factory.training.context import StopTraining, TrainingContext
from factory.training.local_context import LocalContext


@pytest.fixture
def store(tmp_path):
    return CheckpointStore(tmp_path / "home", "job-1", staging_dir=tmp_path / "staging")


def test_is_a_training_context(store):
    ctx = LocalContext(store)
    assert isinstance(ctx, TrainingContext)
    assert ctx.job_id == "job-1"


def test_attempts_count_up_across_contexts(store):
    first = LocalContext(store)
    assert first.attempt == 1
    assert LocalContext(store).attempt == 1  # nothing published yet
    first.save_checkpoint(5, {"m": b"x"}, {})
    second = LocalContext(store)
    assert second.attempt == 2
    second.save_checkpoint(10, {"m": b"y"}, {})
    assert LocalContext(store).attempt == 3
    assert LocalContext(store, attempt=7).attempt == 7


def test_save_then_latest(store):
    ctx = LocalContext(store)
    assert ctx.latest_checkpoint() is None and ctx.resumed_from is None
    assert ctx.save_checkpoint(3, {"m": b"three"}, {"epoch": 3}) is True
    assert ctx.save_checkpoint(6, {"m": b"six"}, {"epoch": 6}) is True
    assert ctx.checkpoint_steps == [3, 6]
    later = LocalContext(store)
    found = later.latest_checkpoint()
    assert (found.step, found.attempt, found.files, found.state) == (
        6,
        1,
        {"m": b"six"},
        {"epoch": 6},
    )
    assert later.resumed_from == 6


def test_should_stop_and_report_wiring(store):
    flag = {"stop": False}
    seen = []
    ctx = LocalContext(store, stop=lambda: flag["stop"], on_report=lambda *a: seen.append(a))
    assert LocalContext(store).should_stop() is False
    assert ctx.should_stop() is False
    flag["stop"] = True
    assert ctx.should_stop() is True
    assert ctx.last_report is None
    ctx.report(2, 10, {"loss": 0.5})
    ctx.report(3, 10)
    assert seen == [(2, 10, {"loss": 0.5}), (3, 10, {})]
    assert ctx.last_report == (3, 10, {})


def _npz(**arrays) -> bytes:
    buf = io.BytesIO()
    np.savez(buf, **arrays)
    return buf.getvalue()


def toy_train(ctx: TrainingContext, total: int = 12, every: int = 3) -> np.ndarray:
    """A training loop that follows the TrainingContext contract (a random walk 'model')."""
    w, rng, start = np.zeros(4), np.random.default_rng(0), 0
    found = ctx.latest_checkpoint()
    if found is not None:
        w = np.load(io.BytesIO(found.files["w.npz"]), allow_pickle=False)["w"]
        rng.bit_generator.state = found.state["rng"]
        start = found.step
    for step in range(start + 1, total + 1):
        w = w + rng.normal(size=4)
        ctx.report(step, total, {"norm": float(np.linalg.norm(w))})
        if step % every == 0 or ctx.should_stop():
            state = {"rng": rng.bit_generator.state}
            if not ctx.save_checkpoint(step, {"w.npz": _npz(w=w)}, state):
                raise StopTraining
            if ctx.should_stop():
                raise StopTraining
    return w


def test_a_stopped_run_resumes_bit_identically(tmp_path, store):
    whole = toy_train(LocalContext(CheckpointStore(tmp_path / "other", "job-1")))
    steps = {"n": 0}

    def stop_after_seven():
        steps["n"] += 1
        return steps["n"] >= 7

    first = LocalContext(store, stop=stop_after_seven)
    with pytest.raises(StopTraining):
        toy_train(first)
    assert first.checkpoint_steps == [3, 6, 7]
    second = LocalContext(store)
    resumed = toy_train(second)
    assert second.attempt == 2 and second.resumed_from == 7
    assert np.array_equal(resumed, whole)
