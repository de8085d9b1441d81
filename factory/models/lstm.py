"""LSTM classifier: stacked LSTM over the lookback window, last hidden state -> head.

Trained by the shared loop of factory/models/deep.py (checkpoints, resume, AMP, OOM).
"""

from __future__ import annotations

from typing import Any, ClassVar

import torch
from torch import nn

from factory.models.deep import SequenceModel
from factory.models.params import LSTM_TINY, LSTMParams
from factory.training.training_data import N_CLASSES


class LSTMNet(nn.Module):
    def __init__(self, n_features: int, hidden: int, layers: int, dropout: float) -> None:
        super().__init__()
        between = dropout if layers > 1 else 0.0
        self.lstm = nn.LSTM(n_features, hidden, layers, batch_first=True, dropout=between)
        self.drop = nn.Dropout(dropout)
        self.head = nn.Linear(hidden, N_CLASSES)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out, _ = self.lstm(x)
        return self.head(self.drop(out[:, -1]))


class LSTMModel(SequenceModel):
    name = "lstm"
    Params = LSTMParams
    PROFILES: ClassVar[dict[str, dict[str, Any]]] = {"tiny": LSTM_TINY, "default": {}}

    @staticmethod
    def build_net(n_features: int, p: LSTMParams) -> nn.Module:
        return LSTMNet(n_features, p.hidden_size, p.num_layers, p.dropout)
