"""Sequence embeddings: pooled encoder features of many sequences, streamed to disk.

    gulm embed runs/clf --fasta seqs.fa --out emb.npy        # emb.npy [N, D] float32 + emb.ids.txt
    gulm embed runs/lm --csv set.csv --out emb.parquet --pool mean

The features are :meth:`gulm.infer.Encoder.features` (``[last, max, mean]`` of a layer's
outputs over each sequence, read as the classifier reads it), or one of the three with
``pool``. Language-model and classifier checkpoints both work. Input is read ``chunk_size``
sequences at a time and each chunk's rows go straight into a memory-mapped ``.npy`` (or a
parquet row group), so neither the sequences nor the embeddings are ever all in memory; a first
pass over the input counts the sequences. Files are written under temporary names and renamed
at the end.
"""
from __future__ import annotations

import csv
import io
import os
from pathlib import Path
from typing import Iterator

import numpy as np

from gulm.configs import POOLS, EmbedConfig, option_name
from gulm.configs.fields import config_from
from gulm.data.compression import DECOMPRESSION_ERRORS, open_binary
from gulm.data.errors import DataError
from gulm.infer import Encoder
from gulm.runtime.device import setup

__all__ = ["embed", "pool_features", "ids_path", "EXTRA"]

#: the optional dependency group that installs the parquet writer
EXTRA = "parquet"


def pool_features(features: np.ndarray, pool: str, bins: int = 0) -> np.ndarray:
    """Select a pooling from ``[last, max, mean, part 1, ..., part bins]`` features
    [N, (3 + bins) H]: concat (all three), last, max or mean, then the ``bins`` parts' means."""
    if pool not in POOLS:
        raise ValueError(f"pool must be one of {', '.join(POOLS)}, got {pool!r}")
    if pool == "concat":
        return features
    h = features.shape[1] // (3 + bins)
    i = ("last", "max", "mean").index(pool)
    return np.concatenate([features[:, i * h:(i + 1) * h], features[:, 3 * h:]], axis=1)


def ids_path(out: str) -> str:
    """The ids file beside a ``.npy`` output: ``emb.npy`` -> ``emb.ids.txt``."""
    return (out[:-4] if out.endswith(".npy") else out) + ".ids.txt"


# ---------------------------------------------------------------------------- inputs
class _Fasta:
    def __init__(self, path: str):
        self.path = path

    def count(self) -> int:
        return sum(1 for _ in self.records())

    def records(self) -> Iterator[tuple[str, str]]:
        from gulm.data.fasta import iter_fasta

        yield from iter_fasta(self.path, upper=True)


class _Csv:
    def __init__(self, path: str, sequence_col: str, id_col: str):
        self.path, self.sequence_col, self.id_col = path, sequence_col, id_col

    def count(self) -> int:
        return sum(1 for _ in self.records())

    def records(self) -> Iterator[tuple[str, str]]:
        path = Path(self.path)
        if not path.exists():
            raise FileNotFoundError(f"CSV file not found: {path}")
        try:
            with open_binary(path) as raw, io.TextIOWrapper(raw, encoding="utf-8-sig", newline="") as fh:
                yield from self._rows(path, fh)
        except DECOMPRESSION_ERRORS as err:
            raise DataError(f"{path}: truncated or corrupt compressed file ({err})") from None
        except UnicodeDecodeError as err:
            raise DataError(f"{path}: not a UTF-8 text file ({err})") from None

    def _rows(self, path: Path, fh) -> Iterator[tuple[str, str]]:
        first = fh.readline()
        while first and not first.strip():
            first = fh.readline()
        if not first:
            raise DataError(f"{path}: empty table (no header line)")
        name = path.name.lower().removesuffix(".gz").removesuffix(".bz2").removesuffix(".xz")
        delim = "\t" if name.endswith((".tsv", ".tab")) else "," if name.endswith(".csv") else \
            max(("\t", ",", ";"), key=first.count)
        header = [c.strip() for c in next(csv.reader([first], delimiter=delim))]
        seq_i = self._column(path, header, self.sequence_col, "sequence_col")
        if self.id_col == "auto":
            folded = [h.lower() for h in header]
            id_i = next((folded.index(c) for c in ("id", "name") if c in folded), None)
        else:
            id_i = self._column(path, header, self.id_col, "id_col")
        reader = csv.reader(fh, delimiter=delim)
        for row in reader:
            lineno = reader.line_num + 1
            if not any(cell.strip() for cell in row):
                continue
            if len(row) != len(header):
                raise DataError(f"{path}:{lineno}: expected {len(header)} fields, found {len(row)}")
            yield (row[id_i].strip() if id_i is not None else f"{path.name}:{lineno}",
                   "".join(row[seq_i].split()).upper())

    @staticmethod
    def _column(path: Path, header: list[str], wanted: str, option: str) -> int:
        folded = [h.lower() for h in header]
        if wanted in header:
            return header.index(wanted)
        if folded.count(wanted.lower()) == 1:
            return folded.index(wanted.lower())
        raise DataError(f"{path}: no column {wanted!r} (columns: {', '.join(header)}); pass {option_name(option)}")


class _Bed:
    def __init__(self, path: str, genome: str):
        from gulm.data.genome import Genome
        from gulm.data.intervals import read_bed

        self.path = path
        self.genome = Genome(genome)
        self.intervals = read_bed(path)  # intervals are small; the sequences are fetched chunk by chunk

    def count(self) -> int:
        return len(self.intervals)

    def records(self) -> Iterator[tuple[str, str]]:
        g = self.genome
        for i, iv in enumerate(self.intervals, 1):
            where = f"{self.path}: interval {i} ({iv.chrom}:{iv.start}-{iv.end})"
            if iv.chrom not in g:
                raise DataError(f"{where}: record {iv.chrom!r} is not in {g.path}")
            if iv.end > g.length(iv.chrom):
                raise DataError(f"{where}: ends past {iv.chrom} (length {g.length(iv.chrom)}) in {g.path}")
            strand = "-" if iv.strand == "-" else "+"
            yield f"{iv.chrom}:{iv.start}-{iv.end}({iv.strand})", g.fetch(iv.chrom, iv.start, iv.end, strand,
                                                                         upper=True)


def _source(cfg: EmbedConfig):
    given = [name for name in ("fasta", "csv", "bed") if getattr(cfg, name)]
    if len(given) != 1:
        raise ValueError(f"give exactly one input: {option_name('fasta')}, {option_name('csv')} or "
                         f"{option_name('bed')} with {option_name('genome')}"
                         + (f" (got {', '.join(option_name(g) for g in given)})" if given else ""))
    if cfg.fasta:
        return _Fasta(cfg.fasta), cfg.fasta
    if cfg.csv:
        return _Csv(cfg.csv, cfg.sequence_col, cfg.id_col), cfg.csv
    if not cfg.genome:
        raise ValueError(f"{option_name('bed')} needs {option_name('genome')}, the FASTA the intervals are cut from")
    return _Bed(cfg.bed, cfg.genome), cfg.bed


def _chunks(records: Iterator[tuple[str, str]], size: int):
    ids, seqs = [], []
    for name, seq in records:
        ids.append(name)
        seqs.append(seq)
        if len(seqs) == size:
            yield ids, seqs
            ids, seqs = [], []
    if seqs:
        yield ids, seqs


# ---------------------------------------------------------------------------- outputs
class _NpyWriter:
    """Rows into a memory-mapped ``.npy`` of known shape, ids into a text file; renamed into
    place by ``close``."""

    def __init__(self, out: str, n: int, dim: int):
        self.out, self.ids_out = out, ids_path(out)
        self.tmp, self.ids_tmp = out + ".tmp", self.ids_out + ".tmp"
        self.array = np.lib.format.open_memmap(self.tmp, mode="w+", dtype=np.float32, shape=(n, dim))
        self.ids = open(self.ids_tmp, "w")
        self.row = 0

    def write(self, ids: list[str], rows: np.ndarray) -> None:
        self.array[self.row:self.row + len(rows)] = rows
        self.row += len(rows)
        self.ids.writelines(f"{i}\n" for i in ids)

    def close(self) -> dict:
        self.array.flush()
        del self.array
        self.ids.close()
        os.replace(self.tmp, self.out)
        os.replace(self.ids_tmp, self.ids_out)
        return {"embeddings": self.out, "ids": self.ids_out}

    def abort(self) -> None:
        self.ids.close()
        self.array = None
        for p in (self.tmp, self.ids_tmp):
            if os.path.exists(p):
                os.remove(p)


class _ParquetWriter:
    """One row group per chunk: columns ``id`` (string) and ``embedding`` (fixed-size list of float32)."""

    def __init__(self, out: str, n: int, dim: int):
        try:
            import pyarrow as pa
            import pyarrow.parquet as pq
        except ImportError:
            raise RuntimeError(f"writing parquet needs pyarrow: pip install 'gulm[{EXTRA}]' (or pip install "
                               f"pyarrow), or write .npy") from None
        self.pa, self.out, self.tmp, self.dim = pa, out, out + ".tmp", dim
        self.schema = pa.schema([("id", pa.string()), ("embedding", pa.list_(pa.float32(), dim))])
        self.writer = pq.ParquetWriter(self.tmp, self.schema)

    def write(self, ids: list[str], rows: np.ndarray) -> None:
        pa = self.pa
        values = pa.array(np.ascontiguousarray(rows, dtype=np.float32).reshape(-1))
        emb = pa.FixedSizeListArray.from_arrays(values, self.dim)
        self.writer.write_table(pa.Table.from_arrays([pa.array(ids, pa.string()), emb], schema=self.schema))

    def close(self) -> dict:
        self.writer.close()
        os.replace(self.tmp, self.out)
        return {"embeddings": self.out}

    def abort(self) -> None:
        self.writer.close()
        if os.path.exists(self.tmp):
            os.remove(self.tmp)


def _writer(out: str, n: int, dim: int):
    if out.endswith(".npy"):
        return _NpyWriter(out, n, dim)
    if out.endswith((".parquet", ".pq")):
        return _ParquetWriter(out, n, dim)
    raise ValueError(f"{option_name('out')} {out!r}: name a .npy or a .parquet file")


# ---------------------------------------------------------------------------- the command
def embed(cfg: EmbedConfig | None = None, **overrides) -> dict:
    """Embed every sequence of a FASTA, CSV or BED (+ genome) with a checkpoint's encoder and write
    them to ``cfg.out`` (see the module docstring). Returns ``{"n", "dim", "pool", "layer",
    "files"}``."""
    cfg = config_from(EmbedConfig, cfg, overrides)
    source, where = _source(cfg)
    if cfg.chunk_size < 1 or cfg.batch_size < 1:
        raise ValueError(f"{option_name('chunk_size')} and {option_name('batch_size')} must be >= 1")
    if not cfg.out.endswith((".npy", ".parquet", ".pq")):
        raise ValueError(f"{option_name('out')} {cfg.out!r}: name a .npy or a .parquet file")
    device = setup(cfg.device, cfg.threads)
    enc = Encoder.load(cfg.checkpoint, device, cfg.dtype)
    sizes = [r.hidden_size for r in enc.model.encoder.rnns]
    if not -len(sizes) <= cfg.layer < len(sizes):
        raise ValueError(f"{option_name('layer')} {cfg.layer}: the model has {len(sizes)} LSTM layers "
                         f"(0..{len(sizes) - 1}, or -1 for the last)")
    if cfg.bins < 0:
        raise ValueError(f"{option_name('bins')} must be 0 or a number of parts, got {cfg.bins}")
    dim = sizes[cfg.layer] * ((3 if cfg.pool == "concat" else 1) + cfg.bins)
    n = source.count()  # first pass: the number of rows of the memory map
    if n == 0:
        raise DataError(f"{where}: no sequences to embed")
    os.makedirs(os.path.dirname(os.path.abspath(cfg.out)) or ".", exist_ok=True)
    writer = _writer(cfg.out, n, dim)
    bar = None
    if cfg.progress:
        from tqdm.auto import tqdm

        bar = tqdm(total=n, desc="embed", unit="seq", leave=False)
    k, done = enc.tokenizer.k, 0
    try:
        for ids, seqs in _chunks(source.records(), cfg.chunk_size):
            short = next((i for i, s in enumerate(seqs) if len(s) < k), None)
            if short is not None:
                raise DataError(f"{where}: record {ids[short]!r} ({len(seqs[short])} bp) is shorter than k={k} "
                                "and gives no tokens")
            feats = enc.features(seqs, bs=cfg.batch_size, layer=cfg.layer, bins=cfg.bins)
            writer.write(ids, pool_features(feats, cfg.pool, cfg.bins))
            done += len(seqs)
            if bar is not None:
                bar.update(len(seqs))
        if done != n:
            raise DataError(f"{where}: changed while being read ({n} sequences counted, {done} read)")
    except BaseException:
        writer.abort()
        raise
    finally:
        if bar is not None:
            bar.close()
    files = writer.close()
    return {"n": n, "dim": dim, "pool": cfg.pool, "layer": cfg.layer, "bins": cfg.bins, "checkpoint": enc.path,
            "files": files}
