"""A cached dataset is trusted only while every file matches its manifest's sha256
(issue 12, point 6): `factory data` rebuilds a damaged cache, `factory train` refuses it
in one line, and a worker's local copy is copied again."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from factory.data.config import DatasetConfig
from factory.data.dataset import build_dataset
from factory.data.intake import copy_dataset_files
from factory.data.manifest import load_verified
from factory.data.synthetic import synthetic_bars, write_raw
from factory.errors import DataError
from factory.training.training_data import load_training_data
from jobs.datacache import local_dataset
from submitter.cli import main

CONFIG = DatasetConfig(symbol="MES", tick_size=0.25, tick_value_usd=1.25, horizons=(5,))


@pytest.fixture(scope="module")
def raw_file(tmp_path_factory) -> Path:
    home = tmp_path_factory.mktemp("raw")
    return write_raw(synthetic_bars("MES", days=6, seed=5), home / "MES_1m.parquet")


@pytest.fixture
def dataset(raw_file, tmp_path) -> Path:
    return build_dataset(raw_file, CONFIG, tmp_path).dataset_dir


def flip_one_byte(path: Path) -> None:
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0x01
    path.write_bytes(bytes(data))


def test_factory_data_json_says_a_damaged_cache_was_rebuilt(raw_file, dataset, tmp_path, capsys):
    flip_one_byte(dataset / "labels.parquet")
    argv = ["data", "--raw", str(raw_file), "--symbol", "MES", "--horizons", "5", "--json"]
    assert main([*argv, "--home", str(tmp_path)]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["cached"] is False and summary["dataset_dir"] == str(dataset)
    assert summary["warnings"][0] == (
        "the cached dataset was damaged, rebuilt: labels.parquet changed since the dataset "
        "was built (sha256 mismatch)"
    )
    load_verified(dataset)


def test_a_flipped_byte_is_not_a_cache_hit_and_is_rebuilt(raw_file, dataset, tmp_path):
    flip_one_byte(dataset / "features.parquet")
    again = build_dataset(raw_file, CONFIG, tmp_path)
    assert again.cached is False and again.dataset_dir == dataset
    assert "features.parquet changed" in again.rebuilt_because
    assert any("damaged" in w for w in again.summary()["warnings"])
    load_verified(dataset)  # every file checks out again
    assert build_dataset(raw_file, CONFIG, tmp_path).cached is True


@pytest.mark.parametrize("name", ["labels.parquet", "manifest.json"])
def test_a_deleted_file_is_rebuilt(name, raw_file, dataset, tmp_path):
    (dataset / name).unlink()
    again = build_dataset(raw_file, CONFIG, tmp_path)
    assert again.cached is False and (dataset / name).is_file()
    load_verified(dataset)


def test_training_refuses_a_changed_byte(dataset):
    flip_one_byte(dataset / "features.parquet")
    with pytest.raises(DataError, match=r"features\.parquet changed since the dataset was built"):
        load_training_data(dataset)


@pytest.mark.parametrize(
    ("damage", "message"),
    [
        (lambda d: (d / "labels.parquet").unlink(), "labels.parquet is missing"),
        (lambda d: flip_one_byte(d / "features.parquet"), "features.parquet changed"),
    ],
)
def test_factory_train_refuses_a_damaged_dataset_in_one_line(
    damage, message, dataset, tmp_path, capsys
):
    damage(dataset)
    argv = ["train", "--model", "xgboost", "--dataset", str(dataset)]
    argv += ["--home", str(tmp_path / "home"), "--param", "profile=tiny"]
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1, err
    assert message in err and "fix: run the same `factory data` command again" in err


def test_a_damaged_local_copy_is_copied_again(dataset, tmp_path):
    cache = tmp_path / "cache"
    local = local_dataset(dataset, cache)
    flip_one_byte(local / "labels.parquet")
    assert local_dataset(dataset, cache) == local
    load_verified(local)


def test_copying_a_dataset_with_a_missing_file_names_it(dataset, tmp_path):
    (dataset / "bars.parquet").unlink()
    dest = tmp_path / "copy"
    dest.mkdir()
    with pytest.raises(DataError, match=r"bars\.parquet: is missing"):
        copy_dataset_files(dataset, dest)
    shutil.rmtree(dest)
