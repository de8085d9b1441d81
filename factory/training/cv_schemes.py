"""The CV schemes a plan can run, and the test paths of combinatorial purged CV.

Three schemes, each split one cv job (factory.training.folds cuts the rows):

- "purged": purged k-fold, `folds` contiguous test folds (the default);
- "walk-forward": the eligible rows cut into `steps` + 1 blocks; step s tests block
  s + 1 and trains on blocks 0..s ("expanding" window) or on block s only ("sliding":
  a window of one block that moves forward with the test block);
- "cpcv": combinatorial purged CV (López de Prado, AFML ch. 12): the rows cut into
  `groups` groups; one split per choice of `test_groups` of them (C(N, k) splits,
  in itertools.combinations order), each training on the other N - k groups.

A scheme travels in a job spec as `CvScheme.to_spec()`: {} for purged k-fold (whose
fold count is the spec's `folds`, as before schemes existed: the same plan keeps its
job ids), else {"scheme": "walk-forward", "window": ..., "steps": N} or
{"scheme": "cpcv", "groups": N, "test_groups": k}; the spec's `folds` is then the
number of splits.

CPCV paths: every group is tested by C(N-1, k-1) splits, so the splits' out-of-fold
predictions make phi = C(N-1, k-1) = k C(N, k) / N complete backtest paths. Path p
takes, for each group g, the prediction of the p-th split (in split order) that tests
g (AFML fig. 12.2). `cpcv_paths` gives that assignment, `assemble_paths` the paths'
frames; both are pure.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from factory.errors import ConfigError

SCHEMES = ("purged", "walk-forward", "cpcv")
WINDOWS = ("expanding", "sliding")
MAX_SPLITS = 100  # per model: a plan of more cv jobs than this is refused
GROUP_COLUMN = "group"  # the CPCV group of each row of a cpcv split's OOF frame


@dataclass(frozen=True)
class CvScheme:
    """One CV scheme and its parameters (see the module docstring)."""

    name: str = "purged"
    folds: int = 5  # purged
    steps: int = 5  # walk-forward
    window: str = "expanding"  # walk-forward
    groups: int = 6  # cpcv
    test_groups: int = 2  # cpcv

    @property
    def n_splits(self) -> int:
        """How many splits (cv jobs per model) the scheme makes."""
        if self.name == "walk-forward":
            return self.steps
        if self.name == "cpcv":
            return math.comb(self.groups, self.test_groups)
        return self.folds

    @property
    def n_paths(self) -> int:
        """CPCV: the number of complete test paths, C(N-1, k-1); 1 for the others."""
        if self.name == "cpcv":
            return math.comb(self.groups - 1, self.test_groups - 1)
        return 1

    def check(self) -> CvScheme:
        """This scheme, or a ConfigError naming the flag to fix."""
        if self.name not in SCHEMES:
            raise ConfigError(f"--cv {self.name!r}; fix: use one of {', '.join(SCHEMES)}")
        if not all(_is_int(v) for v in (self.folds, self.steps, self.groups, self.test_groups)):
            raise ConfigError("CV counts must be whole numbers")
        if self.name == "purged" and self.folds < 2:
            raise ConfigError(f"--folds {self.folds}; fix: use at least 2")
        if self.name == "walk-forward":
            if self.steps < 1:
                raise ConfigError(f"--steps {self.steps}; fix: use at least 1")
            if self.window not in WINDOWS:
                raise ConfigError(f"--window {self.window!r}; fix: use expanding or sliding")
        if self.name == "cpcv":
            if not 2 <= self.groups <= MAX_SPLITS:  # C(N, k) >= N: N bounds the splits
                raise ConfigError(f"--groups {self.groups}; fix: use 2 to {MAX_SPLITS}")
            if not 1 <= self.test_groups < self.groups:
                raise ConfigError(
                    f"--test-groups {self.test_groups}; fix: use 1 to {self.groups - 1} "
                    f"(fewer than --groups {self.groups})"
                )
        if self.n_splits > MAX_SPLITS:
            raise ConfigError(
                f"--cv {self.name} makes {self.n_splits} splits per model (at most "
                f"{MAX_SPLITS}); fix: use fewer folds, steps or groups"
            )
        return self

    def to_spec(self) -> dict[str, Any]:
        """The spec's `cv` field: {} for purged k-fold (its fold count is `folds`)."""
        if self.name == "walk-forward":
            return {"scheme": self.name, "window": self.window, "steps": self.steps}
        if self.name == "cpcv":
            return {"scheme": self.name, "groups": self.groups, "test_groups": self.test_groups}
        return {}

    def describe(self) -> dict[str, Any]:
        """What a result records of its scheme (purged included)."""
        return self.to_spec() or {"scheme": "purged", "folds": self.folds}

    @classmethod
    def from_spec(cls, cv: Any, folds: int) -> CvScheme:
        """The scheme of a spec's `cv` and `folds`; a ConfigError unless `cv` is exactly
        what `to_spec` writes and `folds` its number of splits."""
        if not isinstance(cv, dict):
            raise ConfigError(f"cv must be an object, not {type(cv).__name__}")
        if not cv:
            return cls(folds=folds).check()
        name = cv.get("scheme")
        fields = {"walk-forward": ("window", "steps"), "cpcv": ("groups", "test_groups")}
        if not isinstance(name, str) or name not in fields or set(cv) != {"scheme", *fields[name]}:
            keys = sorted(str(k)[:40] for k in cv)[:10]
            raise ConfigError(f"cv {keys} (scheme {str(name)[:40]!r}) is not a CV scheme")
        scheme = cls(name=name, **{k: cv[k] for k in fields[name]}).check()
        if scheme.n_splits != folds:
            raise ConfigError(f"cv {name} makes {scheme.n_splits} splits, not folds={folds}")
        return scheme


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def cpcv_splits(groups: int, test_groups: int) -> list[tuple[int, ...]]:
    """The test groups of each CPCV split, in split order (itertools.combinations)."""
    return list(itertools.combinations(range(groups), test_groups))


def cpcv_paths(groups: int, test_groups: int) -> np.ndarray:
    """(phi, groups) int array: entry [p, g] is the split whose prediction of group g
    path p uses; the p-th split (in split order) that tests g goes to path p."""
    splits = cpcv_splits(groups, test_groups)
    n_paths = math.comb(groups - 1, test_groups - 1)
    out = np.full((n_paths, groups), -1, dtype=np.int64)
    seen = np.zeros(groups, dtype=np.int64)  # splits testing each group, so far
    for split, tested in enumerate(splits):
        for g in tested:
            out[seen[g], g] = split
            seen[g] += 1
    return out


def assemble_paths(
    frames: Sequence[pd.DataFrame], groups: int, test_groups: int
) -> list[pd.DataFrame]:
    """The phi test paths of CPCV from its splits' OOF frames (frames[i]: split i's,
    with a `group` column): path p is, for every group g, the rows of group g from the
    frame of split cpcv_paths[p, g], in time order."""
    splits = cpcv_splits(groups, test_groups)
    if len(frames) != len(splits):
        raise ConfigError(
            f"cpcv of {groups} groups, {test_groups} tested, has {len(splits)} splits; "
            f"got {len(frames)} OOF frames"
        )
    for i, (frame, tested) in enumerate(zip(frames, splits, strict=True)):
        present = set(np.unique(frame[GROUP_COLUMN]).tolist())
        if present != set(tested):
            raise ConfigError(f"split {i} predicts groups {sorted(present)}, not {list(tested)}")
    paths = []
    for row in cpcv_paths(groups, test_groups):
        parts = [frames[s][frames[s][GROUP_COLUMN] == g] for g, s in enumerate(row)]
        paths.append(pd.concat(parts).sort_index())
    return paths


def stacking_oof(frames: Sequence[pd.DataFrame], scheme: CvScheme) -> list[pd.DataFrame]:
    """The OOF frames the ensemble stacks on: one prediction per predicted row.

    purged, walk-forward: the splits' frames as they are (each row is tested once;
    walk-forward's first block is never tested, so it has none). cpcv: path 0, one
    prediction per row from the one split that tested it first (each row is predicted
    by phi splits, every one out of sample); a single split's prediction, as the
    members' own test predictions are, not an average over phi models that would
    look smoother and surer than any one member is at test time.
    """
    if scheme.name != "cpcv":
        return list(frames)
    return [assemble_paths(frames, scheme.groups, scheme.test_groups)[0]]
