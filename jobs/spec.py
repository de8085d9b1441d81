"""Typed job specs: JSON only (never pickle), content-hashed ids, a fixed set of kinds."""

from __future__ import annotations

import dataclasses
import hashlib
import json
from dataclasses import dataclass, field
from typing import Any

KINDS = ("data", "train", "cv", "ensemble", "report")  # the one list: jobs.kinds runs each
ENTRY_POINT = "jobs.entry.run_job"  # the one callable a queued job may name


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
                {"from_job": <data job id>} for jobs that follow a data job; paths are
                relative to the storage root (factory.layout.resolve_in_home reads them)
    model       model registry name (train/cv), "" otherwise
    horizon     label horizon in decision bars (0 for data jobs)
    params      model hyperparameter overrides, as given (strings)
    fold        CV fold index (-1 when not a fold), folds = number of folds
    members     for an ensemble: the model names it stacks
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

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise SpecError(f"unknown job kind {self.kind!r}; the worker runs only {list(KINDS)}")
        object.__setattr__(self, "members", tuple(self.members))

    @property
    def job_id(self) -> str:
        digest = hashlib.sha256(self.to_json().encode()).hexdigest()[:20]
        label = self.model or self.kind
        suffix = f"-f{self.fold}" if self.fold >= 0 else ""
        return f"{self.kind}-{self.symbol.lower()}-{label}{suffix}-{digest}"

    def to_dict(self) -> dict[str, Any]:
        out = dataclasses.asdict(self)
        out["members"] = list(self.members)
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
            return cls(**data)
        except TypeError as exc:
            raise SpecError(f"bad job spec: {exc}") from exc

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
