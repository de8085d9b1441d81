"""Datasets are copied to local disk once per session and verified by checksum."""

from __future__ import annotations

import shutil

import pytest

from factory.errors import FactoryError
from jobs.datacache import local_dataset


def test_copied_once_and_verified(small_dataset, tmp_path):
    local = local_dataset(small_dataset, tmp_path / "cache")
    assert local != small_dataset and (local / "features.parquet").is_file()
    stamp = (local / "features.parquet").stat().st_mtime_ns
    assert local_dataset(small_dataset, tmp_path / "cache") == local
    assert (local / "features.parquet").stat().st_mtime_ns == stamp  # not copied again


def test_a_half_synced_file_is_refused(small_dataset, tmp_path):
    broken = tmp_path / "drive" / small_dataset.name
    shutil.copytree(small_dataset, broken)
    data = (broken / "labels.parquet").read_bytes()
    (broken / "labels.parquet").write_bytes(data[: len(data) // 2])
    with pytest.raises(FactoryError, match=r"labels\.parquet: checksum differs"):
        local_dataset(broken, tmp_path / "cache")
    assert not any((tmp_path / "cache").iterdir())
