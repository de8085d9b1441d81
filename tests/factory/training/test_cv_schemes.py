"""CV schemes: walk-forward and CPCV splits against brute force (purge, embargo, time
order), CPCV's combinatorics and test paths against a brute-force enumeration, and the
one OOF prediction per row that the ensemble stacks on, never an in-sample one."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pandas as pd
import pytest

from factory.errors import ConfigError
from factory.training.cv_schemes import (
    MAX_SPLITS,
    CvScheme,
    assemble_paths,
    cpcv_paths,
    cpcv_splits,
    stacking_oof,
)
from factory.training.folds import cpcv, purged_kfold, scheme_folds, walk_forward
from tests.factory.training.test_cv import EMBARGOES, random_case

INF = pd.Timestamp.max.tz_localize("UTC")


def brute_train(index, t1, candidates, blocks, embargo) -> list[int]:
    """The candidates clear of every test block, by the definitions, one row at a time."""
    ts = list(index)
    ends = [INF if pd.isna(v) else v for v in t1]
    spans = []
    for block in blocks:
        start, end = ts[block[0]], max(max(ends[r] for r in block), ts[block[-1]])
        if end == INF:
            until = INF
        elif isinstance(embargo, int):
            last = max(i for i in range(len(ts)) if ts[i] <= end)
            until = ts[last + embargo] if last + embargo < len(ts) else INF
        else:
            until = end + embargo
        spans.append((start, end, until))
    keep = []
    for r in candidates:
        overlaps = any(ts[r] <= end and ends[r] >= start for start, end, _ in spans)
        embargoed = any(end < ts[r] <= until for _, end, until in spans)
        if not overlaps and not embargoed:
            keep.append(int(r))
    return keep


def check_inner(f, index, t1):
    inner = np.concatenate([f.inner_train_rows, f.inner_val_rows])
    assert np.isin(inner, f.train_rows).all() and not np.isin(inner, f.test_rows).any()
    assert f.inner_train_rows.max() < f.inner_val_rows.min()


# --- walk-forward --------------------------------------------------------------------


@pytest.mark.parametrize("seed", range(5))
@pytest.mark.parametrize("embargo", EMBARGOES, ids=str)
@pytest.mark.parametrize("window", ["expanding", "sliding"])
def test_walk_forward_matches_brute_force_and_tests_only_after_training(seed, embargo, window):
    index, t1, eligible = random_case(seed, n=240)
    steps = 4
    splits = walk_forward(index, t1, eligible, steps, window, embargo)
    rows = np.flatnonzero(eligible)
    blocks = np.array_split(rows, steps + 1)
    assert len(splits) == steps
    assert np.array_equal(np.concatenate([f.test_rows for f in splits]), rows[len(blocks[0]) :])
    for s, f in enumerate(splits):
        assert np.array_equal(f.test_rows, blocks[s + 1])
        candidates = np.concatenate(blocks[: s + 1]) if window == "expanding" else blocks[s]
        assert f.train_rows.tolist() == brute_train(index, t1, candidates, [f.test_rows], 0)
        # strictly after: every training row starts, and its label ends, before the test
        start = index[f.test_rows[0]]
        assert f.train_rows.max() < f.test_rows.min()
        assert all(t1.iloc[r] < start for r in f.train_rows)
        assert f.purged + f.embargoed + len(f.train_rows) == len(candidates)
        check_inner(f, index, t1)


def test_walk_forward_refuses_too_many_steps_and_a_bad_window():
    index, t1, eligible = random_case(0)
    with pytest.raises(ConfigError, match="fewer steps"):
        walk_forward(index, t1, eligible & (np.arange(len(index)) < 9), 4)
    with pytest.raises(ConfigError, match="expanding or sliding"):
        walk_forward(index, t1, eligible, 3, "rolling")


# --- CPCV splits ---------------------------------------------------------------------


@pytest.mark.parametrize("seed", range(4))
@pytest.mark.parametrize("embargo", EMBARGOES, ids=str)
def test_cpcv_splits_match_brute_force_per_test_group(seed, embargo):
    index, t1, eligible = random_case(seed, n=240)
    groups, k = 5, 2
    splits = cpcv(index, t1, eligible, groups, k, embargo)
    rows = np.flatnonzero(eligible)
    blocks = np.array_split(rows, groups)
    assert len(splits) == math.comb(groups, k)
    assert [f.groups for f in splits] == list(itertools.combinations(range(groups), k))
    for f in splits:
        tested = [blocks[g] for g in f.groups]
        assert np.array_equal(f.test_rows, np.concatenate(tested))
        expected_groups = np.concatenate([np.full(len(blocks[g]), g) for g in f.groups])
        assert np.array_equal(f.group_of_test, expected_groups)
        candidates = np.concatenate([blocks[g] for g in range(groups) if g not in f.groups])
        assert f.train_rows.tolist() == brute_train(index, t1, candidates, tested, embargo)
        assert not np.isin(f.train_rows, f.test_rows).any()
        assert f.purged + f.embargoed + len(f.train_rows) == len(candidates)
        check_inner(f, index, t1)


@pytest.mark.parametrize(("groups", "k"), [(2, 1), (4, 2), (5, 3), (6, 2), (7, 1)])
def test_cpcv_group_combinatorics(groups, k):
    splits = cpcv_splits(groups, k)
    assert (
        len(splits)
        == math.comb(groups, k)
        == CvScheme("cpcv", groups=groups, test_groups=k).n_splits
    )
    assert len(set(splits)) == len(splits) and all(len(s) == k for s in splits)
    per_group = [sum(g in s for s in splits) for g in range(groups)]
    n_paths = CvScheme("cpcv", groups=groups, test_groups=k).n_paths
    assert per_group == [math.comb(groups - 1, k - 1)] * groups == [n_paths] * groups
    assert n_paths * groups == k * len(splits)


def test_one_cpcv_group_is_the_purged_kfold():
    index, t1, eligible = random_case(3)
    one_group = cpcv(index, t1, eligible, 4, 1, 5)
    for a, b in zip(one_group, purged_kfold(index, t1, eligible, 4, 5), strict=True):
        assert np.array_equal(a.train_rows, b.train_rows)
        assert np.array_equal(a.test_rows, b.test_rows)
        assert np.array_equal(a.inner_val_rows, b.inner_val_rows)


# --- CPCV paths ----------------------------------------------------------------------


def brute_paths(groups: int, k: int) -> list[list[int]]:
    """Paths by enumeration: every (split, group) test cell, each path taking, group by
    group, the first split testing that group that no earlier path has taken."""
    cells = [
        (s, g) for s, combo in enumerate(itertools.combinations(range(groups), k)) for g in combo
    ]
    taken: set[tuple[int, int]] = set()
    paths = []
    while len(taken) < len(cells):
        path = []
        for g in range(groups):
            s = min(s for s, h in cells if h == g and (s, h) not in taken)
            taken.add((s, g))
            path.append(s)
        paths.append(path)
    return paths


@pytest.mark.parametrize("groups", range(2, 8))
def test_cpcv_paths_match_a_brute_force_enumeration(groups):
    for k in range(1, groups):
        paths = cpcv_paths(groups, k)
        assert paths.tolist() == brute_paths(groups, k)
        splits = cpcv_splits(groups, k)
        assert paths.shape == (math.comb(groups - 1, k - 1), groups)
        cells = {(int(s), g) for row in paths for g, s in enumerate(row)}
        assert len(cells) == paths.size == k * len(splits)  # every test cell used once
        assert all(g in splits[s] for s, g in cells)  # a path uses only tested groups


def test_cpcv_paths_of_six_groups_two_tested_are_afml_figure_12_2():
    paths = cpcv_paths(6, 2)
    # splits in combinations order: (0,1) (0,2) (0,3) (0,4) (0,5) (1,2) (1,3) ... (4,5)
    assert paths[:, 0].tolist() == [0, 1, 2, 3, 4]  # group 0: the first five splits
    assert paths[:, 1].tolist() == [0, 5, 6, 7, 8]
    assert paths[:, 5].tolist() == [4, 8, 11, 13, 14]
    assert paths.tolist()[0] == [0, 0, 1, 2, 3, 4]


def fake_frames(folds, index, seed=0) -> list[pd.DataFrame]:
    """Each split's OOF frame as run_cv_fold writes it, probabilities random, plus the
    split's number (to see where each prediction came from)."""
    rng = np.random.default_rng(seed)
    out = []
    for f in folds:
        p = rng.dirichlet([1, 1, 1], size=len(f.test_rows))
        frame = pd.DataFrame(p, columns=["p_down", "p_flat", "p_up"])
        frame["y"] = f.test_rows % 3
        frame["row"] = f.test_rows
        frame["group"] = f.group_of_test
        frame["split"] = f.fold
        frame.index = pd.DatetimeIndex(index[f.test_rows], name="timestamp")
        out.append(frame)
    return out


@pytest.mark.parametrize(("groups", "k"), [(4, 2), (5, 3), (6, 2)])
def test_assembled_paths_hold_each_rows_prediction_from_its_paths_split(groups, k):
    index, t1, eligible = random_case(1, n=300)
    folds = cpcv(index, t1, eligible, groups, k, 3)
    frames = fake_frames(folds, index)
    paths = assemble_paths(frames, groups, k)
    table = cpcv_paths(groups, k)
    rows = np.flatnonzero(eligible)
    group_of = np.concatenate(
        [np.full(len(b), g) for g, b in enumerate(np.array_split(rows, groups))]
    )
    predicted = {(f.fold, int(r)): frames[f.fold].loc[index[r]] for f in folds for r in f.test_rows}
    assert len(paths) == math.comb(groups - 1, k - 1)
    for p, path in enumerate(paths):
        assert np.array_equal(path["row"].to_numpy(), rows)  # every eligible row, once
        for r, g, (_, got) in zip(rows, group_of, path.iterrows(), strict=True):
            want = predicted[(int(table[p, g]), int(r))]
            assert got["split"] == table[p, g] and got["p_up"] == want["p_up"]


def test_paths_refuse_frames_out_of_split_order():
    index, t1, eligible = random_case(2, n=200)
    frames = fake_frames(cpcv(index, t1, eligible, 4, 2, 0), index)
    with pytest.raises(ConfigError, match="split 0 predicts groups"):
        assemble_paths(frames[::-1], 4, 2)
    with pytest.raises(ConfigError, match="6 splits"):
        assemble_paths(frames[:5], 4, 2)


def test_the_ensemble_stacks_on_path_zero_and_only_on_out_of_sample_predictions():
    index, t1, eligible = random_case(4, n=300)
    scheme = CvScheme("cpcv", groups=5, test_groups=2)
    folds = scheme_folds(scheme, index, t1, eligible, 4)
    frames = fake_frames(folds, index)
    (stacked,) = stacking_oof(frames, scheme)
    assert stacked.equals(assemble_paths(frames, 5, 2)[0])
    assert not stacked.index.duplicated().any()
    assert np.array_equal(stacked["row"].to_numpy(), np.flatnonzero(eligible))
    for r, s in zip(stacked["row"], stacked["split"], strict=True):
        f = folds[s]  # the split that predicted row r tested it and never trained on it
        assert r in f.test_rows
        assert r not in f.train_rows and r not in f.inner_train_rows and r not in f.inner_val_rows


@pytest.mark.parametrize("window", ["expanding", "sliding"])
def test_walk_forward_stacks_on_the_tested_blocks_only(window):
    index, t1, eligible = random_case(5, n=200)
    scheme = CvScheme("walk-forward", steps=3, window=window)
    folds = scheme_folds(scheme, index, t1, eligible, 2)
    frames = [frame.drop(columns="group") for frame in fake_frames(folds, index)]
    stacked = pd.concat(stacking_oof(frames, scheme))
    first_block = np.array_split(np.flatnonzero(eligible), 4)[0]
    assert not np.isin(stacked["row"], first_block).any()
    assert len(stacked) == eligible.sum() - len(first_block)
    for r, s in zip(stacked["row"], stacked["split"], strict=True):
        assert r in folds[s].test_rows and r not in folds[s].train_rows


# --- the scheme as a spec holds it -------------------------------------------------


@pytest.mark.parametrize(
    ("scheme", "spec", "splits"),
    [
        (CvScheme(folds=4), {}, 4),
        (
            CvScheme("walk-forward", steps=3, window="sliding"),
            {"scheme": "walk-forward", "window": "sliding", "steps": 3},
            3,
        ),
        (
            CvScheme("cpcv", groups=6, test_groups=2),
            {"scheme": "cpcv", "groups": 6, "test_groups": 2},
            15,
        ),
    ],
)
def test_a_scheme_round_trips_through_its_spec(scheme, spec, splits):
    assert scheme.to_spec() == spec and scheme.n_splits == splits
    assert CvScheme.from_spec(spec, splits) == scheme


@pytest.mark.parametrize(
    ("cv", "folds", "message"),
    [
        ({"scheme": "cpcv", "groups": 6, "test_groups": 2}, 14, "15 splits, not folds=14"),
        ({"scheme": "cpcv", "groups": 6, "test_groups": 6}, 1, "--test-groups 6"),
        ({"scheme": "cpcv", "groups": 10**9, "test_groups": 2}, 1, "--groups"),
        ({"scheme": "cpcv", "groups": 14, "test_groups": 7}, 3432, f"at most {MAX_SPLITS}"),
        ({"scheme": "cpcv", "groups": "6", "test_groups": 2}, 15, "whole numbers"),
        ({"scheme": "walk-forward", "window": "rolling", "steps": 3}, 3, "--window"),
        ({"scheme": "walk-forward", "steps": 3}, 3, "is not a CV scheme"),
        ({"scheme": "purged", "folds": 5}, 5, "is not a CV scheme"),
        ({"scheme": ["cpcv"]}, 5, "is not a CV scheme"),
        ([], 5, "must be an object"),
    ],
)
def test_a_malformed_scheme_is_refused(cv, folds, message):
    with pytest.raises(ConfigError, match=message.replace("[", r"\[")):
        CvScheme.from_spec(cv, folds)
