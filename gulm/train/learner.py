"""A small Learner: AdamW, one-cycle, discriminative learning rates, gradual unfreezing,
AR/TAR, gradient clipping, bf16 autocast, DDP, progress bars, logs and resumable state.

The learner is model-agnostic; a *task* turns a batch into a loss and statistics:
:class:`LMTask` for language models and :class:`ClassifierTask` for classifiers.
"""
from __future__ import annotations

import csv
import json
import math
import os
import time
from contextlib import nullcontext
from dataclasses import dataclass, field
from typing import Iterable, Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from gulm.metrics import classification_metrics
from gulm.train import distributed as gdist
from gulm.train.schedule import OneCycle, discriminative_lrs

__all__ = ["Stage", "Learner", "LMTask", "ClassifierTask", "set_seed"]


def set_seed(seed: int) -> None:
    """Seed torch (CPU and CUDA), numpy's legacy global RNG and Python's random."""
    import random

    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


@dataclass
class Stage:
    """One step of a gradual-unfreezing schedule: train the last ``groups`` layer groups
    (``None`` or 0: all) for ``epochs`` epochs of one-cycle with peak learning rate ``lr``
    for the last group and ``lr/factor^n`` for the n-th group before it."""

    epochs: int
    lr: float
    groups: int | None = None
    factor: float = 2.6

    @classmethod
    def parse(cls, spec) -> "Stage":
        if isinstance(spec, Stage):
            return spec
        if isinstance(spec, dict):
            return cls(**spec)
        return cls(*spec)


def _tar(h: torch.Tensor) -> torch.Tensor:
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
            reg = reg + self.beta * _tar(raw[-1])
        with torch.no_grad():
            correct = (logits.argmax(-1) == y).sum().item()
        n = y.numel()
        return reg, {"loss_sum": ce.item() * n, "correct": correct, "n": n, "tokens": n}

    def begin_epoch(self, model):
        _unwrap(model).reset()

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
            reg = reg + self.beta * _tar(raw[-1])
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


def _unwrap(model: nn.Module) -> nn.Module:
    return model.module if isinstance(model, nn.parallel.DistributedDataParallel) else model


class Learner:
    """Trains ``model`` on ``train_data`` with ``task``; see :meth:`fit` and :meth:`fit_stages`.

    ``train_data``/``valid_data`` are re-iterable batch sources; if they have
    ``set_epoch(i)`` it is called with a counter that is unique per epoch of the whole run, so
    a fixed seed gives the same batches (and, with ``resume``, the same run).
    """

    def __init__(
        self,
        model: nn.Module,
        task,
        train_data: Iterable,
        valid_data: Iterable | None = None,
        *,
        layer_groups: list[list[nn.Parameter]] | None = None,
        wd: float = 0.01,
        clip: float | None = 0.25,
        betas: tuple[float, float] = (0.9, 0.99),
        eps: float = 1e-6,
        device: str | torch.device = "cpu",
        dtype: str = "fp32",
        out_dir: str | os.PathLike | None = None,
        progress: bool = True,
        desc: str = "",
        keep_best: str | None = None,
        checkpoint_every: float = 0.0,
    ):
        self.device = torch.device(device)
        self.model = model.to(self.device)
        self.task = task
        self.train_data, self.valid_data = train_data, valid_data
        self.groups = layer_groups or [list(model.parameters())]
        self.opt = torch.optim.AdamW(
            [{"params": g} for g in self.groups], lr=1e-3, betas=betas, eps=eps, weight_decay=wd
        )
        self.clip = clip
        if dtype not in ("fp32", "bf16"):
            raise ValueError(f"dtype must be 'fp32' or 'bf16', got {dtype!r}")
        self.dtype = dtype
        self.out_dir = os.fspath(out_dir) if out_dir is not None else None
        self.progress = progress and gdist.is_main()
        self.desc = desc
        self.history: list[dict] = []
        self.epoch_counter = 0  # epochs finished over the whole run (all stages)
        self._ddp = None
        # keep_best="valid_mcc" (say): remember the weights of the epoch with the highest value
        self.keep_best = keep_best
        self.best_score: float | None = None
        self.best_state: dict | None = None
        # also save resume state inside an epoch every this many seconds (0: at epoch ends only)
        self.checkpoint_every = float(checkpoint_every or 0.0)
        self._resume_step: tuple[int, dict] | None = None  # (batches done, partial sums)

    # ---- freezing ------------------------------------------------------------------------
    def freeze_to(self, n: int | None) -> None:
        """Train only the last ``n`` layer groups (None or 0: all of them)."""
        k = len(self.groups) if not n else min(n, len(self.groups))
        for i, g in enumerate(self.groups):
            for p in g:
                p.requires_grad_(i >= len(self.groups) - k)
        self._ddp = None

    def _train_model(self) -> nn.Module:
        if not gdist.is_distributed():
            return self.model
        if self._ddp is None:
            ids = [self.device.index] if self.device.type == "cuda" else None
            self._ddp = nn.parallel.DistributedDataParallel(self.model, device_ids=ids)
        return self._ddp

    def _autocast(self):
        if self.dtype == "bf16":
            return torch.autocast(self.device.type, dtype=torch.bfloat16)
        return nullcontext()

    # ---- training --------------------------------------------------------------------------
    def fit_stages(self, stages: Sequence, resume_state: dict | None = None, stop_after: int | None = None):
        """Run a gradual-unfreezing schedule: a list of :class:`Stage` (or tuples
        ``(epochs, lr, groups)``). ``stop_after`` ends the run after that many epochs in total
        (used to simulate interruptions); ``resume_state`` continues a saved run."""
        stages = [Stage.parse(s) for s in stages]
        start_stage, start_epoch = 0, 0
        if resume_state is not None:
            start_stage, start_epoch, step, partial = self._load_resume(resume_state)
            if step:
                self._resume_step = (step, partial)
        for si in range(start_stage, len(stages)):
            st = stages[si]
            self.freeze_to(st.groups)
            lrs = discriminative_lrs(st.lr, len(self.groups), st.factor)
            done = self.fit(st.epochs, lrs, stage=si, first_epoch=start_epoch if si == start_stage else 0,
                            stop_after=stop_after)
            if not done:
                return False
        return True

    def fit(self, epochs: int, lr, *, stage: int = 0, first_epoch: int = 0, moms=(0.8, 0.7),
            pct_start: float = 0.3, div: float = 25.0, final_div: float = 1e4, stop_after=None) -> bool:
        """One-cycle training for ``epochs`` epochs; ``lr`` is a float (all groups) or a list per
        group. Returns False if stopped early by ``stop_after``."""
        lrs = list(lr) if isinstance(lr, (list, tuple)) else [float(lr)] * len(self.groups)
        steps_per_epoch = max(1, len(self.train_data))
        sched = OneCycle(epochs * steps_per_epoch, pct_start, div, final_div, moms)
        model = self._train_model()
        for epoch in range(first_epoch, epochs):
            t0 = time.perf_counter()
            self.model.train()
            self.task.begin_epoch(self.model)
            if hasattr(self.train_data, "set_epoch"):
                self.train_data.set_epoch(self.epoch_counter)
            sums = {"loss_sum": 0.0, "correct": 0, "n": 0, "tokens": 0}
            skip = 0
            if self._resume_step is not None:  # continue inside an interrupted epoch
                skip, partial = self._resume_step
                self._resume_step = None
                sums.update({k: partial.get(k, 0) for k in sums})
            it = epoch * steps_per_epoch + skip
            last_save = time.perf_counter()
            bar = self._bar(self.train_data, f"{self.desc} stage {stage} epoch {epoch + 1}/{epochs}",
                            initial=skip)
            for bi, batch in enumerate(bar):
                if bi < skip:
                    continue
                scale, mom = sched.lr_scale(min(it, sched.total - 1)), sched.momentum(min(it, sched.total - 1))
                for g, base in zip(self.opt.param_groups, lrs):
                    g["lr"] = base * scale
                    g["betas"] = (mom, g["betas"][1])
                with self._autocast():
                    res = self.task.loss(model, batch, self.device)
                loss, stats = res[0], res[1]
                self.opt.zero_grad(set_to_none=True)
                loss.backward()
                if self.clip:
                    nn.utils.clip_grad_norm_([p for p in self.model.parameters() if p.requires_grad], self.clip)
                self.opt.step()
                for k in sums:
                    sums[k] += stats[k]
                it += 1
                if (self.checkpoint_every and self.out_dir is not None and gdist.is_main()
                        and time.perf_counter() - last_save >= self.checkpoint_every):
                    self.save_resume_state(stage, epoch, step=bi + 1, partial=sums)
                    last_save = time.perf_counter()
                if self.progress:
                    el = time.perf_counter() - t0
                    bar.set_postfix(loss=f"{sums['loss_sum'] / max(1, sums['n']):.4f}",
                                    tok_s=f"{sums['tokens'] / max(el, 1e-9):.0f}")
            train_time = time.perf_counter() - t0
            sums = dict(zip(sums, gdist.all_reduce_sum(list(sums.values()))))
            row = {"stage": stage, "epoch": epoch + 1, "train_loss": sums["loss_sum"] / max(1, sums["n"]),
                   "train_tokens_per_s": sums["tokens"] / max(train_time, 1e-9),
                   "lr": lrs[-1], "seconds": train_time}
            if self.valid_data is not None:
                for k, v in self.evaluate(self.valid_data).items():
                    if not isinstance(v, (list, dict)):
                        row[f"valid_{k}"] = v
            row["seconds"] = time.perf_counter() - t0
            self._track_best(row)
            self.epoch_counter += 1
            self.history.append(row)
            self._log(row)
            if self.out_dir is not None and gdist.is_main():
                self.save_resume_state(stage, epoch + 1)
            if stop_after is not None and self.epoch_counter >= stop_after:
                return False
        return True

    def _track_best(self, row: dict) -> None:
        if not self.keep_best:
            return
        if self.keep_best not in row:
            raise ValueError(f"keep_best={self.keep_best!r} is not a logged value (have {sorted(row)})")
        v = float(row[self.keep_best])
        if self.best_score is None or v > self.best_score:
            self.best_score = v
            self.best_state = {k: t.detach().to("cpu", copy=True) for k, t in self.model.state_dict().items()}
            row["best"] = True

    def restore_best(self) -> bool:
        """Load the weights of the best epoch (see ``keep_best``); False if none was kept."""
        if self.best_state is None:
            return False
        self.model.load_state_dict(self.best_state)
        return True

    @torch.no_grad()
    def evaluate(self, data) -> dict:
        """Loss and metrics on ``data`` (summed over ranks when distributed)."""
        self.model.eval()
        self.task.begin_epoch(self.model)
        sums = {"loss_sum": 0.0, "correct": 0, "n": 0, "tokens": 0}
        probs, labels = [], []
        t0 = time.perf_counter()
        for batch in self._bar(data, f"{self.desc} valid", leave=False):
            with self._autocast():
                res = self.task.loss(self.model, batch, self.device)
            for k in sums:
                sums[k] += res[1][k]
            if len(res) > 2:
                probs.append(res[2])
                labels.append(res[3])
        el = time.perf_counter() - t0
        sums = dict(zip(sums, gdist.all_reduce_sum(list(sums.values()))))
        extra = None
        if probs:
            extra = _gather_probs(torch.cat(probs), torch.cat(labels))
        out = self.task.summarize(sums, extra)
        out["tokens_per_s"] = sums["tokens"] / max(el, 1e-9)
        return out

    def _bar(self, data, desc, leave=True, initial=0):
        if not self.progress:
            return data
        from tqdm.auto import tqdm

        return tqdm(data, desc=desc.strip(), leave=leave, dynamic_ncols=True, mininterval=1.0,
                    initial=initial)

    # ---- logs and resumable state ---------------------------------------------------------
    def _log(self, row: dict) -> None:
        if not gdist.is_main():
            return
        if self.progress:
            from tqdm.auto import tqdm

            shown = {k: (f"{v:.4f}" if isinstance(v, float) else v) for k, v in row.items()
                     if k in ("stage", "epoch", "train_loss", "valid_loss", "valid_accuracy",
                              "valid_perplexity", "valid_mcc", "valid_roc_auc", "seconds")}
            tqdm.write(f"{self.desc} " + "  ".join(f"{k}={v}" for k, v in shown.items()))
        if self.out_dir is None:
            return
        os.makedirs(self.out_dir, exist_ok=True)
        path = os.path.join(self.out_dir, "log.csv")
        rows = self.history
        keys = sorted({k for r in rows for k in r}, key=lambda k: (k not in ("stage", "epoch"), k))
        with open(path + ".tmp", "w", newline="") as fh:
            w = csv.DictWriter(fh, fieldnames=keys)
            w.writeheader()
            w.writerows(rows)
        os.replace(path + ".tmp", path)
        _tensorboard(self.out_dir, row, self.epoch_counter)

    def save_resume_state(self, stage: int, epoch: int, step: int = 0, partial: dict | None = None) -> None:
        """Optimizer, RNG and position in the schedule, for ``--resume`` (weights_only-safe).

        ``epoch`` epochs of ``stage`` are complete, plus ``step`` batches of the next one
        (whose running loss sums are ``partial``): a resumed run skips those batches of the
        same, seeded epoch order. The LSTM's carried state restarts from zero there."""
        state = {
            "model": {k: v.detach().cpu() for k, v in self.model.state_dict().items()},
            "optimizer": self.opt.state_dict(),
            "torch_rng": torch.get_rng_state(),
            "stage": stage,
            "epoch": epoch,
            "epoch_counter": self.epoch_counter,
            "history": json.dumps(self.history),
            "step": int(step),
            "partial": json.dumps(partial or {}),
        }
        if self.best_state is not None:
            state["best_state"] = self.best_state
            state["best_score"] = self.best_score
        os.makedirs(self.out_dir, exist_ok=True)
        path = os.path.join(self.out_dir, "resume.pt")
        torch.save(state, path + ".tmp")
        os.replace(path + ".tmp", path)

    def _load_resume(self, state: dict) -> tuple[int, int, int, dict]:
        self.model.load_state_dict(state["model"])
        self.opt.load_state_dict(state["optimizer"])
        torch.set_rng_state(state["torch_rng"])
        self.epoch_counter = int(state["epoch_counter"])
        self.history = json.loads(state["history"])
        if "best_state" in state:
            self.best_state, self.best_score = state["best_state"], float(state["best_score"])
        return (int(state["stage"]), int(state["epoch"]), int(state.get("step", 0)),
                json.loads(state.get("partial", "{}")))

    @staticmethod
    def load_resume_state(out_dir) -> dict:
        path = os.path.join(os.fspath(out_dir), "resume.pt")
        if not os.path.exists(path):
            raise FileNotFoundError(f"no resumable state in {out_dir} (expected {path})")
        return torch.load(path, map_location="cpu", weights_only=True)


def _gather_probs(probs: torch.Tensor, labels: torch.Tensor):
    if not gdist.is_distributed():
        return probs, labels
    import torch.distributed as dist

    out = [None] * gdist.world_size()
    dist.all_gather_object(out, (probs.numpy(), labels.numpy()))
    return (torch.from_numpy(np.concatenate([o[0] for o in out])),
            torch.from_numpy(np.concatenate([o[1] for o in out])))


_TB = {}


def _tensorboard(out_dir: str, row: dict, step: int) -> None:
    try:
        from torch.utils.tensorboard import SummaryWriter
    except Exception:  # tensorboard not installed: the CSV log is the record
        return
    w = _TB.get(out_dir)
    if w is None:
        w = _TB[out_dir] = SummaryWriter(os.path.join(out_dir, "tb"))
    for k, v in row.items():
        if isinstance(v, (int, float)) and k not in ("stage", "epoch"):
            w.add_scalar(k, v, step)
    w.flush()
