"""The configs of the three training phases (``gulm pretrain``, ``finetune``,
``train-classifier``). A phase config is flat: the tokenizer and model-size fields are mixed in
from :class:`TokenizerConfig` and :class:`ModelSize`, so YAML keys and flags stay ``k:``,
``--emb-size`` and so on, while their defaults live in one place."""
from __future__ import annotations

from dataclasses import dataclass

from gulm.configs.base import TRAIN_DTYPES, DataConfig, ModelSize, RunOptions, TokenizerConfig
from gulm.configs.fields import opt, unset_like
from gulm.presets import names as preset_names

__all__ = ["TrainOptions", "PresetOptions", "PretrainConfig", "FinetuneConfig", "ClassifierConfig"]


@dataclass
class TrainOptions(RunOptions):
    """Options every training phase shares."""

    out: str = opt("runs/gulm", "output checkpoint folder")
    bs: int = opt(64, "batch size (split over the processes of a distributed run)")
    bptt: int = opt(70, "tokens per step of truncated backpropagation through time")
    wd: float = opt(0.01, "AdamW weight decay")
    clip: float = opt(0.25, "gradient-norm clipping (0: none)")
    eps: float = opt(1e-6, "AdamW epsilon (the seed's fastai used 1e-8)")
    alpha: float = opt(2.0, "activation regularisation (AR) weight")
    beta: float = opt(1.0, "temporal activation regularisation (TAR) weight")
    dtype: str = opt("fp32", "compute precision (bf16: autocast, fast on CUDA and on CPUs with AVX512-BF16 or AMX)", choices=TRAIN_DTYPES)
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


_PRESET = "the preset's"


@dataclass
class PresetOptions:
    """How a recipe preset (gulm/presets/*.yaml) fills the options left unset."""

    preset: str = opt("auto", "recipe preset for the options left unset: auto (chosen from the data: sequence "
                              "length, number of classes, --stranded), seed (Genomic-ULMFiT's recipe) or a "
                              "preset name; see `gulm models --presets`", choices=("auto", *preset_names()))
    stranded: bool = opt(True, "the sequences' orientation carries meaning (promoters, transcripts); false for "
                               "reads, enhancers and other unstranded regions: train and predict on both strands")


@dataclass
class FinetuneConfig(TrainOptions, PresetOptions):
    """Phase 2: continue a language model on the task's own sequences (train + valid only)."""

    lm: str = opt("", "language-model checkpoint (folder or shipped name, e.g. bacteria-3m1s) to fine-tune")
    data: DataConfig = opt(factory=DataConfig, help="the labelled data")
    both_strands: bool | None = opt(None, f"train on both strands (default: {_PRESET})")
    drop_mult: float | None = opt(None, f"multiplier of all five dropouts (default: {_PRESET})")
    epochs: int | None = opt(None, f"training epochs (default: {_PRESET})")
    lr: float | None = opt(None, f"peak learning rate, one-cycle (default: {_PRESET})")
    out: str = opt("runs/lm_finetuned", "output checkpoint folder")


_FROM_LM = "the LM's; from scratch the preset's"


@dataclass
class ClassifierConfig(TrainOptions, PresetOptions):
    """Phase 3: a classifier, its encoder from an LM checkpoint (or from scratch if ``lm`` is
    empty), trained with gradual unfreezing (``stages``: [epochs, lr, groups] each). Tokenizer
    and sizes left unset come from the LM, or from :class:`TokenizerConfig` and
    :class:`ModelSize` when training from scratch; set ones must match the LM."""

    data: DataConfig = opt(factory=DataConfig, help="the labelled data")
    lm: str = opt("", "language-model checkpoint of the encoder, a folder or a shipped name such as "
                      "bacteria-3m1s (empty: train from scratch)")
    k: int | None = unset_like(TokenizerConfig, "k", _FROM_LM)
    stride: int | None = unset_like(TokenizerConfig, "stride", _FROM_LM)
    emb_size: int | None = unset_like(ModelSize, "emb_size", _FROM_LM)
    hidden_size: int | None = unset_like(ModelSize, "hidden_size", _FROM_LM)
    n_layers: int | None = unset_like(ModelSize, "n_layers", _FROM_LM)
    drop_mult: float | None = opt(None, f"multiplier of all five dropouts (default: {_PRESET})")
    head_hidden: int | None = opt(None, f"units of the head's hidden layer (default: {_PRESET}; the seed's 50)")
    head_bins: int = opt(0, "the head also pools the encoder's mean output over each of N equal parts of every "
                            "sequence, so it sees where the encoder saw what (sequences aligned on a site, such "
                            "as promoters around a TSS); 0: ULMFiT's [last, max, mean] pooling alone")
    stages: list | None = opt(None, f"gradual unfreezing: epochs:lr:groups,... (groups 0 = all; default: {_PRESET})")
    max_len: int = opt(1400, "tokens of each sequence the classifier pools over (the last ones)")
    kmer_features: list[int] = opt(factory=list, metavar="K",
                                   help="add a 'wide' branch to the head: a linear model on the frequencies "
                                        "of k-mers of these lengths (e.g. 1 2 3 4 5 6), trained with the "
                                        "network; default: the preset's (auto's aligned, long-wide and "
                                        "many-classes-wide hold one), none with --preset short, long or "
                                        "many-classes")
    kmer_window: int = opt(0, "count the wide branch's k-mers (--kmer-features) separately over the first and "
                              "the last N bases of each sequence, two blocks of features (both ends of a "
                              "transcript); 0: one spectrum of the whole sequence")
    kmer_gapped: list[int] = opt(factory=list, metavar="N",
                                 help="add gapped k-mers to the wide branch: window length and informative "
                                      "bases, e.g. 10 5 (gkm-SVM's features; with --kmer-features empty, the "
                                      "branch reads them alone)")
    kmer_positional: list[int] = opt(factory=list, metavar="N",
                                     help="add position-resolved k-mer counts to the wide branch, for sequences "
                                          "aligned on a site (promoters around a TSS; stranded data): K B [S] counts "
                                          "the K-mers starting in each B-base bin of the first S bases (default S: "
                                          "the longest training sequence), e.g. 3 3")
    kmer_logreg: bool = opt(False, "make the wide branch (--kmer-features) the k-mer logistic regression fitted on "
                                   "the training split (C chosen on the valid split), kept fixed: the network "
                                   "learns what the regression misses")
    kmer_logreg_folds: int = opt(5, "cross-fitting folds of --kmer-logreg: in training each sequence is scored by a "
                                    "regression fitted without its fold, as new data would be (0: by the one "
                                    "fitted on all of them)")
    kmer_logreg_gain: bool = opt(False, "learn one scale on the --kmer-logreg branch's logits (starting at 1), so the "
                                        "network can turn down a regression more confident than it is on new data")
    rc_augment: bool | None = opt(None, "replace training sequences by their reverse complement at random "
                                        "(default: yes unless --stranded)")
    rc_average: bool | None = opt(None, "average predictions over both strands (default: yes unless --stranded)")
    backward: bool = opt(False, "read each sequence from its 3' end (its reverse complement), in training and "
                                "prediction: with an LM pretrained on both strands, the backward half of "
                                "ULMFiT's forward + backward pair (average the two with --ensemble); stranded "
                                "data only")
    select: str | None = opt(None, f"keep the last epoch, or the best by --select-metric on the valid split "
                                   f"(default: {_PRESET})", choices=("last", "best"))
    select_metric: str | None = opt(None, f"validation metric of --select best (default: {_PRESET}, else mcc)",
                                    choices=("mcc", "accuracy", "f1", "roc_auc", "precision", "recall",
                                             "specificity"))
    out: str = opt("runs/classifier", "output checkpoint folder")
