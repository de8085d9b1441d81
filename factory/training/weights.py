"""Sample weights by label uniqueness (López de Prado, AFML ch. 4), for every model.

A triple-barrier label of decision row t spans the bars [t, t1] (t1: the bar where it is
decided, factory.data.labels). Labels whose spans overlap share information: the
concurrency c_u of bar u is the number of TRAINING labels whose span holds u, and the
average uniqueness of label i is the mean of 1 / c_u over its span (AFML 4.4). A label
alone in its span has uniqueness 1; five labels on the same five bars have 1/5 each.

Time decay (AFML 4.5, `time_decay` = c in (-1, 1]): a piecewise-linear factor on the
cumulative uniqueness x (labels in time order, x_N the total): d = 1 for the newest
label; for c >= 0 the oldest gets about c (c = 1: no decay, c = 0: linearly down to 0); for
c < 0 the oldest fraction -c of the cumulative uniqueness gets 0 and the rest rises
linearly to 1. The weight is uniqueness * decay.

`train_row_weights` gives the per-row weights a model trains with (the `sample_weight`
parameter, factory.models.params): the balanced class weights times uniqueness (and
decay), renormalised within each class so that every class keeps the total weight the
balanced class weights give it. So the class prior the model trains under stays the
balanced one, and the prior shift of factory.models.calibration stays exact; within a
class, redundant labels count less. The mean weight over the train rows is 1 either way.

Only the train rows' own spans enter (their t and t1): a train row's weight never
depends on a validation or test label.
"""

from __future__ import annotations

import numpy as np

from factory.errors import ConfigError, FactoryError
from factory.models.params import SAMPLE_WEIGHTS


def _spans(starts: np.ndarray, ends: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    starts = np.asarray(starts, dtype=np.int64)
    ends = np.asarray(ends, dtype=np.int64)
    if starts.shape != ends.shape or starts.ndim != 1:
        raise ValueError("starts and ends must be 1-D arrays of the same length")
    if len(starts) and (starts.min() < 0 or np.any(ends < starts)):
        raise ValueError("every span needs 0 <= start <= end (bar positions)")
    return starts, ends


def concurrency(starts: np.ndarray, ends: np.ndarray, n_bars: int | None = None) -> np.ndarray:
    """(n_bars,) int64: how many of the spans [starts[i], ends[i]] (bar positions,
    inclusive) hold each bar; n_bars defaults to max(ends) + 1."""
    starts, ends = _spans(starts, ends)
    n = int(n_bars) if n_bars is not None else (int(ends.max()) + 1 if len(ends) else 0)
    delta = np.zeros(n + 1, dtype=np.int64)
    np.add.at(delta, starts, 1)
    np.add.at(delta, ends + 1, -1)
    return np.cumsum(delta[:n])


def average_uniqueness(starts: np.ndarray, ends: np.ndarray) -> np.ndarray:
    """(n,) float64 in (0, 1]: each span's mean of 1 / concurrency over its bars, the
    concurrency counted over these spans only (see the module docstring)."""
    starts, ends = _spans(starts, ends)
    if len(starts) == 0:
        return np.zeros(0, dtype=np.float64)
    count = concurrency(starts, ends)
    inverse = np.zeros(len(count), dtype=np.float64)
    held = count > 0
    inverse[held] = 1.0 / count[held]
    prefix = np.concatenate([[0.0], np.cumsum(inverse)])
    return (prefix[ends + 1] - prefix[starts]) / (ends - starts + 1)


def time_decay(uniqueness: np.ndarray, last: float) -> np.ndarray:
    """AFML 4.5's decay factors of labels in time order, `last` the oldest's (c in (-1, 1])."""
    if not -1.0 < float(last) <= 1.0:
        raise ConfigError(f"time_decay={last} must lie in (-1, 1]")
    u = np.asarray(uniqueness, dtype=np.float64)
    if len(u) == 0:
        return u.copy()
    x = np.cumsum(u)
    total = x[-1]
    if total <= 0:
        return np.ones_like(u)
    slope = (1.0 - last) / total if last >= 0 else 1.0 / ((last + 1.0) * total)
    return np.maximum(1.0 - slope * total + slope * x, 0.0)


def combine(class_weights: np.ndarray, y: np.ndarray, factors: np.ndarray) -> np.ndarray:
    """class_weights[y] * factors, rescaled within each class to that class's total
    class weight (a class whose factors are all 0 keeps 0)."""
    y = np.asarray(y, dtype=np.int64)
    base = np.asarray(class_weights, dtype=np.float64)[y]
    out = base * np.asarray(factors, dtype=np.float64)
    for k in np.unique(y):
        mine = y == k
        total = out[mine].sum()
        if total > 0:
            out[mine] *= base[mine].sum() / total
    return out


def sample_factors(
    method: str, starts: np.ndarray, ends: np.ndarray, decay: float = 1.0
) -> np.ndarray:
    """The uniqueness factor of each span (rows in time order) under `method`."""
    if method not in SAMPLE_WEIGHTS:
        raise ConfigError(
            f"sample_weight={method!r} is unknown; fix: one of {', '.join(SAMPLE_WEIGHTS)}"
        )
    if method == "none":
        return np.ones(len(starts), dtype=np.float64)
    u = average_uniqueness(starts, ends)
    return u * time_decay(u, decay) if method == "uniqueness_decay" else u


def train_row_weights(data, method: str, decay: float = 1.0) -> np.ndarray:
    """(n_train,) float64 weights of `data`'s train rows, in their order (a TrainingData;
    see the module docstring); `method` "none" gives the balanced class weights alone."""
    rows = data.split_rows("train")
    y = data.y[rows]
    if method == "none":
        return np.asarray(data.class_weights, dtype=np.float64)[y]
    if data.t1_rows is None:
        raise FactoryError(
            f"sample_weight={method} needs each label's end bar (t1), which this data lacks; "
            "fix: load it with factory.training.training_data.load_training_data"
        )
    ends = data.t1_rows[rows]
    if np.any(ends < rows):
        raise FactoryError("a train row has no label end bar (t1); fix: rebuild the dataset")
    return combine(data.class_weights, y, sample_factors(method, rows, ends, decay))


def weights_summary(data, method: str, decay: float) -> dict[str, float | str | None]:
    """What a train result records of its sample weights: the method, the time decay
    (when used), and the train labels' mean average uniqueness (whatever the method: how
    much the labels overlap) and, under a uniqueness method, the smallest and largest
    row weight (their mean is 1 when every class is present)."""
    out: dict[str, float | str | None] = {"method": method}
    out["time_decay"] = float(decay) if method == "uniqueness_decay" else None
    rows = data.split_rows("train")
    if data.t1_rows is not None and len(rows):
        out["mean_uniqueness"] = float(average_uniqueness(rows, data.t1_rows[rows]).mean())
    if method != "none":
        w = train_row_weights(data, method, decay)
        out["min_weight"], out["max_weight"] = float(w.min()), float(w.max())
    return out
