"""`--home` that cannot be written, and --json errors, in the submitter (issue 12, point 9)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from submitter.common import error_line
from submitter.submit import main as submit_main

UNWRITABLE = "/sys/x"  # sysfs: no one, root included, can create a folder there


@pytest.mark.skipif(not Path("/sys/kernel").is_dir(), reason="needs Linux sysfs")
def test_submit_with_an_unwritable_home_is_one_line(tmp_path, capsys):
    raw = tmp_path / "MES_1m.csv"
    raw.write_text("timestamp,open,high,low,close,volume\n")
    argv = ["--models", "xgboost", "--symbol", "MES", "--raw", str(raw), "--home", UNWRITABLE]
    assert submit_main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert err == (
        "error: cannot write to /sys/x (Operation not permitted); "
        "fix: pass a writable --home or set FACTORY_HOME"
    )


def test_submit_json_error_is_one_object(tmp_path, capsys):
    argv = ["--models", "xgboost", "--symbol", "MES", "--raw", str(tmp_path / "none.csv")]
    assert submit_main([*argv, "--home", str(tmp_path / "h"), "--json"]) == 2
    out = capsys.readouterr().out.strip()
    assert set(json.loads(out)) == {"error", "fix"}


def test_error_line_as_text_and_as_json():
    exc = ValueError("x.csv: file not found; fix: check the --raw path")
    assert error_line(exc) == "error: x.csv: file not found; fix: check the --raw path"
    assert json.loads(error_line(exc, as_json=True)) == {
        "error": "x.csv: file not found",
        "fix": "check the --raw path",
    }
    assert json.loads(error_line(ValueError("boom"), as_json=True)) == {"error": "boom", "fix": ""}
