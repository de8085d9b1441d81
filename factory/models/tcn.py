"""Temporal Convolutional Network (Bai, Kolter & Koltun 2018) over the lookback window.

A stack of residual blocks; block i holds two weight-normalised dilated CAUSAL
convolutions (dilation 2^i, padding on the left only, so output t sees inputs <= t),
each followed by ReLU and dropout, plus a 1x1 convolution on the residual path when
the channel count changes. The last time step of the top block feeds a linear head.
The receptive field is 1 + 2 (kernel_size - 1)(2^num_levels - 1) steps.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils.parametrizations import weight_norm

from factory.models.deep import SequenceModel
from factory.models.deep_params import TCNParams
from factory.training.training_data import N_CLASSES


class CausalConv1d(nn.Module):
    """Weight-normalised Conv1d padded on the left: (batch, c_in, T) -> (batch, c_out, T)."""

    def __init__(self, c_in: int, c_out: int, kernel_size: int, dilation: int) -> None:
        super().__init__()
        self.left = (kernel_size - 1) * dilation
        conv = nn.Conv1d(c_in, c_out, kernel_size, dilation=dilation)
        nn.init.normal_(conv.weight, 0.0, 0.01)  # as the paper's code
        self.conv = weight_norm(conv)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(F.pad(x, (self.left, 0)))


class TemporalBlock(nn.Module):
    GRAD_CHECKPOINT = ("",)  # grad_checkpointing: each block as a whole

    def __init__(self, c_in: int, c_out: int, kernel_size: int, dilation: int, dropout: float):
        super().__init__()
        self.conv1 = CausalConv1d(c_in, c_out, kernel_size, dilation)
        self.conv2 = CausalConv1d(c_out, c_out, kernel_size, dilation)
        self.drop = nn.Dropout(dropout)
        self.residual = nn.Conv1d(c_in, c_out, 1) if c_in != c_out else nn.Identity()
        if isinstance(self.residual, nn.Conv1d):
            nn.init.normal_(self.residual.weight, 0.0, 0.01)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.drop(F.relu(self.conv1(x)))
        out = self.drop(F.relu(self.conv2(out)))
        return F.relu(out + self.residual(x))


class TCNNet(nn.Module):
    def __init__(self, n_features: int, p: TCNParams) -> None:
        super().__init__()
        blocks = []
        for level in range(p.num_levels):
            c_in = n_features if level == 0 else p.channels
            blocks.append(TemporalBlock(c_in, p.channels, p.kernel_size, 2**level, p.dropout))
        self.tcn = nn.Sequential(*blocks)  # (batch, features, T) -> (batch, channels, T)
        self.head = nn.Linear(p.channels, N_CLASSES)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.tcn(x.transpose(1, 2))
        return self.head(h[:, :, -1])


class TCNModel(SequenceModel):
    name = "tcn"
    Params = TCNParams
    Net = TCNNet
