"""A train job's result carries its sample weights and its top-20 features; its bundle
the importance plot; a plan's report the table across models."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from factory.bundle import load_bundle
from factory.evaluation.importance import IMPORTANCE_PNG, TOP
from factory.evaluation.report import build_leaderboard, write_report
from factory.training.checkpoint import CheckpointStore
from factory.training.local_context import LocalContext
from factory.training.train import run_training

PARAMS = {
    "profile": "tiny",
    "n_estimators": "15",
    "importance_rows": "300",
    "importance_repeats": "2",
}


@pytest.fixture(scope="module")
def trained(small_dataset, tmp_path_factory):
    home = tmp_path_factory.mktemp("train-importance")
    out = {}
    for name, extra in (("xgboost", {"sample_weight": "uniqueness"}), ("lightgbm", {})):
        ctx = LocalContext(CheckpointStore(home, name))
        params = PARAMS | extra | ({"nthread": "1"} if name == "lightgbm" else {})
        bundle = home / f"bundle-{name}"
        out[name] = (run_training(small_dataset, name, None, params, ctx, bundle), bundle)
    return out


def test_results_carry_the_top_20_features_and_the_weights(trained):
    result, bundle = trained["xgboost"]
    assert json.loads(json.dumps(result)) == result
    perm = result["importance"]["permutation"]
    assert perm["rows"] == 300 and perm["repeats"] == 2 and len(perm["top"]) == TOP
    values = [r["value"] for r in perm["top"]]
    assert values == sorted(values, reverse=True) and {"feature", "value", "std"} <= set(
        perm["top"][0]
    )
    gain = result["importance"]["gain"]
    assert gain["type"] == "total_gain" and len(gain["top"]) == TOP
    weights = result["sample_weight"]
    assert weights["method"] == "uniqueness" and 0 < weights["mean_uniqueness"] < 1
    assert weights["min_weight"] < 1 < weights["max_weight"]
    assert trained["lightgbm"][0]["sample_weight"]["method"] == "none"
    # the plot lies in the bundle, checksummed with the model's other files
    assert (bundle / IMPORTANCE_PNG).read_bytes()[:4] == b"\x89PNG"
    assert IMPORTANCE_PNG in load_bundle(bundle).meta["files"]


def test_the_report_has_the_table_across_models(trained, tmp_path):
    rows = build_leaderboard({name: r for name, (r, _) in trained.items()})
    paths = write_report(rows, tmp_path)
    assert "## Permutation" in paths["importance_md"].read_text()
    table = pd.read_csv(paths["importance_csv"])  # models in the leaderboard's order
    assert set(table.columns) == {"feature", "xgboost", "lightgbm", "models", "mean_rank"}
    assert len(table) >= TOP
