"""The language-model phases of ULMFiT: pretrain on genomes (phase 1) and fine-tune on the task's
sequences (phase 2). Phase 3, the classifier, is :mod:`gulm.train.classifier`.

Each phase takes a config (:mod:`gulm.configs.train`) and writes a checkpoint folder
(``model.safetensors``, ``config.json``, ``metrics.json``, ``log.csv``, ``resume.pt``).
"""
from __future__ import annotations

import os
import time

from gulm.configs import FinetuneConfig, PretrainConfig, option_name
from gulm.configs.fields import config_from
from gulm.data.corpus import LMBatches, LMCorpus, cap_tokens
from gulm.nn import LM_DROPOUTS, AWDConfig, language_model
from gulm.ops.lstm import releases_scratch
from gulm.runtime import distributed as gdist
from gulm.runtime.checkpoint import load_checkpoint, resolve_checkpoint, save_checkpoint
from gulm.train.common import (apply_preset, check_memory, rank_batch_size, resume_state, start_phase,
                               training_record)
from gulm.train.learner import Learner, Stage
from gulm.train.log import notice
from gulm.train.tasks import LMTask

__all__ = ["pretrain_lm", "finetune_lm", "capped_streams"]


def pretrain_lm(cfg: PretrainConfig | None = None, *, corpus: LMCorpus | None = None, stop_after=None,
                **overrides) -> dict:
    """Pretrain an AWD-LSTM language model on ``cfg.fasta`` (or a prepared ``corpus``).
    Returns the final validation metrics."""
    from gulm.data.tokenizer import KmerTokenizer

    cfg = config_from(PretrainConfig, cfg, overrides)
    device = start_phase(cfg)
    if corpus is None:
        if not cfg.fasta:
            raise ValueError(f"pretraining needs at least one FASTA file ({option_name('fasta')})")
        tok = KmerTokenizer(cfg.k, cfg.stride)
        check_memory(tok.vocab_size, cfg.emb_size, f"k={cfg.k}: ")
        corpus = LMCorpus.from_fasta(cfg.fasta, tok, valid_frac=cfg.valid_frac,
                                     both_strands=cfg.both_strands, exclude_bed=cfg.exclude_bed)
    tok = corpus.tokenizer
    mcfg = AWDConfig(vocab_size=tok.vocab_size, emb_size=cfg.emb_size, hidden_size=cfg.hidden_size,
                     n_layers=cfg.n_layers, drop_mult=cfg.drop_mult, bptt=cfg.bptt, **LM_DROPOUTS)
    train, valid = capped_streams(corpus.train, corpus.valid, cfg.max_tokens, cfg.bptt)
    return fit_lm(cfg, language_model(mcfg), mcfg, tok, train, valid, corpus.stats, device, stop_after,
                  desc="pretrain")


def capped_streams(train, valid, max_tokens: int, bptt: int):
    """The training stream capped at ``max_tokens`` and the validation stream in proportion (at
    least 8 windows of ``bptt``, so validation still runs); both untouched without a cap."""
    if not max_tokens or train.size <= max_tokens:
        return train, valid
    share = int(round(max_tokens * valid.size / max(1, train.size)))
    valid_cap = min(valid.size, max(share, 8 * bptt * gdist.world_size()))
    return cap_tokens(train, max_tokens), cap_tokens(valid, valid_cap)


def finetune_lm(cfg: FinetuneConfig | None = None, *, stop_after=None, **overrides) -> dict:
    """Fine-tune a language model on the classification sequences (never the test split)."""
    from gulm.data.sources import load_labeled, select_split

    cfg = config_from(FinetuneConfig, cfg, overrides)
    if not cfg.lm:
        raise ValueError(f"fine-tuning needs a language-model checkpoint ({option_name('lm')})")
    device = start_phase(cfg)
    model, tok, lm_cfg = load_checkpoint(cfg.lm, kind="lm")
    labeled = load_labeled(cfg.data)
    train_seqs, train_labels = select_split(labeled, "train")
    cfg, preset = apply_preset(cfg, "finetune", train_seqs, len(set(train_labels)))
    mcfg = AWDConfig.from_dict({**lm_cfg["model"], "drop_mult": cfg.drop_mult})
    fresh = language_model(mcfg)
    fresh.load_state_dict(model.state_dict())
    corpus = LMCorpus.from_labeled(labeled, tok, both_strands=cfg.both_strands)
    stats = {"finetuned_from": os.path.abspath(resolve_checkpoint(cfg.lm)), **corpus.stats,
             "preset": {"name": preset.name, "reason": preset.reason}}
    return fit_lm(cfg, fresh, mcfg, tok, corpus.train, corpus.valid, stats, device, stop_after, desc="finetune")


@releases_scratch
def fit_lm(cfg, model, mcfg: AWDConfig, tok, train_tokens, valid_tokens, corpus_stats: dict, device,
           stop_after, desc: str) -> dict:
    """Train a language model on token streams with one one-cycle stage; saves the checkpoint."""
    world, rank = gdist.world_size(), gdist.rank()
    bs = rank_batch_size(cfg.bs)
    train = LMBatches(train_tokens, bs, cfg.bptt, shuffle=True, seed=cfg.seed, rank=rank, world=world)
    valid = None
    if valid_tokens is not None and len(valid_tokens) > 4 * world * cfg.bptt:
        # at least two windows per validation stream
        vbs = max(1, min(bs, (len(valid_tokens) - 1) // (2 * world * cfg.bptt)))
        valid = LMBatches(valid_tokens, vbs, cfg.bptt, shuffle=False, rank=rank, world=world)
    elif gdist.is_main():
        notice(f"{desc}: no validation: the validation stream has {0 if valid_tokens is None else len(valid_tokens)} "
               f"tokens, too few for {4 * world} windows of {option_name('bptt')} {cfg.bptt}")
    learner = Learner(model, LMTask(cfg.alpha, cfg.beta), train, valid,
                      layer_groups=model.layer_groups(), wd=cfg.wd, clip=cfg.clip, eps=cfg.eps, device=device,
                      dtype=cfg.dtype, out_dir=cfg.out, progress=cfg.progress, desc=desc,
                      checkpoint_every=cfg.checkpoint_every)
    t0 = time.perf_counter()
    done = learner.fit_stages([Stage(cfg.epochs, cfg.lr, 0, factor=1.0)], resume_state=resume_state(cfg),
                              stop_after=stop_after)
    metrics = {k.replace("valid_", ""): v for k, v in (learner.history[-1] if learner.history else {}).items()
               if k.startswith("valid_")}
    metrics.update(train_seconds=time.perf_counter() - t0, epochs_done=learner.epoch_counter,
                   complete=bool(done))
    if gdist.is_main():
        save_checkpoint(cfg.out, model, kind="lm", model_config=mcfg.to_dict(), tokenizer=tok,
                        training=training_record(cfg), metrics=metrics, extra={"corpus": corpus_stats})
    gdist.barrier()
    return metrics
