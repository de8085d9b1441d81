"""Walk-forward and CPCV splits of real models (xgboost and lightgbm, tiny) on a small
dataset, stacked by the ensemble: what each split predicts, what the meta-learner fits
on (out-of-sample rows only), and CPCV's test paths."""

from __future__ import annotations

import functools

import numpy as np
import pandas as pd
import pytest

from factory.errors import ConfigError
from factory.training.cv import run_cv_fold
from factory.training.cv_schemes import CvScheme, cpcv_splits
from factory.training.ensemble import run_ensemble
from factory.training.train import run_training
from factory.training.training_data import load_training_data
from tests.factory import evalplan

MODELS = {
    "xgboost": evalplan.PARAMS["xgboost"],
    "lightgbm": {"profile": "tiny", "n_estimators": "20", "nthread": "1"},
}
SCHEMES = {
    "walk-forward": CvScheme("walk-forward", steps=2),
    "cpcv": CvScheme("cpcv", groups=4, test_groups=2),
}


@functools.lru_cache(maxsize=1)
def bundles() -> dict[str, str]:
    home, _, dataset_dir = evalplan.dataset()
    out = {}
    for model, params in MODELS.items():
        ctx = evalplan.context(home, f"schemes-train-{model}")
        bundle = home / "models" / f"schemes-train-{model}"
        out[model] = run_training(dataset_dir, model, evalplan.HORIZON, params, ctx, bundle)[
            "bundle"
        ]
    return out


@functools.lru_cache(maxsize=2)
def splits(name: str) -> tuple[dict[str, list[dict]], dict[str, list[pd.DataFrame]]]:
    """model -> the split results and the OOF frames, in split order."""
    home, _, dataset_dir = evalplan.dataset()
    scheme = SCHEMES[name]
    results, frames = {}, {}
    for model, params in MODELS.items():
        results[model], frames[model] = [], []
        for k in range(scheme.n_splits):
            ctx = evalplan.context(home, f"schemes-{name}-{model}-{k}")
            args = (dataset_dir, model, evalplan.HORIZON, params, k, scheme.n_splits, None, ctx)
            result, frame = run_cv_fold(*args, scheme=scheme.to_spec())
            results[model].append(result)
            frames[model].append(frame)
    return results, frames


def eligible_rows() -> np.ndarray:
    return load_training_data(evalplan.dataset()[2], evalplan.HORIZON).split_rows("train")


@pytest.mark.parametrize("name", list(SCHEMES))
def test_every_split_predicts_its_test_rows_and_trains_away_from_them(name):
    results, frames = splits(name)
    scheme = SCHEMES[name]
    for model in MODELS:
        for k, (r, frame) in enumerate(zip(results[model], frames[model], strict=True)):
            assert (r["fold"], r["folds"], r["cv"]) == (k, scheme.n_splits, scheme.to_spec())
            assert r["embargo"] == 16 and len(frame) == r["rows"]["test"]
            tested = {int(x) for s in r["test_ranges"] for x in range(s["first"], s["last"] + 1)}
            assert set(frame["row"].tolist()) <= tested
            for seg in r["train_ranges"]:
                for test in r["test_ranges"]:
                    assert seg["last"] < test["first"] or seg["first"] > test["last"]
                if name == "walk-forward":  # training strictly before the test block
                    assert seg["last"] < r["test_range"]["first"]
            if name == "cpcv":
                assert r["test_groups"] == list(scheme_groups(k))
                assert set(frame["group"]) == set(scheme_groups(k))


def scheme_groups(k: int) -> tuple[int, ...]:
    scheme = SCHEMES["cpcv"]
    return cpcv_splits(scheme.groups, scheme.test_groups)[k]


def test_walk_forward_ensemble_stacks_on_the_later_blocks_only():
    _, frames = splits("walk-forward")
    result, _ = run_ensemble(
        evalplan.dataset()[2], evalplan.HORIZON, frames, bundles(), scheme=SCHEMES["walk-forward"]
    )
    first_block = np.array_split(eligible_rows(), 3)[0]
    assert result["oof_rows"] == len(eligible_rows()) - len(first_block)
    assert result["oof_rows_dropped"] == 0
    assert result["cv"] == {"scheme": "walk-forward", "window": "expanding", "steps": 2} | {
        "stacked_on": "oof"
    }
    assert result["metrics"]["test"]["n"] > 0 and "cv_paths" not in result


def test_cpcv_ensemble_stacks_on_path_zero_and_scores_every_path(tmp_path):
    _, frames = splits("cpcv")
    scheme = SCHEMES["cpcv"]
    result, bundle = run_ensemble(
        evalplan.dataset()[2],
        evalplan.HORIZON,
        frames,
        bundles(),
        method="greedy",
        bundle_dir=tmp_path / "ens",
        scheme=scheme,
    )
    rows = eligible_rows()
    assert result["oof_rows"] == len(rows) and result["oof_rows_dropped"] == 0
    assert result["cv"] == scheme.to_spec() | {"stacked_on": "path 0"}
    for model in MODELS:
        paths = result["cv_paths"][model]
        assert len(paths) == scheme.n_paths == 3
        assert all(p["n"] == len(rows) and p["log_loss"] > 0 for p in paths)
        # path 0 is what the members scored on as stacked OOF
        assert paths[0]["log_loss"] == pytest.approx(
            result["member_metrics"][model]["oof"]["log_loss"]
        )
    assert (bundle / "ensemble.json").is_file()
    # and a split order mix-up is refused, not stacked
    with pytest.raises(ConfigError, match="predicts groups"):
        shuffled = {m: f[::-1] for m, f in frames.items()}
        run_ensemble(evalplan.dataset()[2], evalplan.HORIZON, shuffled, bundles(), scheme=scheme)
