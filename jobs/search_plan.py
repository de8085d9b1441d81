"""A search plan: `submit --tune A,B --trials N` turns the default plan into

    data -> trial(A, 0..N-1), trial(B, 0..N-1)      # one study per model, run in parallel
         -> train(A, best), train(B, best)          # params {"from_study": <study>}
         -> cv(A, best, k), cv(B, best, k)          # the same best configuration
         -> ensemble -> report                      # as today, plus the search's files

`tune_plan` rewrites a plan built by jobs.plan.build_plan, whatever CV scheme built its
folds: every train and cv job of a tuned model gets `from_study` in its params (it is
resolved at run time, jobs.search.with_study_params: the best trial cannot be known at
submit time), its train job depends on the model's N trial jobs as well as on what it
depended on (the data job), and every other dependency is renamed to the new job ids.
Models not tuned keep their jobs as they were.

The study name is a hash of the search's content (model, symbol, horizon, dataset, code,
the model's own params, trial count, metric, hours), and every job id is a hash of its
spec, so submitting the same search twice finds the same plan and creates nothing new;
changing any of it (the code included) makes a new study.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from dataclasses import dataclass

from jobs.plan import Plan, PlanEntry
from jobs.search import FROM_STUDY, HOURS, METRIC, METRICS, STUDY, TRIAL, TRIALS
from jobs.spec import JobSpec, SpecError

MAX_TRIALS = 1000
SEARCHES = "searches"  # an ensemble's or report's param: a hash of the plan's study names
DEFAULT_TRIALS = 20


class TuneError(SpecError):
    """A `submit --tune` that cannot be planned."""


@dataclass(frozen=True)
class Tune:
    """What `submit --tune` asks: the models to search, the budget, the metric."""

    models: tuple[str, ...]
    trials: int = DEFAULT_TRIALS
    metric: str = "log_loss"
    hours: float = 0.0  # 0: no time budget

    def check(self) -> Tune:
        from jobs.catalog import search_space

        if not self.models:
            raise TuneError("--tune names no model; fix: e.g. --tune xgboost,lstm")
        for model in self.models:
            if not search_space(model):
                raise TuneError(
                    f"{model} has no search space; fix: tune one of "
                    f"{', '.join(_searchable())} (see `factory models`)"
                )
        if not 1 <= self.trials <= MAX_TRIALS:
            raise TuneError(f"--trials {self.trials}; fix: give 1 to {MAX_TRIALS}")
        if self.metric not in METRICS:
            raise TuneError(f"--metric {self.metric!r}; fix: use one of {', '.join(METRICS)}")
        if self.hours < 0:
            raise TuneError(f"--tune-hours {self.hours} is negative; fix: give 0 (none) or more")
        return self


def _searchable() -> list[str]:
    from jobs.catalog import model_names, search_space

    return [m for m in model_names() if search_space(m)]


def study_name(train: JobSpec, tune: Tune) -> str:
    """The study of `train`'s model under `tune`: a hash of what decides the search."""
    content = {
        "model": train.model,
        "symbol": train.symbol,
        "horizon": train.horizon,
        "dataset": train.dataset,
        "code": train.code,
        "params": train.params,
        "trials": tune.trials,
        "metric": tune.metric,
        "hours": tune.hours,
    }
    text = json.dumps(content, sort_keys=True, separators=(",", ":"))
    return f"study-{train.model}-{hashlib.sha256(text.encode()).hexdigest()[:16]}"


def trial_specs(train: JobSpec, tune: Tune) -> list[JobSpec]:
    """The N trial jobs of `train`'s model: its spec as kind "trial", with the search's keys."""
    search = {STUDY: study_name(train, tune), TRIALS: str(tune.trials), METRIC: tune.metric}
    search[HOURS] = repr(float(tune.hours))
    return [
        dataclasses.replace(train, kind="trial", params={**train.params, **search, TRIAL: str(k)})
        for k in range(tune.trials)
    ]


def tune_plan(plan: Plan, tune: Tune) -> Plan:
    """`plan` with a search for each model of `tune` (see the module docstring)."""
    tune.check()
    trains = {e.spec.model: e for e in plan.entries if e.spec.kind == "train"}
    missing = [m for m in tune.models if m not in trains]
    if missing:
        raise TuneError(
            f"--tune {','.join(missing)}: not among the plan's models; fix: add to --models"
        )
    studies: dict[str, dict] = {}
    trials: dict[str, list[PlanEntry]] = {}
    for model in tune.models:
        entry = trains[model]
        specs = trial_specs(entry.spec, tune)
        trials[model] = [PlanEntry(s, entry.depends_on) for s in specs]
        studies[model] = {"study": specs[0].params[STUDY], "trials": tune.trials}
        studies[model] |= {"metric": tune.metric, "hours": tune.hours}
    specs = [_with_study(e.spec, studies) for e in plan.entries]
    renamed = {e.job_id: s.job_id for e, s in zip(plan.entries, specs, strict=True)}
    entries: list[PlanEntry] = []
    for entry, spec in zip(plan.entries, specs, strict=True):
        deps = tuple(renamed.get(d, d) for d in entry.depends_on)
        if spec.kind == "train" and spec.model in trials:
            entries.extend(trials[spec.model])
            deps += tuple(t.job_id for t in trials[spec.model])
        entries.append(PlanEntry(spec, deps))
    return Plan(tuple(entries), {**plan.submitted, "tune": studies})


def _with_study(spec: JobSpec, studies: dict[str, dict]) -> JobSpec:
    """A tuned model's train or cv spec names its study; the ensemble and the report name
    the plan's studies (their specs hold no params of the models they follow, so without
    it they would share the ids of an untuned plan's: an existing job is not enqueued
    again); any other spec stays as it is."""
    if spec.kind in ("ensemble", "report"):
        names = ",".join(sorted(s["study"] for s in studies.values()))
        digest = hashlib.sha256(names.encode()).hexdigest()[:16]
        return dataclasses.replace(spec, params={**spec.params, SEARCHES: digest})
    if spec.model not in studies or spec.kind not in ("train", "cv"):
        return spec
    params = {**spec.params, FROM_STUDY: studies[spec.model]["study"]}
    return dataclasses.replace(spec, params=params)
