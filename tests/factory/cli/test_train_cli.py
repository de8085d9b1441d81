"""`factory train`: one job in-process; SIGKILLed after a checkpoint, it resumes bit-exactly."""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from factory.data.config import DatasetConfig
from factory.data.dataset import build_dataset
from factory.data.synthetic import synthetic_bars, write_raw
from submitter.cli import main
from tests.conftest import REPO_ROOT

# long enough to be killed well after the first checkpoint (>= 1 s of training left)
CLI_PARAMS = {
    "xgboost": [
        "profile=tiny",
        "n_estimators=400",
        "early_stopping_rounds=400",
        "checkpoint_every_rounds=20",
    ],
    "lightgbm": [
        "profile=tiny",
        "n_estimators=600",
        "early_stopping_rounds=600",
        "checkpoint_every_rounds=20",
        "nthread=1",  # OpenMP threads spin: on a busy CPU 2 threads take 5-10x longer
    ],
    "catboost": [
        "profile=tiny",
        "n_estimators=200",
        "early_stopping_rounds=200",
        "checkpoint_every_rounds=20",
    ],
    "lstm": ["profile=tiny", "epochs=8", "patience=8", "checkpoint_every_s=0.25"],
    "gru": [
        "profile=tiny",
        "epochs=8",
        "patience=8",
        "checkpoint_every_s=0.25",
        "importance_rows=0",
    ],
    "patchtst": [
        "profile=tiny",
        "epochs=3",
        "patience=3",
        "checkpoint_every_s=0.25",
        "importance_rows=0",
    ],
    "tcn": [
        "profile=tiny",
        "epochs=6",
        "patience=6",
        "checkpoint_every_s=0.25",
        "importance_rows=0",
    ],
    "itransformer": [
        "profile=tiny",
        "epochs=4",
        "patience=4",
        "checkpoint_every_s=0.25",
        "importance_rows=0",
    ],
    "tft": [
        "profile=tiny",
        "epochs=3",
        "patience=3",
        "checkpoint_every_s=0.25",
        "importance_rows=0",
    ],
}
# importance_rows=0: the permutation importance of these deep models (seconds each, at
# every one of a test's runs) is covered by lstm's and by tests/factory/evaluation
MAX_KILL_DELAY_S = 0.5


@pytest.fixture(scope="module")
def dataset_dir(tmp_path_factory) -> Path:
    home = tmp_path_factory.mktemp("data-home")
    raw = write_raw(synthetic_bars("MES", days=6, seed=5), home / "MES_1m.parquet")
    config = DatasetConfig(symbol="MES", tick_size=0.25, tick_value_usd=1.25, horizons=(5,))
    return build_dataset(raw, config, home).dataset_dir


def command(model: str, dataset: Path, home: Path) -> list[str]:
    cmd = [sys.executable, "-m", "submitter.cli", "train", "--model", model]
    cmd += ["--dataset", str(dataset), "--home", str(home), "--json"]
    for pair in CLI_PARAMS[model]:
        cmd += ["--param", pair]
    return cmd


def _env() -> dict[str, str]:
    # one torch thread: OpenMP threads spin, and on a busy 2-core CPU 2 take 3x longer
    return dict(os.environ, PYTHONPATH=str(REPO_ROOT), OMP_NUM_THREADS="1")


def run_json(cmd: list[str]) -> dict:
    out = subprocess.run(
        cmd, cwd=REPO_ROOT, env=_env(), capture_output=True, text=True, timeout=120
    )
    assert out.returncode == 0, out.stderr
    lines = out.stdout.strip().splitlines()
    assert len(lines) == 1, f"--json must print one JSON object, got: {out.stdout!r}"
    return json.loads(lines[0])


def kill_after_first_checkpoint(cmd: list[str], home: Path) -> None:
    proc = subprocess.Popen(
        cmd, cwd=REPO_ROOT, env=_env(), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
    )
    try:
        deadline = time.monotonic() + 60
        while not list(home.glob("checkpoints/*/manifest.json")):
            assert proc.poll() is None, proc.stderr.read().decode()
            assert time.monotonic() < deadline, "no checkpoint within 60 s"
            time.sleep(0.01)
        time.sleep(random.uniform(0, MAX_KILL_DELAY_S))
        assert proc.poll() is None, "the run finished before it could be killed"
        proc.send_signal(signal.SIGKILL)
        assert proc.wait(timeout=30) == -signal.SIGKILL
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        proc.stderr.close()


@pytest.mark.slow
@pytest.mark.parametrize("model", sorted(CLI_PARAMS))
def test_killed_run_resumes_to_the_uninterrupted_result(model, dataset_dir, tmp_path):
    whole = run_json(command(model, dataset_dir, tmp_path / "whole"))
    assert whole["resumed"] is False and whole["bit_exact"] is True

    home = tmp_path / "killed"
    cmd = command(model, dataset_dir, home)
    kill_after_first_checkpoint(cmd, home)
    resumed = run_json(cmd)

    assert resumed["job_id"] == whole["job_id"]
    assert resumed["resumed"] is True and resumed["resumed_from"] > 0
    assert resumed["checkpoint_steps"][0] > resumed["resumed_from"] or (
        resumed["checkpoint_steps"] == []
    )
    assert resumed["bit_exact"] is True
    assert resumed["test_predictions_sha256"] == whole["test_predictions_sha256"]
    assert resumed["metrics"] == whole["metrics"]
    assert Path(resumed["bundle"], "bundle.json").is_file()
    assert (home / "checkpoints" / whole["job_id"] / "manifest.json").is_file()
    # the same bundle content: model files byte for byte, and the content identity
    assert _model_files(resumed["bundle"]) == _model_files(whole["bundle"])
    assert _content_id(resumed["bundle"]) == _content_id(whole["bundle"])


def _model_files(bundle: str) -> dict[str, bytes]:
    root = Path(bundle)
    run_records = ("result.json", "bundle.json")
    return {
        p.relative_to(root).as_posix(): p.read_bytes()
        for p in sorted(root.rglob("*"))
        if p.is_file() and p.name not in run_records
    }


def _content_id(bundle: str) -> str:
    return json.loads(Path(bundle, "bundle.json").read_text())["content_sha256"]


def test_progress_and_summary_without_json(dataset_dir, tmp_path, capsys):
    argv = ["train", "--model", "xgboost", "--dataset", str(dataset_dir)]
    argv += ["--home", str(tmp_path), "--param", "profile=tiny", "--param", "n_estimators=20"]
    assert main(argv) == 0
    out, err = capsys.readouterr()
    assert "xgboost: 10/20" in err
    assert out.startswith("trained xgboost (h=5)") and "test macro-F1" in out
    assert main(argv) == 0  # the same command again finds the finished job's checkpoint
    assert "resumed from step" in capsys.readouterr().out


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--model", "nope"], "unknown model 'nope'"),
        (["--model", "xgboost", "--param", "depth=3"], "unknown parameter(s) depth"),
        (["--model", "xgboost", "--param", "depth"], "is not KEY=VALUE"),
        (["--model", "xgboost", "--horizon", "7"], "horizon 7 is not in the dataset"),
    ],
)
def test_bad_arguments_give_one_line(args, message, dataset_dir, tmp_path, capsys):
    argv = ["train", "--dataset", str(dataset_dir), "--home", str(tmp_path), *args]
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: ") and message in err and "\n" not in err
