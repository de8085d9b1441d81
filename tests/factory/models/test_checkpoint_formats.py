"""Checkpoints written by older code resume, or are refused in one line; never misread.

fixtures/<model>-format1/ hold the first checkpoint of a tiny run written by the code
before the boosting models shared one loop (format 1, see fixtures/README.md); today's
checkpoints are format 2 (factory/models/base.py, boosting.py).
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest

from factory.data.config import DatasetConfig
from factory.data.dataset import build_dataset
from factory.data.synthetic import synthetic_bars, write_raw
from factory.errors import FactoryError
from factory.models import get_model
from factory.models.base import CHECKPOINT_FORMAT
from factory.training.context import Checkpoint, StopTraining
from factory.training.training_data import load_training_data
from tests.factory.models.test_models import (
    MemoryContext,
    one_torch_thread,  # noqa: F401 (autouse fixture)
    params_of,
)

FIXTURES = Path(__file__).parent / "fixtures"
FORMAT1 = ("xgboost", "lightgbm", "gru")
META_FILE = "checkpoint.json"


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    """The dataset the fixtures were written on (as test_models.py's)."""
    home = tmp_path_factory.mktemp("home")
    raw = write_raw(synthetic_bars("MES", days=6, seed=3), home / "MES_1m.parquet")
    config = DatasetConfig(symbol="MES", tick_size=0.25, tick_value_usd=1.25, horizons=(5, 10))
    return load_training_data(build_dataset(raw, config, home).dataset_dir, 5)


def old_checkpoint(name: str) -> tuple[Checkpoint, dict[str, str]]:
    """The fixture's checkpoint and the parameter overrides of its run."""
    folder = FIXTURES / f"{name}-format1"
    meta = json.loads((folder / META_FILE).read_text())
    files = {p.name: p.read_bytes() for p in sorted(folder.iterdir()) if p.name != META_FILE}
    return Checkpoint(meta["step"], 1, files, meta["state"]), meta["overrides"]


@pytest.mark.parametrize("name", FORMAT1)
def test_a_format1_checkpoint_resumes(name, data):
    old, overrides = old_checkpoint(name)
    params = params_of(name, **overrides)
    resumed = MemoryContext(checkpoints=[old])
    model = get_model(name)(params).fit(data, resumed)
    assert model.resumed_from_ == old.step and model.fit_summary()["bit_exact"] is True
    whole = MemoryContext()
    reference = get_model(name)(params).fit(data, whole)
    later = [c.step for c in whole.checkpoints if c.step > old.step]
    assert [c.step for c in resumed.checkpoints[1:]] == later == model.checkpoint_steps_
    # where this machine trains the first steps as the one that wrote the fixture did,
    # the resumed run equals an uninterrupted one bit for bit
    first = next(c for c in whole.checkpoints if c.step == old.step)
    if first.files == old.files:
        proba = model.predict_proba(data, "test")
        assert proba.tobytes() == reference.predict_proba(data, "test").tobytes()


def _altered(checkpoint: Checkpoint, files=None, **state) -> Checkpoint:
    files = dict(checkpoint.files) if files is None else files
    return dataclasses.replace(checkpoint, files=files, state=checkpoint.state | state)


def _refusal(name: str, overrides: dict, checkpoint: Checkpoint, data) -> str:
    with pytest.raises(FactoryError) as info:
        get_model(name)(params_of(name, **overrides)).fit(
            data, MemoryContext(checkpoints=[checkpoint])
        )
    message = str(info.value)
    assert "\n" not in message and "fix:" in message
    return message


@pytest.mark.parametrize("name", FORMAT1)
def test_a_checkpoint_of_a_format_this_code_does_not_read_is_refused(name, data):
    old, overrides = old_checkpoint(name)
    newer = _altered(old, format=CHECKPOINT_FORMAT + 1)
    assert f"format {CHECKPOINT_FORMAT + 1}" in _refusal(name, overrides, newer, data)


def test_a_boosting_checkpoint_is_never_misread(data):
    """A state of other keys than the format's, or a missing booster file: refused."""
    old, overrides = old_checkpoint("xgboost")
    mislabelled = _altered(old, format=2)  # format 1's `time_cut` under format 2
    assert "time_cut" in _refusal("xgboost", overrides, mislabelled, data)
    assert "files []" in _refusal("xgboost", overrides, _altered(old, files={}), data)


@pytest.mark.parametrize("name", ["xgboost", "lstm"])
def test_checkpoints_are_written_in_todays_format(name, data):
    ctx = MemoryContext()
    ctx.should_stop = lambda: True
    with pytest.raises(StopTraining):
        get_model(name)(params_of(name)).fit(data, ctx)
    assert ctx.checkpoints[0].state["format"] == CHECKPOINT_FORMAT == 2
