"""A small Learner: AdamW, one-cycle, discriminative learning rates, gradual unfreezing,
gradient clipping, bf16 autocast, DDP, progress bars, logs and resumable state.

The learner is model-agnostic; a *task* (:mod:`gulm.train.tasks`) turns a batch into a loss
and statistics. ``resume.pt`` is written and read by :mod:`gulm.runtime.checkpoint`.
"""
from __future__ import annotations

import json
import os
import time
from dataclasses import dataclass
from typing import Iterable, Sequence

import numpy as np
import torch
from torch import nn

from gulm.configs.base import TRAIN_DTYPES
from gulm.runtime import checkpoint as ckpt
from gulm.runtime import distributed as gdist
from gulm.runtime.device import check_dtype, precision
from gulm.train.log import epoch_line, notice, tensorboard_scalars, write_log_csv
from gulm.train.schedule import OneCycle, discriminative_lrs

__all__ = ["Stage", "Learner", "set_seed"]


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
        self.dtype = check_dtype(dtype, TRAIN_DTYPES)
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
        return precision(self.dtype, self.device)

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
            self._say_resuming(stages, start_stage, start_epoch, step)
        for si in range(start_stage, len(stages)):
            st = stages[si]
            self.freeze_to(st.groups)
            lrs = discriminative_lrs(st.lr, len(self.groups), st.factor)
            done = self.fit(st.epochs, lrs, stage=si, first_epoch=start_epoch if si == start_stage else 0,
                            stop_after=stop_after)
            if not done:
                return False
        self._plot_curves()
        return True

    def _plot_curves(self) -> None:
        """``curves.png`` beside log.csv at the end of a run (:func:`gulm.train.curves.plot_training_curves`);
        a figure that cannot be drawn is said in one line, never an error of the run."""
        if self.out_dir is None or not self.history or not gdist.is_main():
            return
        try:
            from gulm.train.curves import CURVES_PNG, plot_training_curves

            plot_training_curves(self.history, os.path.join(self.out_dir, CURVES_PNG), self.desc.strip())
        except Exception as err:  # matplotlib missing or broken: the log.csv is the record
            notice(f"no {self.out_dir}/curves.png: {' '.join(str(err).split())}")

    def _say_resuming(self, stages: list[Stage], stage: int, epoch: int, step: int) -> None:
        if not gdist.is_main():
            return
        where = ckpt.resume_path(self.out_dir) if self.out_dir is not None else "the given state"
        total = sum(s.epochs for s in stages)
        if stage >= len(stages) or (stage == len(stages) - 1 and epoch >= stages[-1].epochs):
            notice(f"resuming from {where}: the run had finished all {total} epochs; nothing left to train")
            return
        while stage < len(stages) - 1 and epoch >= stages[stage].epochs:  # saved after a stage's last epoch: the next stage's start
            stage, epoch = stage + 1, 0
        at = f"after step {step}" if step else "at its start"
        notice(f"resuming from {where}: stage {stage} epoch {epoch + 1}/{stages[stage].epochs}, {at} "
               f"({self.epoch_counter} of {total} epochs done)")

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
            bar = self._train_bar(f"{self.desc} stage {stage} epoch {epoch + 1}/{epochs}", skip)
            for bi, batch in enumerate(self.train_data):
                if bi < skip:  # batches done before the interruption (the bar starts past them)
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
                if bar is not None:
                    el = time.perf_counter() - t0
                    bar.update(1)
                    bar.set_postfix(loss=f"{sums['loss_sum'] / max(1, sums['n']):.4f}",
                                    tok_s=f"{sums['tokens'] / max(el, 1e-9):.0f}", refresh=False)
            if bar is not None:
                bar.close()
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
            self._log(row, epochs)
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
            extra = tuple(torch.from_numpy(a) for a in
                          gdist.all_gather_arrays(torch.cat(probs).numpy(), torch.cat(labels).numpy()))
        out = self.task.summarize(sums, extra)
        out["tokens_per_s"] = sums["tokens"] / max(el, 1e-9)
        return out

    def _bar(self, data, desc, leave=True):
        if not self.progress:
            return data
        from tqdm.auto import tqdm

        return tqdm(data, desc=desc.strip(), leave=leave, dynamic_ncols=True, mininterval=1.0)

    def _train_bar(self, desc: str, done: int):
        """A bar over this epoch's training batches (their exact number), ``done`` of them already
        counted (a resumed epoch); None without progress bars."""
        if not self.progress:
            return None
        from tqdm.auto import tqdm

        return tqdm(total=len(self.train_data), initial=done, desc=desc.strip(), dynamic_ncols=True,
                    mininterval=1.0)

    # ---- logs and resumable state ---------------------------------------------------------
    def _log(self, row: dict, epochs: int | None = None) -> None:
        """The epoch's line (printed with or without progress bars), log.csv and TensorBoard."""
        if not gdist.is_main():
            return
        line = epoch_line(self.desc, row, epochs)
        if self.progress:
            from tqdm.auto import tqdm

            tqdm.write(line)
        else:
            print(line, flush=True)
        if self.out_dir is not None:
            write_log_csv(self.out_dir, self.history)
            tensorboard_scalars(self.out_dir, row, self.epoch_counter)

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
        ckpt.save_resume_state(self.out_dir, state)

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

