"""bench/gpu_check.py's CPU variant (issue 16): the tiny profile, bf16 autocast, the batch
search, the kill/resume comparison, the boosting GPU probes; one JSON file and a table."""

from __future__ import annotations

import json

import torch

from bench import gpu_check


def test_the_cpu_variant_writes_its_json_and_table(tmp_path, capsys, monkeypatch):
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # tiny nets, a busy CPU: one thread is fastest
    monkeypatch.setitem(gpu_check.SIZES["cpu"], "max_s", 0.5)
    out_file = tmp_path / "gpu_check.json"
    try:
        code = gpu_check.main(["--out", str(out_file), "--models", "lstm,tcn", "--cpu"])
    finally:
        torch.set_num_threads(threads)
    out = json.loads(out_file.read_text())
    assert code == 0 and out["variant"] == "cpu" and out["device"]["cuda"] is False
    assert [m["model"] for m in out["deep"]] == ["lstm", "tcn"]
    for m in out["deep"]:
        assert m["profile"] == "tiny" and m["params"] > 0
        assert m["resume"]["equal"] is True and m["resume"]["resumed_from"] > 0
        profile, largest = m["runs"]
        assert profile["at"] == "profile" and profile["batch"] == 128
        assert largest["at"] == "largest" and largest["batch"] == m["largest_batch"] > 128
        for run in m["runs"]:
            assert run["steps"] >= 2 and run["samples_per_s"] > 0 and run["peak_mem_mb"] is None
            assert abs(run["s_per_epoch_1m"] * run["samples_per_s"] - 1e6) <= 0.01e6
    assert [b["model"] for b in out["boosting"]] == ["xgboost", "lightgbm", "catboost"]
    for b in out["boosting"]:
        assert ("s_per_round" in b) if b["supported"] else b["note"]
    printed = capsys.readouterr().out
    assert "samples/s" in printed and "s/epoch 1M" in printed
    assert printed.count("yes (from step") == 2 and "xgboost" in printed


def test_a_failing_model_is_reported_and_fails_the_check(tmp_path, capsys, monkeypatch):
    def boom(name, *args):
        raise RuntimeError("CUDNN_STATUS_EXECUTION_FAILED")

    monkeypatch.setattr(gpu_check, "deep_model", boom)
    out_file = tmp_path / "out.json"
    code = gpu_check.main(["--out", str(out_file), "--models", "gru", "--cpu", "--no-boosting"])
    out = json.loads(out_file.read_text())
    assert code == 1 and out["deep"] == [
        {"model": "gru", "error": "RuntimeError: CUDNN_STATUS_EXECUTION_FAILED"}
    ]
    assert "gru          FAILED: RuntimeError" in capsys.readouterr().out
