"""The AWD-LSTM dropouts (Merity et al. 2017), time-major like gulm's LSTM: [T, B, D].

DropConnect on the hidden-to-hidden weights lives inside the fused op (see
:class:`gulm.nn.WeightDropLSTM`); here are the other two kinds.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["RNNDropout", "EmbeddingDropout", "dropout_mask"]


def dropout_mask(like: torch.Tensor, shape, p: float) -> torch.Tensor:
    """A Bernoulli(1-p) mask of ``shape`` scaled by 1/(1-p), dtype and device of ``like``."""
    return like.new_empty(shape).bernoulli_(1 - p).div_(1 - p)


class RNNDropout(nn.Module):
    """Locked (variational) dropout: one mask per sequence, shared by all time steps.

    Input and output: [T, B, D]; the mask is [1, B, D].
    """

    def __init__(self, p: float = 0.5):
        super().__init__()
        self.p = float(p)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training or self.p == 0.0:
            return x
        return x * dropout_mask(x, (1, x.size(1), x.size(2)), self.p)

    def extra_repr(self) -> str:
        return f"p={self.p}"


class EmbeddingDropout(nn.Module):
    """Drops whole rows (tokens) of an embedding matrix, scaling the survivors by 1/(1-p).

    Wraps ``emb`` (it does not own a copy): ids [...] -> vectors [..., E].
    """

    def __init__(self, emb: nn.Embedding, embed_p: float):
        super().__init__()
        self.emb = emb
        self.embed_p = float(embed_p)

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        weight = self.emb.weight
        if self.training and self.embed_p != 0.0:
            weight = weight * dropout_mask(weight, (weight.size(0), 1), self.embed_p)
        return F.embedding(ids, weight, self.emb.padding_idx)

    def extra_repr(self) -> str:
        return f"embed_p={self.embed_p}"
