"""FASTA text: validating and streaming records, and rewriting a file as regular FASTA.

Input rules: the first non-blank line must be a ``>`` header; a record is named by the first word
of its header (the rest is ignored, never used as a feature); a record without sequence is
skipped with a :class:`~gulm.data.errors.DataWarning`; CRLF line endings are accepted. Sequence
lines hold nucleotide symbols only (:data:`NUCLEOTIDE_SYMBOLS`: A/C/G/T/U, the IUPAC ambiguity
codes, X for masked bases, '-' and '.' for gaps, any case); any other symbol, such as a protein
FASTA's E, F, I, L, P or Q, is an error, not a silent run of unknown k-mers. Errors name the file
and the line.

Duplicate record names follow one rule everywhere (:class:`UniqueNames`): the records are kept,
the second ``x`` is named ``x_2`` (the third ``x_3``, skipping names already taken), and one
DataWarning counts the renamed records and names the first of them.
"""
from __future__ import annotations

import os
import warnings
from pathlib import Path
from typing import BinaryIO, Iterable, Iterator

import numpy as np

from gulm.data.compression import DECOMPRESSION_ERRORS, open_binary, sniff_compression
from gulm.data.errors import DataWarning, FastaError

__all__ = ["reverse_complement", "revcomp_windows", "iter_fasta", "check_fasta_file", "fasta_events", "record_name",
           "warn_empty", "UniqueNames", "unique_ids", "normalize_fasta", "first_lines", "first_non_ascii_line",
           "LINE_WIDTH", "HEADER", "SEQ", "NUCLEOTIDE_SYMBOLS", "foreign_symbol", "check_sequence"]

# IUPAC complement; U pairs with A. Case is kept, and anything else (N, -, *) maps to itself.
_COMPLEMENT = str.maketrans(
    "ACGTUMRWSYKVHDBNacgtumrwsykvhdbn",
    "TGCAAKYWSRMBDHVNtgcaakywsrmbdhvn",
)
LINE_WIDTH = 80  # bases per line of normalised copies

#: What a DNA/RNA sequence may hold: A/C/G/T/U, the IUPAC ambiguity codes, X (a masked base, as
#: RepeatMasker -x writes them), '-' and '.' (alignment gaps); either case. Every symbol but
#: A/C/G/T (U read as T) makes its k-mers unknown tokens.
NUCLEOTIDE_SYMBOLS = "ACGTURYSWKMBDHVNX-."
_SYMBOL_BYTES = (NUCLEOTIDE_SYMBOLS + NUCLEOTIDE_SYMBOLS.lower()).encode("ascii")
_SYMBOL_SET = frozenset(NUCLEOTIDE_SYMBOLS + NUCLEOTIDE_SYMBOLS.lower())
_DROP_SYMBOLS = str.maketrans("", "", NUCLEOTIDE_SYMBOLS + NUCLEOTIDE_SYMBOLS.lower())


def foreign_symbol(seq: str | bytes) -> tuple[int, str] | None:
    """The first symbol of ``seq`` that is not in :data:`NUCLEOTIDE_SYMBOLS` (either case), as
    (0-based position, symbol), or None when every symbol is a nucleotide symbol."""
    if isinstance(seq, (bytes, bytearray)):
        if not seq.translate(None, _SYMBOL_BYTES):
            return None
        pos = next(i for i, b in enumerate(seq) if b not in _SYMBOL_BYTES)
        return pos, bytes(seq[pos:pos + 1]).decode("latin-1")
    if not seq.translate(_DROP_SYMBOLS):
        return None
    return next((i, ch) for i, ch in enumerate(seq) if ch not in _SYMBOL_SET)


def check_sequence(seq: str | bytes, where: str, error: type[Exception] = ValueError, offset: int = 0) -> None:
    """Raise ``error`` naming ``where`` and the 1-based position (plus ``offset``: where ``seq``
    starts in a longer sequence) if ``seq`` holds a symbol outside :data:`NUCLEOTIDE_SYMBOLS`."""
    bad = foreign_symbol(seq)
    if bad is not None:
        hint = "; is this a protein sequence?" if bad[1].isalpha() and bad[1].isascii() else ""
        raise error(f"{where}, position {offset + bad[0] + 1}: {bad[1]!r} is not a nucleotide symbol (A, C, G, T, "
                    f"U, an IUPAC code, X for masked, '-' or '.' for gaps){hint}")


def reverse_complement(seq: str) -> str:
    """Reverse complement of a DNA/RNA string: IUPAC-aware, case kept, U -> A, other symbols unchanged."""
    return seq.translate(_COMPLEMENT)[::-1]


#: the same complement as a byte lookup table, for uint8 arrays of ASCII bases
_COMPLEMENT_BYTES = np.arange(256, dtype=np.uint8)
for _base, _pair in _COMPLEMENT.items():
    _COMPLEMENT_BYTES[_base] = _pair


def revcomp_windows(windows: np.ndarray) -> np.ndarray:
    """Reverse complements of the rows of a uint8 matrix [N, W] of ASCII bases (the rule of
    :func:`reverse_complement`), as a new contiguous matrix."""
    return np.ascontiguousarray(_COMPLEMENT_BYTES[np.asarray(windows, dtype=np.uint8)[:, ::-1]])


def check_fasta_file(path: Path) -> int:
    """Raise a clear error unless ``path`` is a non-empty regular file; return its size."""
    if not path.exists():
        raise FileNotFoundError(f"FASTA file not found: {path}")
    if path.is_dir():
        raise FastaError(f"{path}: is a directory, not a FASTA file")
    size = path.stat().st_size
    if size == 0:
        raise FastaError(f"{path}: empty file (no FASTA records)")
    return size


HEADER, SEQ = 0, 1  # the kinds of events of fasta_events


def fasta_events(path: Path, lines: Iterable[bytes], kind: str) -> Iterator[tuple[int, int, bytes]]:
    """Validate FASTA lines and yield ``(HEADER, lineno, header)`` / ``(SEQ, lineno, bases)`` events.

    ``header`` is the text after '>' without line-end whitespace; ``bases`` is a stripped, non-empty,
    ASCII sequence line. Decompression failures become a FastaError naming the file and line.
    """
    lineno = 0
    in_record = False
    header = b""
    it = iter(lines)
    while True:
        try:
            raw = next(it)
        except StopIteration:
            return
        except DECOMPRESSION_ERRORS as err:
            if kind == "plain":
                raise
            raise FastaError(
                f"{path}: truncated or corrupt {kind} file (after line {lineno}): {err}"
            ) from err
        lineno += 1
        if raw[:1] == b">":
            header = raw[1:].strip()
            if not header.split():
                raise FastaError(f"{path}: line {lineno}: FASTA header without a record name")
            in_record = True
            yield HEADER, lineno, header
            continue
        line = raw.strip()
        if not line:
            continue
        if not in_record:
            snippet = line[:40].decode("ascii", "replace")
            hint = " (this looks like FASTQ)" if line[:1] == b"@" else ""
            raise FastaError(
                f"{path}: line {lineno}: expected a FASTA header starting with '>', found {snippet!r}{hint}; "
                "is this a FASTA file?"
            )
        if not line.isascii():
            raise FastaError(f"{path}: line {lineno}: non-ASCII bytes in sequence; is this a FASTA file?")
        if line.translate(None, _SYMBOL_BYTES):  # the fast test; check_sequence names the symbol
            name = header.split()[0].decode("utf-8", "replace")
            check_sequence(line, f"{path}: line {lineno} (record '{name}')", FastaError)
        yield SEQ, lineno, line


def record_name(path: Path, header: bytes, lineno: int) -> str:
    try:
        return header.split()[0].decode("utf-8")
    except UnicodeDecodeError:
        raise FastaError(f"{path}: line {lineno}: record name is not valid UTF-8") from None


def warn_empty(path: Path, name: str, lineno: int) -> None:
    warnings.warn(
        f"{path}: record '{name}' (line {lineno}) has no sequence; skipped", DataWarning, stacklevel=3
    )


class UniqueNames:
    """Names made unique as they come (the one rule for duplicate record names and ids).

    ``unique(name, where)`` returns ``name`` the first time, then ``name_2``, ``name_3``...
    (skipping names already taken); ``warn(source)`` issues one DataWarning with the count of
    renamed items and the first of them, and returns the renames ``[(old, new, where, where the
    first one was)]``.
    """

    def __init__(self, what: str = "record names", renamed=()):
        self.what = what
        self.seen: dict[str, str] = {}  # name -> where it was first seen
        self.renamed: list[tuple[str, str, str, str]] = [tuple(r) for r in renamed]

    def unique(self, name: str, where: str = "") -> str:
        if name not in self.seen:
            self.seen[name] = where
            return name
        n = 2
        while f"{name}_{n}" in self.seen:
            n += 1
        new = f"{name}_{n}"
        self.seen[new] = where
        self.renamed.append((name, new, where, self.seen[name]))
        return new

    def warn(self, source, stacklevel: int = 3) -> list[tuple[str, str, str, str]]:
        if self.renamed:
            old, new, where, first = self.renamed[0]
            at = f" ({where}; the first at {first})" if where and first else ""
            more = f", and {len(self.renamed) - 1} more" if len(self.renamed) > 1 else ""
            what = self.what if len(self.renamed) > 1 else self.what.rstrip("s")
            warnings.warn(
                f"{source}: {len(self.renamed)} duplicate {what}: the repeated '{old}'{at} is "
                f"kept as '{new}'{more} (every repeat gets a _2, _3... suffix)", DataWarning,
                stacklevel=stacklevel)
        return list(self.renamed)


def unique_ids(ids, source, what: str = "ids") -> list[str]:
    """``ids`` made unique by the :class:`UniqueNames` rule, with one DataWarning if any repeat."""
    names = UniqueNames(what)
    out = [names.unique(str(i)) for i in ids]
    names.warn(source, stacklevel=3)
    return out


def iter_fasta(path: str | os.PathLike, *, upper: bool = False) -> Iterator[tuple[str, str]]:
    """Stream ``(name, sequence)`` from a FASTA file (plain or compressed) without an index.

    Meant for small files such as labeled sets; use :class:`~gulm.data.genome.Genome` for random
    access. The name is the first word of the header. Records with no sequence are skipped with
    a DataWarning. Duplicate names are kept and made unique (``x``, ``x_2``...), with one
    DataWarning at the end.
    """
    path = Path(path)
    check_fasta_file(path)
    kind = sniff_compression(path)
    n_records = 0
    names = UniqueNames()
    for name, hline, chunks in _records(path, kind):
        if not chunks:
            warn_empty(path, name, hline)
            continue
        n_records += 1
        seq = b"".join(chunks).decode("ascii")
        yield names.unique(name, f"line {hline}"), seq.upper() if upper else seq
    if n_records == 0:
        raise FastaError(f"{path}: no FASTA records with sequence")
    names.warn(path)


def _records(path: Path, kind: str) -> Iterator[tuple[str, int, list[bytes]]]:
    """(name, header line, sequence lines) of every record, empty ones included."""
    name: str | None = None
    hline = 0
    chunks: list[bytes] = []
    with open_binary(path, kind) as fh:
        for event, lineno, data in fasta_events(path, fh, kind):
            if event == SEQ:
                chunks.append(data)
                continue
            if name is not None:
                yield name, hline, chunks
            name, hline, chunks = record_name(path, data, lineno), lineno, []
    if name is not None:
        yield name, hline, chunks


def normalize_fasta(path: Path, kind: str, out: BinaryIO, width: int = LINE_WIDTH,
                    names: UniqueNames | None = None) -> list[tuple[str, int, int]]:
    """Copy ``path`` to ``out`` as regular FASTA (``width`` bases per line, LF); return (name, length, offset).

    Validates as it goes: headers first, empty records dropped with a warning; duplicate names
    are made unique by ``names`` (a :class:`UniqueNames`, which records the renames), and the
    header of a renamed record is its new name alone.
    """
    index: list[tuple[str, int, int]] = []
    names = names if names is not None else UniqueNames()
    seen: dict[str, int] = {}
    pos = 0  # bytes written so far
    name: str | None = None
    header = b""
    hline = 0
    rlen = 0
    seq_offset = 0
    buf = bytearray()

    def flush_lines(final: bool) -> int:
        n = len(buf) if final else len(buf) // width * width
        if n == 0:
            return 0
        chunk = bytes(buf[:n])
        del buf[:n]
        data = b"\n".join(chunk[i : i + width] for i in range(0, n, width)) + b"\n"
        out.write(data)
        return len(data)

    def finish() -> None:
        nonlocal pos
        if name is None:
            return
        if rlen == 0:
            warn_empty(path, name, hline)
            return
        pos += flush_lines(final=True)
        index.append((name, rlen, seq_offset))

    with open_binary(path, kind) as fh:
        for event, lineno, data in fasta_events(path, fh, kind):
            if event == SEQ:
                if rlen == 0:  # the header is written only once the record proves non-empty
                    line = b">" + header + b"\n"
                    out.write(line)
                    pos += len(line)
                    seq_offset = pos
                buf += data
                rlen += len(data)
                if len(buf) >= width:
                    pos += flush_lines(final=False)
                continue
            finish()
            original = record_name(path, data, lineno)
            name = names.unique(original, f"line {lineno}")
            seen[name] = lineno
            header, hline, rlen = (data if name == original else name.encode()), lineno, 0
        finish()
    if not index:
        what = "all records are empty" if seen else "no '>' header found"
        raise FastaError(f"{path}: no FASTA records with sequence ({what})")
    return index


def first_lines(fh: BinaryIO, limit: int = 1 << 20) -> Iterator[bytes]:
    """Lines of ``fh`` until ``limit`` bytes were read (enough to find the first header)."""
    read = 0
    while read < limit:
        line = fh.readline(limit - read)
        if not line:
            return
        yield line
        read += len(line)


def first_non_ascii_line(path: Path) -> int | None:
    """1-based number of the first line with a non-ASCII byte (for error messages only)."""
    with open_binary(path) as fh:
        for lineno, line in enumerate(fh, 1):
            if not line.isascii():
                return lineno
    return None

