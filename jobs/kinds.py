"""The job kinds a worker runs (an allowlist): data, train, cv, ensemble, report.

Each runner takes one `Run` and returns the job's JSON result. Outputs that must
appear only once (bundles, out-of-fold folders) are staged under the attempt's
name; jobs.entry promotes them after the result became final (fenced).
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from jobs import keys, tracking
from jobs.entry import ENV_PROGRESS, STAGED_KEY, stop_requested
from jobs.lease import Lease, Leases
from jobs.spec import JobSpec, SpecError


@dataclass(frozen=True)
class Run:
    spec: JobSpec
    job_id: str
    home: Path
    connection: Any
    leases: Leases
    lease: Lease
    dependency_ids: list[str]

    def staged_dir(self) -> Path:
        return self.home / "models" / ".staged" / f"{self.job_id}-{self.lease.attempt}"

    def final_dir(self) -> Path:
        return self.home / "models" / self.job_id

    def plan_dependencies(self) -> list[str]:
        """The job's dependencies as its plan lists them (RQ prunes its own list as
        dependencies finish, so it is not the record to trust here)."""
        from jobs.control import plans_with
        from jobs.plan import load_plan

        deps: list[str] = []
        for plan_id in plans_with(self.connection, self.job_id):
            plan = load_plan(self.connection, plan_id)
            for entry in plan.entries if plan else ():
                if entry.job_id == self.job_id:
                    deps.extend(d for d in entry.depends_on if d not in deps)
        return deps or list(self.dependency_ids)

    def dependency_results(self) -> dict[str, dict]:
        out = {}
        for dep in self.plan_dependencies():
            raw = self.connection.get(keys.result(dep))
            if raw is None:
                raise SpecError(f"dependency {dep} of {self.job_id} has no result")
            out[dep] = json.loads(raw)
        return out


def resolve_dataset_dir(run: Run) -> Path:
    """The dataset a model job trains on (a verified local copy when a cache is set)."""
    from jobs.datacache import local_dataset

    spec = run.spec
    if "dataset_dir" in spec.dataset:
        return local_dataset(Path(spec.dataset["dataset_dir"]))
    data_job = spec.dataset.get("from_job")
    raw = run.connection.get(keys.result(data_job)) if data_job else None
    if raw is None:
        raise SpecError(f"the data job {data_job!r} of this job has no result")
    return local_dataset(Path(json.loads(raw)["dataset_dir"]))


def _context(run: Run, tracker):
    from factory.checkpoint import CheckpointStore
    from jobs.context import RedisContext

    progress = os.environ.get(ENV_PROGRESS)
    return RedisContext(
        run.connection,
        run.leases,
        run.lease,
        CheckpointStore(run.home, run.job_id),
        stop_flag=stop_requested,
        progress_file=Path(progress) if progress else None,
        on_report=tracker.log,
    )


def _tagged(result: dict[str, Any], kind: str, **extra: Any) -> dict[str, Any]:
    """The job's result: `kind` is the job kind (a model's own kind moves to model_kind)."""
    out = dict(result)
    if "kind" in out:
        out["model_kind"] = out.pop("kind")
    return out | extra | {"kind": kind}


def run_data(run: Run) -> dict[str, Any]:
    from factory.config import DatasetConfig
    from factory.dataset import build_dataset

    config = DatasetConfig.from_dict(run.spec.dataset["config"])
    result = build_dataset(Path(run.spec.dataset["raw_path"]), config, run.home)
    return _tagged(result.summary(), "data")


def run_train(run: Run) -> dict[str, Any]:
    from factory.train import save_bundle, train_model

    spec = run.spec
    tracker = tracking.start(run.job_id, spec.to_dict(), run.home)
    ctx = _context(run, tracker)
    result, model = train_model(
        resolve_dataset_dir(run), spec.model, spec.horizon, dict(spec.params), ctx
    )
    tracker.finish({"metrics": result.get("metrics", {}), "attempt": run.lease.attempt})
    staged = save_bundle(model, result, run.staged_dir())
    return _tagged(result, "train", bundle=str(run.final_dir()), **{STAGED_KEY: str(staged)})


def run_cv(run: Run) -> dict[str, Any]:
    from factory.cv import run_cv_fold, save_fold

    spec = run.spec
    tracker = tracking.start(run.job_id, spec.to_dict(), run.home)
    ctx = _context(run, tracker)
    # embargo None: max(horizon, the dataset's lookback), which covers every model's lookback
    result, oof = run_cv_fold(
        resolve_dataset_dir(run),
        spec.model,
        spec.horizon,
        dict(spec.params),
        spec.fold,
        spec.folds,
        None,
        ctx,
    )
    tracker.finish({"fold": spec.fold, "metrics": result.get("metrics", {})})
    staged = save_fold(result, oof, run.staged_dir())
    extra = {"model": spec.model, "bundle": str(run.final_dir()), STAGED_KEY: str(staged)}
    return _tagged(result, "cv", **extra)


def run_ensemble(run: Run) -> dict[str, Any]:
    from factory.cv import load_fold
    from factory.ensemble import run_ensemble as fit_ensemble

    spec = run.spec
    oof: dict[str, list] = {m: [] for m in spec.members}
    bundles: dict[str, str] = {}
    for result in run.dependency_results().values():
        if result.get("kind") == "cv":
            oof[result["model"]].append(load_fold(Path(result["bundle"]))[1])
        elif result.get("kind") == "train":
            bundles[result["model"]] = result["bundle"]
    method = spec.params.get("method", "logistic")
    tracker = tracking.start(run.job_id, spec.to_dict(), run.home)
    result, _ = fit_ensemble(
        resolve_dataset_dir(run),
        spec.horizon,
        oof,
        bundles,
        method=method,
        bundle_dir=run.staged_dir(),
    )
    tracker.finish({"metrics": result.get("metrics", {})})
    extra = {"bundle": str(run.final_dir()), STAGED_KEY: str(run.staged_dir())}
    return _tagged(result, "ensemble", **extra)


def run_report(run: Run) -> dict[str, Any]:
    from factory.report import build_leaderboard, write_report
    from jobs.control import plans_with

    train, cv, ensemble = {}, {}, None
    for result in _all_results(run).values():
        kind = result.get("kind")
        if kind == "train":
            train[result["model"]] = result
        elif kind == "cv":
            cv.setdefault(result["model"], []).append(result)
        elif kind == "ensemble":
            ensemble = result
    rows = build_leaderboard(train_results=train, cv_results=cv, ensemble_result=ensemble)
    plan_ids = plans_with(run.connection, run.job_id) or [run.job_id]
    paths = {}
    for plan_id in plan_ids:
        paths = write_report(rows, run.home / "results" / plan_id, sort_by="log_loss")
    files = {k: str(v) for k, v in paths.items()}
    return _tagged({"leaderboard": rows, "files": files}, "report")


def _all_results(run: Run) -> dict[str, dict]:
    """Results of every other job of the report's plan(s) (the report depends on them all)."""
    from jobs.control import plans_with
    from jobs.plan import load_plan

    out: dict[str, dict] = {}
    for plan_id in plans_with(run.connection, run.job_id):
        plan = load_plan(run.connection, plan_id)
        for entry in plan.entries if plan else ():
            raw = run.connection.get(keys.result(entry.job_id))
            if raw is not None and entry.job_id != run.job_id:
                out[entry.job_id] = json.loads(raw)
    return out


KIND_RUNNERS = {
    "data": run_data,
    "train": run_train,
    "cv": run_cv,
    "ensemble": run_ensemble,
    "report": run_report,
}
