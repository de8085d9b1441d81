"""Phases 1-5 end to end through `build_dataset` and the `factory data` command."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from factory.data.config import DatasetConfig
from factory.data.dataset import build_dataset
from factory.data.scaling import Scaler
from tests.conftest import REPO_ROOT, random_bars

N_BARS = 12_000


@pytest.fixture(scope="module")
def raw_file(tmp_path_factory) -> Path:
    # a Monday 23:00 UTC start: mostly inside Globex hours when read as UTC
    bars = random_bars(N_BARS, seed=11, start="2024-01-08 23:00")
    path = tmp_path_factory.mktemp("raw") / "MES_1m.parquet"
    bars.to_parquet(path)
    return path


@pytest.fixture(scope="module")
def built(raw_file, tmp_path_factory):
    home = tmp_path_factory.mktemp("home")
    config = DatasetConfig(symbol="MES", tick_size=0.25, horizons=(5, 10))
    return build_dataset(raw_file, config, home), config, home


def test_dataset_folder_holds_the_contract(built):
    result, config, _ = built
    d = result.dataset_dir
    assert d.parent.name == "MES" and d.name == result.dataset_id
    for name in (
        "features.parquet",
        "labels.parquet",
        "bars.parquet",
        "scaler.json",
        "splits.json",
        "manifest.json",
    ):
        assert (d / name).is_file(), name
    feats = pd.read_parquet(d / "features.parquet")
    labels = pd.read_parquet(d / "labels.parquet")
    assert feats.index.equals(labels.index) and str(feats.index.tz) == "UTC"
    assert feats.shape[1] >= 60 and (feats.dtypes == np.float32).all()
    for h in config.horizons:
        assert {f"label_h{h}", f"t1_h{h}", f"ret_h{h}"} <= set(labels.columns)
    m = result.manifest
    assert m.raw["sha256"] and m.config["horizons"] == [5, 10] and m.horizons == (5, 10)
    assert m.code_version and m.validation["rows_in"] == N_BARS
    assert set(m.seconds) >= {"ingest", "features", "labels", "total"}
    assert m.label_counts["5"]["1"] > 0 and m.label_counts["5"]["-1"] > 0
    assert m.rows["train"] > m.rows["val"] > 0 and m.rows["test"] > 0


def test_usable_rows_have_finite_features_and_windows(built):
    result, config, _ = built
    feats = pd.read_parquet(result.dataset_dir / "features.parquet").to_numpy()
    labels = pd.read_parquet(result.dataset_dir / "labels.parquet")
    usable = labels["usable"].to_numpy()
    first = int(np.flatnonzero(usable)[0])
    assert np.isfinite(feats[first - config.lookback_bars + 1 :]).all()
    assert (labels["split"].to_numpy()[~usable] == -1).all()


def test_train_labels_end_before_val_and_test_with_embargo(built):
    result, config, _ = built
    labels = pd.read_parquet(result.dataset_dir / "labels.parquet")
    embargo = pd.Timedelta(minutes=config.effective_embargo_min)
    split = labels["split"].to_numpy()
    for earlier, later in ((0, 1), (1, 2), (0, 2)):
        later_start = labels.index[split == later].min()
        rows = labels[split == earlier]
        for h in config.horizons:
            assert (rows[f"t1_h{h}"] < later_start).all()
        assert (rows.index <= later_start - embargo).all()


def test_scaler_is_fit_on_train_rows_only(built):
    result, _, _ = built
    feats = pd.read_parquet(result.dataset_dir / "features.parquet")
    labels = pd.read_parquet(result.dataset_dir / "labels.parquet")
    scaler = Scaler.from_dict(json.loads((result.dataset_dir / "scaler.json").read_text()))
    train = feats[labels["split"].to_numpy() == 0].to_numpy(dtype=np.float64)
    np.testing.assert_allclose(scaler.mean, train.mean(axis=0), rtol=1e-6, atol=1e-9)


def test_second_build_finds_the_cache(built, raw_file):
    result, config, home = built
    stamp = (result.dataset_dir / "manifest.json").stat().st_mtime_ns
    again = build_dataset(raw_file, config, home)
    assert again.cached and again.dataset_id == result.dataset_id
    assert (result.dataset_dir / "manifest.json").stat().st_mtime_ns == stamp


def test_another_config_is_another_dataset(built, raw_file):
    result, _config, home = built
    other = DatasetConfig(symbol="MES", tick_size=0.25, horizons=(5,))
    assert build_dataset(raw_file, other, home).dataset_id != result.dataset_id


def _factory(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "submitter.cli", *args],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


def test_cli_json_then_cached(raw_file, tmp_path):
    args = (
        "data",
        "--raw",
        str(raw_file),
        "--symbol",
        "MES",
        "--horizons",
        "5",
        "--home",
        str(tmp_path),
        "--json",
    )
    first = _factory(*args)
    assert first.returncode == 0, first.stderr
    out = json.loads(first.stdout)
    assert {"dataset_dir", "dataset_id", "rows", "n_features", "label_counts", "seconds"} <= set(
        out
    )
    assert not out["cached"] and Path(out["dataset_dir"]).is_dir()
    second = _factory(*args[:-1])
    assert second.returncode == 0 and "found cached dataset" in second.stdout
    assert "features" in second.stderr or second.stderr == ""  # progress goes to stderr


def _files_under(path: Path) -> list[Path]:
    return [p for p in path.rglob("*") if p.is_file()] if path.exists() else []


BAD_CSV = {
    "missing_column": (
        "timestamp,open,high,low,volume\n2024-01-08 09:30:00,1,2,0.5,3\n",
        "missing column",
    ),
    "no_rows": ("timestamp,open,high,low,close,volume\n", "no rows"),
    "non_numeric": (
        "timestamp,open,high,low,close,volume\n2024-01-08 23:30:00,1,2,0.5,x1,3\n",
        "non-numeric prices in column 'close'",
    ),
}


@pytest.mark.parametrize("case", sorted(BAD_CSV))
def test_cli_refuses_bad_input_in_one_line_and_writes_nothing(tmp_path, case):
    content, message = BAD_CSV[case]
    raw = tmp_path / "bad.csv"
    raw.write_text(content)
    home = tmp_path / "home"
    proc = _factory("data", "--raw", str(raw), "--symbol", "MES", "--home", str(home))
    assert proc.returncode == 2
    errors = [line for line in proc.stderr.splitlines() if line.startswith("error:")]
    assert "Traceback" not in proc.stderr and len(errors) == 1  # progress lines may precede it
    assert message in errors[0] and "fix:" in errors[0] and "bad.csv" in errors[0]
    assert _files_under(home) == []


def test_cli_refuses_too_few_bars(tmp_path):
    raw = tmp_path / "short.parquet"
    random_bars(500, start="2024-01-08 23:00").to_parquet(raw)
    proc = _factory("data", "--raw", str(raw), "--symbol", "MES", "--home", str(tmp_path / "h"))
    assert proc.returncode == 2 and "too few bars" in proc.stderr
    assert _files_under(tmp_path / "h") == []


def test_cli_refuses_unknown_symbol_and_unwritable_home(raw_file, tmp_path):
    proc = _factory("data", "--raw", str(raw_file), "--symbol", "ZZZ", "--home", str(tmp_path))
    assert proc.returncode == 2 and "--tick-size" in proc.stderr
    blocker = tmp_path / "a_file"
    blocker.write_text("not a folder")
    proc = _factory(
        "data", "--raw", str(raw_file), "--symbol", "MES", "--home", str(blocker / "home")
    )
    assert proc.returncode == 2 and "cannot write" in proc.stderr and "--home" in proc.stderr


def test_cli_help_lists_data():
    proc = _factory("--help")
    assert proc.returncode == 0 and "data" in proc.stdout


def test_costs_in_ticks_come_from_the_symbol_spec(built):
    result, config, _ = built
    labels = pd.read_parquet(result.dataset_dir / "labels.parquet")
    bars = pd.read_parquet(result.dataset_dir / "bars.parquet")
    expected = 2 * config.cost_ticks_per_side * 0.25 / bars["close"]
    np.testing.assert_allclose(labels["cost_ret"], expected)
    assert result.manifest.costs["tick_size"] == 0.25


def test_timeframe_sets_the_decision_bar_and_horizons_count_its_bars(raw_file, tmp_path):
    config = DatasetConfig(symbol="MES", tick_size=0.25, timeframe="5min", horizons=(3,))
    result = build_dataset(raw_file, config, tmp_path)
    bars = pd.read_parquet(result.dataset_dir / "bars.parquet")
    labels = pd.read_parquet(result.dataset_dir / "labels.parquet")
    assert (bars.index.minute % 5 == 0).all() and len(bars) < N_BARS / 4
    vertical = np.flatnonzero(labels["barrier_h3"].to_numpy() == 0)
    assert len(vertical) > 0
    i = vertical[len(vertical) // 2]
    assert labels["t1_h3"].iloc[i] == labels.index[i + 3]  # three decision bars later


def test_cli_synthetic_bars(tmp_path):
    proc = _factory(
        "data",
        "--synthetic",
        "--symbol",
        "MES",
        "--days",
        "5",
        "--horizons",
        "5",
        "--home",
        str(tmp_path),
        "--json",
    )
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout)
    assert out["rows"] > 5000 and (tmp_path / "data" / "raw").is_dir()
