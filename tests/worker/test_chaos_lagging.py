"""The chaos test on lagging storage (issue 11, point 4): a plan of xgboost and lstm
(tiny), 2 folds and the ensemble, on workers that each see the storage through their
own late-syncing view (tests/lagging_storage.py), through 10 disruptions (9 SIGKILLs of
busy workers, whose unsynced writes die with them, and one freeze past the lease) and a
Redis restart. It must end with no failed job, no duplicate output, no zombie write in
the shared copy, and predictions equal to an undisturbed run's. bench/chaos.py runs
the same for longer and prints its figures."""

from __future__ import annotations

import pytest

from tests.chaos_run import Chaos, run_plan


@pytest.mark.slow
def test_a_plan_on_lagging_storage_survives_kills_a_freeze_and_a_redis_restart(
    small_dataset, tmp_path
):
    plain = run_plan(tmp_path / "plain", small_dataset, None)
    assert not plain.failed and not plain.zombies
    out = run_plan(tmp_path / "chaos", small_dataset, Chaos(kills=10, kill_every_s=4.0))
    assert out.kills + out.freezes == 10 and out.freezes == 1 and out.redis_restarts == 1
    assert out.failed == []
    assert out.duplicates == []
    assert out.zombies == []
    assert all(r is not None for r in out.results.values())
    assert out.fingerprints() == plain.fingerprints()
    assert len(plain.fingerprints()) == 7  # 2 trains, 4 folds, the ensemble
