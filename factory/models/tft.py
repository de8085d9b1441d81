"""Temporal Fusion Transformer (Lim et al. 2021), compact, as a classifier.

Every feature is an observed past input (no static covariates, no known future inputs):
1. Variable selection: each feature has its own linear embedding and its own gated
   residual network (GRN); a GRN over all embeddings, flattened, gives softmax weights
   over the features at every time step; the step's input is the weighted sum.
2. An LSTM encoder over the selected inputs, with a gated skip connection (GLU, add,
   LayerNorm) around it, then the enrichment GRN (static enrichment without a context).
3. Interpretable multi-head attention, masked causally: heads have their own queries
   and keys but share one value projection, and are averaged before the output layer.
   A gated skip connection around it, a position-wise GRN, and a final gated skip
   connection back to the LSTM's output.
4. The last time step -> linear head.
A GRN is LayerNorm(skip(a) + GLU(W1 ELU(W2 a))); per-feature GRNs run batched. Each
feature is embedded in `embed_size` dimensions, its GRN widening it to `hidden_size`
(as pytorch-forecasting's hidden_continuous_size: the paper's hidden_size-wide
per-feature GRNs cost ~12x more at the default sizes).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from factory.models.deep import SequenceModel
from factory.models.deep_params import TFTParams
from factory.training.training_data import N_CLASSES


class VarLinear(nn.Module):
    """`n` independent linear layers, variable first: (n, rows, d_in) -> (n, rows, d_out)."""

    def __init__(self, n: int, d_in: int, d_out: int) -> None:
        super().__init__()
        bound = 1 / math.sqrt(d_in)  # as nn.Linear's default
        self.weight = nn.Parameter(torch.empty(n, d_in, d_out).uniform_(-bound, bound))
        self.bias = nn.Parameter(torch.empty(n, d_out).uniform_(-bound, bound))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.baddbmm(self.bias.unsqueeze(1), x, self.weight)


def linear(d_in: int, d_out: int, n_vars: int | None = None) -> nn.Module:
    """One linear layer, or one per variable when `n_vars` is given."""
    return nn.Linear(d_in, d_out) if n_vars is None else VarLinear(n_vars, d_in, d_out)


class GateAddNorm(nn.Module):
    """The gated skip connection: LayerNorm(skip + GLU(dropout(x)))."""

    def __init__(self, d_in: int, d_out: int, dropout: float, n_vars: int | None = None):
        super().__init__()
        self.drop = nn.Dropout(dropout)
        self.glu = linear(d_in, 2 * d_out, n_vars)
        self.norm = nn.LayerNorm(d_out)

    def forward(self, x: torch.Tensor, skip: torch.Tensor) -> torch.Tensor:
        return self.norm(skip + F.glu(self.glu(self.drop(x)), dim=-1))


class GRN(nn.Module):
    """Gated residual network: GateAddNorm(W1 ELU(W2 a), skip=a or a linear map of a)."""

    def __init__(
        self, d_in: int, d_hidden: int, d_out: int, dropout: float, n_vars: int | None = None
    ) -> None:
        super().__init__()
        self.fc2 = linear(d_in, d_hidden, n_vars)
        self.fc1 = linear(d_hidden, d_hidden, n_vars)
        self.gate = GateAddNorm(d_hidden, d_out, dropout, n_vars)
        self.skip = linear(d_in, d_out, n_vars) if d_in != d_out else nn.Identity()

    def forward(self, a: torch.Tensor) -> torch.Tensor:
        return self.gate(self.fc1(F.elu(self.fc2(a))), self.skip(a))


class VariableSelection(nn.Module):
    """(batch, T, features) -> (batch, T, hidden) inputs and (batch, T, features) weights."""

    def __init__(self, n_features: int, embed: int, hidden: int, dropout: float) -> None:
        super().__init__()
        self.embed = VarLinear(n_features, 1, embed)
        self.weights = GRN(n_features * embed, hidden, n_features, dropout)
        self.per_var = GRN(embed, embed, hidden, dropout, n_vars=n_features)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        b, t, f = x.shape
        e = self.embed(x.reshape(b * t, f).T.unsqueeze(-1))  # (features, batch*T, embed)
        w = torch.softmax(self.weights(e.transpose(0, 1).reshape(b, t, -1)), dim=-1)
        h = self.per_var(e)  # (features, batch*T, hidden)
        selected = (w.reshape(b * t, f).T.unsqueeze(-1) * h).sum(dim=0)
        return selected.reshape(b, t, -1), w


class InterpretableAttention(nn.Module):
    """Multi-head attention whose heads share the value projection and are averaged."""

    def __init__(self, d_model: int, n_heads: int, dropout: float) -> None:
        super().__init__()
        self.n_heads, self.d_head = n_heads, d_model // n_heads
        self.q = nn.Linear(d_model, n_heads * self.d_head)
        self.k = nn.Linear(d_model, n_heads * self.d_head)
        self.v = nn.Linear(d_model, self.d_head)
        self.out = nn.Linear(self.d_head, d_model)
        self.drop = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, t, _ = x.shape
        q = self.q(x).view(b, t, self.n_heads, self.d_head).transpose(1, 2)
        k = self.k(x).view(b, t, self.n_heads, self.d_head).transpose(1, 2)
        scores = q @ k.transpose(-1, -2) / math.sqrt(self.d_head)  # (batch, heads, T, T)
        future = torch.ones(t, t, dtype=torch.bool, device=x.device).triu(1)
        attn = self.drop(torch.softmax(scores.masked_fill(future, float("-inf")), dim=-1))
        heads = attn @ self.v(x).unsqueeze(1)  # (batch, heads, T, d_head)
        return self.drop(self.out(heads.mean(dim=1)))


class TFTNet(nn.Module):
    GRAD_CHECKPOINT = ("select", "lstm", "enrich", "attn", "ff")  # grad_checkpointing

    def __init__(self, n_features: int, p: TFTParams) -> None:
        super().__init__()
        d, drop = p.hidden_size, p.dropout
        self.select = VariableSelection(n_features, p.embed_size, d, drop)
        between = drop if p.lstm_layers > 1 else 0.0
        self.lstm = nn.LSTM(d, d, p.lstm_layers, batch_first=True, dropout=between)
        self.lstm_gate = GateAddNorm(d, d, drop)
        self.enrich = GRN(d, d, d, drop)
        self.attn = InterpretableAttention(d, p.n_heads, drop)
        self.attn_gate = GateAddNorm(d, d, drop)
        self.ff = GRN(d, d, d, drop)
        self.out_gate = GateAddNorm(d, d, 0.0)
        self.head = nn.Linear(d, N_CLASSES)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        xi, _ = self.select(x)
        phi = self.lstm_gate(self.lstm(xi)[0], xi)
        theta = self.enrich(phi)
        delta = self.attn_gate(self.attn(theta), theta)
        psi = self.out_gate(self.ff(delta), phi)
        return self.head(psi[:, -1])


class TFTModel(SequenceModel):
    name = "tft"
    Params = TFTParams
    Net = TFTNet
