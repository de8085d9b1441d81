"""The Transformer encoder layer shared by patchtst and itransformer, in plain PyTorch.

Attention is written out (matmul, softmax, matmul) as in both papers' code: for the
many short sequences of PatchTST it is also faster on a CPU than the fused kernels.
"""

from __future__ import annotations

import math

import torch
from torch import nn


class SelfAttention(nn.Module):
    """Multi-head self-attention over (batch, tokens, d_model)."""

    def __init__(self, d_model: int, n_heads: int, dropout: float = 0.0) -> None:
        super().__init__()
        self.n_heads, self.d_head = n_heads, d_model // n_heads
        self.qkv = nn.Linear(d_model, 3 * d_model)
        self.out = nn.Linear(d_model, d_model)
        self.drop = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, t, d = x.shape
        qkv = self.qkv(x).view(b, t, 3, self.n_heads, self.d_head).permute(2, 0, 3, 1, 4)
        q, k, v = qkv.unbind(0)  # each (batch, heads, tokens, d_head)
        scores = q @ k.transpose(-1, -2) / math.sqrt(self.d_head)
        heads = self.drop(torch.softmax(scores, dim=-1)) @ v
        return self.out(heads.transpose(1, 2).reshape(b, t, d))


class BatchNormTokens(nn.Module):
    """BatchNorm1d over the model dimension of (batch, tokens, d_model)."""

    def __init__(self, d_model: int) -> None:
        super().__init__()
        self.norm = nn.BatchNorm1d(d_model)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.norm(x.reshape(-1, x.shape[-1])).reshape(x.shape)  # over batch x tokens


class EncoderLayer(nn.Module):
    """Post-norm encoder layer: x = norm(x + attn(x)); x = norm(x + ff(x)), GELU ff.

    `norm` is "layer" (LayerNorm, iTransformer) or "batch" (BatchNorm, PatchTST).
    """

    # grad_checkpointing: attention and feed-forward (not the norms: BatchNorm would
    # update its running statistics again in the recomputation)
    GRAD_CHECKPOINT = ("attn", "ff")

    def __init__(
        self,
        d_model: int,
        n_heads: int,
        d_ff: int,
        dropout: float,
        norm: str = "layer",
        attn_dropout: float = 0.0,
    ) -> None:
        super().__init__()
        make_norm = BatchNormTokens if norm == "batch" else nn.LayerNorm
        self.attn = SelfAttention(d_model, n_heads, attn_dropout)
        self.norm_attn = make_norm(d_model)
        self.ff = nn.Sequential(
            nn.Linear(d_model, d_ff), nn.GELU(), nn.Dropout(dropout), nn.Linear(d_ff, d_model)
        )
        self.norm_ff = make_norm(d_model)
        self.drop = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.norm_attn(x + self.drop(self.attn(x)))
        return self.norm_ff(x + self.drop(self.ff(x)))
