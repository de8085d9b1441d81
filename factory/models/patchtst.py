"""PatchTST (Nie et al. 2023, "A Time Series is Worth 64 Words") as a classifier.

1. RevIN: each series of each window is normalised by its own mean and std, then
   scaled and shifted by a learnable per-feature affine (Kim et al. 2022).
2. Patching: each feature's series (length lookback) is padded at the end by `stride`
   copies of its last value and cut into overlapping patches of `patch_len` every
   `stride` steps: (lookback - patch_len) // stride + 2 patches.
3. Channel independence: every feature's patch sequence is embedded (linear, plus a
   learnable position encoding) and encoded ALONE by one Transformer encoder shared by
   all features (post-norm layers with BatchNorm, GELU feed-forward, as the paper).
4. Head: the representations of every patch of every feature, flattened, -> linear.
(The paper's "residual attention" between layers is left out.)
"""

from __future__ import annotations

import torch
from torch import nn

from factory.models.deep import SequenceModel
from factory.models.deep_params import PatchTSTParams
from factory.models.transformer import EncoderLayer
from factory.training.training_data import N_CLASSES


class RevIN(nn.Module):
    """Reversible instance normalisation over time, per sample and series: (B, L, C)."""

    def __init__(self, n_series: int, eps: float = 1e-5) -> None:
        super().__init__()
        self.eps = eps
        self.weight = nn.Parameter(torch.ones(n_series))
        self.bias = nn.Parameter(torch.zeros(n_series))

    def normalize(self, x: torch.Tensor) -> tuple[torch.Tensor, tuple[torch.Tensor, ...]]:
        mean = x.mean(dim=1, keepdim=True).detach()
        std = torch.sqrt(x.var(dim=1, keepdim=True, unbiased=False) + self.eps).detach()
        return (x - mean) / std * self.weight + self.bias, (mean, std)

    def denormalize(self, y: torch.Tensor, stats: tuple[torch.Tensor, ...]) -> torch.Tensor:
        mean, std = stats
        return (y - self.bias) / (self.weight + self.eps**2) * std + mean


class PatchTSTNet(nn.Module):
    def __init__(self, n_features: int, p: PatchTSTParams) -> None:
        super().__init__()
        self.patch_len, self.stride = p.patch_len, p.stride
        self.n_patches = (p.lookback - p.patch_len) // p.stride + 2
        self.revin = RevIN(n_features) if p.revin else None
        self.embed = nn.Linear(p.patch_len, p.d_model)
        self.pos = nn.Parameter(torch.empty(self.n_patches, p.d_model).uniform_(-0.02, 0.02))
        self.drop = nn.Dropout(p.dropout)
        layers = [
            EncoderLayer(p.d_model, p.n_heads, p.d_ff, p.dropout, norm="batch")
            for _ in range(p.num_layers)
        ]
        self.encoder = nn.Sequential(*layers)
        self.head = nn.Sequential(
            nn.Flatten(),
            nn.Dropout(p.dropout),
            nn.Linear(n_features * self.n_patches * p.d_model, N_CLASSES),
        )

    def patchify(self, x: torch.Tensor) -> torch.Tensor:
        """(batch, features, lookback) -> (batch, features, n_patches, patch_len)."""
        # the paper's padding_patch="end" (as ReplicationPad1d, whose CUDA backward is
        # not deterministic): `stride` copies of the last value
        x = torch.cat([x, x[..., -1:].expand(*x.shape[:-1], self.stride)], dim=-1)
        return x.unfold(-1, self.patch_len, self.stride)

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        """(batch, lookback, features) -> (batch, features, n_patches, d_model)."""
        if self.revin is not None:
            x, _ = self.revin.normalize(x)
        z = self.patchify(x.transpose(1, 2))
        b, c, n, _ = z.shape
        z = self.drop(self.embed(z) + self.pos)
        z = self.encoder(z.reshape(b * c, n, -1))  # each feature's series on its own
        return z.reshape(b, c, n, -1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.encode(x))


class PatchTSTModel(SequenceModel):
    name = "patchtst"
    Params = PatchTSTParams
    Net = PatchTSTNet
