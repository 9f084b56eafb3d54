"""Shared parts of every config: the tokenizer, the model size, the labelled data source and the
run options (device, threads). Each default is stated here once."""
from __future__ import annotations

from dataclasses import dataclass

from gulm.configs.fields import DeviceChoices, opt

__all__ = ["DTYPES", "TRAIN_DTYPES", "TokenizerConfig", "ModelSize", "DataConfig", "RunOptions"]

#: compute precisions of inference (fp16 needs a CUDA device) and of training
DTYPES = ("fp32", "bf16", "fp16")
TRAIN_DTYPES = ("fp32", "bf16")


@dataclass
class TokenizerConfig:
    """How sequences become tokens: k-mers of length ``k`` every ``stride`` bases."""

    k: int = opt(5, "k-mer length of the tokens (vocabulary 4^k + 2)")
    stride: int = opt(2, "bases between the starts of consecutive k-mers")


@dataclass
class ModelSize:
    """The AWD-LSTM's sizes: embedding, hidden layers, number of LSTM layers."""

    emb_size: int = opt(400, "embedding size (also the last LSTM layer's size)")
    hidden_size: int = opt(1150, "hidden size of the inner LSTM layers")
    n_layers: int = opt(3, "number of LSTM layers")


@dataclass
class DataConfig:
    """Where classification data comes from: a CSV/TSV, one FASTA per class, or a BED plus a
    genome. Splits come from ``split_col`` when present, else a stratified random split."""

    csv: str | None = opt(None, "CSV/TSV of labelled sequences (plain or compressed)")
    sequence_col: str = opt("sequence", "column of the CSV holding the sequences")
    label_col: str = opt("label", "column of the CSV holding the labels")
    split_col: str = opt("auto", "column naming each row's split (train/valid/test); 'auto': a "
                                 "set or split column if present; 'none': a random split")
    fasta: dict[str, str] = opt(factory=dict, help="one FASTA file per class, LABEL=PATH (repeatable)",
                                flag="fasta-class", deprecated=("fasta",), metavar="LABEL=PATH")
    bed: str | None = opt(None, "BED of labelled intervals (label in the name column); needs --genome")
    genome: str | None = opt(None, "genome FASTA the BED intervals are cut from")
    valid_frac: float = opt(0.1, "fraction of each class for validation (random split only)")
    test_frac: float = opt(0.1, "fraction of each class for the test split (random split only)")
    split_seed: int = opt(0, "seed of the random split")


@dataclass
class RunOptions:
    """Where and how a command runs."""

    device: str = opt("cpu", "device to run on", choices=DeviceChoices())
    threads: int = opt(0, "CPU threads for torch and the kernels (0: automatic)")
