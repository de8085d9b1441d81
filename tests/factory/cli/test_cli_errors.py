"""One-line errors of the factory's commands, and with --json one JSON object holding
`error` and `fix` on stdout (issue 12, point 9; printed by submitter.cli.run_handler)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from submitter.cli import main


def json_error(argv: list[str], capsys) -> dict:
    assert main(argv) == 2
    out, err = capsys.readouterr()
    lines = out.strip().splitlines()
    assert len(lines) == 1 and err == "", (out, err)
    answer = json.loads(lines[0])
    assert set(answer) == {"error", "fix"} and answer["error"] and answer["fix"]
    return answer


def test_factory_data_json_error_is_one_object(tmp_path, capsys):
    argv = ["data", "--raw", str(tmp_path / "none.csv"), "--symbol", "MES", "--json"]
    answer = json_error([*argv, "--home", str(tmp_path / "h")], capsys)
    assert answer == {
        "error": f"{tmp_path / 'none.csv'}: file not found",
        "fix": "check the --raw path",
    }


def test_factory_data_json_error_of_a_directory(tmp_path, capsys):
    argv = ["data", "--raw", str(tmp_path), "--symbol", "MES", "--json"]
    answer = json_error([*argv, "--home", str(tmp_path / "h")], capsys)
    assert answer["error"] == f"{tmp_path}: is a directory, not a file of bars"


def test_factory_train_json_error_is_one_object(tmp_path, capsys):
    argv = ["train", "--model", "xgboost", "--dataset", str(tmp_path), "--json"]
    answer = json_error([*argv, "--home", str(tmp_path / "h")], capsys)
    assert answer["error"] == f"{tmp_path}: not a dataset folder (no manifest.json)"
    assert answer["fix"] == "pass the dataset_dir printed by `factory data`"


def test_factory_predict_json_error_is_one_object(tmp_path, capsys):
    argv = ["predict", "--bundle", str(tmp_path), "--raw", str(tmp_path / "x.csv"), "--json"]
    answer = json_error(argv, capsys)
    assert "not a model bundle" in answer["error"]


def test_without_json_the_error_stays_one_line(tmp_path, capsys):
    argv = ["data", "--raw", str(tmp_path / "none.csv"), "--symbol", "MES"]
    assert main([*argv, "--home", str(tmp_path / "h")]) == 2
    out, err = capsys.readouterr()
    assert out == "" and err.strip().splitlines() == [
        f"error: {tmp_path / 'none.csv'}: file not found; fix: check the --raw path"
    ]


@pytest.mark.skipif(not Path("/sys").is_dir(), reason="needs a /sys that no one can write")
def test_factory_data_home_that_cannot_be_written(capsys):
    assert main(["data", "--synthetic", "--symbol", "MES", "--home", "/sys/x"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "cannot write to /sys/x" in err
    assert "fix: pass a writable --home" in err
