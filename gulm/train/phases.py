"""The three ULMFiT phases: pretrain a language model on genomes, fine-tune it on the task
corpus, train a classifier with gradual unfreezing. Plus evaluation and prediction.

Each phase takes a dataclass config and writes a checkpoint folder (``model.safetensors``,
``config.json``, ``metrics.json``, ``log.csv``, ``resume.pt``).
"""
from __future__ import annotations

import dataclasses
import os
import time
from dataclasses import asdict, dataclass, field

import numpy as np
import torch

from gulm.data.batches import ClassBatches, TokenizedSet, encode_labels
from gulm.data.corpus import LMBatches, LMCorpus
from gulm.metrics import classification_metrics, write_metrics
from gulm.nn import CLASSIFIER_DROPOUTS, LM_DROPOUTS, AWDConfig, classifier, language_model
from gulm.train import distributed as gdist
from gulm.train.checkpoint import (TokenizerMismatchError, load_checkpoint, load_encoder_from_lm,
                                   read_config, save_checkpoint)
from gulm.train.learner import ClassifierTask, Learner, LMTask, Stage, set_seed

__all__ = ["DataConfig", "PretrainConfig", "FinetuneConfig", "ClassifierConfig", "pretrain_lm",
           "finetune_lm", "train_classifier", "evaluate", "predict", "load_data", "check_memory", "SEED_STAGES"]

# Genomic-ULMFiT's classifier schedule: head, then the last 2, 3 layer groups, then all.
SEED_STAGES = [(1, 2e-2, 1), (1, 1e-2, 2), (1, 5e-3, 3), (2, 1e-3, 0)]


@dataclass
class DataConfig:
    """Where classification data comes from: a CSV/TSV, one FASTA per class, or a BED plus a
    genome. Splits come from ``split_col`` when present, else a stratified random split."""

    csv: str | None = None
    sequence_col: str = "sequence"
    label_col: str = "label"
    split_col: str = "auto"  # a column name, "auto" (set/split if present) or "none"
    fasta: dict[str, str] = field(default_factory=dict)
    bed: str | None = None
    genome: str | None = None
    valid_frac: float = 0.1
    test_frac: float = 0.1
    split_seed: int = 0


@dataclass
class _Common:
    out: str = "runs/gulm"
    bs: int = 64
    bptt: int = 70
    wd: float = 0.01
    clip: float = 0.25
    alpha: float = 2.0
    beta: float = 1.0
    dtype: str = "fp32"
    device: str = "cpu"
    seed: int = 0
    resume: bool = False
    progress: bool = True
    checkpoint_every: float = 600.0  # seconds between resume saves inside an epoch (0: epoch ends only)


@dataclass
class PretrainConfig(_Common):
    """Phase 1: a language model on unlabeled genomes (one FASTA or an ensemble)."""

    fasta: list[str] = field(default_factory=list)
    k: int = 5
    stride: int = 2
    valid_frac: float = 0.1
    both_strands: bool = True
    exclude_bed: list[str] = field(default_factory=list)  # BEDs of loci to leave out (their union)
    emb_size: int = 400
    hidden_size: int = 1150
    n_layers: int = 3
    drop_mult: float = 0.3
    epochs: int = 10
    lr: float = 1e-2
    max_tokens: int = 0  # 0: use the whole corpus; else cut the training stream (quick runs)
    out: str = "runs/lm"


@dataclass
class FinetuneConfig(_Common):
    """Phase 2: continue a language model on the task's own sequences (train + valid only)."""

    lm: str = ""
    data: DataConfig = field(default_factory=DataConfig)
    both_strands: bool = True
    drop_mult: float = 0.3
    epochs: int = 5
    lr: float = 5e-3
    out: str = "runs/lm_finetuned"


@dataclass
class ClassifierConfig(_Common):
    """Phase 3: a classifier, its encoder from an LM checkpoint (or from scratch if ``lm`` is
    empty), trained with gradual unfreezing (``stages``: [epochs, lr, groups] each)."""

    data: DataConfig = field(default_factory=DataConfig)
    lm: str = ""
    k: int | None = None  # default 5 from scratch; with an LM, must match it if given
    stride: int | None = None  # default 2 from scratch; with an LM, must match it if given
    emb_size: int | None = None  # from scratch: default 400; with an LM: must match it if given
    hidden_size: int | None = None  # default 1150
    n_layers: int | None = None  # default 3
    drop_mult: float = 0.5
    head_hidden: int = 50  # units of the head's hidden layer (the seed's 50; widen for many classes)
    stages: list = field(default_factory=lambda: [list(s) for s in SEED_STAGES])
    max_len: int = 1400
    rc_augment: bool = False
    rc_average: bool = False
    select: str = "last"  # "last" epoch, or "best" epoch by select_metric on the valid split
    select_metric: str = "mcc"
    out: str = "runs/classifier"


# ---- data ----------------------------------------------------------------------------------
def load_data(cfg: DataConfig):
    """LabeledSequences with a ``split`` of 'train'/'valid'/'test' for every sequence."""
    from gulm.data import labeled
    from gulm.data.genome import Genome

    sources = sum(bool(x) for x in (cfg.csv, cfg.fasta, cfg.bed))
    if sources != 1:
        raise ValueError("give exactly one classification data source: csv, fasta (one per class: "
                         "LABEL=PATH) or bed + genome")
    if cfg.csv:
        split_col = cfg.split_col if cfg.split_col not in ("", "none", None) else None
        ds = labeled.read_labeled_csv(cfg.csv, sequence_col=cfg.sequence_col, label_col=cfg.label_col,
                                      split_col=split_col)
    elif cfg.fasta:
        ds = labeled.read_labeled_fasta(cfg.fasta)
    else:
        if not cfg.genome:
            raise ValueError("a BED data source needs a genome FASTA (genome=...)")
        ds = labeled.read_labeled_bed(cfg.bed, Genome(cfg.genome))
    if ds.split is None:
        fr = (1.0 - cfg.valid_frac - cfg.test_frac, cfg.valid_frac, cfg.test_frac)
        ds = ds.random_split(fr, seed=cfg.split_seed)
    unknown = sorted(set(ds.split) - {"train", "valid", "test"})
    if unknown:
        raise ValueError(f"unknown split names {unknown[:5]} in the data (expected train, valid, test)")
    return ds


def _select(ds, split: str):
    idx = [i for i, s in enumerate(ds.split) if s == split]
    return [ds.sequences[i] for i in idx], [ds.labels[i] for i in idx]


def _device(name: str) -> torch.device:
    dev = torch.device(name)
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ValueError("device 'cuda' requested but CUDA is not available")
    if dev.type == "cuda" and gdist.is_distributed():
        dev = torch.device("cuda", int(os.environ.get("LOCAL_RANK", "0")))
    return dev


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


def _training_dict(cfg) -> dict:
    return asdict(cfg)


def _resume_state(cfg, out):
    if not cfg.resume:
        return None
    if not os.path.exists(os.path.join(out, "resume.pt")):
        return None
    return Learner.load_resume_state(out)


# ---- phase 1 -------------------------------------------------------------------------------
def pretrain_lm(cfg: PretrainConfig | None = None, *, corpus: LMCorpus | None = None, stop_after=None,
                **overrides) -> dict:
    """Pretrain an AWD-LSTM language model. Returns the final validation metrics."""
    from gulm.data.tokenizer import KmerTokenizer

    cfg = dataclasses.replace(cfg or PretrainConfig(), **overrides)
    gdist.init_from_env(cfg.device)
    set_seed(cfg.seed)
    device = _device(cfg.device)
    if corpus is None:
        if not cfg.fasta:
            raise ValueError("pretraining needs at least one FASTA file (fasta=[...])")
        tok = KmerTokenizer(cfg.k, cfg.stride)
        check_memory(tok.vocab_size, cfg.emb_size, f"k={cfg.k}: ")
        corpus = LMCorpus.from_fasta(cfg.fasta, tok, valid_frac=cfg.valid_frac,
                                     both_strands=cfg.both_strands, exclude_bed=cfg.exclude_bed)
    tok = corpus.tokenizer
    train = _cap_tokens(corpus.train, cfg.max_tokens)
    mcfg = AWDConfig(vocab_size=tok.vocab_size, emb_size=cfg.emb_size, hidden_size=cfg.hidden_size,
                     n_layers=cfg.n_layers, drop_mult=cfg.drop_mult, bptt=cfg.bptt, **LM_DROPOUTS)
    model = language_model(mcfg)
    return _fit_lm(cfg, model, mcfg, tok, train, corpus.valid, corpus.stats, stop_after, desc="pretrain")


def _cap_tokens(tokens: np.ndarray, max_tokens: int, block: int = 10_000) -> np.ndarray:
    """At most ``max_tokens`` tokens as evenly spaced blocks of the stream, so a capped genome
    ensemble still samples every genome (0: no cap)."""
    if not max_tokens or tokens.size <= max_tokens:
        return tokens
    n_blocks = max(1, max_tokens // block)
    size = max_tokens // n_blocks
    starts = np.linspace(0, tokens.size - size, n_blocks).astype(np.int64)
    return np.concatenate([tokens[s:s + size] for s in starts])


def _fit_lm(cfg, model, mcfg, tok, train_tokens, valid_tokens, corpus_stats, stop_after, desc):
    device = _device(cfg.device)
    world, rank = gdist.world_size(), gdist.rank()
    bs = cfg.bs // world if cfg.bs % world == 0 else cfg.bs
    train = LMBatches(train_tokens, bs, cfg.bptt, shuffle=True, seed=cfg.seed, rank=rank, world=world)
    valid = None
    if valid_tokens is not None and len(valid_tokens) > 4 * world * cfg.bptt:
        # at least two windows per validation stream
        vbs = max(1, min(bs, (len(valid_tokens) - 1) // (2 * world * cfg.bptt)))
        valid = LMBatches(valid_tokens, vbs, cfg.bptt, shuffle=False, rank=rank, world=world)
    learner = Learner(model, LMTask(cfg.alpha, cfg.beta), train, valid,
                      layer_groups=model.layer_groups(), wd=cfg.wd, clip=cfg.clip, device=device,
                      dtype=cfg.dtype, out_dir=cfg.out, progress=cfg.progress, desc=desc,
                      checkpoint_every=cfg.checkpoint_every)
    t0 = time.perf_counter()
    done = learner.fit_stages([Stage(cfg.epochs, cfg.lr, 0, factor=1.0)],
                              resume_state=_resume_state(cfg, cfg.out), stop_after=stop_after)
    metrics = {k.replace("valid_", ""): v for k, v in (learner.history[-1] if learner.history else {}).items()
               if k.startswith("valid_")}
    metrics.update(train_seconds=time.perf_counter() - t0, epochs_done=learner.epoch_counter,
                   complete=bool(done))
    if gdist.is_main():
        save_checkpoint(cfg.out, model, kind="lm", model_config=mcfg.to_dict(), tokenizer=tok,
                        training=_training_dict(cfg), metrics=metrics, extra={"corpus": corpus_stats})
    gdist.barrier()
    return metrics


# ---- phase 2 -------------------------------------------------------------------------------
def finetune_lm(cfg: FinetuneConfig | None = None, *, stop_after=None, **overrides) -> dict:
    """Fine-tune a language model on the classification sequences (never the test split)."""
    cfg = dataclasses.replace(cfg or FinetuneConfig(), **overrides)
    if not cfg.lm:
        raise ValueError("fine-tuning needs a language-model checkpoint (lm=...)")
    gdist.init_from_env(cfg.device)
    set_seed(cfg.seed)
    model, tok, lm_cfg = load_checkpoint(cfg.lm)
    if lm_cfg["kind"] != "lm":
        raise ValueError(f"{cfg.lm}: expected a language-model checkpoint, found {lm_cfg['kind']}")
    mcfg = AWDConfig.from_dict({**lm_cfg["model"], "drop_mult": cfg.drop_mult})
    fresh = language_model(mcfg)
    fresh.load_state_dict(model.state_dict())
    ds = load_data(cfg.data)
    seqs = [(f"train{i}", s) for i, s in enumerate(_select(ds, "train")[0])]
    vseqs = [(f"valid{i}", s) for i, s in enumerate(_select(ds, "valid")[0])]
    train = LMCorpus.from_sequences(seqs, tok, valid_frac=0.0, both_strands=cfg.both_strands,
                                    source="classification train split")
    valid = LMCorpus.from_sequences(vseqs, tok, valid_frac=0.0, both_strands=cfg.both_strands,
                                    source="classification valid split") if vseqs else None
    return _fit_lm(cfg, fresh, mcfg, tok, train.train, None if valid is None else valid.train,
                   {"finetuned_from": os.path.abspath(cfg.lm), **train.stats}, stop_after, desc="finetune")


# ---- phase 3 -------------------------------------------------------------------------------
def train_classifier(cfg: ClassifierConfig | None = None, *, stop_after=None, **overrides) -> dict:
    """Train a classifier with gradual unfreezing; evaluates on the test split at the end.
    Returns the test metrics (or validation metrics when there is no test split)."""
    from gulm.data.tokenizer import KmerTokenizer

    cfg = dataclasses.replace(cfg or ClassifierConfig(), **overrides)
    gdist.init_from_env(cfg.device)
    set_seed(cfg.seed)
    device = _device(cfg.device)
    ds = load_data(cfg.data)
    if cfg.lm:
        lm_cfg = read_config(cfg.lm)
        tok = KmerTokenizer.from_dict(lm_cfg["tokenizer"])
        asked = KmerTokenizer(cfg.k if cfg.k is not None else tok.k,
                              cfg.stride if cfg.stride is not None else tok.stride)
        if (asked.k, asked.stride) != (tok.k, tok.stride):
            raise TokenizerMismatchError(
                f"{cfg.lm}: the language model was trained with {tok!r}, but this run asks for "
                f"k={asked.k}, stride={asked.stride}; drop k/stride or use a matching LM")
        sizes = {k: lm_cfg["model"][k] for k in ("emb_size", "hidden_size", "n_layers", "vocab_size")}
        clash = {k: (getattr(cfg, k), sizes[k]) for k in ("emb_size", "hidden_size", "n_layers")
                 if getattr(cfg, k) is not None and getattr(cfg, k) != sizes[k]}
        if clash:
            raise ValueError(
                f"{cfg.lm}: the language model's sizes differ from the requested ones ("
                + ", ".join(f"{k} {want} != LM {have}" for k, (want, have) in clash.items())
                + "); drop them to use the LM's")
        cfg = dataclasses.replace(cfg, **{k: sizes[k] for k in ("emb_size", "hidden_size", "n_layers")},
                                  k=tok.k, stride=tok.stride)
    else:
        tok = KmerTokenizer(cfg.k or 5, cfg.stride or 2)
        cfg = dataclasses.replace(cfg, k=tok.k, stride=tok.stride, emb_size=cfg.emb_size or 400,
                                  hidden_size=cfg.hidden_size or 1150, n_layers=cfg.n_layers or 3)
        check_memory(tok.vocab_size, cfg.emb_size, f"k={tok.k}: ")
        sizes = dict(emb_size=cfg.emb_size, hidden_size=cfg.hidden_size, n_layers=cfg.n_layers,
                     vocab_size=tok.vocab_size)
    train_seqs, train_labels = _select(ds, "train")
    if not train_seqs:
        raise ValueError("the classification data has no training sequences")
    y_train, classes = encode_labels(train_labels)
    sets = {}
    for split in ("train", "valid", "test"):
        seqs, labels = _select(ds, split)
        if seqs:
            y, _ = encode_labels(labels, classes)
            sets[split] = TokenizedSet.build(seqs, tok, y, with_rc=cfg.rc_augment or cfg.rc_average,
                                             name=f"{split} split")
    mcfg = AWDConfig(**sizes, drop_mult=cfg.drop_mult, n_classes=len(classes), bptt=cfg.bptt,
                     max_len=cfg.max_len, head_hidden=cfg.head_hidden, **CLASSIFIER_DROPOUTS)
    model = classifier(mcfg)
    if cfg.lm:
        load_encoder_from_lm(model, cfg.lm, tok)
    world, rank = gdist.world_size(), gdist.rank()
    bs = cfg.bs // world if cfg.bs % world == 0 else cfg.bs
    train = ClassBatches(sets["train"], bs, shuffle=True, seed=cfg.seed, rc_augment=cfg.rc_augment,
                         rank=rank, world=world)
    valid = ClassBatches(sets["valid"], bs, rank=rank, world=world) if "valid" in sets else None
    task = ClassifierTask(cfg.alpha, cfg.beta, classes)
    learner = Learner(model, task, train, valid, layer_groups=model.layer_groups(), wd=cfg.wd,
                      clip=cfg.clip, device=device, dtype=cfg.dtype, out_dir=cfg.out,
                      progress=cfg.progress, desc="classifier", checkpoint_every=cfg.checkpoint_every,
                      keep_best=f"valid_{cfg.select_metric}" if cfg.select == "best" and valid else None)
    if cfg.select not in ("last", "best"):
        raise ValueError(f"select must be 'last' or 'best', got {cfg.select!r}")
    t0 = time.perf_counter()
    done = learner.fit_stages(cfg.stages, resume_state=_resume_state(cfg, cfg.out), stop_after=stop_after)
    train_seconds = time.perf_counter() - t0
    if done and learner.restore_best():
        metrics_note = {"selected_epoch": "best", "best_valid": learner.best_score}
    else:
        metrics_note = {"selected_epoch": "last"}
    eval_split = "test" if "test" in sets else "valid"
    metrics = {"split": eval_split, "train_seconds": train_seconds, "complete": bool(done), **metrics_note}
    if eval_split in sets:
        probs, labels = _predict_set(model, sets[eval_split], bs, device, cfg.dtype, cfg.rc_average,
                                     progress=cfg.progress)
        if gdist.is_main():
            metrics.update(classification_metrics(labels, probs, classes))
    lengths = [len(s) for s in train_seqs]
    if gdist.is_main():
        save_checkpoint(cfg.out, model, kind="classifier", model_config=mcfg.to_dict(), tokenizer=tok,
                        training=_training_dict(cfg), metrics=metrics,
                        extra={"classes": classes, "window": int(np.median(lengths)),
                               "lm": os.path.abspath(cfg.lm) if cfg.lm else None})
    gdist.barrier()
    return metrics


@torch.no_grad()
def _predict_set(model, data: TokenizedSet, bs: int, device, dtype: str, rc_average: bool,
                 progress: bool = False):
    """Probabilities [N, C] in the order of ``data`` (plus its labels), all on this process."""
    from contextlib import nullcontext

    model.eval()
    order = np.argsort(-data.lengths, kind="stable")
    out = np.zeros((len(data), model.config.n_classes), dtype=np.float64)
    ctx = torch.autocast(device.type, dtype=torch.bfloat16) if dtype == "bf16" else nullcontext()
    batches = [order[i:i + bs] for i in range(0, len(order), bs)]
    if progress:
        from tqdm.auto import tqdm

        batches = tqdm(batches, desc="predict", leave=False)
    for b in batches:
        views = [False, True] if rc_average else [False]
        acc = 0
        for rc in views:
            ids, lengths, _ = data.batch(b, rc=rc)
            with ctx:
                logits = model(ids.to(device), lengths.to(device))[0]
            acc = acc + logits.float().softmax(-1).cpu().numpy()
        out[b] = acc / len(views)
    return out, data.labels


# ---- evaluation / prediction on a trained classifier ----------------------------------------
def evaluate(checkpoint: str, data: DataConfig, split: str = "test", *, bs: int = 64,
             device: str = "cpu", dtype: str = "fp32", rc_average: bool | None = None,
             out: str | None = None, progress: bool = True) -> dict:
    """Metrics of a classifier checkpoint on one split of a data source (``split='all'`` for
    every sequence)."""
    model, tok, cfg = load_checkpoint(checkpoint, device)
    if cfg["kind"] != "classifier":
        raise ValueError(f"{checkpoint}: not a classifier checkpoint")
    classes = cfg["classes"]
    ds = load_data(data)
    if split == "all":
        seqs, labels = ds.sequences, ds.labels
    else:
        seqs, labels = _select(ds, split)
    if not seqs:
        raise ValueError(f"the data has no sequences in split {split!r}")
    y, _ = encode_labels(labels, classes)
    rc_avg = cfg["training"].get("rc_average", False) if rc_average is None else rc_average
    data_set = TokenizedSet.build(seqs, tok, y, with_rc=rc_avg, name=f"{split} split")
    probs, _ = _predict_set(model, data_set, bs, torch.device(device), dtype, rc_avg, progress)
    metrics = classification_metrics(y, probs, classes)
    if out:
        write_metrics(out, metrics)
    return metrics


def predict(checkpoint: str, sequences, *, bs: int = 64, device: str = "cpu", dtype: str = "fp32",
            rc_average: bool | None = None, progress: bool = False):
    """Class probabilities [N, C] of raw sequences (str or bytes) and the class names."""
    model, tok, cfg = load_checkpoint(checkpoint, device)
    if cfg["kind"] != "classifier":
        raise ValueError(f"{checkpoint}: not a classifier checkpoint")
    rc_avg = cfg["training"].get("rc_average", False) if rc_average is None else rc_average
    data_set = TokenizedSet.build(list(sequences), tok, None, with_rc=rc_avg, name="input")
    probs, _ = _predict_set(model, data_set, bs, torch.device(device), dtype, rc_avg, progress)
    return probs, cfg["classes"]
