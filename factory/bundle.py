"""Bundles: a fitted model (or an ensemble of them) in one folder, checksummed.

A model bundle holds the model's own files (factory.models: its config with the
feature list, weights), RESULT_FILE (the train job's result), DATASET_FILE (what
inference needs of the dataset: its config, scaler, feature list and costs) and
BUNDLE_FILE: {model, kind, horizon, dataset_id}, `files`, the sha256 and size of
every other file by relative path, and `content_sha256`, the bundle's content identity
(every file but the run's record, RESULT_FILE: equal for an uninterrupted and a resumed
run, whose model files are written as canonical bytes). An ensemble bundle holds
ENSEMBLE_FILE (method, members, horizon, dataset_id, the fitted meta-learner), a copy
of every member's bundle under MEMBERS_DIR/<name>/, RESULT_FILE and DATASET_FILE, and
a BUNDLE_FILE that also lists its members (and checksums the members' files too).

`save_bundle` and `save_ensemble_bundle` write a bundle under a temporary name and
rename it into place; `load_bundle` verifies every checksum first and refuses a
bundle whose files are missing or differ by one byte, with a one-line error naming
the file. The fold folder of a cv job (factory.training.cv) uses RESULT_FILE too.
"""

from __future__ import annotations

import hashlib
import json
import shutil
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING, Any

from factory.data.manifest import SCALER_FILE, DatasetManifest
from factory.errors import FactoryError
from factory.files import FileEntry, atomic_dir, file_entries

if TYPE_CHECKING:
    import numpy as np

    from factory.models.base import Model
    from factory.training.training_data import TrainingData

BUNDLE_FILE = "bundle.json"
DATASET_FILE = "dataset.json"
RESULT_FILE = "result.json"
ENSEMBLE_FILE = "ensemble.json"
MEMBERS_DIR = "members"
PROBA_COLUMNS = ["p_down", "p_flat", "p_up"]  # class order of every probability array
ENSEMBLE = "ensemble"
CONTENT_KEY = "content_sha256"  # BUNDLE_FILE's content identity (content_sha256 below)
RUN_RECORDS = (RESULT_FILE, BUNDLE_FILE)  # files that record a run, not what it learned


@dataclass
class Bundle:
    """A verified bundle: one model, or an ensemble of member models and a meta-learner."""

    directory: Path
    meta: dict[str, Any]  # bundle.json
    dataset: dict[str, Any] | None  # dataset.json: config, scaler, costs, features
    model: Any = None  # factory.models.base.Model (single-model bundles)
    members: dict[str, Any] = field(default_factory=dict)  # ensembles: name -> Model
    meta_learner: Any = None

    @property
    def kind(self) -> str:
        return self.meta.get("kind", "")

    @property
    def feature_names(self) -> list[str]:
        first = self.model if self.model is not None else next(iter(self.members.values()))
        return list(first.feature_names_in_)

    def predict_proba(self, data: TrainingData, split: str) -> np.ndarray:
        """(n, 3) probabilities of `split` of `data` (columns as PROBA_COLUMNS)."""
        if self.model is not None:
            return self.model.predict_proba(data, split)
        probas = [m.predict_proba(data, split) for m in self.members.values()]
        return self.meta_learner.predict_proba(probas)


def dataset_info(dataset_dir: str | Path) -> dict[str, Any]:
    """What a bundle keeps of its dataset so that it can predict on raw bars alone: the
    dataset config (feature settings, timezone), its scaler, feature list and costs."""
    directory = Path(dataset_dir)
    manifest = DatasetManifest.load(directory)
    return {
        "dataset_id": manifest.dataset_id,
        "config": manifest.config,
        "costs": manifest.costs,
        "feature_columns": list(manifest.feature_columns),
        "scaler": json.loads((directory / SCALER_FILE).read_text()),
    }


def _finish(tmp: Path, meta: dict[str, Any], result: dict[str, Any], dataset_dir) -> None:
    """RESULT_FILE, DATASET_FILE (when `dataset_dir` is known) and last BUNDLE_FILE: `meta`
    plus the sha256 and size of every file under `tmp` (recursive, by relative path)."""
    (tmp / RESULT_FILE).write_text(json.dumps(result, indent=1))
    if dataset_dir is not None:
        (tmp / DATASET_FILE).write_text(json.dumps(dataset_info(dataset_dir), indent=1))
    entries = file_entries(tmp)
    files = {name: entry.to_dict() for name, entry in entries.items()}
    meta = meta | {CONTENT_KEY: content_sha256(entries), "files": files}
    (tmp / BUNDLE_FILE).write_text(json.dumps(meta, indent=1))


def content_sha256(files: dict[str, FileEntry]) -> str:
    """The bundle's content identity: the sha256 of every file's path and sha256 but the
    run records (RESULT_FILE: seconds taken, resumed or not, checkpoint steps; and the
    members' BUNDLE_FILEs, which list them). Model files are written as canonical bytes,
    so an uninterrupted run and a killed-and-resumed one get the same identity."""
    kept = {
        name: entry.sha256
        for name, entry in files.items()
        if PurePosixPath(name).name not in RUN_RECORDS
    }
    return hashlib.sha256(json.dumps(kept, sort_keys=True).encode()).hexdigest()


def save_bundle(
    model: Model,
    result: dict[str, Any],
    directory: str | Path,
    dataset_dir: str | Path | None = None,
) -> Path:
    """Model files + config (feature list included) + result + the dataset's config and
    scaler (from `dataset_dir`, else the result's) + checksums, written under a
    temporary name and renamed into `directory` (replacing an older bundle there)."""
    with atomic_dir(directory) as tmp:
        model.save(tmp)
        meta = {"model": model.name, "kind": model.kind, "horizon": result.get("horizon")}
        meta |= {"dataset_id": result.get("dataset_id")}
        _finish(tmp, meta, result, dataset_dir or result.get("dataset_dir"))
    return Path(directory)


def save_ensemble_bundle(
    result: dict[str, Any],
    member_dirs: dict[str, Path],
    directory: str | Path,
    dataset_dir: str | Path | None = None,
) -> Path:
    """ensemble.json (method, members, meta-learner) + the member bundles under
    members/<name>/ + result + dataset info (from `dataset_dir`, else the result's) +
    checksums of every file, atomically."""
    dataset_dir = dataset_dir or result["dataset_dir"]
    with atomic_dir(directory) as tmp:
        for name, src in member_dirs.items():
            shutil.copytree(src, tmp / MEMBERS_DIR / name)
        spec = {k: result[k] for k in ("method", "members", "horizon", "dataset_id", "meta")}
        (tmp / ENSEMBLE_FILE).write_text(json.dumps(spec, indent=1))
        meta = {"model": ENSEMBLE, "kind": ENSEMBLE, "horizon": result["horizon"]}
        meta |= {"dataset_id": result["dataset_id"], "members": result["members"]}
        _finish(tmp, meta, result, dataset_dir)
    return Path(directory)


def _read_meta(directory: Path) -> tuple[dict[str, Any], dict[str, FileEntry]]:
    """BUNDLE_FILE of `directory` and its file entries (an untrusted file: checked)."""
    path = directory / BUNDLE_FILE
    if not path.is_file():
        raise FactoryError(
            f"{directory}: not a model bundle (no {BUNDLE_FILE}); fix: pass a folder written "
            "by a train or ensemble job"
        )
    try:
        meta = json.loads(path.read_text())
        files = {name: FileEntry.from_dict(info, name) for name, info in meta["files"].items()}
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        raise FactoryError(f"{path}: unreadable bundle manifest ({exc}); fix: retrain") from exc
    return meta, files


def verify_bundle(directory: str | Path) -> dict[str, Any]:
    """bundle.json of `directory` once every file it lists has its recorded sha256."""
    directory = Path(directory)
    meta, files = _read_meta(directory)
    for name, entry in sorted(files.items()):
        file = directory / name
        if not file.is_file():
            raise FactoryError(f"bundle {directory}: file {name} is missing; fix: copy it again")
        if not entry.matches(file):
            raise FactoryError(
                f"bundle {directory}: file {name} changed since the bundle was written "
                "(sha256 mismatch); refusing to load it; fix: restore or retrain the bundle"
            )
    if CONTENT_KEY in meta and meta[CONTENT_KEY] != content_sha256(files):
        raise FactoryError(
            f"bundle {directory}: its {CONTENT_KEY} does not match its files; refusing to "
            "load it; fix: restore or retrain the bundle"
        )
    return meta


def load_bundle(directory: str | Path) -> Bundle:
    """Verify every checksum, then load the model (or the ensemble's members)."""
    from factory.models import load_model

    directory = Path(directory)
    meta = verify_bundle(directory)
    dataset_path = directory / DATASET_FILE
    dataset = json.loads(dataset_path.read_text()) if dataset_path.is_file() else None
    bundle = Bundle(directory, meta, dataset)
    if meta.get("kind") != ENSEMBLE:
        bundle.model = load_model(directory)
        return bundle
    from factory.training.stacking import meta_from_dict  # sklearn: ensembles only

    spec = json.loads((directory / ENSEMBLE_FILE).read_text())
    bundle.members = {m: load_model(directory / MEMBERS_DIR / m) for m in spec["members"]}
    bundle.meta_learner = meta_from_dict(spec["meta"])
    return bundle
