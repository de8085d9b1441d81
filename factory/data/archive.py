"""Phase 1a for what a user may pass as `--raw`: a bar file, or a vendor's zip archive.

A zip is read directly when it holds one or more CSV files of one instrument (as
HistData ships them: `DAT_ASCII_XAGUSD_M1_2017.csv` (or `.csv.gz`), `;`-separated lines like
`20170102 180000;open;high;low;close;volume`, no header, and a `.txt` status file
beside it). Each CSV is read by `factory.data.ingest.read_bars` as if it had been
given alone; the parts are concatenated in time order (by their first bar). Text notes
(`.txt`, `.md`, `.pdf`, `.html`) and folders are skipped; anything else in the zip, a
zip with no CSV, CSVs whose prices differ like those of different instruments, or a zip
that cannot be read, is refused with a one-line error that names the zip.
"""

from __future__ import annotations

import shutil
import tempfile
import zipfile
from pathlib import Path, PurePosixPath

import numpy as np
import pandas as pd

from factory.data.ingest import read_bars
from factory.data.intake import check_raw_path
from factory.errors import DataError

ZIP_MAGIC = b"PK\x03\x04"
CSV_SUFFIXES = (".csv",)
NOTE_SUFFIXES = (".txt", ".md", ".pdf", ".html", ".htm")
MAX_PRICE_RATIO = 3.0  # median closes of two parts further apart: not one instrument
_ZIP_FIX = "give a zip that holds only the CSV file(s) of one instrument, or the CSV itself"


def is_zip(path: Path) -> bool:
    """By suffix or by content: a zip renamed `.csv` is still read as a zip."""
    if path.suffix.lower() == ".zip":
        return True
    with open(path, "rb") as fh:
        return fh.read(len(ZIP_MAGIC)) == ZIP_MAGIC


def read_raw(path: Path, tz: str = "UTC") -> tuple[pd.DataFrame, dict]:
    """Raw bars of `path` (a bar file or a zip of CSV bar files) and what was found."""
    path = Path(path)
    check_raw_path(path)
    if is_zip(path):
        return read_zip_bars(path, tz)
    return read_bars(path, tz)


def csv_members(path: Path) -> list[str]:
    """The CSV members of zip `path`; a DataError names the zip when it holds anything else."""
    try:
        with zipfile.ZipFile(path) as zf:
            infos = zf.infolist()
    except (zipfile.BadZipFile, OSError) as exc:
        raise DataError(str(path), f"is not a readable zip archive ({exc})", _ZIP_FIX) from exc
    csvs, others = [], []
    for info in infos:
        name = PurePosixPath(info.filename)
        if info.is_dir() or name.parts[0] == "__MACOSX" or name.name.startswith("."):
            continue
        suffix = name.suffix.lower()
        if suffix in CSV_SUFFIXES or name.name.lower().endswith(".csv.gz"):
            csvs.append(info.filename)
        elif suffix not in NOTE_SUFFIXES:
            others.append(info.filename)
    if others:
        raise DataError(
            str(path), f"the zip holds {others[0]!r}, which is not a CSV of bars", _ZIP_FIX
        )
    if not csvs:
        raise DataError(str(path), "the zip holds no CSV file", _ZIP_FIX)
    return csvs


def read_zip_bars(path: Path, tz: str = "UTC") -> tuple[pd.DataFrame, dict]:
    """The bars of every CSV in zip `path`, concatenated in time order."""
    parts, members = [], csv_members(path)
    with tempfile.TemporaryDirectory(prefix="mlf-zip-") as tmp, zipfile.ZipFile(path) as zf:
        for i, name in enumerate(members):
            target = Path(tmp) / f"{i}-{PurePosixPath(name).name}"
            try:
                with zf.open(name) as src, open(target, "wb") as dst:
                    shutil.copyfileobj(src, dst)
            except (zipfile.BadZipFile, RuntimeError, OSError) as exc:  # encrypted, damaged
                raise DataError(f"{path}: {name}", f"cannot be unpacked ({exc})", _ZIP_FIX) from exc
            try:
                bars, info = read_bars(target, tz)
            except DataError as exc:
                raise DataError(f"{path}: {name}", exc.problem, exc.fix) from exc
            target.unlink()
            parts.append((bars.index.min(), name, bars, info))
    parts.sort(key=lambda part: (part[0], part[1]))
    _check_one_instrument(path, parts)
    bars = pd.concat([part[2] for part in parts])
    return bars, _merged_info(parts)


def _check_one_instrument(path: Path, parts: list) -> None:
    closes = {
        name: float(np.nanmedian(pd.to_numeric(b["close"], errors="coerce")))
        for _, name, b, _ in parts
    }
    low, high = min(closes, key=closes.get), max(closes, key=closes.get)
    if closes[low] > 0 and closes[high] / closes[low] > MAX_PRICE_RATIO:
        raise DataError(
            str(path),
            f"{low!r} and {high!r} look like different instruments (median close "
            f"{closes[low]:.6g} vs {closes[high]:.6g})",
            "give a zip of one instrument's CSV files, one zip per instrument",
        )


def _merged_info(parts: list) -> dict:
    """The first part's ingest info, with the row count and warnings of all parts."""
    info = dict(parts[0][3])
    warnings = []
    for *_, part_info in parts:
        warnings += [w for w in part_info.get("warnings", []) if w not in warnings]
    info.update(format="zip", members=[name for _, name, _, _ in parts])
    info["raw_rows"] = sum(int(p[3]["raw_rows"]) for p in parts)
    key = "ambiguous_or_nonexistent_local_times"
    if key in info:
        info[key] = sum(int(p[3].get(key, 0)) for p in parts)
    if warnings:
        info["warnings"] = warnings
    return info
