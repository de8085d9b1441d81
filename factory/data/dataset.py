"""Phases 1-5 end to end: a raw bar file in, a cached, model-ready dataset folder out.

The folder `<home>/data/processed/<SYMBOL>/<dataset_id>/` is written under a
temporary name and renamed when complete, so a failure leaves nothing half-written.
`dataset_id` hashes the raw file's content, the config and the data code version:
building the same thing twice finds the first result.
"""

from __future__ import annotations

import json
import os
import shutil
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from factory import features as feature_lib
from factory.data.archive import read_raw
from factory.data.config import DatasetConfig, dataset_id_for
from factory.data.ingest import RawFile
from factory.data.intake import check_raw_path
from factory.data.labels import spans_long_gap, triple_barrier
from factory.data.manifest import (
    BARS_FILE,
    FEATURES_FILE,
    LABELS_FILE,
    MANIFEST_FILE,
    SCALER_FILE,
    SPLITS_FILE,
    DatasetManifest,
    ManifestError,
    load_verified,
)
from factory.data.notices import dataset_warnings
from factory.data.resample import resample_bars
from factory.data.scaling import Scaler
from factory.data.sessions import out_of_session_counts, session_frame
from factory.data.splits import time_split
from factory.data.validate import validate_bars
from factory.errors import DataError, FactoryError
from factory.features.indicators import atr
from factory.files import file_entries, replace_dir
from factory.layout import Layout, ensure_writable
from factory.progress import PhaseProgress
from factory.version import code_version, data_code_version

PHASES = ["ingest", "validate", "sessions", "features", "labels", "splits", "write"]
MIN_SPLIT_ROWS = 300  # decision rows beyond warm-up, lookback and horizon


@dataclass(frozen=True)
class DatasetResult:
    dataset_dir: Path
    dataset_id: str
    cached: bool
    manifest: DatasetManifest
    rebuilt_because: str | None = None  # a damaged cached copy was replaced (why)

    def summary(self) -> dict:
        m = self.manifest
        warnings = list(m.ingest.get("warnings", []))
        if self.rebuilt_because:
            warnings.insert(0, f"the cached dataset was damaged, rebuilt: {self.rebuilt_because}")
        return {
            "dataset_dir": str(self.dataset_dir),
            "dataset_id": self.dataset_id,
            "cached": self.cached,
            "rows": m.rows["decision"],
            "n_features": len(m.feature_columns),
            "label_counts": m.label_counts,
            "seconds": m.seconds["total"],
            "warnings": warnings,
        }


def build_dataset(
    raw_path: Path, config: DatasetConfig, home: Path, progress: PhaseProgress | None = None
) -> DatasetResult:
    """Build (or find cached) the dataset of `raw_path` under `home`."""
    raw_path = Path(raw_path)
    check_raw_path(raw_path)
    layout = Layout(home)
    ensure_writable(layout.processed_dir(config.symbol))
    raw = RawFile.of(raw_path)
    did = dataset_id_for(raw.sha256, config)
    final = layout.dataset_dir(config.symbol, did)
    damaged = None
    if final.exists():  # a cache hit only once every checksum of its manifest matches
        damaged = cache_problem(final)
        if damaged is None:
            return DatasetResult(final, did, True, DatasetManifest.load(final))
    progress = progress or PhaseProgress(PHASES, enabled=False)
    start = time.perf_counter()
    tables, sections = _run_phases(raw_path, config, progress)
    sections.update(dataset_id=did, raw=_raw_info(raw, raw_path, layout))
    with progress.phase("write"):
        _write_atomically(final, tables, sections, progress, start)
    return DatasetResult(final, did, False, DatasetManifest.load(final), damaged)


def cache_problem(directory: Path) -> str | None:
    """What is wrong with the dataset folder `directory` (None: every file checks out)."""
    try:
        load_verified(directory)
    except (DataError, ManifestError) as exc:
        return str(exc.problem) if isinstance(exc, DataError) else str(exc).split(";")[0]
    except FactoryError:  # no manifest.json
        return f"no {MANIFEST_FILE}"
    return None


def _raw_info(raw: RawFile, raw_path: Path, layout: Layout) -> dict:
    """What the manifest keeps of the raw file: its path only relative to the storage
    root (and only when it lies under it), never a path of one machine."""
    info = {"name": raw_path.name, "size_bytes": raw.size_bytes, "sha256": raw.sha256}
    rel = layout.within(raw_path)
    return info | ({"path": rel} if rel is not None else {})


@dataclass(frozen=True)
class FeatureFrames:
    """What phases 1-3 make of a raw file: clean 1-minute bars, decision bars, features."""

    bars: pd.DataFrame  # in-session, validated 1-minute bars
    decision: pd.DataFrame  # decision bars (OHLCV) at the config's timeframe
    features: pd.DataFrame  # one row per decision bar (index == decision.index)
    ingest_info: dict
    report: dict  # validation report, session report included


def build_feature_frames(
    raw_path: Path,
    config: DatasetConfig,
    progress: PhaseProgress | None = None,
    for_training: bool = True,
) -> FeatureFrames:
    """Phases 1-3 (ingest, validate, sessions, resample, features): the one feature path,
    used by the dataset pipeline and by inference (`for_training=False` skips the check
    that there are enough bars to train on)."""
    progress = progress or PhaseProgress(PHASES, enabled=False)
    source = str(raw_path)
    with progress.phase("ingest"):
        raw_bars, ingest_info = read_raw(Path(raw_path), config.tz)
    with progress.phase("validate"):
        bars, report = validate_bars(raw_bars, source)
        del raw_bars
    with progress.phase("sessions"):
        bars, session_report = _apply_sessions(bars, config, source)
        decision = resample_bars(bars, config.timeframe_min)
        sessions = session_frame(decision.index)
        if for_training:
            _check_enough_bars(len(decision), config, source)
    with progress.phase("features"):
        feats = feature_lib.build_features(bars, decision, config.timeframe_min, sessions)
    return FeatureFrames(bars, decision, feats, ingest_info, report | session_report)


def _run_phases(raw_path: Path, config: DatasetConfig, progress: PhaseProgress):
    frames = build_feature_frames(raw_path, config, progress)
    bars, decision, feats = frames.bars, frames.decision, frames.features
    ingest_info, report = frames.ingest_info, frames.report
    with progress.phase("labels"):
        d_atr = atr(
            decision["high"].to_numpy(),
            decision["low"].to_numpy(),
            decision["close"].to_numpy(),
            config.atr_window_bars,
        )
        labels = triple_barrier(
            decision, d_atr, config.horizons, config.barrier_up_atr, config.barrier_down_atr
        )
        labels["cost_ret"] = round_trip_cost_ret(decision["close"].to_numpy(), config)
    with progress.phase("splits"):
        usable = usable_rows(feats, config.lookback_bars)
        usable &= ~spans_long_gap(labels, config.max_horizon)
        t1 = labels[f"t1_h{config.max_horizon}"].to_numpy(dtype="datetime64[ns]")
        split = time_split(
            decision.index,
            usable,
            t1,
            config.train_frac,
            config.val_frac,
            pd.Timedelta(minutes=config.effective_embargo_min),
        )
        scaler = Scaler.fit(feats, split.split == 0)
        labels["split"] = split.split
        labels["usable"] = usable
    sections = {  # the manifest's fields but those of the write phase (DatasetManifest)
        "symbol": config.symbol,
        "config": config.to_dict(),
        "code_version": code_version(),
        "data_code_version": data_code_version(),
        "ingest": ingest_info | {"warnings": dataset_warnings(ingest_info, report, config)},
        "validation": report,
        "rows": {
            "raw": ingest_info["raw_rows"],
            "valid_1m": report["rows_out"],
            "in_session_1m": len(bars),
            "decision": len(decision),
            "usable": int(usable.sum()),
        }
        | split.counts,
        "split": split.to_dict(),
        "label_counts": _label_counts(labels, config, usable),
        "costs": {
            "tick_size": config.tick_size,
            "tick_value_usd": config.tick_value_usd,
            "cost_ticks_per_side": config.cost_ticks_per_side,
            "round_trip_usd": 2 * config.cost_ticks_per_side * config.tick_value_usd,
        },
        "feature_columns": list(feats.columns),
        "warmup_bars": feature_lib.warmup_bars(config.timeframe_min),
    }
    tables = {"features": feats, "labels": labels, "bars": decision, "scaler": scaler}
    return tables, sections


def round_trip_cost_ret(close: np.ndarray, config: DatasetConfig) -> np.ndarray:
    """Costs in ticks (both sides) as a fraction of the entry price at each bar's close."""
    return 2 * config.cost_ticks_per_side * config.tick_size / close


def _apply_sessions(bars: pd.DataFrame, config: DatasetConfig, source: str):
    frame = session_frame(bars.index)
    counts = out_of_session_counts(frame)
    inside = frame["in_session"].to_numpy()
    report = {"out_of_session": counts, "out_of_session_dropped": 0}
    if not config.drop_out_of_session:
        return bars, report
    if inside.mean() < 0.5:
        raise DataError(
            source,
            f"{(~inside).mean():.0%} of bars fall outside Globex hours when read as {config.tz}",
            "pass the timestamps' timezone, e.g. --tz America/New_York (or --tz auto)",
        )
    report["out_of_session_dropped"] = int((~inside).sum())
    return bars[inside], report


def _check_enough_bars(n_decision: int, config: DatasetConfig, source: str) -> None:
    need = (
        feature_lib.warmup_bars(config.timeframe_min)
        + config.lookback_bars
        + config.max_horizon
        + MIN_SPLIT_ROWS
    )
    if n_decision < need:
        raise DataError(
            source,
            f"too few bars: {n_decision} decision bars at {config.timeframe}, the longest window "
            f"needs {need} (warm-up + lookback {config.lookback_bars} + horizon "
            f"{config.max_horizon} + {MIN_SPLIT_ROWS})",
            "give more data, or a shorter --timeframe / --horizons",
        )


def usable_rows(feats: pd.DataFrame, lookback: int) -> np.ndarray:
    """Rows whose features and whole lookback window are finite (same rows for all models)."""
    bad = ~np.isfinite(feats.to_numpy()).all(axis=1)
    first_clean = int(np.flatnonzero(bad)[-1]) + 1 if bad.any() else 0
    usable = np.zeros(len(feats), dtype=bool)
    usable[first_clean + lookback - 1 :] = True
    return usable


def _label_counts(labels: pd.DataFrame, config: DatasetConfig, usable: np.ndarray) -> dict:
    out = {}
    for h in config.horizons:
        col = labels[f"label_h{h}"][usable]
        counts = col.value_counts(dropna=True)
        out[str(h)] = {str(k): int(counts.get(k, 0)) for k in (-1, 0, 1)}
        out[str(h)]["unlabelled"] = int(col.isna().sum())
    return out


def _write_atomically(
    final: Path, tables: dict, sections: dict, progress: PhaseProgress, start: float
) -> None:
    """The dataset's files and, last, its manifest, into a temporary sibling of `final`
    that is then renamed to `final`."""
    write_start = time.perf_counter()
    tmp = final.parent / f".tmp-{final.name}-{os.getpid()}"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    try:
        tables["features"].to_parquet(tmp / FEATURES_FILE)
        tables["labels"].to_parquet(tmp / LABELS_FILE)
        tables["bars"].to_parquet(tmp / BARS_FILE)
        (tmp / SCALER_FILE).write_text(json.dumps(tables["scaler"].to_dict()))
        (tmp / SPLITS_FILE).write_text(json.dumps(sections["split"], indent=2))
        files = file_entries(tmp)
        seconds = dict(progress.seconds)
        seconds["write"] = round(time.perf_counter() - write_start, 3)
        seconds["total"] = round(time.perf_counter() - start, 3)  # incl. fingerprint
        manifest = DatasetManifest(
            **sections,
            files=files,
            seconds=seconds,
            created_at=pd.Timestamp.now(tz="UTC").isoformat(),
        )
        text = json.dumps(manifest.to_dict(), indent=2, default=_json_default)
        (tmp / MANIFEST_FILE).write_text(text)
        if final.exists() and cache_problem(final) is None:  # a concurrent build won
            shutil.rmtree(tmp)
            return
        replace_dir(tmp, final)  # a damaged copy is replaced
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def _json_default(value):
    if isinstance(value, (np.integer,)):
        return int(value)
    if isinstance(value, (np.floating,)):
        return float(value)
    if isinstance(value, (np.bool_,)):
        return bool(value)
    if isinstance(value, (pd.Timestamp,)):
        return value.isoformat()
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")
