"""Issue 12, point 5: one extreme value (inf, 1e300, a spike that reverts) is dropped with
a count and a warning; a file of mostly bad prices is refused in one line."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from factory.data.config import DatasetConfig
from factory.data.dataset import build_dataset
from factory.data.validate import validate_bars
from factory.errors import DataError
from tests.conftest import random_bars, real_data_dir

ES_FILE = "ES_1m_2023-09-24_2023-10-09.csv"


def _raw(n: int = 400) -> pd.DataFrame:
    return random_bars(n, seed=5, gap_prob=0.0)


def _set(raw: pd.DataFrame, row: int, column: str, value: float) -> None:
    raw.iloc[row, raw.columns.get_loc(column)] = value


@pytest.mark.parametrize(
    ("column", "value", "count"),
    [
        ("high", 1e300, "absurd_price_rows_dropped"),
        ("close", np.inf, "non_finite_price_rows_dropped"),
        ("low", -np.inf, "non_finite_price_rows_dropped"),
        ("close", 1e-3, "absurd_price_rows_dropped"),
    ],
)
def test_one_extreme_value_is_dropped_with_a_warning(column, value, count):
    raw = _raw()
    _set(raw, 200, column, value)
    clean, report = validate_bars(raw, "x.csv")
    assert report[count] == 1
    assert len(clean) == len(raw) - 1 and raw.index[200] not in clean.index
    assert np.isfinite(clean.to_numpy()).all()
    assert any("dropped 1 bar(s) with bad prices" in w for w in report["warnings"])


def test_a_spike_that_reverts_is_dropped_and_a_lasting_jump_is_kept():
    raw = _raw()
    for col in ("open", "high", "low", "close"):
        raw.iloc[100:102, raw.columns.get_loc(col)] *= 1.6  # two minutes at +60 %, then back
        raw.iloc[300:, raw.columns.get_loc(col)] *= 1.8  # a lasting +80 % level shift
    clean, report = validate_bars(raw, "x.csv")
    assert report["absurd_price_rows_dropped"] == 2
    assert raw.index[300] in clean.index and raw.index[399] in clean.index


def test_mostly_bad_prices_are_refused_in_one_line():
    raw = _raw()
    raw.iloc[::2, raw.columns.get_loc("close")] = np.inf
    raw.iloc[1::4, raw.columns.get_loc("high")] = np.nan
    with pytest.raises(DataError) as err:
        validate_bars(raw, "x.csv")
    text = str(err.value)
    assert "rows have missing, infinite, non-positive or absurd prices" in text
    assert "fix: check the price columns" in text and "\n" not in text


def test_infinite_volume_is_set_to_zero():
    raw = _raw()
    _set(raw, 10, "volume", np.inf)
    clean, report = validate_bars(raw, "x.csv")
    assert report["infinite_volume_set_to_zero"] == 1 and clean["volume"].iloc[10] == 0


@pytest.fixture(scope="module")
def es_clean(tmp_path_factory):
    path = real_data_dir() / ES_FILE
    config = DatasetConfig(symbol="ES", tick_size=0.25, tz="America/New_York")
    return build_dataset(path, config, tmp_path_factory.mktemp("clean")), config


@pytest.mark.realdata
@pytest.mark.parametrize(("column", "value"), [("high", "1e300"), ("close", "inf")])
def test_a_corrupted_real_file_builds_as_the_clean_one(es_clean, column, value, tmp_path):
    clean, config = es_clean
    frame = pd.read_csv(real_data_dir() / ES_FILE, dtype=str)
    frame.loc[len(frame) // 2, column] = value
    path = tmp_path / "ES_bad.csv"
    frame.to_csv(path, index=False)
    result = build_dataset(path, config, tmp_path / "home")
    assert abs(result.manifest.rows["usable"] - clean.manifest.rows["usable"]) <= 25
    assert result.manifest.rows["train"] > 0 and result.manifest.rows["test"] > 0
    warnings = result.summary()["warnings"]
    assert any("dropped 1 bar(s) with bad prices" in w for w in warnings), warnings
