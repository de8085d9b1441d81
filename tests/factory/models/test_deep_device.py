"""The device-specific branches of the deep training loop, run on a CPU (issue 16).

AMP as bf16 autocast on a CPU (and fp16 with its GradScaler where a test allows it), the
micro-batch halving on an injected out-of-memory error, the CUDA RNG state of a
checkpoint through stubs of torch.cuda, gradient accumulation and gradient
checkpointing; every resume compared bit for bit with an uninterrupted run.
"""

from __future__ import annotations

import io
import logging
from pathlib import Path

import pytest
import torch

import factory.models.deep_device as deep_device
from factory.errors import ConfigError
from factory.models import MODELS, get_model
from factory.models.deep import TORCH_FILE, Trainer
from factory.training.checkpoint import CheckpointStore
from factory.training.context import StopTraining
from factory.training.local_context import LocalContext
from factory.training.training_data import load_training_data

SEQUENCE_MODELS = sorted(n for n in MODELS if get_model(n).kind == "sequence")


@pytest.fixture(scope="module", autouse=True)
def one_torch_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def data(small_dataset):
    return load_training_data(small_dataset, 5)


def params(name: str = "lstm", **extra):
    values = {"epochs": "2", "patience": "2", "device": "cpu"} | {
        k: str(v) for k, v in extra.items()
    }
    return get_model(name).params_from("tiny", values)


def fit(name, p, data, store_dir, stop_after: int | None = None):
    """A fit into the store at `store_dir`; with `stop_after`, StopTraining after that many
    checkpoints (a kill at a checkpoint: what a killed run leaves is the same)."""
    box = {}
    stop = None if stop_after is None else lambda: len(box["ctx"].checkpoint_steps) >= stop_after
    box["ctx"] = LocalContext(CheckpointStore(store_dir, "job"), stop=stop)
    model = get_model(name)(p)
    if stop_after is None:
        return model.fit(data, box["ctx"])
    with pytest.raises(StopTraining):
        model.fit(data, box["ctx"])
    return box["ctx"]


def resumed_equals_whole(name, p, data, tmp_path) -> tuple:
    whole = fit(name, p, data, tmp_path / "whole")
    fit(name, p, data, tmp_path / "killed", stop_after=1)
    resumed = fit(name, p, data, tmp_path / "killed")
    assert resumed.resumed_from_ is not None and resumed.resumed_from_ > 0
    same = (
        resumed.predict_proba(data, "test").tobytes() == whole.predict_proba(data, "test").tobytes()
    )
    return whole, resumed, same


# --- AMP -------------------------------------------------------------------------------


def test_amp_defaults_are_unchanged_on_a_cpu():
    cpu, cuda = torch.device("cpu"), torch.device("cuda")
    assert deep_device.amp_dtype(params(amp="auto"), cpu) is None
    assert deep_device.amp_dtype(params(amp="fp16"), cpu) is None
    assert deep_device.amp_dtype(params(amp="bf16"), cpu) is torch.bfloat16
    assert deep_device.amp_dtype(params(amp="auto"), cuda) is torch.float16
    assert deep_device.amp_dtype(params(amp="off"), cuda) is None
    assert deep_device.grad_scaler(cpu, torch.bfloat16) is None


@pytest.mark.skipif(
    not deep_device.cpu_runs_bf16_rnn(),
    reason="this CPU has no bf16 LSTM kernel (the test after this one covers that case)",
)
def test_bf16_autocast_on_a_cpu_trains_in_bf16_and_resumes_exactly(data, tmp_path):
    seen = []
    p = params(amp="bf16")
    trainer = Trainer(p, data, get_model("lstm").build_net)
    trainer.net.head.register_forward_hook(lambda m, i, out: seen.append(out.dtype))
    trainer.train_batch(torch.arange(p.batch_size))
    assert seen == [torch.bfloat16] and trainer.scaler is None
    whole, resumed, same = resumed_equals_whole("lstm", p, data, tmp_path)
    assert same and resumed.amp_ is torch.bfloat16
    fp32 = fit("lstm", params(), data, tmp_path / "fp32")
    assert fp32.predict_proba(data, "test").tobytes() != whole.predict_proba(data, "test").tobytes()


def test_bf16_lstm_on_a_cpu_without_the_kernel_is_refused_before_training(data, monkeypatch):
    monkeypatch.setattr(deep_device, "cpu_runs_bf16_rnn", lambda: False)
    with pytest.raises(ConfigError, match=r"amp=bf16.*fix: amp=off"):
        Trainer(params(amp="bf16"), data, get_model("lstm").build_net)
    Trainer(params("tcn", amp="bf16"), data, get_model("tcn").build_net)  # no recurrent layer


def test_fp16_grad_scaler_is_checkpointed_and_resumes_exactly(data, tmp_path, monkeypatch):
    """A CPU runs fp16 autocast only where allowed (here): the GradScaler branch."""
    monkeypatch.setitem(deep_device.CPU_AMP, "fp16", torch.float16)
    p = params("gru", amp="fp16")
    _, resumed, same = resumed_equals_whole("gru", p, data, tmp_path)
    assert same and resumed.amp_ is torch.float16
    ck = LocalContext(CheckpointStore(tmp_path / "killed", "job")).latest_checkpoint()
    blob = torch.load(io.BytesIO(ck.files[TORCH_FILE]), weights_only=True)
    assert blob["grad_scaler"]["scale"] > 0


# --- out of memory ---------------------------------------------------------------------


def inject_oom(monkeypatch, at_step: int) -> dict:
    """Allow halving on a CPU, and raise torch.OutOfMemoryError in the step `at_step` while
    it runs at the full batch, after part of its work (a forward and backward)."""
    monkeypatch.setattr(deep_device, "OOM_HALVING_DEVICES", {"cuda", "cpu"})
    seen: dict = {"micro": [], "raised": 0}
    original = Trainer._step

    def step(self, idx):
        if self.step == at_step and self.micro == self.p.batch_size:
            seen["raised"] += 1
            x = torch.from_numpy(self.windows.batch(idx[:8].numpy()))
            self.net(x).sum().backward()
            raise torch.OutOfMemoryError("injected: CUDA out of memory")
        seen["micro"].append(self.micro)
        return original(self, idx)

    monkeypatch.setattr(Trainer, "_step", step)
    return seen


def test_out_of_memory_halves_the_micro_batch_and_keeps_the_batch(
    data, monkeypatch, caplog, tmp_path
):
    seen = inject_oom(monkeypatch, at_step=3)
    with caplog.at_level(logging.WARNING, "factory.models.deep"):
        model = get_model("lstm")(params()).fit(data, LocalContext(CheckpointStore(tmp_path, "j")))
    half = params().batch_size // 2
    assert seen["raised"] == 1 and seen["micro"][:3] == [params().batch_size] * 3
    assert set(seen["micro"][3:]) == {half}
    assert "micro-batch 64 x 2 accumulation steps (batch 128)" in caplog.text
    assert model.fit_summary()["bit_exact"] is False and model.epochs_run_ == 2
    n_batches = -(-len(data.rows["train"]) // params().batch_size)
    assert len(seen["micro"]) == 2 * n_batches  # one optimizer step a batch, as before


def test_accumulated_micro_batches_give_the_batch_gradient(data):
    p = params(dropout="0")
    steps = {}
    for accumulation in (1, 4):
        trainer = Trainer(p, data, get_model("lstm").build_net)
        trainer.micro = p.batch_size // accumulation
        loss, weight = trainer.train_batch(torch.arange(p.batch_size))
        steps[accumulation] = (loss, weight, [t.detach().clone() for t in trainer.net.parameters()])
    assert steps[1][1] == steps[4][1]
    assert steps[1][0] == pytest.approx(steps[4][0], rel=1e-5)
    for a, b in zip(steps[1][2], steps[4][2], strict=True):
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-6)
    assert any(not torch.equal(a, b) for a, b in zip(steps[1][2], steps[4][2], strict=True))


def test_out_of_memory_on_a_cpu_is_raised_by_default(data, monkeypatch):
    def oom(self, idx):
        raise torch.OutOfMemoryError("injected")

    monkeypatch.setattr(Trainer, "_step", oom)
    trainer = Trainer(params(), data, get_model("lstm").build_net)
    with pytest.raises(torch.OutOfMemoryError):
        trainer.train_batch(torch.arange(8))
    assert trainer.micro == params().batch_size


def test_resume_after_a_halving_is_exact(data, monkeypatch, tmp_path):
    """The checkpoint keeps the halved micro-batch: a resume continues at it (at full
    batch the sums would round differently)."""
    seen = inject_oom(monkeypatch, at_step=2)
    _, resumed, same = resumed_equals_whole("lstm", params(), data, tmp_path)
    assert seen["raised"] == 2  # the uninterrupted run and the killed one, not the resume
    ck = LocalContext(CheckpointStore(tmp_path / "killed", "job")).latest_checkpoint()
    assert ck.state["micro_batch"] == params().batch_size // 2
    assert same and resumed.fit_summary()["bit_exact"] is False


# --- the CUDA RNG state, through stubs of torch.cuda -----------------------------------


def test_checkpoint_keeps_and_restores_the_cuda_rng_state(data, monkeypatch):
    states = [torch.arange(16, dtype=torch.uint8), torch.arange(16, 32, dtype=torch.uint8)]
    restored = []
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "get_rng_state_all", lambda: [s.clone() for s in states])
    monkeypatch.setattr(torch.cuda, "set_rng_state_all", restored.append)
    trainer = Trainer(params(), data, get_model("lstm").build_net)  # device=cpu
    files, _ = trainer.snapshot()
    blob = torch.load(io.BytesIO(files[TORCH_FILE]), weights_only=True)
    assert [torch.equal(a, b) for a, b in zip(blob["cuda_rng"], states, strict=True)] == [1, 1]
    assert deep_device.set_cuda_rng_state(blob["cuda_rng"], torch.device("cpu")) is False
    assert restored == []  # a CPU run leaves CUDA alone
    assert deep_device.set_cuda_rng_state(blob["cuda_rng"], torch.device("cuda")) is True
    assert len(restored) == 1 and all(map(torch.equal, restored[0], states))
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    blob = torch.load(io.BytesIO(trainer.snapshot()[0][TORCH_FILE]), weights_only=True)
    assert "cuda_rng" not in blob


def test_the_oom_retry_restores_the_rng_it_started_from(monkeypatch):
    calls = []
    monkeypatch.setattr(torch.cuda, "get_rng_state", lambda: torch.ones(4, dtype=torch.uint8))
    monkeypatch.setattr(torch.cuda, "set_rng_state", calls.append)
    state = deep_device.rng_before_step(torch.device("cuda"))
    expected = torch.rand(3)
    deep_device.rng_retry(state)
    assert torch.equal(torch.rand(3), expected) and torch.equal(calls[0], torch.ones(4))
    assert "cuda" not in deep_device.rng_before_step(torch.device("cpu"))


# --- accumulation_steps and grad_checkpointing -----------------------------------------


def test_accumulation_and_checkpointing_params_are_checked():
    p = params(accumulation_steps=4, grad_checkpointing="true")
    assert p.accumulation_steps == 4 and p.grad_checkpointing is True
    assert params().accumulation_steps == 1 and params().grad_checkpointing is False
    with pytest.raises(ConfigError, match="accumulation_steps"):
        params(accumulation_steps=0)
    with pytest.raises(ConfigError, match="accumulation_steps=200 must be <= batch_size"):
        params(accumulation_steps=200)


def _saved_bytes(net, x) -> int:
    total = [0]

    def pack(t):
        total[0] += t.numel() * t.element_size()
        return t

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        net(x).sum().backward()
    return total[0]


@pytest.mark.parametrize("name", SEQUENCE_MODELS)
def test_grad_checkpointing_keeps_fewer_activations_and_the_same_gradient(name):
    cls = get_model(name)
    p = params(name, dropout="0")
    torch.manual_seed(0)
    plain = cls.build_net(7, p).train()
    torch.manual_seed(0)
    lean = cls.build_net(7, p).train()
    assert deep_device.enable_grad_checkpointing(lean) >= 1
    x = torch.randn(16, p.lookback, 7)
    assert _saved_bytes(lean, x) < _saved_bytes(plain, x)
    for a, b in zip(plain.parameters(), lean.parameters(), strict=True):
        torch.testing.assert_close(a.grad, b.grad, rtol=1e-4, atol=1e-6)


def test_a_block_with_batchnorm_is_not_checkpointed():
    class Net(torch.nn.Module):
        GRAD_CHECKPOINT = ("body",)

        def __init__(self):
            super().__init__()
            self.body = torch.nn.Sequential(torch.nn.Linear(3, 3), torch.nn.BatchNorm1d(3))

    with pytest.raises(ConfigError, match="BatchNorm"):
        deep_device.enable_grad_checkpointing(Net())
    with pytest.raises(ConfigError, match="names no block"):
        deep_device.enable_grad_checkpointing(torch.nn.Linear(2, 2))


SMALL = {"tcn": {"channels": 8, "num_levels": 2}}  # lstm: SIGKILLed below


@pytest.mark.parametrize("name", sorted(SMALL))
def test_accumulation_and_checkpointing_resume_exactly(name, data, tmp_path):
    p = params(name, accumulation_steps=3, grad_checkpointing="true", **SMALL[name])
    whole, resumed, same = resumed_equals_whole(name, p, data, tmp_path)
    assert same and resumed.fit_summary()["bit_exact"] is True
    plain = fit(name, params(name, **SMALL[name]), data, tmp_path / "plain")
    assert (
        plain.predict_proba(data, "test").tobytes() != whole.predict_proba(data, "test").tobytes()
    )


@pytest.mark.slow
def test_sigkilled_run_with_accumulation_and_checkpointing_resumes_exactly(small_dataset, tmp_path):
    """`factory train` SIGKILLed after a checkpoint (mid-epoch: every 0.25 s) resumes to
    the uninterrupted result, model bytes included."""
    from tests.factory.cli.test_train_cli import command, kill_after_first_checkpoint, run_json

    extra = ["--param", "accumulation_steps=2", "--param", "grad_checkpointing=true"]
    whole = run_json([*command("lstm", small_dataset, tmp_path / "whole"), *extra])
    cmd = [*command("lstm", small_dataset, tmp_path / "killed"), *extra]
    kill_after_first_checkpoint(cmd, tmp_path / "killed")
    resumed = run_json(cmd)
    assert resumed["job_id"] == whole["job_id"] and resumed["resumed_from"] > 0
    assert resumed["bit_exact"] is True and whole["bit_exact"] is True
    assert resumed["test_predictions_sha256"] == whole["test_predictions_sha256"]
    model = "model.pt"
    assert (Path(resumed["bundle"]) / model).read_bytes() == (
        Path(whole["bundle"]) / model
    ).read_bytes()
