"""Turn `submit`'s arguments into a plan: validate everything before anything is enqueued."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from factory.data.config import AUTO_TZ
from factory.data.intake import check_raw_path, store_dataset, store_raw
from factory.data.manifest import MANIFEST_FILE, DatasetManifest
from factory.data.symbols import symbol_spec
from factory.errors import ConfigError
from factory.layout import resolve_home
from factory.training.cv_schemes import CvScheme
from jobs.catalog import check_params, model_names
from jobs.plan import Plan, build_plan
from jobs.spec import JobSpec, SpecError
from jobs.versioning import code_version

DEFAULT_HORIZONS = (5, 10, 15, 20)


class SubmitError(Exception):
    user_facing = True


@dataclass(frozen=True)
class Submission:
    models: tuple[str, ...]
    symbol: str
    raw: Path | None = None
    dataset: Path | None = None
    tz: str = "UTC"
    horizon: int = 20
    folds: int = 5  # purged k-fold
    cv: bool = True
    scheme: str = "purged"  # the CV scheme: purged, walk-forward or cpcv
    steps: int = 5  # walk-forward
    window: str = "expanding"  # walk-forward: expanding or sliding
    groups: int = 6  # cpcv
    test_groups: int = 2  # cpcv
    ensemble: bool = True
    params: tuple[str, ...] = ()
    tick_size: float | None = None
    home: Path | None = None  # the storage root (default $FACTORY_HOME, else ./factory_home)


def parse_params(items: tuple[str, ...], models: tuple[str, ...]) -> dict[str, dict[str, str]]:
    """`[MODEL.]KEY=VALUE` items: a key without a model prefix applies to every model."""
    out: dict[str, dict[str, str]] = {m: {} for m in models}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise SubmitError(
                f"--param {item!r} is not KEY=VALUE; fix: e.g. --param "
                "profile=tiny or --param xgboost.max_depth=4"
            )
        model, dot, name = key.strip().rpartition(".")
        targets = [model] if dot else list(models)
        if dot and model not in models:
            raise SubmitError(
                f"--param {item!r} names model {model!r}, which is not in "
                f"--models {','.join(models)}"
            )
        for target in targets:
            out[target][name] = value.strip()
    return out


def _check_models(models: tuple[str, ...]) -> None:
    known = model_names()
    unknown = [m for m in models if m not in known]
    if not models or unknown:
        raise SubmitError(
            f"unknown model(s) {unknown or '(none given)'}; fix: choose from {', '.join(known)}"
        )
    if len(set(models)) != len(models):
        raise SubmitError(f"--models {','.join(models)} names a model twice")


def _data_spec(sub: Submission, code: str) -> JobSpec:
    """The data job; a raw file outside the storage root is copied under it (verified)
    last, once everything else checked out; the spec names it relative to the root."""
    raw = sub.raw.absolute()
    check_raw_path(raw)  # one line for a folder or a missing file, as `factory data` says
    try:
        if sub.tz != AUTO_TZ:  # auto: the data job detects it (factory.data.timezone)
            ZoneInfo(sub.tz)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise SubmitError(
            f"timezone {sub.tz!r} is unknown; fix: use an IANA name like America/New_York or auto"
        ) from exc
    spec = symbol_spec(sub.symbol, sub.tick_size)
    horizons = sorted(set(DEFAULT_HORIZONS) | {sub.horizon})
    config = {
        "symbol": spec.symbol,
        "tick_size": spec.tick_size,
        "tick_value_usd": spec.tick_value_usd,
        "tz": sub.tz,
        "horizons": horizons,
    }
    raw_path, raw_sha256 = store_raw(resolve_home(sub.home), raw)
    dataset = {"raw_path": raw_path, "raw_sha256": raw_sha256, "config": config}
    return JobSpec(kind="data", symbol=spec.symbol, code=code, dataset=dataset)


def _existing_dataset(sub: Submission) -> dict:
    """A dataset built already; one outside the storage root is copied under it
    (verified against its manifest); the spec names it relative to the root."""
    folder = sub.dataset.absolute()
    if not (folder / MANIFEST_FILE).is_file():
        raise SubmitError(
            f"{sub.dataset}: no {MANIFEST_FILE}; fix: pass a folder built by "
            "`factory data` (data/processed/<SYMBOL>/<id>)"
        )
    manifest = DatasetManifest.load(folder)
    if sub.horizon not in manifest.horizons:
        raise SubmitError(
            f"--horizon {sub.horizon} is not in the dataset's horizons {list(manifest.horizons)}"
        )
    rel = store_dataset(resolve_home(sub.home), folder)
    return {"dataset_dir": rel, "dataset_id": manifest.dataset_id}


def cv_scheme(sub: Submission) -> CvScheme:
    """The submission's CV scheme (factory.training.cv_schemes), or a SubmitError."""
    scheme = CvScheme(sub.scheme, sub.folds, sub.steps, sub.window, sub.groups, sub.test_groups)
    try:
        return scheme.check()
    except ConfigError as exc:
        raise SubmitError(str(exc)) from exc


def plan_for(sub: Submission) -> Plan:
    """The plan of a submission, or a SubmitError naming the first problem."""
    _check_models(sub.models)
    if (sub.raw is None) == (sub.dataset is None):
        raise SubmitError("give exactly one of --raw FILE or --dataset DIR")
    if sub.horizon < 1 or sub.folds < 2:
        raise SubmitError("--horizon must be >= 1 and --folds >= 2")
    scheme = cv_scheme(sub)
    params = parse_params(sub.params, sub.models)
    for model, values in params.items():
        check_params(model, values)
    code = code_version()
    try:
        if sub.raw is not None:
            data = _data_spec(sub, code)
            base, data_spec = data, data
        else:
            base = JobSpec(
                kind="data",
                symbol=symbol_spec(sub.symbol, sub.tick_size).symbol,
                code=code,
                dataset=_existing_dataset(sub),
            )
            data_spec = None
    except SpecError as exc:
        raise SubmitError(str(exc)) from exc
    plan = build_plan(
        base,
        list(sub.models),
        sub.horizon,
        params,
        folds=sub.folds,
        cv=sub.cv,
        ensemble=sub.ensemble,
        data_spec=data_spec,
        scheme=scheme,
    )
    return Plan(
        plan.entries,
        {"models": list(sub.models), "symbol": base.symbol, "horizon": sub.horizon, "code": code}
        | ({"cv": scheme.describe()} if sub.cv else {}),
    )
