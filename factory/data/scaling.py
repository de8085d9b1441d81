"""Feature standardisation fitted on training rows only.

Statistics come from the rows passed to `fit` (the train split) and nothing else, so
validation and test rows never leak into them. Non-finite values are left out of the
statistics; a column whose spread is 0 or not finite is divided by 1.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

_KEYS = ("columns", "mean", "std")


@dataclass(frozen=True)
class Scaler:
    """Per-column mean and standard deviation, in column order."""

    columns: tuple[str, ...]
    mean: tuple[float, ...]
    std: tuple[float, ...]

    def __post_init__(self) -> None:
        if not (len(self.columns) == len(self.mean) == len(self.std)):
            raise ValueError(
                f"scaler has {len(self.columns)} columns, {len(self.mean)} means and "
                f"{len(self.std)} stds; they must match"
            )
        if len(set(self.columns)) != len(self.columns):
            raise ValueError("scaler columns repeat a name")

    @classmethod
    def fit(cls, X: pd.DataFrame, rows: np.ndarray) -> Scaler:
        """Mean and std (ddof=0) of each column over the rows where `rows` is True."""
        rows = np.asarray(rows)
        if rows.dtype != np.bool_ or rows.shape != (len(X),):
            raise ValueError(f"rows must be a boolean mask of length {len(X)} (one per row of X)")
        if not rows.any():
            raise ValueError("no rows to fit the scaler on; fix: pass the train rows")
        means: list[float] = []
        stds: list[float] = []
        for name in X.columns:
            values = X[name].to_numpy(dtype=np.float64)[rows]
            values = values[np.isfinite(values)]
            mean = float(values.mean()) if len(values) else 0.0
            std = float(np.sqrt(np.mean((values - mean) ** 2))) if len(values) else 1.0
            means.append(mean if np.isfinite(mean) else 0.0)
            stds.append(std if np.isfinite(std) and std > 0 else 1.0)
        return cls(tuple(str(c) for c in X.columns), tuple(means), tuple(stds))

    def _check_columns(self, X: pd.DataFrame) -> None:
        got = [str(c) for c in X.columns]
        if got == list(self.columns):
            return
        missing = [c for c in self.columns if c not in got]
        unexpected = [c for c in got if c not in self.columns]
        if missing or unexpected:
            raise ValueError(
                f"feature columns differ from the fitted ones: missing {missing}, "
                f"unexpected {unexpected}; fix: build features with the same settings"
            )
        pos = next(i for i, (a, b) in enumerate(zip(got, self.columns, strict=True)) if a != b)
        raise ValueError(
            f"feature columns are in a different order: position {pos} holds {got[pos]!r}, "
            f"expected {self.columns[pos]!r}; fix: reorder with X[list(scaler.columns)]"
        )

    def transform(self, X: pd.DataFrame) -> np.ndarray:
        """(X - mean) / std as a C-contiguous float32 array of shape (n, F)."""
        self._check_columns(X)
        out = np.empty((len(X), len(self.columns)), dtype=np.float32)
        for j, name in enumerate(self.columns):
            values = X[name].to_numpy(dtype=np.float64)
            out[:, j] = (values - self.mean[j]) / self.std[j]
        return out

    def to_dict(self) -> dict[str, Any]:
        return {"columns": list(self.columns), "mean": list(self.mean), "std": list(self.std)}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Scaler:
        unknown = sorted(set(d) - set(_KEYS))
        missing = [k for k in _KEYS if k not in d]
        if unknown or missing:
            raise ValueError(f"scaler dict: unknown keys {unknown}, missing keys {missing}")
        return cls(
            columns=tuple(str(c) for c in d["columns"]),
            mean=tuple(float(v) for v in d["mean"]),
            std=tuple(float(v) for v in d["std"]),
        )
