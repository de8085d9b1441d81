"""Vendor zip archives as --raw (issue 12, point 8): a zip of one instrument's CSV files
(HistData's layout) is read directly, in time order; anything else names the zip. And a
folder given as --raw says it is a folder (point 9)."""

from __future__ import annotations

import gzip
import zipfile
from pathlib import Path

import pandas as pd
import pytest

from factory.data.archive import read_raw
from factory.data.config import DatasetConfig
from factory.data.dataset import build_dataset
from factory.data.ingest import read_bars
from factory.errors import DataError
from submitter.cli import main
from tests.conftest import REPO_ROOT

GOLD = REPO_ROOT.parent / "shared" / "data" / "real" / "XAUUSD_1m_2017_histdata.csv.gz"
STATUS = "HistData.com (c) 2017\nFile: DAT_ASCII_XAUUSD_M1_2017.csv\nStatus: OK\n"
pytestmark = pytest.mark.skipif(not GOLD.is_file(), reason="no shared real data")


@pytest.fixture(scope="module")
def gold_months() -> dict[str, str]:
    """The gold file's first three months, as HistData's `;` lines, by month."""
    months: dict[str, list[str]] = {}
    with gzip.open(GOLD, "rt") as fh:
        for line in fh:
            month = line[:6]
            if month > "201703":
                break
            months.setdefault(month, []).append(line)
    return {m: "".join(lines) for m, lines in months.items()}


def make_zip(path: Path, members: dict[str, str | bytes]) -> Path:
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, text in members.items():
            zf.writestr(name, text)
    return path


def test_a_histdata_zip_is_read_like_its_csv(gold_months, tmp_path):
    january = gold_months["201701"]
    (tmp_path / "jan.csv").write_text(january)
    archive = make_zip(
        tmp_path / "HISTDATA_COM_ASCII_XAUUSD_M1_201701.zip",
        {"DAT_ASCII_XAUUSD_M1_201701.csv": january, "DAT_ASCII_XAUUSD_M1_201701.txt": STATUS},
    )
    bars, info = read_raw(archive, "America/New_York")
    direct, _ = read_bars(tmp_path / "jan.csv", "America/New_York")
    pd.testing.assert_frame_equal(bars, direct)
    assert info["format"] == "zip" and info["raw_rows"] == len(direct)
    assert info["members"] == ["DAT_ASCII_XAUUSD_M1_201701.csv"]


def test_several_csvs_are_concatenated_in_time_order(gold_months, tmp_path):
    whole = "".join(gold_months[m] for m in ("201701", "201702", "201703"))
    (tmp_path / "q1.csv").write_text(whole)
    members = {f"DAT_ASCII_XAUUSD_M1_{m}.csv": gold_months[m] for m in ("201703", "201701")}
    members["notes/readme.txt"] = STATUS
    members["DAT_ASCII_XAUUSD_M1_201702.csv"] = gold_months["201702"]  # zip order: 3, 1, 2
    bars, info = read_raw(make_zip(tmp_path / "q1.zip", members), "America/New_York")
    direct, _ = read_bars(tmp_path / "q1.csv", "America/New_York")
    pd.testing.assert_frame_equal(bars, direct)
    assert bars.index.is_monotonic_increasing
    assert [m[-10:-4] for m in info["members"]] == ["201701", "201702", "201703"]


def test_a_gzipped_csv_in_a_zip_is_read(gold_months, tmp_path):
    january = gold_months["201701"]
    (tmp_path / "jan.csv").write_text(january)
    archive = make_zip(tmp_path / "v.zip", {"jan.csv.gz": gzip.compress(january.encode())})
    bars, _ = read_raw(archive, "America/New_York")
    pd.testing.assert_frame_equal(bars, read_bars(tmp_path / "jan.csv", "America/New_York")[0])


def test_factory_data_builds_a_dataset_from_a_zip(gold_months, tmp_path):
    archive = make_zip(
        tmp_path / "HISTDATA_COM_ASCII_XAUUSD_M1_2017.zip",
        {"DAT_ASCII_XAUUSD_M1_201701.csv": gold_months["201701"], "status.txt": STATUS},
    )
    config = DatasetConfig(
        symbol="MGC", tick_size=0.1, tick_value_usd=1.0, tz="America/New_York", horizons=(5,)
    )
    result = build_dataset(archive, config, tmp_path / "home")
    assert result.manifest.ingest["format"] == "zip"
    assert result.manifest.rows["decision"] > 20_000


@pytest.mark.parametrize(
    ("members", "problem"),
    [
        ({"bars.xlsx": b"x", "bars.csv": "a,b\n"}, "holds 'bars.xlsx', which is not a CSV"),
        ({"readme.txt": STATUS}, "the zip holds no CSV file"),
        ({"inner.zip": b"PK"}, "holds 'inner.zip'"),
    ],
)
def test_anything_else_in_a_zip_names_the_zip(members, problem, tmp_path, capsys):
    archive = make_zip(tmp_path / "vendor.zip", members)
    argv = ["data", "--raw", str(archive), "--symbol", "MES", "--home", str(tmp_path / "h")]
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and err.startswith(f"error: {archive}: ")
    assert problem in err and "fix: give a zip that holds only the CSV file(s)" in err


def test_two_instruments_in_one_zip_are_refused(gold_months, tmp_path):
    january = gold_months["201701"]
    silver = "".join(  # the same stamps at a silver-like price level
        ";".join([f[0]] + [f"{float(v) / 70:.5f}" for v in f[1:5]] + [f[5]])
        for f in (line.split(";") for line in january.splitlines(keepends=True))
    )
    archive = make_zip(tmp_path / "mixed.zip", {"gold.csv": january, "silver.csv": silver + "\n"})
    with pytest.raises(DataError, match=r"mixed\.zip: 'silver\.csv' and 'gold\.csv' look like"):
        read_raw(archive, "America/New_York")


def test_a_bad_csv_in_a_zip_names_the_zip_and_the_member(tmp_path):
    archive = make_zip(tmp_path / "v.zip", {"bars.csv": "just one field\n"})
    with pytest.raises(DataError, match=r"v\.zip: bars\.csv: no column separator"):
        read_raw(archive)


def test_a_damaged_zip_names_the_zip(tmp_path):
    archive = tmp_path / "cut.zip"
    archive.write_bytes(b"PK\x03\x04 not really a zip")
    with pytest.raises(DataError, match=r"cut\.zip: is not a readable zip archive"):
        read_raw(archive)


def test_a_directory_as_raw_says_it_is_a_directory(tmp_path, capsys):
    argv = ["data", "--raw", str(tmp_path), "--symbol", "MES", "--home", str(tmp_path / "h")]
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert err == (
        f"error: {tmp_path}: is a directory, not a file of bars; fix: pass one file "
        "inside it: a CSV, a parquet or a zip of CSV files"
    )
