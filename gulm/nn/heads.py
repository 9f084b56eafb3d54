"""Heads on top of the AWD-LSTM encoder: a tied language-model decoder and the
concat-pooling classifier of ULMFiT."""
from __future__ import annotations

import torch
from torch import nn

from gulm.nn.dropout import RNNDropout

__all__ = ["LinearDecoder", "PoolingClassifier", "masked_concat_pool", "binned_mean_pool", "pool_outputs", "HEAD_HIDDEN"]

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


def binned_mean_pool(out: torch.Tensor, lengths: torch.Tensor, bins: int,
                     start: torch.Tensor | None = None) -> torch.Tensor:
    """The mean of the outputs in each of ``bins`` consecutive, equal parts of each sequence's
    pooled window [start, length): position p (r = p - start of n positions) falls in part
    floor(r * bins / n). Parts are relative to each sequence's length, as adaptive average
    pooling is; a part with no position (n < bins) is zero. Padding never influences the result.

    Args:
        out: [T, B, E] encoder outputs of right-padded sequences.
        lengths: [B] number of valid positions (>= 1) of each column.
        bins: number of parts (>= 1).
        start: optional [B] first position of each window (default 0).
    Returns:
        [B, bins * E], the parts in order (part 0's E features first).
    """
    if bins < 1:
        raise ValueError(f"bins must be >= 1, got {bins}")
    T, B, E = out.shape
    lengths = lengths.to(device=out.device, dtype=torch.long)
    first = (torch.zeros_like(lengths) if start is None
             else start.to(device=out.device, dtype=torch.long))
    span = lengths - first  # [B] positions in each window
    rel = torch.arange(T, device=out.device).unsqueeze(1) - first.unsqueeze(0)  # [T, B]
    inside = (rel >= 0) & (rel < span.unsqueeze(0))
    part = torch.where(inside, rel.clamp_min(0) * bins // span.clamp_min(1).unsqueeze(0), torch.full_like(rel, bins))
    onehot = torch.nn.functional.one_hot(part, bins + 1)[..., :bins].to(out.dtype)  # [T, B, bins]
    sums = torch.einsum("tbe,tbk->bke", out.masked_fill(~inside.unsqueeze(2), 0.0), onehot)
    count = onehot.sum(0).clamp_min(1).unsqueeze(2)  # [B, bins, 1]
    return (sums / count).reshape(B, bins * E)


def pool_outputs(out: torch.Tensor, lengths: torch.Tensor, start: torch.Tensor | None = None,
                 bins: int = 0) -> torch.Tensor:
    """The classifier head's input [B, (3 + bins) * E]: [last, max, mean]
    (:func:`masked_concat_pool`), then with ``bins`` > 0 the means of ``bins`` equal parts
    (:func:`binned_mean_pool`)."""
    pooled = masked_concat_pool(out, lengths, start)
    if bins:
        pooled = torch.cat([pooled, binned_mean_pool(out, lengths, bins, start)], dim=1)
    return pooled


class PoolingClassifier(nn.Module):
    """ULMFiT's head: masked concat pooling, then
    BN -> Dropout -> Linear(3E, hidden) -> ReLU -> BN -> Dropout -> Linear(hidden, C).
    With ``bins`` > 0 the pooled features also hold the mean outputs of ``bins`` equal parts of
    each sequence (:func:`binned_mean_pool`), so the head sees where along a sequence aligned on
    a site (a TSS) the encoder saw what: (3 + bins) * E inputs.

    forward(out [T, B, E], lengths [B], start [B] or None) -> logits [B, C]
    """

    def __init__(self, emb_size: int, n_classes: int, hidden: int = HEAD_HIDDEN,
                 output_p: float = 0.4, hidden_head_p: float = 0.1, bins: int = 0):
        super().__init__()
        if bins < 0:
            raise ValueError(f"bins must be >= 0, got {bins}")
        self.bins = bins
        width = (3 + bins) * emb_size
        self.layers = nn.Sequential(
            nn.BatchNorm1d(width),
            nn.Dropout(output_p),
            nn.Linear(width, hidden),
            nn.ReLU(inplace=True),
            nn.BatchNorm1d(hidden),
            nn.Dropout(hidden_head_p),
            nn.Linear(hidden, n_classes),
        )

    def forward(self, out, lengths, start=None):
        return self.layers(pool_outputs(out, lengths, start, self.bins))
