"""Hyperparameter search: Optuna studies kept in the project's Redis, told only from
fenced results.

The engine is Optuna (`optuna.storages.JournalStorage`) on a journal in the same Redis
as the queue, in the key layout of Optuna's own `JournalRedisBackend`
(`<prefix>:log_number`, `<prefix>:log:<n>`, prefix `keys.study_journal(study)`), so
stock Optuna tools read it. `RedisJournal` is that backend with three changes, because
the stock one fits a hosted, metered Redis badly:

- it takes the caller's client instead of a URL (Optuna's builds its own pool from a
  URL: a fourth connection per worker, and the URL, a secret, held in one more place);
  so a trial talks to Redis over the worker's connection, TLS and password included;
- it reads the journal in one call per 500 entries, where the stock backend sends one
  GET per entry (a fresh work horse replays the whole study), and a process reads it
  again only after it wrote to it or a second later (Optuna reads the storage several
  times per report, prune check or ask: one read serves the burst; a metered Redis
  bills each command);
- it keeps no snapshots: Optuna's snapshots are pickles, and nothing here unpickles
  what Redis holds (DESIGN.md: JSON only).

One study per (model, plan content): `jobs.search_plan` names it from the search's
content, so resubmitting the same search finds the same study. A trial job (`jobs.trial`)
asks its trial once; its result is told to the study only from its *final* result, the
one the fenced finalize wrote (`tell_final`, right after a won publish, and `sync_study`,
which tells whatever a lost reply or a dead horse left untold): a zombie attempt's result
is never final, so it never reaches the study, and telling is idempotent by trial number.

The final train and CV of a tuned model name the study in their params
(`{"from_study": <study>}`) and resolve it at run time (`with_study_params`): the study
is synced, its best trial pinned once in Redis (`keys.study_meta`, HSETNX) so the train
and every fold train the same configuration, and the spec's params become the job's own
plus the best trial's.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import time
from collections.abc import Callable, Iterator
from typing import Any

from jobs import keys
from jobs.spec import JobSpec, SpecError

log = logging.getLogger("jobs.search")
FROM_STUDY = "from_study"  # a final train/cv param: the study whose best trial it trains
# a trial spec's params: the model's own, plus these (jobs.search_plan writes them)
STUDY, TRIAL, TRIALS, METRIC, HOURS = (
    "search.study",
    "search.trial",
    "search.trials",
    "search.metric",
    "search.hours",
)
SEARCH_KEYS = (STUDY, TRIAL, TRIALS, METRIC, HOURS)
LOWER_IS_BETTER = ("log_loss", "brier", "calibration_error")
HIGHER_IS_BETTER = ("accuracy", "macro_f1", "log_loss_skill", "brier_skill")
METRICS = LOWER_IS_BETTER + HIGHER_IS_BETTER
TELLABLE = ("complete", "pruned", "failed")
MGET_BATCH = 500
PRUNER_STARTUP_TRIALS = 5  # MedianPruner: never prune before this many trials completed

# one journal entry: the number after the last (the stock layout starts at -1, so the
# first entry is 0), then the entry under it, in one atomic call
_APPEND = """
if redis.call('EXISTS', KEYS[1]) == 0 then redis.call('SET', KEYS[1], -1) end
local i = redis.call('INCR', KEYS[1])
redis.call('SET', ARGV[1] .. ':log:' .. i, ARGV[2])
return i
"""
# the last entry's number, then entries ARGV[2].. (at most ARGV[3] of them): one call
_READ = """
local last = tonumber(redis.call('GET', KEYS[1]) or '-1')
local from = tonumber(ARGV[2])
local upto = math.min(last, from + tonumber(ARGV[3]) - 1)
local out = {}
for i = from, upto do out[#out + 1] = ARGV[1] .. ':log:' .. i end
if #out > 0 then out = redis.call('MGET', unpack(out)) end
table.insert(out, 1, last)
return out
"""
# a process reads the journal again only after writing to it or after this many seconds
# (one read serves the burst of reads Optuna makes per report, prune check or ask)
READ_EVERY_S = 1.0


def direction_of(metric: str) -> str:
    if metric not in METRICS:
        raise SpecError(f"unknown search metric {metric!r}; fix: use one of {', '.join(METRICS)}")
    return "minimize" if metric in LOWER_IS_BETTER else "maximize"


def _journal_backend_class():
    from optuna.storages.journal import JournalRedisBackend

    class RedisJournal(JournalRedisBackend):
        """Optuna's JournalRedisBackend on an existing client: reads batched in one call
        and throttled, no snapshots (see the module docstring)."""

        def __init__(self, connection, prefix: str) -> None:  # no URL, no pool of its own
            self._url = ""
            self._redis = connection
            self._use_cluster = False
            self._prefix = prefix
            self._last = f"{prefix}:log_number"
            self._append = connection.register_script(_APPEND)
            self._read = connection.register_script(_READ)
            self._dirty, self._read_at = True, float("-inf")

        def read_logs(self, log_number_from: int) -> Iterator[dict[str, Any]]:
            now = time.monotonic()
            if not self._dirty and now - self._read_at < READ_EVERY_S:
                return
            self._dirty, self._read_at = False, now
            start = log_number_from
            while True:
                reply = self._read(keys=[self._last], args=[self._prefix, start, MGET_BATCH])
                last, entries = int(reply[0]), reply[1:]
                for entry in entries:
                    if entry is None:  # an entry lost (an evicted key): stop before it
                        return
                    yield json.loads(entry)
                start += len(entries)
                if not entries or start > last:
                    return

        def append_logs(self, logs: list[dict[str, Any]]) -> None:
            self._dirty = True  # the next read must see what this process wrote
            for entry in logs:
                self._append(keys=[self._last], args=[self._prefix, json.dumps(entry)])

        def save_snapshot(self, snapshot: bytes) -> None:
            return None  # a pickle: never written to Redis

        def load_snapshot(self) -> bytes | None:
            return None  # nor read from it

    return RedisJournal


def storage_of(connection, study: str):
    """The JournalStorage of `study` on `connection` (no new connection, no URL)."""
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    backend = _journal_backend_class()(connection, keys.study_journal(study))
    return optuna.storages.JournalStorage(backend)


def trial_seed(study: str, number: int) -> int:
    """The sampler seed of one trial: each trial samples in a fresh process, so a shared
    seed would draw the same random start-up point in every one of them."""
    return int.from_bytes(hashlib.sha256(f"{study}:{number}".encode()).digest()[:4], "big")


def open_study(connection, study: str, direction: str | None = None, seed: int | None = None):
    """The study (created when `direction` is given and it does not exist yet), with a TPE
    sampler (constant liar: trials run in parallel) and a median pruner."""
    import optuna

    storage = storage_of(connection, study)
    sampler = optuna.samplers.TPESampler(seed=seed, constant_liar=True)
    pruner = optuna.pruners.MedianPruner(n_startup_trials=PRUNER_STARTUP_TRIALS)
    try:  # load first: a create of an existing study still writes a journal entry
        return optuna.load_study(study_name=study, storage=storage, sampler=sampler, pruner=pruner)
    except KeyError:
        if direction is None:
            raise
    return optuna.create_study(
        storage=storage,
        study_name=study,
        direction=direction,
        sampler=sampler,
        pruner=pruner,
        load_if_exists=True,
    )


def final_result(connection, job_id: str) -> dict | None:
    raw = connection.get(keys.result(job_id))
    return json.loads(raw) if raw else None


def tell_result(study, result: dict[str, Any]) -> bool:
    """Tell `study` one trial job's final result; False when there is nothing to tell or
    the trial was told already (by number: telling twice changes nothing)."""
    from optuna.exceptions import UpdateFinishedTrialError
    from optuna.trial import TrialState

    number, state = result.get("trial_number"), result.get("state")
    if not isinstance(number, int) or state not in TELLABLE:
        return False
    value = result.get("value")
    if state == "complete" and not _finite(value):
        state = "failed"
    states = {"complete": TrialState.COMPLETE, "pruned": TrialState.PRUNED}
    try:
        before = study._storage.get_trial(_trial_id(study, number)).state
    except KeyError:  # no such trial (a study Redis lost): nothing to tell
        return False
    if before.is_finished():
        return False
    try:
        study.tell(
            number,
            value if state == "complete" else None,
            state=states.get(state, TrialState.FAIL),
            skip_if_finished=True,
        )
    except UpdateFinishedTrialError:  # another process told it between our read and write
        return False
    return True


def _trial_id(study, number: int) -> int:
    return study._storage.get_trial_id_from_study_id_trial_number(study._study_id, number)


def _finite(value: Any) -> bool:
    return isinstance(value, (int, float)) and value == value and abs(value) != float("inf")


def tell_final(connection, job_id: str) -> bool:
    """Tell the study of trial job `job_id` its final (fenced) result, if it has one."""
    result = final_result(connection, job_id)
    if not result or result.get("kind") != "trial" or not result.get("study"):
        return False
    return tell_result(open_study(connection, result["study"]), result)


def sync_study(connection, study_name: str, trial_job_ids: list[str]) -> dict[str, int]:
    """Tell the study every final trial result it lacks, and fail the orphans (a trial
    created by an attempt that died before recording it, then recorded by a later one);
    the counts of what was told."""
    from optuna.trial import TrialState

    study = open_study(connection, study_name)
    results = {}
    for job_id, raw in zip(trial_job_ids, _mget(connection, trial_job_ids), strict=True):
        if raw:
            results[job_id] = json.loads(raw)
    told = sum(tell_result(study, r) for r in results.values())
    recorded = dict(zip(trial_job_ids, _recorded_numbers(connection, trial_job_ids), strict=True))
    orphans = 0
    for trial in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
        owner = trial.user_attrs.get("job_id")
        number = recorded.get(owner)
        if number is not None and number != trial.number:
            orphans += tell_result(study, {"trial_number": trial.number, "state": "failed"})
    return {"told": told, "orphans": orphans, "results": len(results)}


def _mget(connection, job_ids: list[str]) -> list:
    return connection.mget([keys.result(j) for j in job_ids]) if job_ids else []


def _recorded_numbers(connection, job_ids: list[str]) -> list[int | None]:
    pipe = connection.pipeline()
    for job_id in job_ids:
        pipe.hget(keys.trial(job_id), "number")
    return [int(n) if n is not None else None for n in pipe.execute()]


class NoCompleteTrial(SpecError):
    """A study with no complete trial: its best configuration cannot be trained."""


def best_of(connection, study_name: str, trial_job_ids: list[str]) -> dict[str, Any]:
    """{study, number, value, params (as --param strings)} of the study's best trial,
    pinned once (the train and each CV fold of it train the same configuration)."""
    from factory.models.spaces import as_param_strings

    meta = keys.study_meta(study_name)
    pinned = connection.hget(meta, "best")
    if pinned is None:
        sync_study(connection, study_name, trial_job_ids)
        study = open_study(connection, study_name)
        try:
            best = study.best_trial
        except ValueError as exc:
            raise NoCompleteTrial(
                f"study {study_name} has no complete trial (every trial failed or was "
                "pruned); fix: look at the trial jobs' errors, widen the search or retry"
            ) from exc
        record = {"study": study_name, "number": best.number, "value": best.value}
        record["params"] = as_param_strings(best.params)
        connection.hsetnx(meta, "best", json.dumps(record))
        pinned = connection.hget(meta, "best")
    return json.loads(pinned)


def trial_jobs_of(connection, job_id: str, study_name: str) -> list[str]:
    """The trial jobs of `study_name` in the plans that hold `job_id`."""
    from jobs.plan import load_plan, plans_with

    out: list[str] = []
    for plan_id in plans_with(connection, job_id):
        plan = load_plan(connection, plan_id)
        for entry in plan.entries if plan else ():
            spec = entry.spec
            is_trial = spec.kind == "trial" and spec.params.get(STUDY) == study_name
            if is_trial and entry.job_id not in out:
                out.append(entry.job_id)
    return out


def resolve_spec(connection, spec: JobSpec, job_id: str) -> tuple[JobSpec, dict | None]:
    """`spec` with its `from_study` replaced by the study's best params (and that best
    trial), or `spec` as it is when it names no study."""
    study_name = spec.params.get(FROM_STUDY)
    if not study_name:
        return spec, None
    best = best_of(connection, study_name, trial_jobs_of(connection, job_id, study_name))
    own = {k: v for k, v in spec.params.items() if k != FROM_STUDY}
    return dataclasses.replace(spec, params=own | best["params"]), best


def with_study_params(runner: Callable) -> Callable:
    """A kind runner (jobs.kinds) that first resolves a `from_study` spec; its result
    names the trial it trained (`from_study`)."""

    def run_resolved(run):
        spec, best = resolve_spec(run.connection, run.spec, run.job_id)
        if best is None:
            return runner(run)
        result = runner(dataclasses.replace(run, spec=spec))
        return result | {"from_study": best}

    run_resolved.__name__ = getattr(runner, "__name__", "run")
    return run_resolved
