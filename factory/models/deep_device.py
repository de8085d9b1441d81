"""What the deep training loop (models/deep.py) does differently per device, in one place
that the CPU test suite can reach: the device and autocast dtype, which devices halve
the micro-batch on out-of-memory, the RNG states of CUDA, and gradient checkpointing.

- AMP: on CUDA `amp=auto` is fp16 with a GradScaler, `bf16` bfloat16; on a CPU `bf16`
  runs autocast in bfloat16 when asked (never by default); `CPU_AMP` names the modes a
  CPU honours (a test may add fp16 to exercise the GradScaler branch).
- Out of memory: `OOM_HALVING_DEVICES` are the device types whose `torch.OutOfMemoryError`
  halves the micro-batch (CUDA; a test adds "cpu" and injects the error).
- CUDA RNG: read and restored through `cuda_rng_state` / `set_cuda_rng_state` (a test
  stubs torch.cuda's functions; nothing here initialises CUDA on a CPU run).
- Gradient checkpointing: a network names the blocks to recompute in backward in
  `GRAD_CHECKPOINT` (dotted submodule names), on itself or on any of its submodules.
"""

from __future__ import annotations

from functools import cache
from typing import Any

import torch
from torch import nn
from torch.utils.checkpoint import checkpoint

from factory.errors import ConfigError

CPU_AMP: dict[str, torch.dtype] = {"bf16": torch.bfloat16}
OOM_HALVING_DEVICES = {"cuda"}


def pick_device(p: Any) -> torch.device:
    if p.device == "cuda" and not torch.cuda.is_available():
        raise ConfigError("device=cuda but no CUDA device is available; fix: device=auto")
    use_cuda = p.device == "cuda" or (p.device == "auto" and torch.cuda.is_available())
    return torch.device("cuda" if use_cuda else "cpu")


def amp_dtype(p: Any, device: torch.device) -> torch.dtype | None:
    """The autocast dtype of a run, None for float32."""
    if p.amp == "off":
        return None
    if device.type != "cuda":
        return CPU_AMP.get(p.amp)
    # auto = fp16 (+ GradScaler): cuDNN runs RNNs in bf16 only from cuDNN 9.13 on
    return torch.bfloat16 if p.amp == "bf16" else torch.float16


@cache
def cpu_runs_bf16_rnn() -> bool:
    """Whether this CPU's oneDNN runs a recurrent layer under bf16 autocast (some CPUs,
    e.g. AMD EPYCs without AVX-512 BF16, raise "could not create a primitive descriptor
    for the LSTM forward propagation primitive"); probed once per process."""
    net = nn.LSTM(2, 2, batch_first=True)
    try:
        with torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16):
            net(torch.zeros(1, 2, 2))
    except RuntimeError:
        return False
    return True


def check_amp(net: nn.Module, device: torch.device, amp: torch.dtype | None) -> None:
    """A clear error, before any training, for a recurrent net under bf16 on a CPU that
    cannot run it (see cpu_runs_bf16_rnn)."""
    if device.type != "cpu" or amp is not torch.bfloat16:
        return
    recurrent = any(isinstance(m, nn.RNNBase) for m in net.modules())
    if recurrent and not cpu_runs_bf16_rnn():
        raise ConfigError(
            "amp=bf16: this CPU cannot run a recurrent layer in bfloat16 (oneDNN has no "
            "bf16 LSTM/GRU kernel for it); fix: amp=off on this machine, or train on a GPU"
        )


def grad_scaler(device: torch.device, amp: torch.dtype | None) -> torch.amp.GradScaler | None:
    """A GradScaler for fp16 autocast (bf16 and float32 need none)."""
    return torch.amp.GradScaler(device.type, enabled=True) if amp == torch.float16 else None


def halves_on_oom(device: torch.device) -> bool:
    return device.type in OOM_HALVING_DEVICES


def free_device_memory(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.empty_cache()


def cuda_rng_state() -> list[torch.Tensor] | None:
    """Every CUDA device's RNG state where CUDA is available (a checkpoint keeps it)."""
    return torch.cuda.get_rng_state_all() if torch.cuda.is_available() else None


def set_cuda_rng_state(states: list[torch.Tensor] | None, device: torch.device) -> bool:
    """Restore `cuda_rng_state()`'s value on a CUDA run; False when nothing was restored."""
    if states is None or device.type != "cuda":
        return False
    torch.cuda.set_rng_state_all(states)
    return True


def rng_before_step(device: torch.device) -> dict[str, torch.Tensor]:
    """The RNG states a step draws from (dropout), to retry it after out-of-memory."""
    state = {"cpu": torch.get_rng_state()}
    if device.type == "cuda":
        state["cuda"] = torch.cuda.get_rng_state()
    return state


def rng_retry(state: dict[str, torch.Tensor]) -> None:
    torch.set_rng_state(state["cpu"])
    if "cuda" in state:
        torch.cuda.set_rng_state(state["cuda"])


def _checkpointed(module: nn.Module) -> None:
    """Make `module` recompute its forward in backward (activations not kept) in training;
    RNG states are preserved, so dropout draws the same masks again."""
    inner = module.forward

    def forward(*args, **kwargs):
        if module.training and torch.is_grad_enabled():
            return checkpoint(inner, *args, use_reentrant=False, **kwargs)
        return inner(*args, **kwargs)

    module.forward = forward


def grad_checkpoint_blocks(net: nn.Module) -> list[nn.Module]:
    """The blocks the network and its submodules name in GRAD_CHECKPOINT."""
    return [
        m.get_submodule(name) for m in net.modules() for name in getattr(m, "GRAD_CHECKPOINT", ())
    ]


def enable_grad_checkpointing(net: nn.Module) -> int:
    """Recompute each named block in backward; refuses a block with BatchNorm (its running
    statistics would be updated twice). Returns the number of blocks."""
    blocks = grad_checkpoint_blocks(net)
    if not blocks:
        raise ConfigError(f"{type(net).__name__} names no block for grad_checkpointing")
    for block in blocks:
        if any(isinstance(m, nn.modules.batchnorm._BatchNorm) for m in block.modules()):
            raise ConfigError(f"{type(block).__name__}: BatchNorm cannot be checkpointed")
        _checkpointed(block)
    return len(blocks)
