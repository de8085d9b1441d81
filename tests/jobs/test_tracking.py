"""W&B: offline when no key is set, run id from the job id, never required."""

from __future__ import annotations

from jobs.tracking import Tracker, run_id_for, start


def test_not_configured_means_no_tracking(monkeypatch, tmp_path):
    monkeypatch.delenv("WANDB_PROJECT", raising=False)
    tracker = start("train-mes-xgboost-abc", {}, tmp_path)
    assert tracker.run is None
    tracker.log({"loss": 1.0}, 1)  # a no-op, never an error
    tracker.finish({})
    assert not (tmp_path / "wandb").exists()


def test_run_ids_are_stable_and_valid():
    assert run_id_for("train-mes-xgboost-0123") == "train-mes-xgboost-0123"
    assert len(run_id_for("x" * 100)) == 64 and run_id_for("a:b/c") == "a-b-c"


def test_a_broken_run_never_stops_the_job():
    class Broken:
        def log(self, *a, **k):
            raise RuntimeError("network down")

    tracker = Tracker(Broken())
    tracker.log({"loss": 1.0}, 1)
    assert tracker.run is None
