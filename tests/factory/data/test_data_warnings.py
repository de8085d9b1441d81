"""Issue 12, point 7: each silent data problem is a warning line (and in `--json`), not
only a count in manifest.json; and no label spans a gap longer than a weekend."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest

from factory.data.anomalies import LONG_GAP
from factory.data.config import DatasetConfig
from factory.data.dataset import build_dataset
from factory.data.labels import BARRIER_GAP, triple_barrier
from factory.data.manifest import LABELS_FILE
from factory.data.synthetic import synthetic_bars, write_raw
from factory.data.validate import validate_bars
from tests.conftest import REPO_ROOT, real_data_dir

MES = {"symbol": "MES", "tick_size": 0.25, "tick_value_usd": 1.25, "horizons": (5, 20)}


@pytest.fixture(scope="module")
def bars() -> pd.DataFrame:
    return synthetic_bars("MES", days=24, seed=8, start="2024-01-08")


def _build(bars: pd.DataFrame, tmp_path, **config):
    path = write_raw(bars, tmp_path / "raw" / f"{config.get('symbol', 'MES')}_1m.parquet")
    result = build_dataset(path, DatasetConfig(**(MES | config)), tmp_path / "home")
    return result, result.summary()["warnings"]


def _with_hole(bars: pd.DataFrame) -> pd.DataFrame:
    """The bars with 9 calendar days cut out of the middle (as in the SPXUSD file)."""
    start = bars.index[len(bars) // 3]
    return bars[(bars.index < start) | (bars.index >= start + pd.Timedelta(days=9))]


def test_a_gap_longer_than_a_weekend_is_warned_of_and_spanned_by_no_label(bars, tmp_path):
    result, warnings = _build(_with_hole(bars), tmp_path)
    assert any("1 gap(s) longer than a weekend" in w for w in warnings), warnings
    labels = pd.read_parquet(result.dataset_dir / LABELS_FILE)
    used = labels[labels["usable"]]
    for h in (5, 20):
        decided = used[f"t1_h{h}"].notna()
        span = used.loc[decided, f"t1_h{h}"] - used.index[decided]
        assert span.max() < LONG_GAP, (h, span.max())
    across = labels["barrier_h20"] == BARRIER_GAP  # rows not decided before the gap
    assert 0 < across.sum() <= 20 and labels.loc[across, "label_h20"].isna().all()
    assert not labels.loc[labels["barrier_h20"] == BARRIER_GAP, "usable"].any()


def test_labels_before_a_gap_are_undefined_not_stretched():
    index = pd.DatetimeIndex(["2024-01-08 10:00", "2024-01-08 10:01"], tz="UTC")
    index = index.append(pd.date_range("2024-01-20 10:00", periods=4, freq="1min", tz="UTC"))
    close = np.array([100.0, 100.0, 100.0, 130.0, 100.0, 100.0])
    frame = pd.DataFrame({"open": close, "high": close, "low": close, "close": close}, index)
    out = triple_barrier(frame, np.full(6, 1.0), [3], 2.0, 2.0)
    assert out["barrier_h3"].tolist()[:2] == [BARRIER_GAP, BARRIER_GAP]
    assert out["label_h3"].isna().tolist()[:2] == [True, True]
    assert out["t1_h3"].iloc[:2].isna().all() and out["ret_h3"].iloc[:2].isna().all()
    assert out["label_h3"].iloc[2] == 1  # after the gap, labels are as before


def test_zero_volume_throughout_is_warned_of(bars, tmp_path):
    _, warnings = _build(bars.assign(volume=0.0), tmp_path)
    assert any("volume is zero in every bar" in w for w in warnings), warnings


def test_high_and_low_swapped_on_most_rows_is_warned_of(bars, tmp_path):
    swapped = bars.rename(columns={"high": "low", "low": "high"})
    _, warnings = _build(swapped, tmp_path)
    assert any("the high and low columns look exchanged" in w for w in warnings), warnings
    _, report = validate_bars(bars, "x")
    assert report["warnings"] == []


def test_an_unknown_symbol_without_costs_is_warned_of(bars, tmp_path):
    _, warnings = _build(bars, tmp_path, symbol="XYZ", tick_size=0.25, tick_value_usd=0.0)
    assert any("symbol 'XYZ' is unknown" in w and "--tick-value" in w for w in warnings)
    _, warnings = _build(bars, tmp_path / "known")
    assert warnings == []


def test_duplicates_of_overlapping_contracts_are_warned_of(bars):
    other = bars.iloc[: len(bars) // 2] + 12.5  # the next contract, 50 ticks apart
    raw = pd.concat([bars, other.drop(other.index[::7])])  # concatenated, overlapping
    clean, report = validate_bars(raw, "x")
    assert report["duplicate_timestamps"] == len(other) - len(other.index[::7])
    assert report["file_part_switches"] == 2 * len(other.index[::7])  # to the first and back
    assert any("duplicate timestamps" in w and "different prices" in w for w in report["warnings"])
    assert clean.index.is_unique


@pytest.mark.realdata
def test_real_file_of_concatenated_contracts_is_warned_of(tmp_path):
    frame = pd.read_csv(real_data_dir() / "ES_1m_2025-04-20_2025-05-05.csv", dtype=str)
    other = frame.iloc[3000:9000].copy()
    for col in ("open", "high", "low", "close"):
        other[col] = (other[col].astype(float) + 40.0).astype(str)  # the next contract
    path = tmp_path / "ES_concat.csv"
    pd.concat([frame, other]).to_csv(path, index=False)
    config = DatasetConfig(symbol="ES", tick_size=0.25, tz="America/New_York", horizons=(5,))
    result = build_dataset(path, config, tmp_path / "home")
    assert result.manifest.validation["duplicate_timestamps"] == 6000
    assert any("6,000 duplicate timestamps" in w for w in result.summary()["warnings"])


def test_cli_json_lists_the_warnings(bars, tmp_path):
    path = write_raw(bars.assign(volume=0.0), tmp_path / "MES_1m.parquet")
    args = ["data", "--raw", str(path), "--symbol", "MES", "--horizons", "5"]
    run = subprocess.run(
        [sys.executable, "-m", "submitter.cli", *args, "--home", str(tmp_path), "--json"],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert run.returncode == 0, run.stderr
    assert any("volume is zero in every bar" in w for w in json.loads(run.stdout)["warnings"])
