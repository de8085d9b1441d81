"""Every real file in ../shared/data/real ingests and builds a dataset (skipped without it)."""

from __future__ import annotations

import pytest

from factory.data.config import DatasetConfig
from factory.data.dataset import build_dataset
from factory.data.ingest import read_bars
from tests.conftest import REAL_DATA_DIR, real_data_dir

FILES = {
    "ES_1m_2023-03-08_2023-03-23_noheader.csv": "ES",
    "ES_1m_2023-09-24_2023-10-09.csv": "ES",
    "ES_1m_2025-04-20_2025-05-05.csv": "ES",
    "ES_1m_2026-01-25_2026-02-09.csv": "ES",
    "MES_1m_2023-11-26_2023-12-11.csv": "MES",
    "XAUUSD_1m_2017_histdata.csv.gz": "MGC",  # spot gold stands in for MGC
}
TICK = {"ES": 0.25, "MES": 0.25, "MGC": 0.10}


def test_the_list_covers_the_folder():
    folder = real_data_dir()
    present = {p.name for p in folder.iterdir() if p.name != "README.md"}
    assert present == set(FILES), "a real file was added or removed: update FILES"


@pytest.mark.parametrize("name", sorted(FILES))
def test_real_file_builds_a_dataset(name, tmp_path):
    path = real_data_dir() / name
    symbol = FILES[name]
    bars, info = read_bars(path, "America/New_York")
    assert len(bars) > 10_000 and info["tz_guess"] == "America/New_York"
    config = DatasetConfig(symbol=symbol, tick_size=TICK[symbol], tz="America/New_York")
    result = build_dataset(path, config, tmp_path)
    m = result.manifest
    assert m.rows["train"] > 0 and m.rows["val"] > 0 and m.rows["test"] > 0
    assert m.validation["out_of_session_dropped"] < 0.02 * m.rows["raw"]
    for counts in m.label_counts.values():
        assert counts["-1"] > 0 and counts["1"] > 0
    if symbol == "MGC":
        assert m.validation["zero_volume_throughout"]


def test_real_data_path_is_outside_the_repo():
    assert "shared" in REAL_DATA_DIR.parts
