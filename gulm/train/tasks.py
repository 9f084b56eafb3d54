"""Training tasks: what turns a batch into a loss and statistics for the :class:`~gulm.train.learner.Learner`.

:class:`LMTask` for language models (next-token prediction), :class:`ClassifierTask` for
sequence classifiers; both add AWD-LSTM's activation (AR) and temporal activation (TAR)
regularisation.
"""
from __future__ import annotations

import math
from typing import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from gulm.metrics import classification_metrics

__all__ = ["LMTask", "ClassifierTask", "tar_penalty", "unwrap"]


def tar_penalty(h: torch.Tensor) -> torch.Tensor:
    """Mean squared change of activations h [T, ...] between consecutive steps (TAR)."""
    return (h[1:] - h[:-1]).float().pow(2).mean() if h.size(0) > 1 else h.new_zeros((), dtype=torch.float32)


class LMTask:
    """Next-token prediction. Batches are (x [T, B], y [T, B]) token ids."""

    name = "lm"

    def __init__(self, alpha: float = 2.0, beta: float = 1.0):
        self.alpha, self.beta = alpha, beta

    def loss(self, model, batch, device):
        x, y = (t.to(device, non_blocking=True) for t in batch)
        logits, raw, out = model(x)
        ce = F.cross_entropy(logits.reshape(-1, logits.size(-1)).float(), y.reshape(-1))
        reg = ce
        if self.alpha:
            reg = reg + self.alpha * out[-1].float().pow(2).mean()
        if self.beta:
            reg = reg + self.beta * tar_penalty(raw[-1])
        with torch.no_grad():
            correct = (logits.argmax(-1) == y).sum().item()
        n = y.numel()
        return reg, {"loss_sum": ce.item() * n, "correct": correct, "n": n, "tokens": n}

    def begin_epoch(self, model):
        unwrap(model).reset()

    def summarize(self, sums: dict, extra=None) -> dict:
        loss = sums["loss_sum"] / max(1, sums["n"])
        return {"loss": loss, "accuracy": sums["correct"] / max(1, sums["n"]),
                "perplexity": math.exp(min(loss, 50.0))}


class ClassifierTask:
    """Sequence classification. Batches are (ids [B, L], lengths [B], labels [B])."""

    name = "classifier"

    def __init__(self, alpha: float = 2.0, beta: float = 1.0, class_names: Sequence[str] | None = None):
        self.alpha, self.beta = alpha, beta
        self.class_names = class_names

    def loss(self, model, batch, device):
        ids, lengths, labels = (t.to(device, non_blocking=True) for t in batch)
        logits, raw, out = model(ids, lengths)
        ce = F.cross_entropy(logits.float(), labels)
        reg = ce
        if self.alpha:
            reg = reg + self.alpha * out[-1].float().pow(2).mean()
        if self.beta:
            reg = reg + self.beta * tar_penalty(raw[-1])
        n = labels.numel()
        with torch.no_grad():
            correct = (logits.argmax(-1) == labels).sum().item()
        stats = {"loss_sum": ce.item() * n, "correct": correct, "n": n,
                 "tokens": int(lengths.sum().item())}
        return reg, stats, logits.detach().float().softmax(-1).cpu(), labels.cpu()

    def begin_epoch(self, model):
        pass

    def summarize(self, sums: dict, extra=None) -> dict:
        out = {"loss": sums["loss_sum"] / max(1, sums["n"]),
               "accuracy": sums["correct"] / max(1, sums["n"])}
        if extra is not None:
            probs, labels = extra
            m = classification_metrics(labels.numpy(), probs.numpy(), self.class_names)
            out.update({k: v for k, v in m.items() if k not in ("n",)})
        return out


def unwrap(model: nn.Module) -> nn.Module:
    """The model inside a DistributedDataParallel wrapper (or the model itself)."""
    return model.module if isinstance(model, nn.parallel.DistributedDataParallel) else model
