"""LSTM and GRU classifiers: a stacked recurrent layer over the lookback window, its
output at the last time step -> dropout -> linear head.

Trained by the shared loop of factory/models/deep.py (checkpoints, resume, AMP, OOM).
"""

from __future__ import annotations

from typing import ClassVar

import torch
from torch import nn

from factory.models.deep import SequenceModel
from factory.models.deep_params import GRUParams, LSTMParams
from factory.training.training_data import N_CLASSES


class RecurrentNet(nn.Module):
    """`layer` (nn.LSTM or nn.GRU) over the window; its weights are named after
    `layer_name` ("lstm.weight_ih_l0", ...) as in the bundles written so far."""

    layer: ClassVar[type[nn.RNNBase]]
    layer_name: ClassVar[str]

    def __init__(self, n_features: int, p: LSTMParams) -> None:
        super().__init__()
        between = p.dropout if p.num_layers > 1 else 0.0
        rnn = self.layer(n_features, p.hidden_size, p.num_layers, batch_first=True, dropout=between)
        self.add_module(self.layer_name, rnn)
        self.drop = nn.Dropout(p.dropout)
        self.head = nn.Linear(p.hidden_size, N_CLASSES)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out, _ = getattr(self, self.layer_name)(x)
        return self.head(self.drop(out[:, -1]))


class LSTMNet(RecurrentNet):
    layer, layer_name = nn.LSTM, "lstm"
    GRAD_CHECKPOINT = ("lstm",)  # grad_checkpointing: the recurrent stack


class GRUNet(RecurrentNet):
    layer, layer_name = nn.GRU, "gru"
    GRAD_CHECKPOINT = ("gru",)


class LSTMModel(SequenceModel):
    name = "lstm"
    Params = LSTMParams
    Net = LSTMNet


class GRUModel(SequenceModel):
    name = "gru"
    Params = GRUParams
    Net = GRUNet
