"""Bring the user's inputs under the storage root, verified: `submit --raw` and `--dataset`.

A spec names its inputs by paths relative to the root, so a file that lies outside
the root is copied in first: a raw bar file to `data/raw/<name>` (its sha256 checked
on the copy; a different file of the same name goes to `<stem>-<sha256[:12]><suffix>`,
and submitting the same file again copies nothing), a dataset folder to
`data/processed/<SYMBOL>/<dataset_id>/` (every file checked against its manifest).
A file already under the root is referenced where it is. `check_raw_path` is the one
answer to a --raw that is not a file (a folder is named as one). Light imports only:
the submitter runs this.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from factory.data.manifest import MANIFEST_FILE, DatasetManifest, file_problem
from factory.errors import DataError, FactoryError
from factory.files import atomic_dir, file_sha256
from factory.layout import Layout

_SYNC_OR_REBUILD = "wait for the sync or rebuild it"


def check_raw_path(path: Path) -> None:
    """A one-line DataError unless `path` is a file (a folder is named as one)."""
    if path.is_dir():
        raise DataError(
            str(path),
            "is a directory, not a file of bars",
            "pass one file inside it: a CSV, a parquet or a zip of CSV files",
        )
    if not path.is_file():
        raise DataError(str(path), "file not found", "check the --raw path")


def _digest_name(name: str, sha256: str) -> str:
    """`MES_1m.csv.gz` -> `MES_1m-<sha256[:12]>.csv.gz`."""
    path = Path(name)
    suffix = "".join(path.suffixes[-2:]) if path.suffix == ".gz" else path.suffix
    return f"{name[: len(name) - len(suffix)]}-{sha256[:12]}{suffix}"


def _same_file(path: Path, size: int, sha256: str) -> bool:
    return path.stat().st_size == size and file_sha256(path) == sha256


def _copy_verified(src: Path, target: Path, sha256: str) -> None:
    """Copy `src` to `target` under a temporary name; rename it once its sha256 matches."""
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(f".tmp-{target.name}-{os.getpid()}")
    try:
        shutil.copyfile(src, tmp)
        got = file_sha256(tmp)
        if got != sha256:
            raise FactoryError(
                f"{src}: its copy under {target.parent} has sha256 {got[:12]}, not "
                f"{sha256[:12]} (did the file change while it was copied?); fix: submit again"
            )
        os.replace(tmp, target)
    finally:
        tmp.unlink(missing_ok=True)


def store_raw(home: Path, src: Path) -> tuple[str, str]:
    """(path relative to `home`, sha256) of the raw bar file `src`, which is copied to
    `<home>/data/raw/` first when it lies outside the root."""
    layout = Layout(home)
    sha256 = file_sha256(src)
    rel = layout.within(src)
    if rel is not None:
        return rel, sha256
    size = src.stat().st_size
    for name in (src.name, _digest_name(src.name, sha256)):
        target = layout.raw_file(name)
        if not target.exists():
            _copy_verified(src, target, sha256)
            return layout.relative(target), sha256
        if _same_file(target, size, sha256):
            return layout.relative(target), sha256
    raise FactoryError(
        f"{layout.raw_dir()}: {src.name} and {name} both hold other bars than {src}; "
        "fix: rename the file before submitting it"
    )


def copy_dataset_files(src: Path, dest: Path) -> DatasetManifest:
    """Copy the files of dataset folder `src` into `dest`, each checked against the sha256
    its manifest records, then the manifest itself; the manifest."""
    manifest = DatasetManifest.load(src)  # file names are checked plain names
    for name, entry in manifest.files.items():
        if not (src / name).is_file():
            raise DataError(str(src / name), "is missing (a partial Drive sync?)", _SYNC_OR_REBUILD)
        shutil.copyfile(src / name, dest / name)
        if file_problem(dest / name, entry):
            raise DataError(
                str(src / name),
                "checksum differs from its manifest (a partial Drive sync?)",
                _SYNC_OR_REBUILD,
            )
    shutil.copyfile(src / MANIFEST_FILE, dest / MANIFEST_FILE)
    return manifest


def store_dataset(home: Path, src: Path) -> str:
    """The path relative to `home` of dataset folder `src`, which is copied (verified) to
    `<home>/data/processed/<SYMBOL>/<dataset_id>/` first when it lies outside the root."""
    layout = Layout(home)
    rel = layout.within(src)
    if rel is not None:
        return rel
    manifest = DatasetManifest.load(src)
    target = layout.dataset_dir(manifest.symbol, manifest.dataset_id)
    if not (target / MANIFEST_FILE).is_file():  # the id hashes the content: same data
        with atomic_dir(target) as tmp:
            copy_dataset_files(src, tmp)
    return layout.relative(target)
