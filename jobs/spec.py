"""Typed job specs: JSON only (never pickle), content-hashed ids, a fixed set of kinds."""

from __future__ import annotations

import dataclasses
import json
import re
from dataclasses import dataclass, field
from typing import Any

from factory.layout import StoragePathError, plain_name, plain_symbol, relative_parts
from factory.training.identity import job_id, train_content

# the one list: jobs.kinds runs each
KINDS = ("data", "train", "cv", "ensemble", "report", "trial")
ENTRY_POINT = "jobs.entry.run_job"  # the one callable a queued job may name
JOB_ID = re.compile(r"[A-Za-z0-9_-]{1,200}")  # what RQ accepts as a job id
SHA256 = re.compile(r"[0-9a-f]{64}")
# the shapes a spec's dataset takes (see JobSpec): a data job's raw file, a dataset built
# already, or the result of the plan's data job
DATASET_SHAPES = (
    frozenset({"raw_path", "raw_sha256", "config"}),
    frozenset({"dataset_dir", "dataset_id"}),
    frozenset({"from_job"}),
    frozenset({"from_job", "dataset_id"}),  # the id the data job's dataset will have
)
MAX_TEXT = 500  # the longest key or value of params a spec may hold


class SpecError(ValueError):
    """A job spec that this code cannot run (unknown kind or key, bad type)."""

    user_facing = True
    permanent = True  # no retry can fix it: the worker fails the job at once


@dataclass(frozen=True)
class JobSpec:
    """What to run. The job id is a hash of everything here, so equal specs share a job.

    kind        one of KINDS (the worker runs nothing else)
    symbol      e.g. MES
    dataset     how to get the dataset: {"raw_path", "raw_sha256", "config"} for a data job,
                {"dataset_dir", "dataset_id"} for a dataset built already, or
                {"from_job": <data job id>, "dataset_id"} for jobs that follow a data job
                (the dataset id its dataset will have; older plans lack it); paths are
                relative to the storage root (factory.layout.resolve_in_home reads them)
    model       model registry name (train/cv), "" otherwise
    horizon     label horizon in decision bars (0 for data jobs)
    params      model hyperparameter overrides, as given (strings)
    fold        CV split index (-1 when not a split), folds = number of splits
    members     for an ensemble: the model names it stacks
    cv          cv and ensemble jobs: the CV scheme (factory.training.cv_schemes.CvScheme
                .to_spec): {} is purged k-fold of `folds` folds, and is left out of the
                spec's dict (so purged plans keep the ids they had before schemes);
                {"scheme": "walk-forward", "window", "steps"} or {"scheme": "cpcv",
                "groups", "test_groups"}, `folds` then being its number of splits
    code        code version the job must run with (package version + source hash)
    """

    kind: str
    symbol: str
    code: str
    dataset: dict[str, Any] = field(default_factory=dict)
    model: str = ""
    horizon: int = 0
    params: dict[str, str] = field(default_factory=dict)
    fold: int = -1
    folds: int = 0
    members: tuple[str, ...] = ()
    cv: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise SpecError(f"unknown job kind {self.kind!r}; the worker runs only {list(KINDS)}")
        object.__setattr__(self, "members", tuple(self.members))

    @property
    def job_id(self) -> str:
        """The one job id (factory.training.identity): a train job whose dataset id is
        known hashes what decides its result, as `factory train` does; any other job
        hashes its whole spec."""
        dataset_id = self.dataset.get("dataset_id")
        # a train of a study's best trial (jobs.search) has no params to resolve yet
        if self.kind == "train" and isinstance(dataset_id, str) and "from_study" not in self.params:
            content = train_content(self.code, dataset_id, self.model, self.horizon, self.params)
        else:
            content = self.to_dict()
        return job_id(self.kind, self.symbol, self.model or self.kind, content, self.fold)

    def to_dict(self) -> dict[str, Any]:
        out = dataclasses.asdict(self)
        out["members"] = list(self.members)
        if not self.cv:  # purged k-fold: the spec (and its job id) as before schemes
            del out["cv"]
        return out

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), sort_keys=True, separators=(",", ":"))

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> JobSpec:
        if not isinstance(data, dict):
            raise SpecError(f"a job spec must be a JSON object, not {type(data).__name__}")
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - names)
        if unknown:
            raise SpecError(f"unknown job spec keys {unknown}")
        try:
            spec = cls(**data)
        except TypeError as exc:
            raise SpecError(f"bad job spec: {exc}") from exc
        return spec.validate()

    def validate(self) -> JobSpec:
        """This spec, once every field holds what `submit` could have written; else a
        SpecError naming the field. A spec from Redis is untrusted: no path it names may
        leave the storage root, no name may be a path (the CLI's rules, factory.layout)."""
        try:
            plain_symbol(self.symbol, "spec symbol")
            _check_code(self.code)
            _check_model(self)
            _check_numbers(self)
            _check_params(self.params)
            _check_dataset(self)
            _check_cv(self)
        except StoragePathError as exc:
            text = str(exc)
            raise (SpecError(f"bad job spec: {text}") if "fix:" in text else _bad(text)) from exc
        return self

    @classmethod
    def from_json(cls, text: str) -> JobSpec:
        return cls.from_dict(cls.raw_dict(text))

    @staticmethod
    def raw_dict(text: str) -> dict[str, Any]:
        """The JSON object of a spec, unchecked: enough to read which code it needs."""
        try:
            data = json.loads(text)
        except (TypeError, json.JSONDecodeError) as exc:
            raise SpecError(f"a job spec must be JSON: {exc}") from exc
        if not isinstance(data, dict):
            raise SpecError(f"a job spec must be a JSON object, not {type(data).__name__}")
        return data


def _bad(message: str) -> SpecError:
    return SpecError(f"bad job spec: {message}; fix: resubmit the plan with `submit`")


def _check_code(code: object) -> None:
    from jobs.versioning import is_code_version

    if not is_code_version(code):
        raise _bad(f"code {str(code)[:80]!r} is not a code version")


def _check_model(spec: JobSpec) -> None:
    from jobs.catalog import model_names

    known = model_names()
    wanted = spec.kind in ("train", "cv", "trial")  # trial: one of a search (jobs.trial)
    if (
        not isinstance(spec.model, str)
        or (spec.model in known) != wanted
        or (not wanted and spec.model)
    ):
        what = "a model name" if wanted else "no model"
        raise _bad(f"model {str(spec.model)[:80]!r} of a {spec.kind} job (want {what})")
    if any(not isinstance(m, str) or m not in known for m in spec.members):
        raise _bad(f"members {list(spec.members)[:10]!r} name unknown models")


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _check_numbers(spec: JobSpec) -> None:
    numbers = {"horizon": spec.horizon, "fold": spec.fold, "folds": spec.folds}
    for name, value in numbers.items():
        if not _is_int(value) or not -1 <= value <= 100_000:
            raise _bad(f"{name} {str(value)[:80]!r} is not a whole number")
    if spec.horizon < (0 if spec.kind == "data" else 1) or spec.folds < 0:
        raise _bad(f"horizon {spec.horizon} / folds {spec.folds} of a {spec.kind} job")
    in_range = 0 <= spec.fold < spec.folds if spec.kind == "cv" else spec.fold == -1
    if not in_range:
        raise _bad(f"fold {spec.fold} of {spec.folds} of a {spec.kind} job")


def _check_cv(spec: JobSpec) -> None:
    """The CV scheme of a cv or ensemble job, exactly as `submit` writes it."""
    if isinstance(spec.cv, dict) and not spec.cv:
        return
    if spec.kind not in ("cv", "ensemble"):
        raise _bad(f"a {spec.kind} job names a CV scheme")
    from factory.errors import ConfigError
    from factory.training.cv_schemes import CvScheme

    try:
        CvScheme.from_spec(spec.cv, spec.folds)
    except (ConfigError, TypeError) as exc:
        raise _bad(str(exc).splitlines()[0][:200]) from exc


def _check_params(params: object) -> None:
    if not isinstance(params, dict) or len(params) > 100:
        raise _bad("params must be an object of at most 100 entries")
    for key, value in params.items():
        if not (isinstance(key, str) and isinstance(value, str)):
            raise _bad(f"param {str(key)[:80]!r} must map a name to a string")
        if not key or len(key) > MAX_TEXT or len(value) > MAX_TEXT:
            raise _bad(f"param {key[:80]!r} is empty or too long")


def _check_dataset(spec: JobSpec) -> None:
    dataset = spec.dataset
    if not isinstance(dataset, dict) or frozenset(dataset) not in DATASET_SHAPES:
        keys = sorted(dataset)[:10] if isinstance(dataset, dict) else type(dataset).__name__
        raise _bad(f"dataset {keys} is not one of {[sorted(s) for s in DATASET_SHAPES]}")
    if "raw_path" in dataset:
        if spec.kind != "data":
            raise _bad(f"a {spec.kind} job names a raw file")
        relative_parts(dataset["raw_path"], "raw_path")
        if not isinstance(dataset["raw_sha256"], str) or not SHA256.fullmatch(
            dataset["raw_sha256"]
        ):
            raise _bad("raw_sha256 is not a sha256")
        _check_config(spec.symbol, dataset["config"])
    if "dataset_dir" in dataset:
        relative_parts(dataset["dataset_dir"], "dataset_dir")
    if "dataset_id" in dataset:
        plain_name(dataset["dataset_id"], "dataset_id")
    if "from_job" in dataset and not (
        isinstance(dataset["from_job"], str) and JOB_ID.fullmatch(dataset["from_job"])
    ):
        raise _bad(f"from_job {str(dataset['from_job'])[:80]!r} is not a job id")


def _check_config(symbol: str, config: object) -> None:
    """A data job's dataset config, checked as `factory data` checks it."""
    from factory.data.config import DatasetConfig
    from factory.errors import ConfigError

    if not isinstance(config, dict):
        raise _bad("dataset config must be an object")
    try:
        parsed = DatasetConfig.from_dict(config)
    except (ConfigError, TypeError, ValueError) as exc:
        raise _bad(f"dataset config: {str(exc).splitlines()[0][:200]}") from exc
    plain_symbol(parsed.symbol, "dataset config symbol")
    if parsed.symbol != symbol:
        raise _bad(f"dataset config symbol {parsed.symbol!r} is not the spec's {symbol!r}")
