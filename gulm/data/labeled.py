"""Labeled sequence sets for classification: readers, writers and deterministic splits.

A set is a :class:`LabeledSequences`: parallel lists of upper-cased sequences, string labels and ids, with an
optional split name per item (``"train"``, ``"valid"``, ``"test"``...). Sequences come from a CSV/TSV table,
from one FASTA file per class, or from BED intervals cut out of a :class:`~gulm.data.genome.Genome`.
FASTA headers are used only as ids, never as features.
"""
from __future__ import annotations

import csv
import gzip
import io
import os
import warnings
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Mapping, Sequence

import numpy as np

from gulm.configs.fields import option_name
from gulm.data.errors import DataWarning, LabeledDataError
from gulm.data.compression import open_binary
from gulm.data.fasta import check_sequence, iter_fasta, unique_ids
from gulm.data.genome import Genome
from gulm.data.intervals import read_bed
from gulm.data.sampling import apportion, stable_permutation

__all__ = [
    "LabeledSequences",
    "read_labeled_csv",
    "write_labeled_csv",
    "read_labeled_fasta",
    "read_labeled_bed",
    "stratified_split",
    "kfold_indices",
]

SPLIT_NAMES = ("train", "valid", "test")


@dataclass
class LabeledSequences:
    """Parallel lists: ``sequences[i]`` (upper-case str) has label ``labels[i]`` and id ``ids[i]``.

    ``split`` is None or a list of split names of the same length; ``drawn_from`` is the
    fractions of :meth:`random_split` when the split was drawn (None when the data named it).
    """

    sequences: list[str]
    labels: list[str]
    ids: list[str]
    split: list[str] | None = None
    drawn_from: tuple[float, ...] | None = None

    def __post_init__(self) -> None:
        n = len(self.sequences)
        if len(self.labels) != n or len(self.ids) != n or (self.split is not None and len(self.split) != n):
            raise LabeledDataError(
                f"LabeledSequences: lengths differ (sequences {n}, labels {len(self.labels)}, ids {len(self.ids)}"
                + (f", split {len(self.split)})" if self.split is not None else ")")
            )

    def __len__(self) -> int:
        return len(self.sequences)

    @property
    def classes(self) -> list[str]:
        """Sorted distinct labels."""
        return sorted(set(self.labels))

    def counts(self) -> dict[str, int]:
        """``{label: number of items}``, labels sorted."""
        values, counts = np.unique(np.asarray(self.labels, dtype=object), return_counts=True)
        return {str(v): int(c) for v, c in zip(values, counts)}

    def subset(self, indices: Iterable[int]) -> "LabeledSequences":
        """The items at ``indices``, in that order."""
        idx = [int(i) for i in indices]
        return LabeledSequences(
            [self.sequences[i] for i in idx],
            [self.labels[i] for i in idx],
            [self.ids[i] for i in idx],
            None if self.split is None else [self.split[i] for i in idx],
        )

    def with_split(self, split: Sequence[str]) -> "LabeledSequences":
        """A copy with ``split`` as its split names."""
        return LabeledSequences(list(self.sequences), list(self.labels), list(self.ids), list(split))

    def random_split(
        self, fractions: Sequence[float] = (0.8, 0.1, 0.1), seed: int = 0, names: Sequence[str] = SPLIT_NAMES
    ) -> "LabeledSequences":
        """A copy whose split is drawn by :func:`stratified_split` (one name per fraction)."""
        if len(names) != len(fractions):
            raise ValueError(f"random_split: {len(fractions)} fractions but {len(names)} names")
        split = [""] * len(self)
        for name, idx in zip(names, stratified_split(self.labels, fractions, seed)):
            for i in idx:
                split[i] = name
        drawn = self.with_split(split)
        drawn.drawn_from = tuple(float(f) for f in fractions)
        return drawn

    def split_counts(self) -> dict[str, dict[str, int]]:
        """``{split name: {label: items}}`` over every label (0 where a split lacks it); needs ``split``."""
        if self.split is None:
            raise LabeledDataError("split_counts: this set has no split column; use random_split() first")
        counts = {name: {c: 0 for c in self.classes} for name in dict.fromkeys(self.split)}
        for name, label in zip(self.split, self.labels):
            counts[name][label] += 1
        return counts

    def by_split(self) -> dict[str, "LabeledSequences"]:
        """``{split name: subset}`` in order of first appearance; needs ``split``."""
        if self.split is None:
            raise LabeledDataError("by_split: this set has no split column; use random_split() first")
        groups: dict[str, list[int]] = {}
        for i, name in enumerate(self.split):
            groups.setdefault(name, []).append(i)
        return {name: self.subset(idx) for name, idx in groups.items()}


def _check_not_empty(data: LabeledSequences, source: str) -> LabeledSequences:
    if len(data) == 0:
        raise LabeledDataError(f"{source}: no labeled sequences")
    return data


# ---------------------------------------------------------------------------- CSV / TSV
def _delimiter(path: Path, header_line: str) -> str:
    name = path.name.lower()
    for suffix in (".gz", ".bz2", ".xz"):
        if name.endswith(suffix):
            name = name[: -len(suffix)]
    if name.endswith((".tsv", ".tab")):
        return "\t"
    if name.endswith(".csv"):
        return ","
    counts = {d: header_line.count(d) for d in ("\t", ",", ";")}
    best = max(counts, key=counts.get)
    return best if counts[best] else ","


def _find_column(path: Path, header: list[str], wanted: str, role: str, argument: str) -> int:
    if wanted in header:
        return header.index(wanted)
    folded = [h.lower() for h in header]
    if folded.count(wanted.lower()) == 1:
        return folded.index(wanted.lower())
    raise LabeledDataError(
        f"{path}: no {role} column {wanted!r} (available columns: {', '.join(header)}); "
        f"pass {option_name(argument)} to choose one"
    )


def _optional_column(header: list[str], candidates: tuple[str, ...]) -> int | None:
    folded = [h.lower() for h in header]
    for name in candidates:
        if name in folded:
            return folded.index(name)
    return None


def read_labeled_csv(
    path: str | os.PathLike,
    *,
    sequence_col: str = "sequence",
    label_col: str = "label",
    id_col: str | None = "auto",
    split_col: str | None = "auto",
    delimiter: str | None = None,
) -> LabeledSequences:
    """Read a CSV/TSV table (plain or compressed) with one sequence and one label per row.

    The delimiter is ``delimiter``, else taken from the extension (``.csv`` comma, ``.tsv``/``.tab`` tab),
    else the most frequent of tab, comma and semicolon in the header. Column names match exactly, then
    case-insensitively. ``id_col``/``split_col``: a column name, None for none, or ``"auto"`` for an
    ``id``/``name`` (``set``/``split``) column if present; without ids, ids are ``file:line``. Rows with an
    empty sequence are skipped with a DataWarning; an empty label is an error.
    """
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"labeled table not found: {path}")
    try:
        with open_binary(path) as raw, io.TextIOWrapper(raw, encoding="utf-8-sig", newline="") as fh:
            text = fh.read()
    except (EOFError, gzip.BadGzipFile, zlib.error) as err:
        raise LabeledDataError(f"{path}: truncated or corrupt compressed file ({err})") from err
    except UnicodeDecodeError as err:
        raise LabeledDataError(f"{path}: not a UTF-8 text file ({err})") from err
    first = next((line for line in text.splitlines() if line.strip()), None)
    if first is None:
        raise LabeledDataError(f"{path}: empty table (no header line)")
    delim = delimiter or _delimiter(path, first)
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delim)
    header: list[str] | None = None
    for row in reader:
        if any(cell.strip() for cell in row):
            header = [cell.strip() for cell in row]
            break
    assert header is not None
    seq_i = _find_column(path, header, sequence_col, "sequence", "sequence_col")
    lab_i = _find_column(path, header, label_col, "label", "label_col")
    if id_col == "auto":
        id_i = _optional_column(header, ("id", "name"))
    else:
        id_i = None if id_col is None else _find_column(path, header, id_col, "id", "id_col")
    if split_col == "auto":
        split_i = _optional_column(header, ("set", "split"))
    else:
        split_i = None if split_col is None else _find_column(path, header, split_col, "split", "split_col")

    seqs: list[str] = []
    labels: list[str] = []
    ids: list[str] = []
    split: list[str] = []
    for row in reader:
        lineno = reader.line_num
        if not any(cell.strip() for cell in row):
            continue
        if len(row) != len(header):
            raise LabeledDataError(f"{path}:{lineno}: expected {len(header)} fields, found {len(row)}")
        seq = "".join(row[seq_i].split()).upper()
        check_sequence(seq, f"{path}:{lineno}: column '{header[seq_i]}'", LabeledDataError)
        label = row[lab_i].strip()
        if not label:
            raise LabeledDataError(f"{path}:{lineno}: empty label in column {header[lab_i]!r}")
        if not seq:
            warnings.warn(f"{path}:{lineno}: empty sequence; row skipped", DataWarning, stacklevel=2)
            continue
        seqs.append(seq)
        labels.append(label)
        ids.append(row[id_i].strip() if id_i is not None else f"{path.name}:{lineno}")
        if split_i is not None:
            split.append(row[split_i].strip())
    if id_i is not None:
        ids = unique_ids(ids, f"{path}: column {header[id_i]!r}")
    return _check_not_empty(LabeledSequences(seqs, labels, ids, split if split_i is not None else None), str(path))


def write_labeled_csv(path: str | os.PathLike, data: LabeledSequences) -> None:
    """Write ``id,sequence,label[,set]`` rows (comma-separated; tab for ``.tsv``; gzip for ``.gz``)."""
    path = Path(path)
    delim = "\t" if path.name.removesuffix(".gz").endswith((".tsv", ".tab")) else ","
    opener = gzip.open if path.name.endswith(".gz") else open
    with opener(path, "wt", encoding="utf-8", newline="") as fh:
        writer = csv.writer(fh, delimiter=delim, lineterminator="\n")
        writer.writerow(["id", "sequence", "label"] + (["set"] if data.split is not None else []))
        for i in range(len(data)):
            row = [data.ids[i], data.sequences[i], data.labels[i]]
            if data.split is not None:
                row.append(data.split[i])
            writer.writerow(row)


# ---------------------------------------------------------------------------- FASTA per class
def read_labeled_fasta(files: Mapping[str, str | os.PathLike]) -> LabeledSequences:
    """One FASTA file (plain or compressed) per class: ``{label: path}``.

    Ids are record names (first header word); the rest of the header is ignored. Names repeated
    within or across the files are made unique (``x``, ``x_2``...) with a DataWarning.
    """
    if not files:
        raise LabeledDataError("read_labeled_fasta: no files given")
    seqs: list[str] = []
    labels: list[str] = []
    ids: list[str] = []
    for label, fasta in files.items():
        for name, seq in iter_fasta(fasta, upper=True):
            seqs.append(seq)
            labels.append(str(label))
            ids.append(name)
    source = ", ".join(str(p) for p in files.values())
    return _check_not_empty(LabeledSequences(seqs, labels, unique_ids(ids, source, "record names"), None), source)


# ---------------------------------------------------------------------------- BED + genome
def read_labeled_bed(
    path: str | os.PathLike, genome: Genome | str | os.PathLike, *, label: str | None = None
) -> LabeledSequences:
    """Sequences of the BED intervals of ``path`` cut from ``genome``, on the interval's strand.

    The label is ``label`` if given, else the BED name column. Strand ``'-'`` gives the reverse complement,
    ``'.'`` the forward strand. Ids are ``chrom:start-end(strand)`` (0-based half-open).
    """
    path = Path(path)
    if not isinstance(genome, Genome):
        genome = Genome(genome)
    seqs: list[str] = []
    labels: list[str] = []
    ids: list[str] = []
    for i, iv in enumerate(read_bed(path), 1):
        where = f"{path}: interval {i} ({iv.chrom}:{iv.start}-{iv.end})"
        if label is None and iv.name is None:
            raise LabeledDataError(f"{where} has no name column to use as label; pass label=")
        if iv.chrom not in genome:
            raise LabeledDataError(f"{where}: record {iv.chrom!r} is not in {genome.path}")
        if iv.end > genome.length(iv.chrom):
            raise LabeledDataError(
                f"{where}: ends past {iv.chrom} (length {genome.length(iv.chrom)}) in {genome.path}"
            )
        strand = "-" if iv.strand == "-" else "+"
        seqs.append(genome.fetch(iv.chrom, iv.start, iv.end, strand, upper=True))
        labels.append(label if label is not None else iv.name)
        ids.append(f"{iv.chrom}:{iv.start}-{iv.end}({iv.strand})")
    return _check_not_empty(LabeledSequences(seqs, labels, unique_ids(ids, path, "intervals")), str(path))


# ---------------------------------------------------------------------------- splits
def _check_fractions(fractions: Sequence[float]) -> np.ndarray:
    f = np.asarray(fractions, dtype=float)
    if f.ndim != 1 or len(f) == 0 or (f < 0).any() or abs(f.sum() - 1.0) > 1e-6:
        raise ValueError(f"fractions must be non-negative and sum to 1, got {tuple(fractions)}")
    return f


def stratified_split(
    labels: Sequence, fractions: Sequence[float] = (0.8, 0.1, 0.1), seed: int = 0
) -> list[np.ndarray]:
    """Split item indices into ``len(fractions)`` parts with each label's share kept per part.

    Returns one sorted int64 index array per fraction. Deterministic for a given ``seed`` and label
    list. Each class is apportioned on its own (largest remainder), so a class of 5 with (0.8, 0.1, 0.1)
    gives 4/1/0 items.
    """
    f = _check_fractions(fractions)
    labels_arr = np.asarray([str(x) for x in labels], dtype=object)
    rng = np.random.default_rng(seed)
    parts: list[list[np.ndarray]] = [[] for _ in f]
    for cls in sorted(set(labels_arr.tolist())):
        idx = np.flatnonzero(labels_arr == cls)
        idx = idx[stable_permutation(rng, len(idx))]
        bounds = np.cumsum(apportion(len(idx), f))[:-1]
        for part, chunk in zip(parts, np.split(idx, bounds)):
            part.append(chunk)
    return [np.sort(np.concatenate(p)).astype(np.int64) if p else np.zeros(0, np.int64) for p in parts]


def kfold_indices(labels: Sequence, k: int, seed: int = 0) -> list[tuple[np.ndarray, np.ndarray]]:
    """Stratified k-fold: ``k`` pairs ``(train_indices, test_indices)`` of sorted int64 arrays.

    Every item is in exactly one test fold; fold sizes differ by at most one and each label is spread
    as evenly as possible. Deterministic for a given ``seed``.
    """
    n = len(labels)
    if k < 2 or k > n:
        raise ValueError(f"kfold_indices: need 2 <= k <= number of items ({n}), got k={k}")
    labels_arr = np.asarray([str(x) for x in labels], dtype=object)
    rng = np.random.default_rng(seed)
    fold = np.empty(n, dtype=np.int64)
    offset = 0
    for cls in sorted(set(labels_arr.tolist())):
        idx = np.flatnonzero(labels_arr == cls)
        if len(idx) < k:
            warnings.warn(f"kfold_indices: class {cls!r} has {len(idx)} items, fewer than k={k}", DataWarning)
        idx = idx[stable_permutation(rng, len(idx))]
        fold[idx] = (offset + np.arange(len(idx))) % k  # continue where the last class stopped
        offset = (offset + len(idx)) % k
    all_idx = np.arange(n, dtype=np.int64)
    return [(all_idx[fold != j], all_idx[fold == j]) for j in range(k)]
