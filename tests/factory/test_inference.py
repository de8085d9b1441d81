"""Bundles with verified checksums, and `factory predict` reproducing the train job's
predictions from the raw file through the dataset pipeline's own feature code."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pandas as pd
import pytest

from factory.bundle import load_bundle
from factory.errors import FactoryError
from factory.evaluation.metrics import predictions_sha256
from factory.inference import predict_raw
from factory.training.ensemble import run_ensemble
from submitter.cli import main
from tests.factory import evalplan

PROBA = ["p_down", "p_flat", "p_up"]


@pytest.fixture(scope="module")
def plan():
    return evalplan.plan()


def held_out_rows(dataset_dir) -> pd.DatetimeIndex:
    labels = pd.read_parquet(dataset_dir / "labels.parquet")
    keep = (labels["split"] == 2) & labels["usable"] & labels[f"label_h{evalplan.HORIZON}"].notna()
    return labels.index[keep.to_numpy()]


@pytest.mark.parametrize("model", ["xgboost", "lstm"])
def test_predict_on_the_training_input_equals_the_train_jobs_predictions(plan, model):
    result = plan.train[model]
    frame = predict_raw(result["bundle"], plan.raw)
    assert list(frame.columns) == [*PROBA, "pred", "confidence"]
    rows = held_out_rows(plan.dataset_dir)
    assert rows.isin(frame.index).all()
    got = frame.loc[rows, PROBA].to_numpy()
    assert predictions_sha256(got) == result["test_predictions_sha256"]
    assert np.array_equal(frame["pred"].to_numpy(), frame[PROBA].to_numpy().argmax(1) - 1)


def test_an_ensemble_bundle_predicts_like_its_job(plan, tmp_path):
    bundles = {m: r["bundle"] for m, r in plan.train.items()}
    result, bundle = run_ensemble(
        plan.dataset_dir, evalplan.HORIZON, plan.oof, bundles, "logistic", tmp_path / "ens"
    )
    frame = predict_raw(bundle, plan.raw)
    got = frame.loc[held_out_rows(plan.dataset_dir), PROBA].to_numpy()
    assert predictions_sha256(got) == result["test_predictions_sha256"]
    # a changed byte inside a member is caught by the ensemble's own checksums
    member = bundle / "members" / "lstm" / "config.json"
    member.write_text(member.read_text().replace('"epochs": 1', '"epochs": 2'))
    with pytest.raises(FactoryError, match=r"members/lstm/config\.json changed"):
        load_bundle(bundle)


def _copy(plan, tmp_path):
    return shutil.copytree(plan.train["xgboost"]["bundle"], tmp_path / "bundle")


def test_a_tampered_bundle_is_refused(plan, tmp_path):
    bundle = _copy(plan, tmp_path)
    assert load_bundle(bundle).model.name == "xgboost"  # an intact copy loads
    model = bundle / "model.ubj"
    data = bytearray(model.read_bytes())
    data[len(data) // 2] ^= 0x01  # one bit of one byte
    model.write_bytes(bytes(data))
    with pytest.raises(FactoryError) as info:
        load_bundle(bundle)
    message = str(info.value)
    assert "model.ubj" in message and "changed" in message and "\n" not in message


def test_missing_files_and_non_bundles_are_refused(plan, tmp_path):
    bundle = _copy(plan, tmp_path)
    (bundle / "dataset.json").unlink()
    with pytest.raises(FactoryError, match=r"dataset\.json is missing"):
        load_bundle(bundle)
    with pytest.raises(FactoryError, match="not a model bundle"):
        load_bundle(tmp_path)


def test_cli_predict_writes_files_and_refuses_tampering(plan, tmp_path, capsys):
    bundle = plan.train["xgboost"]["bundle"]
    out = tmp_path / "pred.csv"
    code = main(["predict", "--bundle", bundle, "--raw", str(plan.raw), "--out", str(out)])
    assert code == 0
    written = pd.read_csv(out, index_col="timestamp", parse_dates=["timestamp"])
    frame = predict_raw(bundle, plan.raw)
    assert np.allclose(written[PROBA].to_numpy(), frame[PROBA].to_numpy(), atol=1e-12)
    capsys.readouterr()
    pq = tmp_path / "pred.parquet"
    args = ["predict", "--bundle", bundle, "--raw", str(plan.raw), "--out", str(pq), "--json"]
    assert main(args) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["rows"] == len(frame) and sum(summary["predicted"].values()) == len(frame)
    assert pd.read_parquet(pq).equals(frame)

    tampered = _copy(plan, tmp_path)
    (tampered / "config.json").write_text((tampered / "config.json").read_text() + " ")
    assert main(["predict", "--bundle", str(tampered), "--raw", str(plan.raw)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: bundle") and "config.json" in err and "\n" not in err
