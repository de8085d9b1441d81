"""A trial of a search as a job, on a real redis-server, without workers: asked once,
resumed with the same trial, told only from its fenced final result (a zombie's never)."""

from __future__ import annotations

import json

import pytest

from factory.training.checkpoint import CheckpointStore
from factory.training.context import Superseded
from jobs import keys
from jobs.attempt import Attempt
from jobs.attempt_env import AttemptEnv
from jobs.context import RedisContext
from jobs.lease import Leases
from jobs.search import open_study, sync_study, tell_final
from jobs.search_plan import Tune, trial_specs
from jobs.spec import JobSpec
from jobs.trial import TrialSearch, ask_once, recorded, run_trial
from jobs.versioning import code_version

pytest.importorskip("optuna")
BASE = {"profile": "tiny", "n_estimators": "20", "checkpoint_every_rounds": "5"}


@pytest.fixture
def conn(redis_server):
    return redis_server.client()


def _specs(small_dataset, n=2) -> list[JobSpec]:
    from factory.data.manifest import DatasetManifest

    dataset_id = DatasetManifest.load(small_dataset).dataset_id
    train = JobSpec(
        kind="train",
        symbol="MES",
        code=code_version(),
        model="xgboost",
        horizon=5,
        params=dict(BASE),
        dataset={"dataset_dir": str(small_dataset), "dataset_id": dataset_id},
    )
    return trial_specs(train, Tune(("xgboost",), trials=n))


def _attempt(conn, leases, job_id: str, worker: str, home) -> Attempt:
    lease = leases.claim(job_id, worker)
    return Attempt(lease, leases, AttemptEnv(home=home, attempt=lease.attempt))


def _supersede(conn, leases, job_id: str, worker: str, home) -> Attempt:
    """The lease of the running attempt expires (its session froze); another takes over."""
    conn.delete(keys.lease(job_id))
    return _attempt(conn, leases, job_id, worker, home)


def _run(conn, attempt: Attempt, spec: JobSpec, dataset, home) -> dict:
    store = CheckpointStore(home, attempt.job_id)
    ctx = RedisContext(conn, attempt.leases, attempt.lease, store, checkpoint_wait_s=1.0)
    return run_trial(spec, attempt, conn, ctx, dataset)


def _state_changes(conn, study: str, number: int) -> list[dict]:
    """The journal's entries that finish trial `number` (one trial per study here: the
    trial id is the number)."""
    prefix = keys.study_journal(study)
    last = int(conn.get(f"{prefix}:log_number"))
    logs = [json.loads(conn.get(f"{prefix}:log:{i}")) for i in range(last + 1)]
    return [g for g in logs if g["op_code"] == 6 and g["trial_id"] == number]


def test_a_zombie_trials_result_never_reaches_the_study(conn, small_dataset, tmp_path):
    spec = _specs(small_dataset)[0]
    job_id, leases = spec.job_id, Leases(conn, ttl_s=600)
    zombie = _attempt(conn, leases, job_id, "w1", tmp_path)
    result = _run(conn, zombie, spec, small_dataset, tmp_path)
    number = result["trial_number"]
    assert result["state"] in ("complete", "pruned") and recorded(conn, job_id)[0] == number

    successor = _supersede(conn, leases, job_id, "w2", tmp_path)
    result["value"] = -123.0  # what the zombie would tell, were it told
    assert not zombie.publish(result, None)  # the fenced finalize refuses it
    assert not tell_final(conn, job_id)  # no final result: nothing to tell
    study = open_study(conn, spec.params["search.study"])
    assert study.trials[number].state.name == "RUNNING"

    again = _run(conn, successor, spec, small_dataset, tmp_path)
    assert (again["trial_number"], again["params"]) == (number, result["params"])
    assert successor.publish(again, None)
    assert tell_final(conn, job_id)
    assert not tell_final(conn, job_id)  # told once: telling again changes nothing
    sync_study(conn, spec.params["search.study"], [job_id])
    trial = open_study(conn, spec.params["search.study"]).trials[number]
    assert trial.state.name in ("COMPLETE", "PRUNED") and trial.value != -123.0
    if trial.state.name == "COMPLETE":
        assert trial.value == again["value"]
    assert len(_state_changes(conn, spec.params["search.study"], number)) == 1
    assert len(open_study(conn, spec.params["search.study"]).trials) == 1  # asked once


def test_a_zombie_cannot_record_a_trial_and_its_successor_adopts_it(conn, small_dataset, tmp_path):
    from factory.models import model_entry

    spec = _specs(small_dataset)[1]
    job_id, leases = spec.job_id, Leases(conn, ttl_s=600)
    space = model_entry("xgboost").search_space
    search = TrialSearch.of(spec)
    zombie = _attempt(conn, leases, job_id, "w1", tmp_path)
    # the zombie created its trial (one journal entry that names the job), then froze
    study = open_study(conn, search.study, search.direction)
    from jobs.trial import _create, _record

    trial_id = _create(study, job_id, zombie.lease.attempt)
    successor = _supersede(conn, leases, job_id, "w2", tmp_path)
    with pytest.raises(Superseded):
        _record(conn, zombie, study, trial_id, space)
    assert recorded(conn, job_id) is None
    number, params, _ = ask_once(conn, successor, search, space)
    assert (number, recorded(conn, job_id)) == (0, (0, params))
    assert len(open_study(conn, search.study).trials) == 1  # adopted, not asked again
    # a later attempt reads the record: the same trial, the same params, no new sampling
    third = _supersede(conn, leases, job_id, "w3", tmp_path)
    assert ask_once(conn, third, search, space)[:2] == (number, params)
    assert len(open_study(conn, search.study).trials) == 1


def test_trials_of_one_study_sample_different_points(conn, small_dataset, tmp_path):
    from factory.models import model_entry

    space = model_entry("xgboost").search_space
    seen = []
    for spec in _specs(small_dataset, n=3):
        attempt = _attempt(conn, Leases(conn, ttl_s=600), spec.job_id, "w1", tmp_path)
        seen.append(ask_once(conn, attempt, TrialSearch.of(spec), space)[1])
    assert len({json.dumps(p, sort_keys=True) for p in seen}) == 3


def test_the_time_budget_asks_nothing_once_spent(conn, small_dataset, tmp_path):
    from jobs.trial import budget_spent

    spec = _specs(small_dataset)[0]
    hours = TrialSearch.of(spec).__class__(**{**TrialSearch.of(spec).__dict__, "hours": 1.0})
    assert not budget_spent(conn, hours, now=1000.0)  # the first trial starts the clock
    assert not budget_spent(conn, hours, now=1000.0 + 3599)
    assert budget_spent(conn, hours, now=1000.0 + 3600)


def test_a_trial_that_fails_for_good_is_a_failed_trial_and_its_plan_goes_on(
    conn, small_dataset, tmp_path
):
    from rq.job import Job, JobStatus
    from rq.serializers import JSONSerializer

    from jobs.plan import Plan, PlanEntry, enqueue_entry, queue_for, store_plan
    from jobs.trial import end_failed_trial

    spec = _specs(small_dataset, n=1)[0]
    final = JobSpec(**{**spec.to_dict(), "kind": "train", "params": {"from_study": "s"}})
    plan = Plan((PlanEntry(spec), PlanEntry(final, (spec.job_id,))))
    store_plan(conn, plan)
    queue = queue_for(conn)
    for entry in plan.entries:
        enqueue_entry(queue, entry)
    leases = Leases(conn, ttl_s=600)
    attempt = _attempt(conn, leases, spec.job_id, "w1", tmp_path)
    number, _, _ = ask_once(conn, attempt, TrialSearch.of(spec), {"max_depth": ("int", 2, 4)})
    job = Job.fetch(spec.job_id, connection=conn, serializer=JSONSerializer)
    other = JobSpec(**{**final.to_dict(), "params": {}})
    assert not end_failed_trial(conn, leases, attempt.lease, _FakeJob(other), queue, "x")
    assert end_failed_trial(conn, leases, attempt.lease, job, queue, "MemoryError: at depth 4")
    result = json.loads(conn.get(keys.result(spec.job_id)))
    assert result["state"] == "failed" and result["trial_number"] == number
    assert job.get_status() == JobStatus.FINISHED
    dependent = Job.fetch(final.job_id, connection=conn, serializer=JSONSerializer)
    assert dependent.get_status() == JobStatus.QUEUED  # the final train goes on
    sync_study(conn, spec.params["search.study"], [spec.job_id])
    assert open_study(conn, spec.params["search.study"]).trials[number].state.name == "FAIL"


class _FakeJob:
    def __init__(self, spec: JobSpec) -> None:
        self.args = [spec.to_json()]
        self.id = spec.job_id
