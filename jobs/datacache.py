"""Datasets are read from local disk: copied from the storage root (Drive) once per
session and verified against the checksums in their manifest, never read from Drive
every epoch."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from pathlib import Path

from jobs.errors import RunnerError

ENV_CACHE = "FACTORY_DATA_CACHE"
VERIFIED = ".verified"


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 22), b""):
            digest.update(chunk)
    return digest.hexdigest()


def local_dataset(dataset_dir: Path, cache_root: Path | None = None) -> Path:
    """A verified local copy of `dataset_dir` (the folder itself when no cache is set)."""
    cache_root = cache_root or (Path(os.environ[ENV_CACHE]) if os.environ.get(ENV_CACHE) else None)
    if cache_root is None:
        return dataset_dir
    manifest = json.loads((dataset_dir / "manifest.json").read_text())
    target = cache_root / manifest["dataset_id"]
    if (target / VERIFIED).is_file():
        return target
    tmp = cache_root / f".tmp-{manifest['dataset_id']}-{os.getpid()}"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    for name, info in manifest["files"].items():
        shutil.copyfile(dataset_dir / name, tmp / name)
        if _sha256(tmp / name) != info["sha256"]:
            shutil.rmtree(tmp, ignore_errors=True)
            raise RunnerError(
                f"{dataset_dir / name}: checksum differs from its manifest (a "
                "partial Drive sync?); fix: wait for the sync or rebuild it"
            )
    shutil.copyfile(dataset_dir / "manifest.json", tmp / "manifest.json")
    (tmp / VERIFIED).write_text("ok")
    shutil.rmtree(target, ignore_errors=True)
    os.replace(tmp, target)
    return target
