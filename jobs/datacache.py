"""Datasets are read from local disk: copied from the storage root (Drive) once per
session and verified against the checksums in their manifest, never read from Drive
every epoch."""

from __future__ import annotations

import os
from pathlib import Path

from factory.data.intake import copy_dataset_files
from factory.data.manifest import DatasetManifest, load_verified
from factory.errors import FactoryError
from factory.files import atomic_dir
from factory.layout import plain_name
from jobs.attempt_env import ENV_CACHE

VERIFIED = ".verified"


def local_dataset(dataset_dir: Path, cache_root: Path | None = None) -> Path:
    """A verified local copy of `dataset_dir` (the folder itself when no cache is set)."""
    cache_root = cache_root or (Path(os.environ[ENV_CACHE]) if os.environ.get(ENV_CACHE) else None)
    if cache_root is None:
        return dataset_dir
    target = cache_root / plain_name(DatasetManifest.load(dataset_dir).dataset_id, "dataset id")
    if (target / VERIFIED).is_file() and _still_intact(target):
        return target
    with atomic_dir(target) as tmp:  # a copy that fails verification leaves nothing behind
        copy_dataset_files(dataset_dir, tmp)
        (tmp / VERIFIED).write_text("ok")
    return target


def _still_intact(target: Path) -> bool:
    """Whether a cached copy still matches its manifest (a damaged one is copied again)."""
    try:
        load_verified(target)
    except FactoryError:
        return False
    return True
