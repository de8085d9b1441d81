"""Plans: the DAG of jobs one submission asks for, its ledger file, and idempotent enqueueing.

    data(S) -> train(A), train(B) -> cv(A, k), cv(B, k) -> ensemble(A+B) -> report

One cv job per split of the plan's CV scheme (factory.training.cv_schemes): `folds`
for purged k-fold, `steps` for walk-forward, C(groups, test_groups) for cpcv; each cv
job and the ensemble carry the scheme in their spec's `cv`, so their ids differ per
scheme (and purged k-fold, whose `cv` is {}, keeps the ids it always had).

Every job of a plan is enqueued (jobs.spec.KINDS is the one list of kinds, and a spec
of another kind cannot be built). Redis keeps an index job -> plans (keys.job_plans),
so a job finds its plans without scanning every plan ever submitted.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import redis
from rq import Queue
from rq.job import Job
from rq.serializers import JSONSerializer

from factory.layout import Layout
from factory.training.cv_schemes import CvScheme
from jobs import keys
from jobs.code_wheel import ShippedCode, ship_code
from jobs.code_wheel import record as record_code
from jobs.spec import ENTRY_POINT, JobSpec


@dataclass(frozen=True)
class PlanEntry:
    spec: JobSpec
    depends_on: tuple[str, ...] = ()

    @property
    def job_id(self) -> str:
        return self.spec.job_id

    def to_dict(self) -> dict[str, Any]:
        return {
            "job_id": self.job_id,
            "spec": self.spec.to_dict(),
            "depends_on": list(self.depends_on),
        }


@dataclass(frozen=True)
class Plan:
    entries: tuple[PlanEntry, ...]
    submitted: dict[str, Any] = field(default_factory=dict, compare=False)

    @property
    def plan_id(self) -> str:
        ids = ",".join(sorted(e.job_id for e in self.entries))
        return "plan-" + hashlib.sha256(ids.encode()).hexdigest()[:16]

    @property
    def job_ids(self) -> list[str]:
        return [e.job_id for e in self.entries]

    def to_dict(self) -> dict[str, Any]:
        return {
            "plan_id": self.plan_id,
            "submitted": self.submitted,
            "jobs": [e.to_dict() for e in self.entries],
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Plan:
        entries = tuple(
            PlanEntry(JobSpec.from_dict(j["spec"]), tuple(j["depends_on"])) for j in data["jobs"]
        )
        return cls(entries, data.get("submitted", {}))


def build_plan(
    base: JobSpec,
    models: list[str],
    horizon: int,
    params: dict[str, dict[str, str]],
    folds: int = 5,
    cv: bool = True,
    ensemble: bool = True,
    data_spec: JobSpec | None = None,
    scheme: CvScheme | None = None,
) -> Plan:
    """The default DAG. `base` carries symbol, code and dataset; `params` is per model;
    `scheme` is the CV scheme (None: purged k-fold of `folds` folds)."""
    scheme = scheme or CvScheme(folds=folds)
    folds, spec_cv = (scheme.check().n_splits, scheme.to_spec()) if cv else (0, {})
    entries: list[PlanEntry] = []
    data_deps: tuple[str, ...] = ()
    dataset = base.dataset
    if data_spec is not None:
        entries.append(PlanEntry(data_spec))
        data_deps = (data_spec.job_id,)
        dataset = {"from_job": data_spec.job_id, "dataset_id": expected_dataset_id(data_spec)}
    common = {"symbol": base.symbol, "code": base.code, "dataset": dataset, "horizon": horizon}
    cv_ids: list[str] = []
    train_ids: list[str] = []
    for model in models:
        train = JobSpec(kind="train", model=model, params=params.get(model, {}), **common)
        entries.append(PlanEntry(train, data_deps))
        train_ids.append(train.job_id)
        for k in range(folds if cv else 0):
            fold = JobSpec(
                kind="cv",
                model=model,
                params=params.get(model, {}),
                fold=k,
                folds=folds,
                cv=spec_cv,
                **common,
            )
            entries.append(PlanEntry(fold, (train.job_id,)))
            cv_ids.append(fold.job_id)
    tail = train_ids + cv_ids
    if ensemble and cv and len(models) > 1:  # stacking needs out-of-fold predictions
        ens = JobSpec(kind="ensemble", members=tuple(models), folds=folds, cv=spec_cv, **common)
        entries.append(PlanEntry(ens, tuple(tail)))
        tail = [ens.job_id]
    report = JobSpec(kind="report", members=tuple(models), **common)
    entries.append(PlanEntry(report, tuple(tail)))
    return Plan(tuple(entries))


def expected_dataset_id(data_spec: JobSpec) -> str:
    """The id of the dataset that `data_spec` (a data job) will build
    (factory.data.config.dataset_id_for: raw sha256, config, data code)."""
    from factory.data.config import DatasetConfig, dataset_id_for

    d = data_spec.dataset
    return dataset_id_for(str(d["raw_sha256"]), DatasetConfig.from_dict(dict(d["config"])))


def write_ledger(plan: Plan, home: Path) -> Path:
    """<home>/ledger/<plan_id>.json, written atomically; `factory recover` reads it."""
    path = Layout(home).ledger_file(plan.plan_id)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{plan.plan_id}.{os.getpid()}.tmp")
    with open(tmp, "w") as fh:
        json.dump(plan.to_dict(), fh, indent=2)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)
    return path


def read_ledger(home: Path, plan_id: str) -> Plan:
    """The plan of `plan_id` as its ledger file holds it."""
    return Plan.from_dict(json.loads(Layout(home).ledger_file(plan_id).read_text()))


def queue_for(connection: redis.Redis, name: str = keys.QUEUE) -> Queue:
    return Queue(name, connection=connection, serializer=JSONSerializer)


def enqueue_plan(
    connection: redis.Redis, plan: Plan, home: Path, queue_name: str = keys.QUEUE
) -> bool:
    """Enqueue every job of `plan`; False (and nothing new) when it was submitted before."""
    if connection.exists(keys.plan(plan.plan_id)):
        return False
    plan = with_code(plan, home)
    write_ledger(plan, home)
    queue = queue_for(connection, queue_name)
    for entry in plan.entries:
        enqueue_entry(queue, entry)
    store_plan(connection, plan)
    record_code(connection, ShippedCode.from_dict(plan.submitted))
    return True


def store_plan(connection: redis.Redis, plan: Plan) -> None:
    """The plan in Redis: its JSON, open and all-plans sets, and the job -> plans index."""
    pipe = connection.pipeline()
    pipe.set(keys.plan(plan.plan_id), json.dumps(plan.to_dict()))
    pipe.sadd(keys.OPEN_PLANS, plan.plan_id)
    pipe.zadd(keys.ALL_PLANS, {plan.plan_id: time.time()}, nx=True)
    for job_id in plan.job_ids:
        pipe.sadd(keys.job_plans(job_id), plan.plan_id)
    pipe.execute()


def plans_with(connection: redis.Redis, job_id: str) -> list[str]:
    """The plans that contain `job_id` (from the index, one SMEMBERS)."""
    return sorted(p.decode() for p in connection.smembers(keys.job_plans(job_id)))


def with_code(plan: Plan, home: Path) -> Plan:
    """`plan` with the wheel of its code shipped to `<home>/code/` and named in the plan."""
    shipped = ship_code(home)
    versions = {e.spec.code for e in plan.entries}
    if versions != {shipped.version}:
        raise RuntimeError(
            f"the plan names code {sorted(versions)} but this process runs {shipped.version}"
        )
    return Plan(plan.entries, {**plan.submitted, **shipped.to_dict()})


def enqueue_entry(queue: Queue, entry: PlanEntry) -> Job | None:
    """Enqueue one job unless a job with its id exists already (shared with another plan)."""
    if Job.exists(entry.job_id, connection=queue.connection):
        return None
    deps = [d for d in entry.depends_on if Job.exists(d, connection=queue.connection)]
    return queue.enqueue(
        ENTRY_POINT,
        entry.spec.to_json(),
        job_id=entry.job_id,
        depends_on=deps or None,
        job_timeout=-1,
        result_ttl=-1,
        failure_ttl=30 * 24 * 3600,
        description=f"{entry.spec.kind} {entry.spec.model or entry.spec.symbol}",
    )


def load_plan(connection: redis.Redis, plan_id: str) -> Plan | None:
    raw = connection.get(keys.plan(plan_id))
    return Plan.from_dict(json.loads(raw)) if raw else None
