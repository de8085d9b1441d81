"""GRU classifier: stacked GRU over the lookback window, last hidden state -> head.

Trained by the shared loop of factory/models/deep.py (checkpoints, resume, AMP, OOM).
"""

from __future__ import annotations

from typing import Any, ClassVar

import torch
from torch import nn

from factory.models.deep import SequenceModel
from factory.models.params import GRU_TINY, GRUParams
from factory.training.training_data import N_CLASSES


class GRUNet(nn.Module):
    def __init__(self, n_features: int, hidden: int, layers: int, dropout: float) -> None:
        super().__init__()
        between = dropout if layers > 1 else 0.0
        self.gru = nn.GRU(n_features, hidden, layers, batch_first=True, dropout=between)
        self.drop = nn.Dropout(dropout)
        self.head = nn.Linear(hidden, N_CLASSES)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out, _ = self.gru(x)
        return self.head(self.drop(out[:, -1]))


class GRUModel(SequenceModel):
    name = "gru"
    Params = GRUParams
    PROFILES: ClassVar[dict[str, dict[str, Any]]] = {"tiny": GRU_TINY, "default": {}}

    @staticmethod
    def build_net(n_features: int, p: GRUParams) -> nn.Module:
        return GRUNet(n_features, p.hidden_size, p.num_layers, p.dropout)
