"""Heads on top of the AWD-LSTM encoder: a tied language-model decoder and the
concat-pooling classifier of ULMFiT."""
from __future__ import annotations

import torch
from torch import nn

from gulm.nn.dropout import RNNDropout

__all__ = ["LinearDecoder", "PoolingClassifier", "masked_concat_pool", "HEAD_HIDDEN"]

HEAD_HIDDEN = 50  # ULMFiT's head: 50 hidden units (the seed preset's; wider heads come from presets)


class LinearDecoder(nn.Module):
    """Locked dropout then a linear map to the vocabulary, optionally tied to the embedding.

    forward(x [T, B, E]) -> logits [T, B, V]
    """

    def __init__(self, vocab_size: int, emb_size: int, output_p: float = 0.1,
                 tie_encoder: nn.Embedding | None = None, bias: bool = True):
        super().__init__()
        self.output_dp = RNNDropout(output_p)
        self.decoder = nn.Linear(emb_size, vocab_size, bias=bias)
        nn.init.uniform_(self.decoder.weight, -0.1, 0.1)
        if bias:
            nn.init.zeros_(self.decoder.bias)
        if tie_encoder is not None:
            self.decoder.weight = tie_encoder.weight

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.decoder(self.output_dp(x))


def masked_concat_pool(out: torch.Tensor, lengths: torch.Tensor, start: torch.Tensor | None = None):
    """[last, max, mean] over the valid positions of each sequence.

    Args:
        out: [T, B, E] encoder outputs of right-padded sequences.
        lengths: [B] number of valid positions (>= 1) of each column.
        start: optional [B] first position to pool from (default 0); positions outside
            [start, length) - padding included - never influence the result.
    Returns:
        [B, 3E]
    """
    T, B, _ = out.shape
    lengths = lengths.to(device=out.device, dtype=torch.long)
    if bool((lengths < 1).any()) or bool((lengths > T).any()):
        raise ValueError(f"lengths must lie in [1, {T}]")
    pos = torch.arange(T, device=out.device).unsqueeze(1)  # [T, 1]
    valid = pos < lengths.unsqueeze(0)  # [T, B]
    if start is not None:
        valid &= pos >= start.to(device=out.device, dtype=torch.long).unsqueeze(0)
    count = valid.sum(0).clamp_min(1).unsqueeze(1).to(out.dtype)  # [B, 1]
    v = valid.unsqueeze(2)
    last = out[lengths - 1, torch.arange(B, device=out.device)]  # [B, E]
    mx = out.masked_fill(~v, float("-inf")).amax(0)
    mean = out.masked_fill(~v, 0.0).sum(0) / count
    return torch.cat([last, mx, mean], dim=1)


class PoolingClassifier(nn.Module):
    """ULMFiT's head: masked concat pooling, then
    BN -> Dropout -> Linear(3E, hidden) -> ReLU -> BN -> Dropout -> Linear(hidden, C).

    forward(out [T, B, E], lengths [B], start [B] or None) -> logits [B, C]
    """

    def __init__(self, emb_size: int, n_classes: int, hidden: int = HEAD_HIDDEN,
                 output_p: float = 0.4, hidden_head_p: float = 0.1):
        super().__init__()
        self.layers = nn.Sequential(
            nn.BatchNorm1d(3 * emb_size),
            nn.Dropout(output_p),
            nn.Linear(3 * emb_size, hidden),
            nn.ReLU(inplace=True),
            nn.BatchNorm1d(hidden),
            nn.Dropout(hidden_head_p),
            nn.Linear(hidden, n_classes),
        )

    def forward(self, out, lengths, start=None):
        return self.layers(masked_concat_pool(out, lengths, start))
