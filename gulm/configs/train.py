"""The configs of the three training phases (``gulm pretrain``, ``finetune``,
``train-classifier``). A phase config is flat: the tokenizer and model-size fields are mixed in
from :class:`TokenizerConfig` and :class:`ModelSize`, so YAML keys and flags stay ``k:``,
``--emb-size`` and so on, while their defaults live in one place."""
from __future__ import annotations

from dataclasses import dataclass

from gulm.configs.base import TRAIN_DTYPES, DataConfig, ModelSize, RunOptions, TokenizerConfig
from gulm.configs.fields import opt, unset_like

__all__ = ["SEED_STAGES", "TrainOptions", "PretrainConfig", "FinetuneConfig", "ClassifierConfig"]

# Genomic-ULMFiT's classifier schedule: head, then the last 2, 3 layer groups, then all.
SEED_STAGES = [(1, 2e-2, 1), (1, 1e-2, 2), (1, 5e-3, 3), (2, 1e-3, 0)]


@dataclass
class TrainOptions(RunOptions):
    """Options every training phase shares."""

    out: str = opt("runs/gulm", "output checkpoint folder")
    bs: int = opt(64, "batch size (split over the processes of a distributed run)")
    bptt: int = opt(70, "tokens per step of truncated backpropagation through time")
    wd: float = opt(0.01, "AdamW weight decay")
    clip: float = opt(0.25, "gradient-norm clipping (0: none)")
    alpha: float = opt(2.0, "activation regularisation (AR) weight")
    beta: float = opt(1.0, "temporal activation regularisation (TAR) weight")
    dtype: str = opt("fp32", "compute precision (bf16: autocast)", choices=TRAIN_DTYPES)
    seed: int = opt(0, "random seed of weights, batches and dropout")
    progress: bool = opt(True, "show progress bars (the line after each epoch is printed either way)")
    resume: bool | str = opt(False, "continue from the out folder's resume.pt: true (start fresh, with a note, "
                                    "when there is none), require (refuse to start without one) or false (default: false)",
                             choices=(False, True, "require"), metavar="{true,false,require}")
    checkpoint_every: float = opt(600.0, "seconds between resume saves inside an epoch (0: at epoch ends only)")


@dataclass
class PretrainConfig(TrainOptions, TokenizerConfig, ModelSize):
    """Phase 1: a language model on unlabeled genomes (one FASTA or an ensemble)."""

    fasta: list[str] = opt(factory=list, help="genome FASTA files (plain or compressed)", metavar="FASTA")
    valid_frac: float = opt(0.1, "fraction of each record (its end) held out for validation")
    both_strands: bool = opt(True, "train on both strands")
    exclude_bed: list[str] = opt(factory=list, help="BED files of loci left out of the corpus (their union)",
                                 metavar="BED")
    drop_mult: float = opt(0.3, "multiplier of all five dropouts")
    epochs: int = opt(10, "training epochs")
    lr: float = opt(1e-2, "peak learning rate (one-cycle)")
    max_tokens: int = opt(0, "cap the training stream at this many tokens, sampled evenly, and the "
                             "validation stream in proportion (0: no cap)")
    out: str = opt("runs/lm", "output checkpoint folder")


@dataclass
class FinetuneConfig(TrainOptions):
    """Phase 2: continue a language model on the task's own sequences (train + valid only)."""

    lm: str = opt("", "language-model checkpoint to fine-tune")
    data: DataConfig = opt(factory=DataConfig, help="the labelled data")
    both_strands: bool = opt(True, "train on both strands")
    drop_mult: float = opt(0.3, "multiplier of all five dropouts")
    epochs: int = opt(5, "training epochs")
    lr: float = opt(5e-3, "peak learning rate (one-cycle)")
    out: str = opt("runs/lm_finetuned", "output checkpoint folder")


_FROM_LM = "the LM's; from scratch {}"


@dataclass
class ClassifierConfig(TrainOptions):
    """Phase 3: a classifier, its encoder from an LM checkpoint (or from scratch if ``lm`` is
    empty), trained with gradual unfreezing (``stages``: [epochs, lr, groups] each). Tokenizer
    and sizes left unset come from the LM, or from :class:`TokenizerConfig` and
    :class:`ModelSize` when training from scratch; set ones must match the LM."""

    data: DataConfig = opt(factory=DataConfig, help="the labelled data")
    lm: str = opt("", "language-model checkpoint of the encoder (empty: train from scratch)")
    k: int | None = unset_like(TokenizerConfig, "k", _FROM_LM.format(TokenizerConfig.k))
    stride: int | None = unset_like(TokenizerConfig, "stride", _FROM_LM.format(TokenizerConfig.stride))
    emb_size: int | None = unset_like(ModelSize, "emb_size", _FROM_LM.format(ModelSize.emb_size))
    hidden_size: int | None = unset_like(ModelSize, "hidden_size", _FROM_LM.format(ModelSize.hidden_size))
    n_layers: int | None = unset_like(ModelSize, "n_layers", _FROM_LM.format(ModelSize.n_layers))
    drop_mult: float = opt(0.5, "multiplier of all five dropouts")
    head_hidden: int = opt(50, "units of the head's hidden layer (the seed's 50; widen for many classes)")
    stages: list = opt(factory=lambda: [list(s) for s in SEED_STAGES],
                       help="gradual unfreezing: epochs:lr:groups,... (groups 0 = all)")
    max_len: int = opt(1400, "tokens of each sequence the classifier pools over (the last ones)")
    rc_augment: bool = opt(False, "replace training sequences by their reverse complement at random")
    rc_average: bool = opt(False, "average predictions over both strands")
    select: str = opt("last", "keep the last epoch, or the best by --select-metric on the valid split",
                      choices=("last", "best"))
    select_metric: str = opt("mcc", "validation metric of --select best",
                             choices=("mcc", "accuracy", "f1", "roc_auc", "precision", "recall",
                                      "specificity"))
    out: str = opt("runs/classifier", "output checkpoint folder")
