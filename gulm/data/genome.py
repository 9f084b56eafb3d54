"""Random access to FASTA genomes, plain or compressed: the :class:`Genome` class.

Coordinates are 0-based and half-open, ``[start, end)``, on the forward strand of a record. ``strand="-"``
returns the reverse complement of the same interval. Letters come back as they are in the file (lowercase
soft-masking is kept) unless ``upper=True``.

How a file is opened (the format is read from its first bytes, not from its name;
:mod:`gulm.data.compression`): a plain FASTA with regular line lengths, or a BGZF (``bgzip``) file with
Biopython installed and a ``.gz``/``.bgz`` name, is read in place by pyfaidx; anything else is rewritten
once into the cache as regular FASTA. Where indexes and copies go is :mod:`gulm.data.cache` (never beside
the input); the FASTA rules (headers, names, empty records) are :mod:`gulm.data.fasta`'s. Repeated record
names follow its one rule: the records are kept as ``x``, ``x_2``... (read from a normalised copy), with
a DataWarning every time the file is opened.
"""
from __future__ import annotations

import operator
import os
import warnings
from pathlib import Path
from typing import Iterator

import pyfaidx

from gulm.data import cache, compression
from gulm.data.errors import DataWarning, FastaError, RecordNotFoundError, RegionError
from gulm.data.fasta import (UniqueNames, check_fasta_file, check_sequence, fasta_events, first_lines,
                             first_non_ascii_line, reverse_complement)

__all__ = ["Genome"]


class Genome:
    """A FASTA file (plain, gzip, bgzip, bzip2 or xz) with random access by record name.

    ``len(genome)`` is the number of records; iterating yields record names in file order;
    ``name in genome`` tests for a record. All coordinates are 0-based half-open on the forward strand.

    Args:
        path: the FASTA file.
        cache_dir: where decompressed copies and indexes go (default: ``$GULM_CACHE``, else the user
            cache directory; see :mod:`gulm.data.cache`). Nothing is ever written beside ``path``.
        read_ahead: bases pyfaidx reads past each request and keeps in a buffer; helps many small,
            sequential fetches (sliding windows). ``None`` turns it off.

    A Genome may be pickled or used after ``fork`` (DataLoader workers): each process reopens its own
    file handle, since a shared handle gives wrong sequences under concurrent reads.
    """

    def __init__(
        self,
        path: str | os.PathLike,
        cache_dir: str | os.PathLike | None = None,
        *,
        read_ahead: int | None = None,
    ) -> None:
        self.path = Path(path).expanduser()
        self._cache_dir = cache_dir
        self._read_ahead = read_ahead
        self._faidx: pyfaidx.Faidx | None = None
        self._pid = os.getpid()
        check_fasta_file(self.path)
        self.compression = compression.sniff_compression(self.path)
        self._check_first_line()
        #: the file pyfaidx reads: ``path`` itself or a normalised copy in the cache
        self.indexed_path, self._index_path, self._gzi_path = self._prepare()
        self._faidx = self._open_faidx()
        self._lengths = self._collect_lengths()

    # ---------------------------------------------------------------- opening
    def _check_first_line(self) -> None:
        """Fail fast on non-FASTA input, before any index or cache is written."""
        try:
            with compression.open_binary(self.path, self.compression) as fh:
                for _ in fasta_events(self.path, first_lines(fh), self.compression):
                    return  # first event is a header (fasta_events raises otherwise)
        except FastaError:
            raise
        except compression.DECOMPRESSION_ERRORS as err:
            if self.compression == "plain":
                raise
            raise FastaError(f"{self.path}: truncated or corrupt {self.compression} file: {err}") from err
        raise FastaError(f"{self.path}: no FASTA records (only blank lines)")

    def _prepare(self) -> tuple[Path, Path, Path | None]:
        """Choose the file pyfaidx reads and where its index lives; build the cached copy if needed."""
        if self.compression == "plain":
            cached = cache.current_copy(self.path, self._cache_dir)
            if cached is not None:  # an irregular file normalised by an earlier open
                self._warn_renamed(cached)
                return cached, Path(str(cached) + ".fai"), None
            return self.path, cache.index_location(self.path, ".fai", self._cache_dir), None
        if (self.compression == "bgzip" and compression.has_biopython()
                and self.path.name.lower().endswith((".gz", ".bgz"))):
            return (self.path, cache.index_location(self.path, ".fai", self._cache_dir),
                    cache.index_location(self.path, ".gzi", self._cache_dir))
        return self._copy()

    def _copy(self) -> tuple[Path, Path, None]:
        """The normalised copy in the cache (built if needed), with the rename warning."""
        copy, fai = cache.cached_copy(self.path, self.compression, self._cache_dir)
        self._warn_renamed(copy)
        return copy, fai, None

    def _warn_renamed(self, copy: Path) -> None:
        UniqueNames(renamed=cache.renamed_records(copy)).warn(self.path, stacklevel=5)

    def _open_faidx(self, *, retry: bool = True) -> pyfaidx.Faidx:
        kwargs = dict(
            indexname=str(self._index_path),
            as_raw=True,
            sequence_always_upper=False,
            strict_bounds=False,  # bounds are checked here, with better messages
            read_ahead=self._read_ahead,
            rebuild=True,
            build_index=True,
            duplicate_action="stop",
            read_long_names=False,
        )
        if self._gzi_path is not None:
            kwargs["gzi_indexname"] = str(self._gzi_path)
        try:
            faidx = pyfaidx.Faidx(str(self.indexed_path), **kwargs)
        except pyfaidx.FastaIndexingError as err:
            if "not consistent" in str(err) and self.indexed_path == self.path:
                # Irregular line lengths: pyfaidx cannot index the file in place; read a regular copy.
                warnings.warn(
                    f"{self.path}: line lengths vary within a record ({err}); "
                    "using a normalised copy in the cache",
                    DataWarning,
                    stacklevel=3,
                )
                self._discard_index()
                self.indexed_path, self._index_path, self._gzi_path = self._copy()
                return self._open_faidx(retry=False)
            raise FastaError(f"{self.path}: {err}") from err
        except UnicodeDecodeError as err:  # before ValueError, its base class
            where = first_non_ascii_line(self.indexed_path)
            raise FastaError(f"{self.path}: line {where}: non-ASCII bytes; is this a FASTA file? ({err})") from err
        except ValueError as err:
            if str(err).startswith("Duplicate key") and retry:
                # repeated names: read a copy whose repeats are renamed (x, x_2...), with a warning
                self._discard_index()
                self.indexed_path, self._index_path, self._gzi_path = self._copy()
                return self._open_faidx(retry=False)
            raise
        # An index whose records run past the end of the file is stale (e.g. the FASTA was replaced
        # by an older copy, which fools pyfaidx's mtime test): rebuild it once.
        size = self.indexed_path.stat().st_size if self._gzi_path is None else None
        if size is not None and faidx.index and max(r.bend for r in faidx.index.values()) > size:
            faidx.close()
            if not retry and self.indexed_path == self.path:
                # Rebuilt and still past the end: a record's last line is longer than its other
                # lines, which pyfaidx does not flag as irregular. Read a regular copy.
                warnings.warn(f"{self.path}: line lengths vary within a record (a last line longer than the "
                              "record's other lines); using a normalised copy in the cache", DataWarning, stacklevel=3)
                self._discard_index()
                self.indexed_path, self._index_path, self._gzi_path = self._copy()
                return self._open_faidx(retry=False)
            if not retry:
                raise FastaError(f"{self.path}: index {self._index_path} does not match the file")
            # a stale index beside the file is the user's: leave it, and index into the cache
            self._discard_index()
            self._index_path = cache.cache_index_path(self.path, ".fai", self._cache_dir)
            Path(self._index_path).unlink(missing_ok=True)
            return self._open_faidx(retry=False)
        return faidx

    def _discard_index(self) -> None:
        """Remove a half-built or stale index of ours (in the cache); never one beside the input."""
        index = Path(self._index_path)
        if index.parent != self.path.parent or index.name != self.path.name + ".fai":
            index.unlink(missing_ok=True)

    def _collect_lengths(self) -> dict[str, int]:
        lengths: dict[str, int] = {}
        for name, rec in self._faidx.index.items():
            if rec.rlen == 0:
                warnings.warn(
                    f"{self.path}: record '{name}' has no sequence; skipped", DataWarning, stacklevel=3
                )
                continue
            lengths[name] = rec.rlen
        if not lengths:
            raise FastaError(f"{self.path}: no FASTA records with sequence")
        return lengths

    def _handle(self) -> pyfaidx.Faidx:
        if self._faidx is None or self._pid != os.getpid():
            # After fork the file offset is shared with the parent: reopen a private handle.
            self._faidx = self._open_faidx()
            self._pid = os.getpid()
        return self._faidx

    # ---------------------------------------------------------------- mapping-like access
    @property
    def names(self) -> list[str]:
        """Record names (first word of each header) in file order; records without sequence are left out."""
        return list(self._lengths)

    @property
    def lengths(self) -> dict[str, int]:
        """``{name: length in bases}`` in file order."""
        return dict(self._lengths)

    @property
    def total_length(self) -> int:
        """Sum of the record lengths, in bases."""
        return sum(self._lengths.values())

    def __len__(self) -> int:
        return len(self._lengths)

    def __iter__(self) -> Iterator[str]:
        return iter(list(self._lengths))

    def __contains__(self, name: object) -> bool:
        return name in self._lengths

    def length(self, name: str) -> int:
        """Length of record ``name``; RecordNotFoundError if there is none."""
        try:
            return self._lengths[name]
        except KeyError:
            shown = ", ".join(list(self._lengths)[:5])
            more = f", ... ({len(self._lengths)} records)" if len(self._lengths) > 5 else ""
            raise RecordNotFoundError(f"{self.path}: no record named '{name}' (records: {shown}{more})") from None

    # ---------------------------------------------------------------- sequence access
    def fetch(self, chrom: str, start: int, end: int, strand: str = "+", *, upper: bool = False) -> str:
        """Bases ``[start, end)`` of ``chrom`` (0-based, half-open); ``strand="-"`` gives the reverse complement.

        Raises RegionError unless ``0 <= start <= end <= length``; ``start == end`` gives ``""``.
        """
        length = self.length(chrom)
        start, end = operator.index(start), operator.index(end)
        if strand not in ("+", "-", "."):
            raise RegionError(f"{self.path}: {chrom}:{start}-{end}: strand must be '+', '-' or '.', not {strand!r}")
        if not 0 <= start <= end <= length:
            raise RegionError(
                f"{self.path}: {chrom}:{start}-{end} is outside record '{chrom}' of length {length} "
                "(0-based half-open coordinates)"
            )
        if start == end:
            return ""
        seq = self._handle().fetch(chrom, start + 1, end)
        if len(seq) != end - start:
            raise FastaError(
                f"{self.path}: record '{chrom}' returned {len(seq)} bases for {start}-{end}; "
                f"the index {self._index_path} is out of date or the file changed while open"
            )
        check_sequence(seq, f"{self.path}: record '{chrom}'", FastaError, offset=start)
        if upper:
            seq = seq.upper()
        return reverse_complement(seq) if strand == "-" else seq

    def sequence(self, name: str, *, upper: bool = False) -> str:
        """The whole sequence of record ``name``."""
        return self.fetch(name, 0, self.length(name), upper=upper)

    def records(self, *, upper: bool = False) -> Iterator[tuple[str, str]]:
        """Yield ``(name, sequence)`` for every record, in file order (one record in memory at a time)."""
        for name in self._lengths:
            yield name, self.sequence(name, upper=upper)

    def stream(
        self, chrom: str, chunk_size: int = 1_000_000, overlap: int = 0, *, upper: bool = False
    ) -> Iterator[tuple[int, str]]:
        """Yield ``(start, seq)`` chunks of ``chrom`` without holding the record in memory.

        Chunks are ``[start, start + chunk_size)`` with consecutive starts ``chunk_size - overlap`` apart;
        the last chunk is shorter and ends at the record's end. ``0 <= overlap < chunk_size``.
        """
        length = self.length(chrom)
        if chunk_size <= 0 or not 0 <= overlap < chunk_size:
            raise ValueError(f"stream: need chunk_size > 0 and 0 <= overlap < chunk_size, got {chunk_size}, {overlap}")
        step = chunk_size - overlap
        start = 0
        while True:
            end = min(start + chunk_size, length)
            yield start, self.fetch(chrom, start, end, upper=upper)
            if end >= length:
                return
            start += step

    # ---------------------------------------------------------------- lifecycle
    def close(self) -> None:
        """Close the underlying file handle (reopened on the next fetch)."""
        if self._faidx is not None and self._pid == os.getpid():
            self._faidx.close()
        self._faidx = None

    def __enter__(self) -> "Genome":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def __getstate__(self) -> dict:
        return {"path": self.path, "cache_dir": self._cache_dir, "read_ahead": self._read_ahead}

    def __setstate__(self, state: dict) -> None:
        self.__init__(state["path"], state["cache_dir"], read_ahead=state["read_ahead"])

    def __repr__(self) -> str:
        return f"Genome({str(self.path)!r}, records={len(self)}, bases={self.total_length})"
