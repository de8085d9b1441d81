"""Shared fixtures: where the real data lies, and small synthetic bars for fast tests."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

REPO_ROOT = Path(__file__).resolve().parent.parent
REAL_DATA_DIR = REPO_ROOT.parent / "shared" / "data" / "real"


def real_data_dir() -> Path:
    """The real-bars folder, or a skip with the reason when it is absent."""
    if not REAL_DATA_DIR.is_dir():
        pytest.skip(f"real market data not found at {REAL_DATA_DIR} (../shared is absent)")
    return REAL_DATA_DIR


def random_bars(
    n: int,
    seed: int = 0,
    start: str = "2024-01-08 00:00",
    freq: str = "1min",
    gap_prob: float = 0.02,
) -> pd.DataFrame:
    """A quick random walk of 1-minute OHLCV bars with random missing minutes.

    Fast and simple on purpose: for unit tests of the pipeline's mechanics. The
    realistic generator is factory.data.synthetic.
    """
    rng = np.random.default_rng(seed)
    m = int(n / (1 - gap_prob) * 1.05) + 100  # enough minutes for n bars after the gaps
    index = pd.date_range(start, periods=m, freq=freq, tz="UTC", name="timestamp")
    keep = rng.random(m) >= gap_prob
    index = index[keep][:n]
    steps = rng.standard_t(4, size=n) * 0.0004
    close = 4500.0 * np.exp(np.cumsum(steps))
    open_ = np.r_[close[0], close[:-1]] * np.exp(rng.normal(0, 0.0001, n))
    spread = np.abs(rng.normal(0, 0.0006, n)) * close
    high = np.maximum(open_, close) + spread * rng.random(n)
    low = np.minimum(open_, close) - spread * rng.random(n)
    volume = rng.poisson(200, n).astype(np.float64)
    return pd.DataFrame(
        {"open": open_, "high": high, "low": low, "close": close, "volume": volume}, index=index
    )


@pytest.fixture
def bars_factory():
    return random_bars


@pytest.fixture
def redis_server(tmp_path):
    """A real redis-server on a free port, with AOF on, owned by the test."""
    from tests.redis_server import RedisServer

    with RedisServer(tmp_path / "redis", appendonly=True) as server:
        yield server


@pytest.fixture(scope="session")
def small_dataset(tmp_path_factory) -> Path:
    """A small synthetic MES dataset (horizon 5), built once per test session."""
    from factory.data.config import DatasetConfig
    from factory.data.dataset import build_dataset
    from factory.data.synthetic import synthetic_bars, write_raw

    home = tmp_path_factory.mktemp("dataset-home")
    raw = write_raw(synthetic_bars("MES", days=6, seed=5), home / "MES_1m.parquet")
    config = DatasetConfig(symbol="MES", tick_size=0.25, horizons=(5,), lookback_bars=32)
    return build_dataset(raw, config, home).dataset_dir
