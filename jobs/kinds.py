"""The job kinds a worker runs (an allowlist): data, train, cv, ensemble, report, trial.

Each runner takes one `Run` and returns the job's JSON result. Outputs that must
appear only once (bundles, out-of-fold folders) are staged under the attempt's
name (jobs.attempt), which promotes them once the result became final (fenced).

Every path a spec or a result records is relative to the storage root (factory.layout):
a runner resolves what it reads against its own `run.home` (refusing an absolute path
or one that leaves the root: a spec or a result from Redis is untrusted) and records
what it writes relative to it.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from factory.layout import Layout, StoragePathError
from jobs import keys, tracking
from jobs.attempt import Attempt
from jobs.search import with_study_params
from jobs.spec import JobSpec, SpecError


class RecordedPathError(SpecError, StoragePathError):
    """A path that a spec or a dependency's result records and that leaves the storage
    root (or is absolute): no retry can fix it, so the job fails at once."""


@dataclass(frozen=True)
class Run:
    """What a runner gets: the spec, its attempt (lease, staging) and the connection."""

    spec: JobSpec
    attempt: Attempt
    connection: Any
    dependency_ids: list[str]

    @property
    def job_id(self) -> str:
        return self.attempt.job_id

    @property
    def home(self) -> Path:
        return self.attempt.home

    @property
    def layout(self) -> Layout:
        return self.attempt.layout

    def relative(self, path: Path) -> str:
        """`path` as a result records it: relative to the storage root."""
        return self.layout.relative(path)

    def resolve(self, rel: Any, what: str) -> Path:
        """A recorded root-relative path under this worker's home (absolute or '..' refused,
        for good: RecordedPathError is permanent)."""
        try:
            return self.layout.resolve(rel, what)
        except StoragePathError as exc:
            raise RecordedPathError(str(exc)) from exc

    def output_of(self, result: dict[str, Any], producer: str) -> Path:
        """The published output (bundle, fold folder) of a dependency's `result`, once it
        is visible and verified here (jobs.handoff)."""
        from jobs.handoff import wait_for_output

        folder = self.resolve(result.get("bundle"), "bundle")
        wait_s = self.attempt.env.storage_visibility_wait_s
        return wait_for_output(folder, result, producer, wait_s)

    def bundle_fields(self) -> dict[str, str]:
        """The result's bundle: where the staged output will be once final."""
        return {"bundle": self.relative(self.attempt.final_dir())}

    def plan_dependencies(self) -> list[str]:
        """The job's dependencies as its plan lists them (RQ prunes its own list as
        dependencies finish, so it is not the record to trust here)."""
        from jobs.plan import load_plan, plans_with

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


def dataset_of(run: Run) -> tuple[str, Path]:
    """The dataset a model job trains on: (its path relative to the storage root, as the
    spec or the data job's result records it; a verified local copy when a cache is set),
    once it is visible and verifies here (jobs.handoff: Drive shows it late)."""
    from jobs.datacache import local_dataset
    from jobs.handoff import wait_for_dataset

    spec = run.spec
    producer, result = "", None
    if "dataset_dir" in spec.dataset:
        rel = spec.dataset["dataset_dir"]
    else:
        producer = spec.dataset.get("from_job") or ""
        raw = run.connection.get(keys.result(producer)) if producer else None
        if raw is None:
            raise SpecError(f"the data job {producer!r} of this job has no result")
        result = json.loads(raw)
        rel = result.get("dataset_dir")
    folder = run.resolve(rel, "dataset_dir")
    wait_for_dataset(folder, producer, run.attempt.env.storage_visibility_wait_s, result)
    return rel, local_dataset(folder)


def resolve_dataset_dir(run: Run) -> Path:
    """The dataset a model job trains on (a verified local copy when a cache is set)."""
    return dataset_of(run)[1]


def _context(run: Run, tracker):
    from factory.training.checkpoint import CheckpointStore
    from jobs.context import RedisContext

    attempt = run.attempt
    return RedisContext(
        run.connection,
        attempt.leases,
        attempt.lease,
        CheckpointStore(run.home, run.job_id),
        stop_flag=attempt.stop_requested,
        checkpoint_wait_s=attempt.env.storage_visibility_wait_s,
        lease_held_locally=attempt.env.lease_held_locally,
        confirm_durable=attempt.confirm_durable,
        progress_file=attempt.env.progress_file,
        on_report=tracker.log,
    )


def _tagged(result: dict[str, Any], kind: str, **extra: Any) -> dict[str, Any]:
    """The job's result: `kind` is the job kind (a model's own kind moves to model_kind)."""
    out = dict(result)
    if "kind" in out:
        out["model_kind"] = out.pop("kind")
    return out | extra | {"kind": kind}


def run_data(run: Run) -> dict[str, Any]:
    from factory.data.config import DatasetConfig
    from factory.data.dataset import build_dataset

    config = DatasetConfig.from_dict(run.spec.dataset["config"])
    raw = run.resolve(run.spec.dataset.get("raw_path"), "raw_path")
    result = build_dataset(raw, config, run.home)
    summary = result.summary() | {"dataset_dir": run.relative(result.dataset_dir)}
    return _tagged(summary, "data")


def run_train(run: Run) -> dict[str, Any]:
    from factory.bundle import save_bundle
    from factory.training.train import train_model

    spec = run.spec
    tracker = tracking.start(run.job_id, spec.to_dict(), run.home)
    ctx = _context(run, tracker)
    rel, local = dataset_of(run)
    result, model = train_model(local, spec.model, spec.horizon, dict(spec.params), ctx)
    result["dataset_dir"] = rel  # not the local cache's path
    tracker.finish({"metrics": result.get("metrics", {}), "attempt": run.attempt.lease.attempt})
    save_bundle(model, result, run.attempt.staged_dir(), dataset_dir=local)
    return _tagged(result, "train", **run.bundle_fields())


def run_cv(run: Run) -> dict[str, Any]:
    from factory.training.cv import run_cv_fold, save_fold

    spec = run.spec
    tracker = tracking.start(run.job_id, spec.to_dict(), run.home)
    ctx = _context(run, tracker)
    # embargo None: max(horizon, the dataset's lookback), which covers every model's lookback;
    # split `fold` of the spec's CV scheme ({}: purged k-fold)
    result, oof = run_cv_fold(
        resolve_dataset_dir(run),
        spec.model,
        spec.horizon,
        dict(spec.params),
        spec.fold,
        spec.folds,
        None,
        ctx,
        scheme=spec.cv,
    )
    tracker.finish({"fold": spec.fold, "metrics": result.get("metrics", {})})
    save_fold(result, oof, run.attempt.staged_dir())
    return _tagged(result, "cv", model=spec.model, **run.bundle_fields())


def run_ensemble(run: Run) -> dict[str, Any]:
    from factory.bundle import save_ensemble_bundle
    from factory.training.cv import load_fold
    from factory.training.cv_schemes import CvScheme
    from factory.training.ensemble import run_ensemble as fit_ensemble

    spec = run.spec
    splits: dict[str, dict[int, Any]] = {m: {} for m in spec.members}
    bundles: dict[str, Path] = {}
    for dep, result in run.dependency_results().items():
        if result.get("kind") == "cv":
            frame = load_fold(run.output_of(result, dep))[1]
            splits[result["model"]][int(result["fold"])] = frame
        elif result.get("kind") == "train":
            bundles[result["model"]] = run.output_of(result, dep)
    oof = {m: [by_fold[k] for k in sorted(by_fold)] for m, by_fold in splits.items()}  # split order
    scheme = CvScheme.from_spec(spec.cv, spec.folds)  # the scheme its cv jobs ran
    method = spec.params.get("method", "logistic")
    tracker = tracking.start(run.job_id, spec.to_dict(), run.home)
    rel, local = dataset_of(run)
    result, _ = fit_ensemble(local, spec.horizon, oof, bundles, method=method, scheme=scheme)
    result["dataset_dir"] = rel  # not the local cache's path
    save_ensemble_bundle(result, bundles, run.attempt.staged_dir(), dataset_dir=local)
    tracker.finish({"metrics": result.get("metrics", {})})
    return _tagged(result, "ensemble", **run.bundle_fields())


def run_report(run: Run) -> dict[str, Any]:
    from factory.evaluation.report import build_leaderboard, overfitting_report, write_report
    from jobs.plan import plans_with

    train, cv, ensemble = {}, {}, None
    results = _all_results(run)
    for result in results.values():
        kind = result.get("kind")
        if kind == "train":
            train[result["model"]] = result
        elif kind == "cv":
            cv.setdefault(result["model"], []).append(result)
        elif kind == "ensemble":
            ensemble = result
    rows = build_leaderboard(train_results=train, cv_results=cv, ensemble_result=ensemble)
    # PBO and deflated Sharpe: over the rows, N counting the plan's search trials too
    overfit = overfitting_report(rows, [r for r in results.values() if r.get("kind") == "trial"])
    plan_ids = plans_with(run.connection, run.job_id) or [run.job_id]
    paths = {}
    for plan_id in plan_ids:
        folder = run.layout.results_dir(plan_id)
        paths = write_report(rows, folder, sort_by="log_loss", overfitting=overfit)
        paths |= _search_report(results, run.layout.results_dir(plan_id))
    files = {k: run.relative(v) for k, v in paths.items()}
    return _tagged({"leaderboard": rows, "overfitting": overfit, "files": files}, "report")


def _search_report(results: dict[str, dict], folder: Path) -> dict[str, Path]:
    """A search's files (search.json, optimization_history.png), from its trials' results."""
    from factory.evaluation.search_report import write_search_report

    trials: dict[str, list[dict]] = {}
    for result in results.values():
        if result.get("kind") == "trial":
            trials.setdefault(result.get("model", ""), []).append(result)
    return write_search_report(trials, folder)


def _all_results(run: Run) -> dict[str, dict]:
    """Results of every other job of the report's plan(s) (the report depends on them all)."""
    from jobs.plan import load_plan, plans_with

    out: dict[str, dict] = {}
    for plan_id in plans_with(run.connection, run.job_id):
        plan = load_plan(run.connection, plan_id)
        for entry in plan.entries if plan else ():
            raw = run.connection.get(keys.result(entry.job_id))
            if raw is not None and entry.job_id != run.job_id:
                out[entry.job_id] = json.loads(raw)
    return out


def run_trial(run: Run) -> dict[str, Any]:
    """One trial of a search (jobs.trial): asked once, trained, pruned at checkpoints."""
    from jobs.trial import run_trial as run_one

    tracker = tracking.start(run.job_id, run.spec.to_dict(), run.home)
    _, local = dataset_of(run)
    result = run_one(run.spec, run.attempt, run.connection, _context(run, tracker), local)
    tracker.finish({"state": result.get("state"), "value": result.get("value")})
    return result  # kind "trial" (the model's own kind is model_kind)


def after_final(spec: JobSpec, job_id: str, connection) -> None:
    """What follows a won (fenced) publish (jobs.entry): a trial's final result, read back
    from Redis, is told to its study (a lost tell is told later: jobs.search.sync_study)."""
    if spec.kind == "trial":
        from jobs.search import tell_final

        tell_final(connection, job_id)


KIND_RUNNERS = {
    "data": run_data,
    "train": with_study_params(run_train),  # a tuned model's best configuration (jobs.search)
    "cv": with_study_params(run_cv),
    "ensemble": run_ensemble,
    "report": run_report,
    "trial": run_trial,
}
