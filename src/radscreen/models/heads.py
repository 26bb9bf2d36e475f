"""Task heads on pooled (and possibly fused) features."""

from __future__ import annotations

from collections.abc import Sequence

import torch.nn as nn


def make_head(in_features: int, out_features: int, kind: str = "linear", hidden: Sequence[int] = (256, 64),
              dropout: Sequence[float] = (0.5, 0.25)) -> nn.Module:
    """A head: 'linear' (one layer) or 'mlp' (the thesis's osteoporosis head: dense → dropout → dense →
    dropout → dense, i.e. len(hidden)+1 dense layers with a dropout after each hidden one)."""
    if kind == "linear":
        return nn.Linear(in_features, out_features)
    if kind != "mlp":
        raise ValueError(f"head kind must be 'linear' or 'mlp', got '{kind}'")
    if len(dropout) != len(hidden):
        raise ValueError(f"mlp head: one dropout per hidden layer, got hidden={list(hidden)}, dropout={list(dropout)}")
    layers: list[nn.Module] = []
    width = in_features
    for size, rate in zip(hidden, dropout):
        layers += [nn.Linear(width, size), nn.ReLU(inplace=True), nn.Dropout(rate)]
        width = size
    layers.append(nn.Linear(width, out_features))
    return nn.Sequential(*layers)
