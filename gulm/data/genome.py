"""Random access to FASTA genomes, plain or compressed.

Coordinates are 0-based and half-open, ``[start, end)``, on the forward strand of a record. ``strand="-"``
returns the reverse complement of the same interval. Letters come back as they are in the file (lowercase
soft-masking is kept) unless ``upper=True``.

How a file is opened (the format is read from its first bytes, not from its name):

- plain FASTA with regular line lengths: pyfaidx indexes it in place (``<file>.fai``), or in the cache
  directory when the file's folder is read-only;
- BGZF (``bgzip``) with Biopython installed and a ``.gz``/``.bgz`` name: pyfaidx reads it in place
  (``.fai`` and ``.gzi`` beside it, or in the cache);
- anything else - plain gzip, BGZF without Biopython, bzip2, xz, or a plain FASTA whose line lengths vary -
  is decompressed once into the cache as a regular FASTA (LF line endings, 80 bases per line, empty records
  dropped) together with its ``.fai``. The cached copy is keyed by the source's absolute path, size and
  modification time: a second open reuses it and a changed source rebuilds it. It is written to a temporary
  file and renamed, so a crash or a concurrent reader never sees half a file.

The cache directory is ``cache_dir`` if given, else ``$GULM_CACHE`` if set, else ``.gulm_cache/`` beside the
file if that folder is writable, else ``~/.cache/gulm``.

Input rules: the first non-blank line must be a ``>`` header; a record is named by the first word of its
header (the rest is ignored, never used as a feature); duplicate names are an error; a record without
sequence is skipped with a :class:`DataWarning`; CRLF line endings are accepted.
"""
from __future__ import annotations

import bz2
import gzip
import hashlib
import lzma
import operator
import os
import tempfile
import warnings
import zlib
from pathlib import Path
from typing import BinaryIO, Iterable, Iterator

import pyfaidx

from gulm.data.errors import DataWarning, FastaError, RecordNotFoundError, RegionError

__all__ = ["Genome", "reverse_complement", "iter_fasta", "open_binary", "sniff_compression"]

# IUPAC complement; U pairs with A. Case is kept, and anything else (N, -, *) maps to itself.
_COMPLEMENT = str.maketrans(
    "ACGTUMRWSYKVHDBNacgtumrwsykvhdbn",
    "TGCAAKYWSRMBDHVNtgcaakywsrmbdhvn",
)

_LINE_WIDTH = 80  # bases per line in cached copies
_CACHE_FORMAT = "1"  # bump when the cached layout changes, so old copies are rebuilt
_MAGIC = {
    b"\x1f\x8b": "gzip",
    b"BZh": "bzip2",
    b"\xfd7zXZ\x00": "xz",
}
_UNSUPPORTED_MAGIC = {
    b"\x28\xb5\x2f\xfd": "zstd",
    b"PK\x03\x04": "zip",
}
_COMPRESSED_SUFFIXES = (".gz", ".bgz", ".bgzf", ".bz2", ".xz")


def reverse_complement(seq: str) -> str:
    """Reverse complement of a DNA/RNA string: IUPAC-aware, case kept, U -> A, other symbols unchanged."""
    return seq.translate(_COMPLEMENT)[::-1]


def sniff_compression(path: str | os.PathLike) -> str:
    """``"plain"``, ``"gzip"``, ``"bgzip"``, ``"bzip2"`` or ``"xz"``, read from the file's magic bytes."""
    with open(path, "rb") as fh:
        head = fh.read(18)
    for magic, kind in _UNSUPPORTED_MAGIC.items():
        if head.startswith(magic):
            raise FastaError(
                f"{path}: {kind}-compressed files are not supported; decompress it or recompress it with gzip"
            )
    for magic, kind in _MAGIC.items():
        if head.startswith(magic):
            # BGZF is gzip with an extra field whose subfield id is 'BC' (SAM/BAM spec, section 4.1).
            if kind == "gzip" and len(head) >= 14 and head[3] & 4 and head[12:14] == b"BC":
                return "bgzip"
            return kind
    return "plain"


def open_binary(path: str | os.PathLike, kind: str | None = None) -> BinaryIO:
    """Open ``path`` for reading bytes, decompressing gzip/bgzip/bzip2/xz transparently."""
    kind = kind or sniff_compression(path)
    if kind in ("gzip", "bgzip"):
        return gzip.open(path, "rb")
    if kind == "bzip2":
        return bz2.open(path, "rb")
    if kind == "xz":
        return lzma.open(path, "rb")
    return open(path, "rb")


def _check_file(path: Path) -> int:
    """Raise a clear error unless ``path`` is a non-empty regular file; return its size."""
    if not path.exists():
        raise FileNotFoundError(f"FASTA file not found: {path}")
    if path.is_dir():
        raise FastaError(f"{path}: is a directory, not a FASTA file")
    size = path.stat().st_size
    if size == 0:
        raise FastaError(f"{path}: empty file (no FASTA records)")
    return size


_HEADER, _SEQ = 0, 1


def _events(path: Path, lines: Iterable[bytes], kind: str) -> Iterator[tuple[int, int, bytes]]:
    """Validate FASTA lines and yield ``(_HEADER, lineno, header)`` / ``(_SEQ, lineno, bases)`` events.

    ``header`` is the text after '>' without line-end whitespace; ``bases`` is a stripped, non-empty,
    ASCII sequence line. Decompression failures become a FastaError naming the file and line.
    """
    lineno = 0
    in_record = False
    it = iter(lines)
    while True:
        try:
            raw = next(it)
        except StopIteration:
            return
        except (EOFError, OSError, zlib.error, lzma.LZMAError) as err:
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
            yield _HEADER, lineno, header
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
        yield _SEQ, lineno, line


def _record_name(path: Path, header: bytes, lineno: int) -> str:
    try:
        return header.split()[0].decode("utf-8")
    except UnicodeDecodeError:
        raise FastaError(f"{path}: line {lineno}: record name is not valid UTF-8") from None


def _warn_empty(path: Path, name: str, lineno: int) -> None:
    warnings.warn(
        f"{path}: record '{name}' (line {lineno}) has no sequence; skipped", DataWarning, stacklevel=3
    )


def iter_fasta(path: str | os.PathLike, *, upper: bool = False) -> Iterator[tuple[str, str]]:
    """Stream ``(name, sequence)`` from a FASTA file (plain or compressed) without an index.

    Meant for small files such as labeled sets; use :class:`Genome` for random access. The name is the first
    word of the header. Records with no sequence are skipped with a DataWarning. Duplicate names are allowed.
    """
    path = Path(path)
    _check_file(path)
    kind = sniff_compression(path)
    name: str | None = None
    hline = 0
    chunks: list[bytes] = []
    n_records = 0
    with open_binary(path, kind) as fh:
        for event, lineno, data in _events(path, fh, kind):
            if event == _SEQ:
                chunks.append(data)
                continue
            if name is not None:
                if chunks:
                    n_records += 1
                    seq = b"".join(chunks).decode("ascii")
                    yield name, seq.upper() if upper else seq
                else:
                    _warn_empty(path, name, hline)
            name, hline, chunks = _record_name(path, data, lineno), lineno, []
    if name is not None:
        if chunks:
            n_records += 1
            seq = b"".join(chunks).decode("ascii")
            yield name, seq.upper() if upper else seq
        else:
            _warn_empty(path, name, hline)
    if n_records == 0:
        raise FastaError(f"{path}: no FASTA records with sequence")


def _normalize(path: Path, kind: str, out: BinaryIO, width: int = _LINE_WIDTH) -> list[tuple[str, int, int]]:
    """Copy ``path`` to ``out`` as regular FASTA (``width`` bases per line, LF); return (name, length, offset).

    Validates as it goes: headers first, unique names, empty records dropped with a warning.
    """
    index: list[tuple[str, int, int]] = []
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
            _warn_empty(path, name, hline)
            return
        pos += flush_lines(final=True)
        index.append((name, rlen, seq_offset))

    with open_binary(path, kind) as fh:
        for event, lineno, data in _events(path, fh, kind):
            if event == _SEQ:
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
            name = _record_name(path, data, lineno)
            if name in seen:
                raise FastaError(
                    f"{path}: duplicate record name '{name}' (lines {seen[name]} and {lineno})"
                )
            seen[name] = lineno
            header, hline, rlen = data, lineno, 0
        finish()
    if not index:
        what = "all records are empty" if seen else "no '>' header found"
        raise FastaError(f"{path}: no FASTA records with sequence ({what})")
    return index


def _writable_dir(folder: Path) -> bool:
    return folder.is_dir() and os.access(folder, os.W_OK | os.X_OK)


def _cache_root(path: Path, cache_dir: str | os.PathLike | None, *, create: bool = True) -> Path:
    if cache_dir is not None:
        root = Path(cache_dir)
    elif os.environ.get("GULM_CACHE"):
        root = Path(os.environ["GULM_CACHE"])
    elif _writable_dir(path.parent):
        root = path.parent / ".gulm_cache"
    else:
        root = Path.home() / ".cache" / "gulm"
    if not create:
        return root
    try:
        root.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise FastaError(
            f"{path}: cannot create the cache directory {root} ({err}); pass cache_dir= or set GULM_CACHE"
        ) from err
    return root


def _source_key(path: Path) -> tuple[str, str, str]:
    """(stem, path hash, version hash) naming the cached copy of ``path``."""
    st = path.stat()
    ident = hashlib.sha256(str(path.resolve()).encode()).hexdigest()[:12]
    version = hashlib.sha256(f"{st.st_size}:{st.st_mtime_ns}:{_CACHE_FORMAT}".encode()).hexdigest()[:12]
    stem = path.name
    for suffix in _COMPRESSED_SUFFIXES:
        if stem.lower().endswith(suffix):
            stem = stem[: -len(suffix)]
            break
    return stem, ident, version


class Genome:
    """A FASTA file (plain, gzip, bgzip, bzip2 or xz) with random access by record name.

    ``len(genome)`` is the number of records; iterating yields record names in file order;
    ``name in genome`` tests for a record. All coordinates are 0-based half-open on the forward strand.

    Args:
        path: the FASTA file.
        cache_dir: where decompressed copies and indexes go when they cannot sit beside the file
            (see the module docstring for the default).
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
        _check_file(self.path)
        self.compression = sniff_compression(self.path)
        self._check_first_line()
        #: the file pyfaidx reads: ``path`` itself or a normalised copy in the cache
        self.indexed_path, self._index_path, self._gzi_path = self._prepare()
        self._faidx = self._open_faidx()
        self._lengths = self._collect_lengths()

    # ---------------------------------------------------------------- opening
    def _check_first_line(self) -> None:
        """Fail fast on non-FASTA input, before any index or cache is written."""
        try:
            with open_binary(self.path, self.compression) as fh:
                for _ in _events(self.path, _first_lines(fh), self.compression):
                    return  # first event is a header (_events raises otherwise)
        except FastaError:
            raise
        except (EOFError, OSError, zlib.error, lzma.LZMAError) as err:
            if self.compression == "plain":
                raise
            raise FastaError(f"{self.path}: truncated or corrupt {self.compression} file: {err}") from err
        raise FastaError(f"{self.path}: no FASTA records (only blank lines)")

    def _prepare(self) -> tuple[Path, Path, Path | None]:
        """Choose the file pyfaidx reads and where its index lives; build the cached copy if needed."""
        if self.compression == "plain":
            cached = self._current_copy()
            if cached is not None:  # an irregular file normalised by an earlier open
                return cached, Path(str(cached) + ".fai"), None
            return self.path, self._index_location(".fai"), None
        if self.compression == "bgzip" and _has_biopython() and self.path.name.lower().endswith((".gz", ".bgz")):
            return self.path, self._index_location(".fai"), self._index_location(".gzi")
        return self._cached_copy()

    def _index_location(self, suffix: str) -> Path:
        """Beside the file when it is fresh there or can be written there, else in the cache."""
        beside = Path(str(self.path) + suffix)
        if beside.exists():
            fresh = beside.stat().st_mtime >= self.path.stat().st_mtime
            if fresh or os.access(beside, os.W_OK):
                return beside
        elif _writable_dir(self.path.parent):
            return beside
        stem, ident, _ = _source_key(self.path)
        return _cache_root(self.path, self._cache_dir) / f"{self.path.name}.{ident}{suffix}"

    def _current_copy(self) -> Path | None:
        """The cached copy of the current source, if one was built (creates nothing)."""
        stem, ident, version = _source_key(self.path)
        cached = _cache_root(self.path, self._cache_dir, create=False) / f"{stem}.{ident}.{version}.fa"
        return cached if cached.exists() and Path(str(cached) + ".fai").exists() else None

    def _cached_copy(self) -> tuple[Path, Path, None]:
        current = self._current_copy()
        if current is not None:
            return current, Path(str(current) + ".fai"), None
        root = _cache_root(self.path, self._cache_dir)
        stem, ident, version = _source_key(self.path)
        cached = root / f"{stem}.{ident}.{version}.fa"
        fai = Path(str(cached) + ".fai")
        for stale in root.glob(f"{stem}.{ident}.*"):
            if not stale.name.startswith(f"{stem}.{ident}.{version}."):
                stale.unlink(missing_ok=True)
        fd, tmp_name = tempfile.mkstemp(dir=root, prefix=f".{stem}.", suffix=".tmp")
        tmp = Path(tmp_name)
        tmp_fai = Path(tmp_name + ".fai")
        try:
            os.chmod(fd, 0o644)  # mkstemp makes it private; the cache may be shared
            with os.fdopen(fd, "wb") as out:
                index = _normalize(self.path, self.compression, out)
            with open(tmp_fai, "w") as out:
                for name, length, offset in index:
                    out.write(f"{name}\t{length}\t{offset}\t{_LINE_WIDTH}\t{_LINE_WIDTH + 1}\n")
            os.replace(tmp, cached)
            os.replace(tmp_fai, fai)  # after the FASTA, so the index is never older than it
        except BaseException:
            tmp.unlink(missing_ok=True)
            tmp_fai.unlink(missing_ok=True)
            raise
        return cached, fai, None

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
                Path(self._index_path).unlink(missing_ok=True)
                self.indexed_path, self._index_path, self._gzi_path = self._cached_copy()
                return self._open_faidx(retry=False)
            raise FastaError(f"{self.path}: {err}") from err
        except UnicodeDecodeError as err:  # before ValueError, its base class
            where = _first_non_ascii_line(self.indexed_path)
            raise FastaError(f"{self.path}: line {where}: non-ASCII bytes; is this a FASTA file? ({err})") from err
        except ValueError as err:
            if str(err).startswith("Duplicate key"):
                name = str(err).split('"')[1] if '"' in str(err) else str(err)
                Path(self._index_path).unlink(missing_ok=True)
                lines = _header_lines(self.indexed_path, name)
                where = f" (lines {', '.join(map(str, lines[:-1]))} and {lines[-1]})" if len(lines) > 1 else ""
                raise FastaError(f"{self.path}: duplicate record name '{name}'{where}") from None
            raise
        # An index whose records run past the end of the file is stale (e.g. the FASTA was replaced
        # by an older copy, which fools pyfaidx's mtime test): rebuild it once.
        size = self.indexed_path.stat().st_size if self._gzi_path is None else None
        if size is not None and faidx.index and max(r.bend for r in faidx.index.values()) > size:
            faidx.close()
            if not retry:
                raise FastaError(f"{self.path}: index {self._index_path} does not match the file")
            try:
                Path(self._index_path).unlink(missing_ok=True)
            except OSError:  # a stale index we may not remove: index into the cache instead
                stem, ident, _ = _source_key(self.path)
                root = _cache_root(self.path, self._cache_dir)
                self._index_path = root / f"{self.path.name}.{ident}.fai"
                Path(self._index_path).unlink(missing_ok=True)
            return self._open_faidx(retry=False)
        return faidx

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


def _first_lines(fh: BinaryIO, limit: int = 1 << 20) -> Iterator[bytes]:
    """Lines of ``fh`` until ``limit`` bytes were read (enough to find the first header)."""
    read = 0
    while read < limit:
        line = fh.readline(limit - read)
        if not line:
            return
        yield line
        read += len(line)


def _header_lines(path: Path, name: str) -> list[int]:
    """1-based line numbers of the headers of record ``name`` (for error messages only)."""
    found = []
    with open_binary(path) as fh:
        for lineno, line in enumerate(fh, 1):
            if line[:1] == b">" and line[1:].split()[:1] == [name.encode()]:
                found.append(lineno)
    return found


def _first_non_ascii_line(path: Path) -> int | None:
    """1-based number of the first line with a non-ASCII byte (for error messages only)."""
    with open_binary(path) as fh:
        for lineno, line in enumerate(fh, 1):
            if not line.isascii():
                return lineno
    return None


def _has_biopython() -> bool:
    try:
        from Bio import bgzf  # noqa: F401
    except ImportError:
        return False
    return True
