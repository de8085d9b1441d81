"""One trial of a search as a job: ask once, train (pruned at checkpoints), result.

A trial job is a job like any other (lease, checkpoints, resume: jobs.kinds runs it
through the same RedisContext as a train job). What is its own:

- **Asked once.** The trial job asks its study for a trial only when it has none yet:
  `keys.trial(job_id)` holds {number, params, attempt}, written once by a Lua script
  fenced on the attempt's lease (HSET only while the lease is ours and the hash is
  empty). A killed-and-resumed trial reads it back: the same trial number and the same
  parameters, never sampled again. The Optuna trial is created carrying the job id
  (`user_attrs.job_id`, in the one journal entry that creates it), so an attempt killed
  between creating and recording leaves a trial the next attempt adopts, and asks
  Optuna for the same parameters: a trial that holds a value answers it again.
  A trial created by an attempt that then lost the record (superseded) is an orphan,
  told FAIL (here or by jobs.search.sync_study) and never trained.
- **What is searched**: the model's space (factory.models.spaces), less the parameters
  the job sets itself (`submit --param xgboost.max_depth=4` fixes max_depth).
- **Pruning.** `PruningContext` reports the validation loss (boosting: `val_mlogloss`,
  sequence models: `val_loss`) to the trial each time a checkpoint was published
  (fenced) before a report; when the pruner says stop, `TrialPruned` ends the training
  and the job's result says `state: pruned` (a finished job, not a failure). Pruning is
  on for metrics where lower is better (the loss then points the same way as the metric).
- **The result** is the job's final result: {state: complete|pruned|skipped|failed,
  trial_number, params, value (the metric on the validation split: the search never
  looks at the test split), metrics}. It reaches the study only once it is final
  (jobs.search.tell_final; jobs.entry calls it after a won publish).
- **Budget.** N trial jobs (`--trials N`) ask at most N trials; `--tune-hours H` makes
  a trial job that starts more than H hours after the search's first trial started
  ask nothing (`state: skipped`). Trials already asked finish.
- **A crash of its own** (an error at these parameters, N times, or a permanent one)
  ends the trial as failed in the study, not the plan: `end_failed_trial`, which the
  worker calls where it would fail the job for good, writes a fenced `state: failed`
  result and the job counts as finished, so the final train still runs on the rest.
  A trial job the reaper fails (its workers died more than the preemption budget
  allows) fails as any job does, and with it the model's final train.

Not covered yet: the study, the trial records and the results live in Redis only (the
ledger on disk holds the plan): after Redis lost everything, `factory recover` re-runs
the trials, which then ask a new, empty study.
"""

from __future__ import annotations

import json
import logging
import math
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from factory.training.context import Superseded
from jobs import keys
from jobs.search import (
    HOURS,
    METRIC,
    SEARCH_KEYS,
    STUDY,
    TRIAL,
    TRIALS,
    direction_of,
    open_study,
    tell_result,
    trial_seed,
)
from jobs.spec import JobSpec, SpecError

log = logging.getLogger("jobs.trial")
VAL_LOSS_KEYS = ("val_mlogloss", "val_loss")  # what the training loops report per checkpoint
_RECORD = """
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return -1 end
local n = redis.call('HGET', KEYS[2], 'number')
if n then return tonumber(n) end
redis.call('HSET', KEYS[2], 'number', ARGV[2], 'params', ARGV[3], 'attempt', ARGV[4])
return tonumber(ARGV[2])
"""


class TrialPruned(Exception):
    """The pruner stopped this trial at `step` (its last reported value: `value`)."""

    def __init__(self, step: int, value: float) -> None:
        super().__init__(f"pruned at step {step} (validation loss {value:.6g})")
        self.step = step
        self.value = value


@dataclass(frozen=True)
class TrialSearch:
    """What a trial spec says of its search (the `search.*` params, jobs.search_plan)."""

    study: str
    index: int
    trials: int
    metric: str
    hours: float
    model_params: dict[str, str] = field(default_factory=dict)

    @classmethod
    def of(cls, spec: JobSpec) -> TrialSearch:
        p = spec.params
        try:
            search = cls(
                study=p[STUDY],
                index=int(p[TRIAL]),
                trials=int(p[TRIALS]),
                metric=p[METRIC],
                hours=float(p.get(HOURS, "0")),
                model_params={k: v for k, v in p.items() if k not in SEARCH_KEYS},
            )
        except (KeyError, ValueError) as exc:
            raise SpecError(f"bad trial spec: {exc}; fix: resubmit with `submit --tune`") from exc
        direction_of(search.metric)  # a SpecError for an unknown metric
        return search

    @property
    def direction(self) -> str:
        return direction_of(self.metric)

    @property
    def prunes(self) -> bool:
        return self.direction == "minimize"


def recorded(connection, job_id: str) -> tuple[int, dict[str, str]] | None:
    """(trial number, params) that the job recorded, or None before it asked."""
    raw = connection.hgetall(keys.trial(job_id))
    if b"number" not in raw:
        return None
    return int(raw[b"number"]), json.loads(raw.get(b"params") or b"{}")


def budget_spent(connection, search: TrialSearch, now: float | None = None) -> bool:
    """Whether --tune-hours is spent: the clock starts when the first trial job starts."""
    if search.hours <= 0:
        return False
    meta = keys.study_meta(search.study)
    now = time.time() if now is None else now
    connection.hsetnx(meta, "started_at", f"{now:.3f}")
    started = float(connection.hget(meta, "started_at"))
    return now - started >= search.hours * 3600


def ask_once(connection, attempt, search: TrialSearch, space: dict):
    """(number, params, study) of this job's trial: the recorded one, else a new one asked
    now (None when the budget is spent). Superseded when the lease is gone."""
    job_id = attempt.lease.job_id
    mine = recorded(connection, job_id)
    if mine is None and budget_spent(connection, search):
        return None
    study = open_study(connection, search.study, search.direction)
    if mine is not None:
        return (*mine, study)
    trial_id = _adopted(study, job_id)
    if trial_id is None:
        if not attempt.leases.holds(attempt.lease):
            raise Superseded(f"trial job {job_id}: lease lost before asking")
        trial_id = _create(study, job_id, attempt.lease.attempt)
    return _record(connection, attempt, study, trial_id, space)


def _adopted(study, job_id: str) -> int | None:
    """A trial an earlier attempt of `job_id` created but did not record (it died)."""
    from optuna.trial import TrialState

    mine = [
        t
        for t in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,))
        if t.user_attrs.get("job_id") == job_id
    ]
    return min(mine, key=lambda t: t.number)._trial_id if mine else None


def _create(study, job_id: str, attempt: int) -> int:
    """A new RUNNING trial that names its job, in one journal entry (`study.ask` would
    take two: a kill between them would leave a trial nobody can adopt)."""
    from optuna.trial import TrialState, create_trial

    template = create_trial(
        state=TrialState.RUNNING, user_attrs={"job_id": job_id, "attempt": attempt}
    )
    return study._storage.create_new_trial(study._study_id, template_trial=template)


def _record(connection, attempt, study, trial_id: int, space: dict):
    import optuna

    from factory.models.spaces import as_param_strings, suggest

    number = study._storage.get_trial(trial_id).number
    study.sampler = optuna.samplers.TPESampler(
        seed=trial_seed(study.study_name, number), constant_liar=True
    )
    params = as_param_strings(suggest(optuna.Trial(study, trial_id), space))
    lease = attempt.lease
    script = connection.register_script(_RECORD)
    won = int(
        script(
            keys=[keys.lease(lease.job_id), keys.trial(lease.job_id)],
            args=[lease.token, number, json.dumps(params), lease.attempt],
        )
    )
    if won < 0:
        raise Superseded(f"trial job {lease.job_id}: lease lost while asking")
    if won != number:  # another attempt recorded its own trial first: ours is an orphan
        tell_result(study, {"trial_number": number, "state": "failed"})
        return (*recorded(connection, lease.job_id), study)
    return number, params, study


class PruningContext:
    """A TrainingContext around another: reports the validation loss to the trial after
    each published checkpoint and raises TrialPruned when the pruner says so."""

    def __init__(self, inner, trial=None) -> None:
        self.inner = inner
        self.trial = trial
        self.job_id = inner.job_id
        self.attempt = inner.attempt
        self._checkpointed = False
        self.reported: list[tuple[int, float]] = []

    def report(self, step: int, total: int, metrics: dict[str, float] | None = None) -> None:
        self.inner.report(step, total, metrics)
        value = next((metrics[k] for k in VAL_LOSS_KEYS if k in (metrics or {})), None)
        if self.trial is None or not self._checkpointed or value is None:
            return
        if not math.isfinite(float(value)):
            return
        self._checkpointed = False
        self.trial.report(float(value), step)
        self.reported.append((step, float(value)))
        if self.trial.should_prune():
            raise TrialPruned(step, float(value))

    def should_stop(self) -> bool:
        return self.inner.should_stop()

    def save_checkpoint(self, step: int, files: dict[str, bytes], state: dict[str, Any]) -> bool:
        published = self.inner.save_checkpoint(step, files, state)
        self._checkpointed = self._checkpointed or published
        return published

    def latest_checkpoint(self):
        return self.inner.latest_checkpoint()


def run_trial(spec: JobSpec, attempt, connection, ctx, dataset_dir: Path) -> dict[str, Any]:
    """Run trial job `spec` as `attempt`; its result (made final by the caller)."""
    import optuna

    from factory.training.train import train_model
    from jobs.catalog import search_space

    search = TrialSearch.of(spec)
    # a parameter the job sets itself (`submit --param`) is fixed: the rest is searched
    space = {
        k: v for k, v in (search_space(spec.model) or {}).items() if k not in search.model_params
    }
    if not space:
        raise SpecError(f"{spec.model}: nothing to search; fix: tune another model or fix less")
    head = {"kind": "trial", "model": spec.model, "study": search.study}
    head["trial_index"] = search.index
    head |= {"metric": search.metric, "direction": search.direction}
    asked = ask_once(connection, attempt, search, space)
    if asked is None:
        return head | {"state": "skipped", "reason": f"--tune-hours {search.hours} spent"}
    number, params, study = asked
    head |= {"trial_number": number, "params": params}
    trial = None
    if search.prunes:
        trial_id = study._storage.get_trial_id_from_study_id_trial_number(study._study_id, number)
        trial = optuna.Trial(study, trial_id)
    pruning = PruningContext(ctx, trial)
    values = search.model_params | params
    try:
        result, _ = train_model(dataset_dir, spec.model, spec.horizon, values, pruning)
    except TrialPruned as pruned:
        return head | {"state": "pruned", "value": pruned.value, "pruned_at_step": pruned.step}
    value = result.get("metrics", {}).get("val", {}).get(search.metric)
    result["model_kind"] = result.pop("kind", None)  # `kind` is the job's: trial
    result.pop("dataset_dir", None)  # the local cache's path
    result.pop("params", None)  # every resolved field; `params` are the trial's own
    state = "complete" if isinstance(value, (int, float)) and math.isfinite(value) else "failed"
    return result | head | {"state": state, "value": value, "reported": pruning.reported}


def end_failed_trial(connection, leases, lease, job, queue, error: str) -> bool:
    """Where the worker would fail trial job `job` for good: make `state: failed` its
    final result instead (fenced on `lease`) and finish the job, so that its dependents
    (the final train) run on the other trials; False for any other job, or when the lease
    is no longer ours. The study is told by jobs.search.sync_study."""
    try:
        raw = JobSpec.raw_dict(job.args[0] if job.args else "")
    except SpecError:
        return False
    if raw.get("kind") != "trial" or lease is None:
        return False
    if not leases.finalize(
        lease, json.dumps(_failed_result(connection, job.id, raw, lease, error))
    ):
        return False
    from rq.job import JobStatus

    from jobs.control import remove_started

    log.error("trial job %s failed for good: a failed trial of its study; the plan goes on", job.id)
    connection.hset(keys.state(job.id), mapping={"status": "finished", "final_error": error})
    remove_started(connection, job.origin, job)
    job.set_status(JobStatus.FINISHED)
    queue.enqueue_dependents(job)
    return True


def _failed_result(connection, job_id: str, raw: dict, lease, error: str) -> dict[str, Any]:
    params = raw.get("params") if isinstance(raw.get("params"), dict) else {}
    result = {
        "kind": "trial",
        "model": raw.get("model"),
        "study": params.get(STUDY),
        "state": "failed",
        "error": error.strip()[-1000:],
        "attempt": lease.attempt,
    }
    mine = recorded(connection, job_id)
    if mine is not None:
        result |= {"trial_number": mine[0], "params": mine[1]}
    return result
