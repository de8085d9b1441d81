"""iTransformer (Liu et al. 2024, "Inverted Transformers") as a classifier.

The Transformer is inverted: each VARIATE (feature) is one token, its whole lookback
series embedded by one linear layer shared by every variate; a standard post-norm
encoder (self-attention across variates, GELU feed-forward per token, a final
LayerNorm) mixes them; the tokens, through GELU and dropout, are flattened (so the
head knows which feature is which) into a linear head, as the authors' classifier.
`use_norm` normalises each variate's window first (the paper's forecasting setting;
off by default for classification, where the level of a feature carries information).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from factory.models.deep import SequenceModel
from factory.models.deep_params import ITransformerParams
from factory.models.transformer import EncoderLayer
from factory.training.training_data import N_CLASSES


class ITransformerNet(nn.Module):
    def __init__(self, n_features: int, p: ITransformerParams) -> None:
        super().__init__()
        self.use_norm = p.use_norm
        self.embed = nn.Linear(p.lookback, p.d_model)
        self.drop = nn.Dropout(p.dropout)
        layers = [
            EncoderLayer(p.d_model, p.n_heads, p.d_ff, p.dropout, attn_dropout=p.dropout)
            for _ in range(p.num_layers)
        ]
        self.encoder = nn.Sequential(*layers, nn.LayerNorm(p.d_model))
        self.head = nn.Linear(n_features * p.d_model, N_CLASSES)

    def tokens(self, x: torch.Tensor) -> torch.Tensor:
        """(batch, lookback, features) -> one token per feature: (batch, features, d_model)."""
        if self.use_norm:
            mean = x.mean(dim=1, keepdim=True).detach()
            std = torch.sqrt(x.var(dim=1, keepdim=True, unbiased=False) + 1e-5).detach()
            x = (x - mean) / std
        return self.drop(self.embed(x.transpose(1, 2)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.encoder(self.tokens(x))
        return self.head(self.drop(F.gelu(h)).flatten(1))


class ITransformerModel(SequenceModel):
    name = "itransformer"
    Params = ITransformerParams
    Net = ITransformerNet
