"""Recorded paths are relative to the storage root; inputs from outside it are copied in."""

from __future__ import annotations

import json
import shutil

import pytest

from factory.data.intake import store_dataset, store_raw
from factory.errors import FactoryError
from factory.files import file_sha256
from factory.layout import Layout, StoragePathError


@pytest.mark.parametrize(
    "rel",
    ["../x", "/etc/passwd", "a/../../x", "models/../../etc", "C:\\x", "a\\..\\b", "~/x", "", 3],
)
def test_an_absolute_or_escaping_path_is_refused(tmp_path, rel):
    with pytest.raises(StoragePathError, match="storage root") as info:
        Layout(tmp_path).resolve(rel, "bundle")
    assert "\n" not in str(info.value)


def test_a_relative_path_resolves_under_each_home(tmp_path):
    assert Layout(tmp_path / "a").resolve("models/job-1") == tmp_path / "a" / "models" / "job-1"
    assert Layout(tmp_path / "b").resolve("models/job-1") == tmp_path / "b" / "models" / "job-1"


def test_layout_relative_through_a_symlink_and_outside(tmp_path):
    home = tmp_path / "home"
    (home / "models").mkdir(parents=True)
    view = tmp_path / "view"
    view.symlink_to(home)
    assert Layout(home).relative(home / "models" / "x") == "models/x"
    assert Layout(home).relative(view / "models" / "x") == "models/x"  # same storage
    assert Layout(view).relative(home / "models" / "x") == "models/x"
    assert Layout(home).within(tmp_path / "elsewhere") is None
    with pytest.raises(StoragePathError, match="outside the storage root"):
        Layout(home).relative(tmp_path / "elsewhere" / "f.csv")


def test_a_raw_file_outside_is_copied_once_and_a_clash_is_renamed(tmp_path):
    home = tmp_path / "home"
    src = tmp_path / "in" / "MES_1m.csv"
    src.parent.mkdir()
    src.write_text("timestamp,open\n1,2\n")
    rel, sha = store_raw(home, src)
    assert rel == "data/raw/MES_1m.csv" and sha == file_sha256(src)
    assert file_sha256(home / rel) == sha
    stamp = (home / rel).stat().st_mtime_ns
    assert store_raw(home, src) == (rel, sha)  # the same file again: nothing copied
    assert (home / rel).stat().st_mtime_ns == stamp
    other = tmp_path / "in2" / "MES_1m.csv"
    other.parent.mkdir()
    other.write_text("timestamp,open\n1,3\n")
    rel2, sha2 = store_raw(home, other)
    assert rel2 == f"data/raw/MES_1m-{sha2[:12]}.csv" and file_sha256(home / rel2) == sha2
    assert file_sha256(home / rel) == sha  # the first file is untouched
    assert store_raw(home, other) == (rel2, sha2)
    assert store_raw(home, home / rel) == (rel, sha)  # under the root: referenced in place
    assert not list((home / "data" / "raw").glob(".tmp-*"))


def test_a_dataset_outside_is_copied_verified(small_dataset, tmp_path):
    home = tmp_path / "home"
    rel = store_dataset(home, small_dataset)
    manifest = json.loads((small_dataset / "manifest.json").read_text())
    assert rel == f"data/processed/MES/{manifest['dataset_id']}"
    assert file_sha256(home / rel / "features.parquet") == file_sha256(
        small_dataset / "features.parquet"
    )
    assert store_dataset(home, home / rel) == rel
    broken = tmp_path / "broken" / small_dataset.name
    shutil.copytree(small_dataset, broken)
    (broken / "labels.parquet").write_bytes(b"half")
    with pytest.raises(FactoryError, match=r"labels\.parquet: checksum differs"):
        store_dataset(tmp_path / "home2", broken)
    assert not (tmp_path / "home2" / rel).exists()


def test_the_dataset_manifest_records_no_machine_path(tmp_path):
    from factory.data.config import DatasetConfig
    from factory.data.dataset import build_dataset
    from factory.data.synthetic import synthetic_bars, write_raw

    home = tmp_path / "home"
    raw = write_raw(synthetic_bars("MES", days=6, seed=5), home / "data" / "raw" / "b.parquet")
    config = DatasetConfig(symbol="MES", tick_size=0.25, horizons=(5,), lookback_bars=32)
    manifest = build_dataset(raw, config, home).manifest
    assert manifest.raw["path"] == "data/raw/b.parquet"
    assert str(tmp_path) not in json.dumps(manifest.to_dict())
