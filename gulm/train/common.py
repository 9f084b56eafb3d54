"""What every training phase does around its Learner: start the run (process group, threads,
seed, device; an interrupted save in the output folder finished or undone), find the resume
state (and say what happens when there is none), split the batch over ranks, refuse a
vocabulary that does not fit in memory, and record the config in the checkpoint."""
from __future__ import annotations

import dataclasses
import os

import torch

from gulm.configs.fields import option_name
from gulm.configs.train import TrainOptions
from gulm.runtime import checkpoint as ckpt
from gulm.runtime import distributed as gdist
from gulm.runtime.device import setup
from gulm.train.learner import set_seed
from gulm.train.log import notice

__all__ = ["start_phase", "resume_state", "rank_batch_size", "check_memory", "training_record", "apply_preset"]


def start_phase(cfg: TrainOptions) -> torch.device:
    """Join torchrun's process group (if any), set threads and seeds, and finish or undo an
    interrupted save in ``cfg.out`` (:func:`~gulm.runtime.checkpoint.recover_checkpoint`);
    returns the device."""
    device = setup(cfg.device, cfg.threads)
    if gdist.is_main():
        for line in ckpt.recover_checkpoint(cfg.out):
            notice(line)
    gdist.barrier()
    set_seed(cfg.seed)
    return device


def resume_state(cfg: TrainOptions) -> dict | None:
    """The saved state to continue from. ``cfg.resume``: False (start from the start; a note if
    ``cfg.out`` holds resume state, which the run replaces), True (continue when ``cfg.out``
    holds resume state, else start fresh with a note) or ``"require"`` (refuse to start fresh)."""
    path = ckpt.resume_path(cfg.out)
    if not cfg.resume:
        if os.path.exists(path) and gdist.is_main():
            notice(f"{cfg.out} holds resume state; starting from the start, which replaces it "
                   f"({option_name('resume')} true continues it)")
        return None
    state = ckpt.read_resume_state(cfg.out, required=False)
    if state is None:
        if cfg.resume == "require":
            raise FileNotFoundError(f"no resume state in {cfg.out} ({path} is missing), and "
                                    f"{option_name('resume')} require refuses to start fresh")
        if gdist.is_main():
            notice(f"no resume state in {cfg.out}, starting fresh")
    return state


def rank_batch_size(bs: int) -> int:
    """This rank's share of a global batch of ``bs`` (all of it when it does not divide)."""
    world = gdist.world_size()
    return bs // world if bs % world == 0 else bs


def check_memory(vocab_size: int, emb_size: int, what: str = "") -> None:
    """Refuse a vocabulary whose embedding (weights, gradient and two Adam moments, fp32)
    would not fit in this machine's memory."""
    need = 4 * 4 * vocab_size * emb_size
    try:
        total = os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):  # pragma: no cover - non-POSIX
        return
    if need > 0.8 * total:
        raise MemoryError(
            f"{what}a vocabulary of {vocab_size:,} tokens with {emb_size}-dim embeddings needs "
            f"{need / 1e9:.1f} GB for the embedding alone (weights, gradient, Adam state), more "
            f"than this machine's {total / 1e9:.1f} GB; use a smaller k")


def training_record(cfg) -> dict:
    """The config as the ``training`` record of config.json (flat keys, nested ``data``)."""
    return dataclasses.asdict(cfg)


def apply_preset(cfg, phase: str, train_sequences, n_classes: int, *, scratch: bool = False):
    """``cfg`` with the options left unset filled from its recipe preset (``cfg.preset``: auto
    chooses from the training sequences' lengths, the number of classes and ``cfg.stranded``),
    plus the :class:`~gulm.presets.Preset` used; says which, once, on the main rank."""
    from gulm import presets

    p = presets.resolve(cfg.preset, [len(s) for s in train_sequences], n_classes, cfg.stranded)
    cfg = presets.apply(cfg, p, phase)
    if scratch:
        cfg = presets.apply(cfg, p, "scratch")
    if gdist.is_main() and getattr(cfg, "progress", True):
        print(f"gulm {phase}: preset {p.name} ({p.reason})", flush=True)
    return cfg, p
