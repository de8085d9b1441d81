"""What `factory demo` needs from the factory side: synthetic bars as a raw file."""

from __future__ import annotations

from pathlib import Path

from factory.layout import Layout


def synthetic_raw(home: Path, symbol: str, days: int, seed: int = 0) -> Path:
    """`<home>/data/raw/<SYMBOL>_synthetic_<days>d_s<seed>.parquet`, written once."""
    from factory.data.synthetic import synthetic_bars, write_raw

    path = Layout(home).synthetic_raw_file(symbol, days, seed)
    if not path.exists():
        write_raw(synthetic_bars(symbol, days=days, seed=seed), path)
    return path
