"""A dataset folder's manifest.json, typed: what `factory data` writes, every reader reads.

The folder `data/processed/<SYMBOL>/<dataset_id>/` holds the files named here and a
manifest that records the dataset's config, costs, feature list, row counts, reports
and the sha256 of every other file. A manifest comes from a file on shared storage (a
copied folder, a Drive sync): `DatasetManifest.from_dict` checks every field it holds
and refuses anything else with a one-line error naming the file. Keys it does not know
are ignored (a manifest of newer code still reads). `to_dict` gives the keys in the
order `factory data` has always written them. Light imports only: the submitter
reads manifests.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from factory.errors import DataError, FactoryError
from factory.files import FileEntry

MANIFEST_FILE = "manifest.json"
FEATURES_FILE = "features.parquet"
LABELS_FILE = "labels.parquet"
BARS_FILE = "bars.parquet"
SCALER_FILE = "scaler.json"
SPLITS_FILE = "splits.json"
REBUILD_FIX = "run the same `factory data` command again to rebuild it"

_SECTIONS = ("ingest", "validation", "rows", "split", "label_counts", "costs", "raw", "seconds")
_STRINGS = ("symbol", "code_version", "data_code_version", "dataset_id", "created_at")
_COSTS = ("tick_size", "tick_value_usd", "cost_ticks_per_side")


class ManifestError(FactoryError):
    """A manifest.json that is not what `factory data` writes (untrusted file)."""


@dataclass(frozen=True)
class DatasetManifest:
    """The fields of manifest.json, in the order they are written."""

    symbol: str
    config: dict[str, Any]  # factory.data.config.DatasetConfig.to_dict()
    code_version: str
    data_code_version: str
    ingest: dict[str, Any]
    validation: dict[str, Any]
    rows: dict[str, Any]
    split: dict[str, Any]
    label_counts: dict[str, Any]
    costs: dict[str, Any]  # tick_size, tick_value_usd, cost_ticks_per_side, round_trip_usd
    feature_columns: tuple[str, ...]
    warmup_bars: int
    dataset_id: str
    raw: dict[str, Any]  # name, size_bytes, sha256 (and path, relative to the root)
    files: dict[str, FileEntry]  # every other file of the folder
    seconds: dict[str, Any]
    created_at: str

    @property
    def horizons(self) -> tuple[int, ...]:
        return tuple(int(h) for h in self.config["horizons"])

    @property
    def lookback_bars(self) -> int:
        return int(self.config["lookback_bars"])

    def to_dict(self) -> dict[str, Any]:
        """The JSON object of manifest.json (values as given: numpy scalars stay)."""
        out = {name: getattr(self, name) for name in self.__dataclass_fields__}
        out["feature_columns"] = list(self.feature_columns)
        out["files"] = {name: entry.to_dict() for name, entry in self.files.items()}
        return out

    @classmethod
    def from_dict(cls, data: Any, source: str = MANIFEST_FILE) -> DatasetManifest:
        """A manifest read from a file (untrusted): a ManifestError names what is wrong."""
        try:
            return cls(**_checked(data))
        except (TypeError, ValueError) as exc:
            raise ManifestError(
                f"{source}: not a dataset manifest ({exc}); fix: rebuild the dataset with "
                "`factory data`, or copy the folder again"
            ) from exc

    @classmethod
    def load(cls, directory: str | Path) -> DatasetManifest:
        """The manifest of dataset folder `directory`; a one-line error when it has none."""
        path = Path(directory) / MANIFEST_FILE
        if not path.is_file():
            raise FactoryError(
                f"{directory}: not a dataset folder (no {MANIFEST_FILE}); "
                "fix: pass the dataset_dir printed by `factory data`"
            )
        try:
            data = json.loads(path.read_text())
        except (ValueError, UnicodeDecodeError) as exc:
            raise ManifestError(
                f"{path}: not JSON ({exc}); fix: rebuild the dataset, or copy it again"
            ) from exc
        return cls.from_dict(data, str(path))

    def verify(self, directory: str | Path, fix: str = REBUILD_FIX) -> None:
        """Every file the manifest lists is in `directory` with its recorded size and
        sha256; else a DataError naming the first file that is missing or differs."""
        directory = Path(directory)
        for name, entry in sorted(self.files.items()):
            problem = file_problem(directory / name, entry)
            if problem:
                raise DataError(f"dataset {directory}", f"{name} {problem}", fix)


def file_problem(path: Path, entry: FileEntry) -> str | None:
    """Why the file at `path` is not the one `entry` records (None when it is)."""
    if not path.is_file():
        return "is missing"
    if path.stat().st_size != entry.bytes or not entry.matches(path):
        return "changed since the dataset was built (sha256 mismatch)"
    return None


def load_verified(directory: str | Path, fix: str = REBUILD_FIX) -> DatasetManifest:
    """The manifest of dataset folder `directory` once every file it lists checks out."""
    manifest = DatasetManifest.load(directory)
    manifest.verify(directory, fix)
    return manifest


def _checked(data: Any) -> dict[str, Any]:
    """The constructor arguments of a manifest from its JSON object, each checked."""
    if not isinstance(data, dict):
        raise TypeError(f"a JSON object expected, got {type(data).__name__}")
    out: dict[str, Any] = {}
    for name in _STRINGS:
        out[name] = _typed(data, name, str)
    for name in (*_SECTIONS, "config"):
        out[name] = _typed(data, name, dict)
    out["warmup_bars"] = _typed(data, "warmup_bars", int)
    columns = _typed(data, "feature_columns", list)
    if not all(isinstance(c, str) for c in columns):
        raise ValueError("feature_columns holds a non-string")
    out["feature_columns"] = tuple(columns)
    horizons = out["config"].get("horizons")
    if not isinstance(horizons, list) or not horizons or not all(_is_int(h) for h in horizons):
        raise ValueError(f"config.horizons {horizons!r} is not a list of integers")
    if not _is_int(out["config"].get("lookback_bars")):
        raise ValueError("config.lookback_bars is not an integer")
    for key in _COSTS:
        value = out["costs"].get(key)
        if not isinstance(value, (int, float)) or isinstance(value, bool):
            raise ValueError(f"costs.{key} {value!r} is not a number")
    out["files"] = _files(_typed(data, "files", dict))
    return out


def _files(files: dict[str, Any]) -> dict[str, FileEntry]:
    for name in files:
        if name in ("", ".", "..") or any(c in name for c in "/\\\0"):
            raise ValueError(f"file {name!r} is not a plain file name")
    return {name: FileEntry.from_dict(info, name) for name, info in files.items()}


def _typed(data: dict[str, Any], name: str, kind: type) -> Any:
    if name not in data:
        raise ValueError(f"no {name!r}")
    value = data[name]
    if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
        raise TypeError(f"{name} is {type(value).__name__}, not {kind.__name__}")
    return value


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)
