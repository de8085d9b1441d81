"""Checkpoints written by older code resume, or are refused in one line; never misread.

fixtures/<model>-format1/ hold the first checkpoint of a tiny run written by the code
before the boosting models shared one loop (see fixtures/README.md).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from factory.data.config import DatasetConfig
from factory.data.dataset import build_dataset
from factory.data.synthetic import synthetic_bars, write_raw
from factory.models import get_model
from factory.training.context import Checkpoint
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
