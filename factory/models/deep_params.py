"""Hyperparameters of the sequence models (lstm, gru, tcn, patchtst, itransformer, tft).

Light on purpose, as models/params.py: the registry and `submit` read these without
importing torch. `SequenceParams` holds the training fields that models/deep.py uses;
each network adds its own sizes and carries its `PROFILES` ("tiny": seconds on a CPU,
"default": real sizes).

The default profiles on a 16 GB T4 (Colab's smallest GPU): ESTIMATED, no GPU was at
hand; `bench/gpu_check.py` measures them on one. Next to each profile: its parameters
and, at its default batch, for 110 features (the synthetic MES dataset; parameters and
memory grow with the feature count): the activations a training step keeps (measured
on a CPU in float32 with torch.autograd.graph.saved_tensors_hooks; fp16 AMP keeps
roughly half), the training FLOPs per sample (torch.utils.flop_counter; recurrences by
hand) and the expected training time of one epoch of 1,000,000 decision rows. Those
times assume ~10 TFLOP/s effective for the matmul-heavy nets (15 % of the T4's fp16
tensor-core peak) and ~15 s an epoch for gathering the windows on Colab's 2 vCPUs and
copying them to the GPU (64 x 110 float32 = 28 KB a sample, 28 GB an epoch); weights,
gradients and AdamW's two moments take 16 bytes a parameter, the CUDA context ~0.5 GB.
Every default fits a T4 with room to spare, so none is cut for it; a larger feature
set or lookback can use `accumulation_steps` or `grad_checkpointing`, and an
out-of-memory halves the micro-batch by itself.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from factory.errors import ConfigError
from factory.models.params import Profiles, TrainingParams, tiny_and_default
from factory.models.spaces import Space

DEVICES = ("auto", "cpu", "cuda")
AMP_MODES = ("auto", "bf16", "fp16", "off")

# tiny: seconds on a CPU (lookback 16, a few small batches); patience = epochs
_TINY = {
    "lookback": 16,
    "dropout": 0.1,
    "batch_size": 128,
    "epochs": 3,
    "learning_rate": 3e-3,
    "weight_decay": 0.0,
    "patience": 3,
    "report_every_batches": 10,
}


@dataclass(frozen=True)
class SequenceParams(TrainingParams):
    """Training fields shared by every sequence model (factory/models/deep.py trains them)."""

    POSITIVE = ("lookback", "batch_size", "epochs", "learning_rate", "patience")
    POSITIVE += ("report_every_batches", "accumulation_steps")

    lookback: int = 64
    dropout: float = 0.2
    batch_size: int = 512
    epochs: int = 50
    learning_rate: float = 1e-3
    weight_decay: float = 1e-4
    patience: int = 8
    grad_clip: float = 1.0
    report_every_batches: int = 100
    device: str = "auto"  # auto | cpu | cuda
    amp: str = "auto"  # auto (CUDA: fp16) | bf16 (RNNs need cuDNN >= 9.13) | fp16 | off
    # memory: each batch of batch_size split into this many micro-batches whose gradients
    # add up (the same optimizer step; BatchNorm, in patchtst, normalises over each
    # micro-batch); an out-of-memory on CUDA halves the micro-batch further
    accumulation_steps: int = 1
    grad_checkpointing: bool = False  # recompute blocks in backward: less memory, ~30 % slower

    def __post_init__(self) -> None:
        super().__post_init__()
        if not 0 <= self.dropout < 1:
            raise ConfigError(f"dropout={self.dropout} must lie in [0, 1)")
        if self.device not in DEVICES or self.amp not in AMP_MODES:
            raise ConfigError(
                f"device={self.device} amp={self.amp}; fix: device one of {', '.join(DEVICES)}, "
                f"amp one of {', '.join(AMP_MODES)}"
            )
        if self.accumulation_steps > self.batch_size:
            raise ConfigError(
                f"accumulation_steps={self.accumulation_steps} must be <= batch_size="
                f"{self.batch_size}; fix: lower it"
            )


def check_heads(d_model: int, n_heads: int) -> None:
    if d_model % n_heads:
        raise ConfigError(f"d_model={d_model} must be a multiple of n_heads={n_heads}")


@dataclass(frozen=True)
class LSTMParams(SequenceParams):
    # T4, estimated: 255 k parameters; batch 512 keeps ~0.6 GB of activations (fp32);
    # 0.1 GFLOP a sample; an epoch of 1 M rows ~1 min (the recurrence is sequential:
    # latency-bound, ~20 ms a step of 512, plus the window gather)
    PROFILES: ClassVar[Profiles] = tiny_and_default(_TINY | {"hidden_size": 16, "num_layers": 1})
    POSITIVE = ("hidden_size", "num_layers")
    # `submit --tune lstm` (and gru, which shares these fields); the lookback stays the
    # job's own: it may not exceed what the dataset was built for
    SEARCH_SPACE: ClassVar[Space] = {
        "hidden_size": ("categorical", [32, 64, 128, 256]),
        "num_layers": ("int", 1, 3),
        "dropout": ("float", 0.0, 0.5),
        "learning_rate": ("float", 1e-4, 1e-2, "log"),
        "weight_decay": ("float", 1e-6, 1e-2, "log"),
        "batch_size": ("categorical", [128, 256, 512]),
    }

    hidden_size: int = 128
    num_layers: int = 2


@dataclass(frozen=True)
class GRUParams(LSTMParams):
    """The same fields and profiles as LSTMParams."""

    # T4, estimated: 192 k parameters; ~0.7 GB of activations at batch 512; 0.07 GFLOP a
    # sample; an epoch of 1 M rows ~1 min (as the LSTM)

    PROFILES: ClassVar[Profiles] = LSTMParams.PROFILES


@dataclass(frozen=True)
class TCNParams(SequenceParams):
    """Bai, Kolter & Koltun 2018; receptive field 1 + 2 (kernel_size - 1)(2^num_levels - 1)."""

    # T4, estimated: 140 k parameters; ~0.3 GB of activations at batch 512; 0.05 GFLOP a
    # sample; an epoch of 1 M rows ~30 s (bound by the window gather)

    PROFILES: ClassVar[Profiles] = tiny_and_default(
        _TINY | {"channels": 16, "num_levels": 3, "kernel_size": 3}
    )
    POSITIVE = ("channels", "num_levels", "kernel_size")

    channels: int = 64
    num_levels: int = 5  # dilations 1, 2, 4, 8, 16: receptive field 125 >= lookback 64
    kernel_size: int = 3


@dataclass(frozen=True)
class PatchTSTParams(SequenceParams):
    """Nie et al. 2023: its large-data sizes, lr and batch; the lookback is the dataset's."""

    # T4, estimated: 0.74 M parameters; ~3.2 GB of activations at batch 128 (x 110 series
    # of 9 patches each); 2.1 GFLOP a sample; an epoch of 1 M rows ~4 min (on 2 CPU
    # cores: 17 samples/s, 16 h)

    # tiny: 3 patches a series; with ~110 features the encoder sees ~330 short sequences
    PROFILES: ClassVar[Profiles] = tiny_and_default(
        _TINY
        | {"patch_len": 8, "stride": 8, "d_model": 8, "n_heads": 2, "num_layers": 1, "d_ff": 16}
    )
    POSITIVE = ("patch_len", "stride", "d_model", "n_heads", "num_layers", "d_ff")

    patch_len: int = 16
    stride: int = 8
    revin: bool = True  # instance normalisation per series, learnable affine
    learning_rate: float = 1e-4
    batch_size: int = 128  # x n_features series per batch (channel independence)
    d_model: int = 128
    n_heads: int = 16
    num_layers: int = 3
    d_ff: int = 256

    def __post_init__(self) -> None:
        super().__post_init__()
        check_heads(self.d_model, self.n_heads)
        if self.patch_len > self.lookback:
            raise ConfigError(f"patch_len={self.patch_len} must be <= lookback={self.lookback}")


@dataclass(frozen=True)
class ITransformerParams(SequenceParams):
    """Liu et al. 2024 (d_model 512, 8 heads; 3 layers, d_ff 512); `use_norm` is off by
    default: to classify, the level of a feature carries information."""

    # T4, estimated: 4.9 M parameters (3 layers of width 512: 1.6 M each); ~6.9 GB
    # of activations at batch 512 in fp32, ~3.5 GB with fp16 AMP: the largest default,
    # still under half a T4; 3.4 GFLOP a sample; an epoch of 1 M rows ~6 min

    PROFILES: ClassVar[Profiles] = tiny_and_default(
        _TINY | {"d_model": 8, "n_heads": 1, "num_layers": 1, "d_ff": 16}
    )
    POSITIVE = ("d_model", "n_heads", "num_layers", "d_ff")

    dropout: float = 0.1
    learning_rate: float = 5e-4
    d_model: int = 512
    n_heads: int = 8
    num_layers: int = 3
    d_ff: int = 512
    use_norm: bool = False  # per-variate window normalisation (forecasting); off to classify

    def __post_init__(self) -> None:
        super().__post_init__()
        check_heads(self.d_model, self.n_heads)


@dataclass(frozen=True)
class TFTParams(SequenceParams):
    """Lim et al. 2021 (hidden 160, 4 heads, dropout 0.1, one LSTM layer, batch 128)."""

    # T4, estimated: 2.1 M parameters (one GRN per feature); ~3.0 GB of activations at
    # batch 128; 0.72 GFLOP a sample, in many small per-feature ops (~3 TFLOP/s
    # effective): an epoch of 1 M rows ~4-5 min (on 2 CPU cores: 11 samples/s, 25 h)

    PROFILES: ClassVar[Profiles] = tiny_and_default(
        _TINY | {"lookback": 8, "hidden_size": 8, "embed_size": 2, "n_heads": 2}
    )
    POSITIVE = ("hidden_size", "embed_size", "n_heads", "lstm_layers")

    dropout: float = 0.1
    batch_size: int = 128
    hidden_size: int = 160
    embed_size: int = 16  # each feature's own embedding (the paper: hidden_size; costly)
    n_heads: int = 4
    lstm_layers: int = 1

    def __post_init__(self) -> None:
        super().__post_init__()
        check_heads(self.hidden_size, self.n_heads)
