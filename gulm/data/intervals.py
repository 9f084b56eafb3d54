"""Genomic intervals: BED and GFF reading, region strings, merging and subtraction.

Every interval is 0-based and half-open, ``[start, end)``, as in BED. Region strings typed by users follow
samtools (1-based, inclusive) and are converted on parsing; GFF's 1-based inclusive ``start``/``end`` become
``start - 1``/``end``.
"""
from __future__ import annotations

import bisect
import gzip
import io
import operator
import os
import re
import zlib
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Iterator, Mapping
from urllib.parse import unquote

from gulm.data.errors import BedError, RegionError
from gulm.data.compression import open_binary

__all__ = [
    "Interval",
    "read_bed",
    "write_bed",
    "parse_region",
    "merge_intervals",
    "subtract_intervals",
    "read_gff_features",
]

_STRANDS = ("+", "-", ".")


@dataclass(frozen=True, slots=True)
class Interval:
    """``[start, end)`` on ``chrom`` (0-based, half-open), with optional BED name, score and strand.

    ``strand`` is ``'+'``, ``'-'`` or ``'.'`` (unknown). ``len(iv) == end - start``.
    """

    chrom: str
    start: int
    end: int
    name: str | None = None
    score: float | None = None
    strand: str = "."

    def __post_init__(self) -> None:
        start, end = operator.index(self.start), operator.index(self.end)
        object.__setattr__(self, "start", start)
        object.__setattr__(self, "end", end)
        if start < 0 or end < start:
            raise RegionError(f"interval {self.chrom}:{start}-{end}: need 0 <= start <= end")
        if self.strand not in _STRANDS:
            raise RegionError(f"interval {self.chrom}:{start}-{end}: strand must be '+', '-' or '.', not {self.strand!r}")

    def __len__(self) -> int:
        return self.end - self.start

    @property
    def region(self) -> str:
        """samtools-style 1-based inclusive ``chrom:start-end`` (the inverse of :func:`parse_region`)."""
        return f"{self.chrom}:{self.start + 1}-{self.end}"

    def sort_key(self) -> tuple:
        """The order of :func:`write_bed`: chrom (lexicographic), start, end, strand, name."""
        return (self.chrom, self.start, self.end, self.strand, self.name or "")


# ---------------------------------------------------------------------------- text helpers
def _text_lines(path: Path) -> Iterator[tuple[int, str]]:
    """``(lineno, line)`` of a plain or compressed text file, line ends removed."""
    if not path.exists():
        raise FileNotFoundError(f"file not found: {path}")
    with open_binary(path) as raw, io.TextIOWrapper(raw, encoding="utf-8-sig", newline=None) as fh:
        try:
            for lineno, line in enumerate(fh, 1):
                yield lineno, line.rstrip("\n\r")
        except UnicodeDecodeError as err:
            raise BedError(f"{path}: not a UTF-8 text file ({err})") from err
        except (EOFError, gzip.BadGzipFile, zlib.error) as err:
            raise BedError(f"{path}: truncated or corrupt compressed file ({err})") from err


_UINT = re.compile(r"\d+\Z")


def _coordinate(path: Path, lineno: int, what: str, text: str) -> int:
    text = text.strip()
    if not _UINT.match(text):
        raise BedError(f"{path}:{lineno}: {what} must be a non-negative integer, found {text!r}")
    return int(text)


def _score(path: Path, lineno: int, text: str) -> float | None:
    text = text.strip()
    if text in (".", ""):
        return None
    try:
        return int(text)
    except ValueError:
        pass
    try:
        return float(text)
    except ValueError:
        raise BedError(f"{path}:{lineno}: score must be a number or '.', found {text!r}") from None


# ---------------------------------------------------------------------------- BED
def read_bed(path: str | os.PathLike) -> list[Interval]:
    """Intervals of a BED3..BED6+ file (plain or compressed), in file order.

    Skips blank, ``#``, ``track`` and ``browser`` lines; columns past the sixth are ignored. A name or
    score of ``'.'`` becomes None. Columns are tab-separated (whitespace-separated if a line has no tab).
    Raises BedError naming ``file:line`` for fewer than 3 columns, non-integer or negative coordinates,
    ``start >= end``, a non-numeric score or a strand other than ``+``, ``-``, ``.``.
    """
    path = Path(path)
    out: list[Interval] = []
    for lineno, line in _text_lines(path):
        if not line.strip() or line.startswith("#"):
            continue
        fields = line.split("\t") if "\t" in line else line.split()
        if fields[0] in ("track", "browser"):
            continue
        if len(fields) < 3:
            raise BedError(
                f"{path}:{lineno}: expected at least 3 columns (chrom, start, end), found {len(fields)}: {line!r}"
            )
        chrom = fields[0].strip()
        if not chrom:
            raise BedError(f"{path}:{lineno}: empty chromosome name")
        start = _coordinate(path, lineno, "start", fields[1])
        end = _coordinate(path, lineno, "end", fields[2])
        if start >= end:
            raise BedError(f"{path}:{lineno}: start ({start}) must be less than end ({end})")
        name = fields[3].strip() if len(fields) > 3 else None
        name = None if name in (None, "", ".") else name
        score = _score(path, lineno, fields[4]) if len(fields) > 4 else None
        strand = fields[5].strip() if len(fields) > 5 else "."
        if strand not in _STRANDS:
            raise BedError(f"{path}:{lineno}: strand must be '+', '-' or '.', found {strand!r}")
        out.append(Interval(chrom, start, end, name, score, strand))
    return out


def _format_score(score: float | None) -> str:
    if score is None:
        return "."
    if isinstance(score, float) and score.is_integer():
        return str(int(score))
    return str(score)


def write_bed(path: str | os.PathLike, intervals: Iterable[Interval]) -> None:
    """Write intervals sorted by :meth:`Interval.sort_key`; gzip-compressed when ``path`` ends in ``.gz``.

    BED3 when no interval has a name, score or strand, else BED6 (missing name/score written as ``'.'``).
    """
    rows = sorted(intervals, key=Interval.sort_key)
    bed6 = any(iv.name is not None or iv.score is not None or iv.strand != "." for iv in rows)
    path = Path(path)
    opener = gzip.open if path.name.endswith(".gz") else open
    with opener(path, "wt", encoding="utf-8", newline="\n") as fh:
        for iv in rows:
            if bed6:
                fh.write(
                    f"{iv.chrom}\t{iv.start}\t{iv.end}\t{iv.name or '.'}\t{_format_score(iv.score)}\t{iv.strand}\n"
                )
            else:
                fh.write(f"{iv.chrom}\t{iv.start}\t{iv.end}\n")


# ---------------------------------------------------------------------------- regions
_RANGE = re.compile(r"([0-9,]+)(?:-([0-9,]*))?\Z")


def parse_region(region: str, lengths: Mapping[str, int] | None = None) -> Interval:
    """Parse a samtools-style region (1-based, inclusive) into a 0-based half-open Interval.

    ``"chr1:1,001-2,000"`` -> ``Interval("chr1", 1000, 2000)``. Commas in numbers are allowed.
    ``"chr1"``, ``"chr1:1001"`` and ``"chr1:1001-"`` run to the end of the record and need ``lengths``
    (``{name: length}``, e.g. ``Genome.lengths``), which also checks the name and the bounds. A name that
    itself contains ``':'`` is recognised when it is a key of ``lengths``.
    """
    text = region.strip()
    if not text:
        raise RegionError("empty region string")
    if lengths is not None and text in lengths:
        return Interval(text, 0, lengths[text])
    chrom, colon, rng = text.rpartition(":")
    match = _RANGE.match(rng) if colon else None
    if not colon or not chrom or match is None:
        if colon == "" and lengths is None:
            raise RegionError(f"region {region!r}: a whole-record region needs the record lengths")
        if lengths is not None and text not in lengths:
            raise RegionError(f"region {region!r}: no record named {text!r} and not of the form chrom:start-end")
        raise RegionError(f"region {region!r}: expected chrom:start-end (1-based, inclusive), e.g. chr1:1,001-2,000")
    first = int(match.group(1).replace(",", "") or "0")
    last_text = match.group(2)
    if first < 1:
        raise RegionError(f"region {region!r}: positions are 1-based, start must be >= 1")
    if lengths is not None and chrom not in lengths:
        raise RegionError(f"region {region!r}: no record named {chrom!r}")
    if last_text is None or last_text.replace(",", "") == "":
        if lengths is None:
            raise RegionError(f"region {region!r}: an open-ended region needs the record lengths")
        last = lengths[chrom]
    else:
        last = int(last_text.replace(",", ""))
    if last < first:
        raise RegionError(f"region {region!r}: end ({last}) is before start ({first})")
    if lengths is not None and last > lengths[chrom]:
        raise RegionError(f"region {region!r}: end ({last}) is past the end of {chrom} (length {lengths[chrom]})")
    return Interval(chrom, first - 1, last)


# ---------------------------------------------------------------------------- set operations
def merge_intervals(
    intervals: Iterable[Interval], *, distance: int = 0, stranded: bool = False
) -> list[Interval]:
    """Union of intervals, sorted; overlapping, touching or at most ``distance`` bp apart ones are joined.

    Merged intervals carry no name or score; their strand is the shared strand when ``stranded``, else '.'.
    """
    if distance < 0:
        raise ValueError(f"merge_intervals: distance must be >= 0, got {distance}")
    groups: dict[tuple[str, str], list[Interval]] = defaultdict(list)
    for iv in intervals:
        groups[(iv.chrom, iv.strand if stranded else ".")].append(iv)
    out: list[Interval] = []
    for (chrom, strand), ivs in groups.items():
        ivs.sort(key=lambda iv: (iv.start, iv.end))
        cur_start, cur_end = ivs[0].start, ivs[0].end
        for iv in ivs[1:]:
            if iv.start <= cur_end + distance:
                cur_end = max(cur_end, iv.end)
            else:
                out.append(Interval(chrom, cur_start, cur_end, strand=strand))
                cur_start, cur_end = iv.start, iv.end
        out.append(Interval(chrom, cur_start, cur_end, strand=strand))
    out.sort(key=Interval.sort_key)
    return out


def subtract_intervals(
    intervals: Iterable[Interval], exclude: Iterable[Interval], *, stranded: bool = False
) -> list[Interval]:
    """Parts of ``intervals`` not covered by any interval of ``exclude`` (like ``bedtools subtract``).

    Each input interval is replaced, in input order, by its uncovered pieces (none if fully covered);
    pieces keep the name, score and strand of their interval. With ``stranded``, only exclusions on the
    same strand count.
    """
    blocks: dict[tuple[str, str], tuple[list[int], list[int]]] = {}
    for iv in merge_intervals(exclude, stranded=stranded):
        starts, ends = blocks.setdefault((iv.chrom, iv.strand), ([], []))
        starts.append(iv.start)
        ends.append(iv.end)
    out: list[Interval] = []
    for iv in intervals:
        key = (iv.chrom, iv.strand if stranded else ".")
        if key not in blocks:
            out.append(iv)
            continue
        starts, ends = blocks[key]
        pos = iv.start
        i = bisect.bisect_right(ends, iv.start)  # first block ending after our start
        while i < len(starts) and starts[i] < iv.end:
            if starts[i] > pos:
                out.append(Interval(iv.chrom, pos, starts[i], iv.name, iv.score, iv.strand))
            pos = max(pos, ends[i])
            i += 1
        if pos < iv.end:
            out.append(Interval(iv.chrom, pos, iv.end, iv.name, iv.score, iv.strand))
    return out


# ---------------------------------------------------------------------------- GFF / GTF
_GTF_ATTR = re.compile(r'\s*([^\s"]+)\s+"?([^";]*)"?\s*')


def _attributes(text: str) -> dict[str, str]:
    attrs: dict[str, str] = {}
    for part in text.strip().strip(";").split(";"):
        part = part.strip()
        if not part:
            continue
        if "=" in part:  # GFF3: key=value, percent-encoded
            key, _, value = part.partition("=")
            attrs.setdefault(unquote(key.strip()), unquote(value.strip()))
        else:  # GTF: key "value"
            m = _GTF_ATTR.match(part)
            if m:
                attrs.setdefault(m.group(1), m.group(2))
    return attrs


def read_gff_features(
    path: str | os.PathLike,
    feature_type: str | Iterable[str] = "gene",
    *,
    name_keys: tuple[str, ...] = ("Name", "gene", "gene_name", "locus_tag", "ID", "gene_id"),
    join_parts: bool = True,
) -> list[Interval]:
    """Features of a GFF3 or GTF file (plain or compressed) as 0-based half-open Intervals, in file order.

    ``feature_type`` is a type (column 3) or several, e.g. ``"gene"`` or ``"CDS"``. The name is the first of
    ``name_keys`` found in the attributes; the strand is kept (``'?'`` becomes ``'.'``). With ``join_parts``,
    lines sharing an ``ID`` on the same record (a CDS split over several lines) become one interval spanning
    all parts, at the position of the first. Reading stops at a ``##FASTA`` line.
    """
    path = Path(path)
    wanted = {feature_type} if isinstance(feature_type, str) else set(feature_type)
    out: list[Interval] = []
    by_id: dict[tuple[str, str], int] = {}
    for lineno, line in _text_lines(path):
        if line.startswith("##FASTA"):
            break
        if not line.strip() or line.startswith("#"):
            continue
        fields = line.split("\t")
        if len(fields) != 9:
            raise BedError(f"{path}:{lineno}: expected 9 tab-separated GFF columns, found {len(fields)}")
        if fields[2] not in wanted:
            continue
        start = _coordinate(path, lineno, "start", fields[3])
        end = _coordinate(path, lineno, "end", fields[4])
        if start < 1 or end < start:
            raise BedError(f"{path}:{lineno}: GFF coordinates need 1 <= start <= end, found {start}..{end}")
        strand = fields[6].strip()
        strand = "." if strand == "?" else strand
        if strand not in _STRANDS:
            raise BedError(f"{path}:{lineno}: strand must be '+', '-', '.' or '?', found {strand!r}")
        attrs = _attributes(fields[8])
        name = next((attrs[k] for k in name_keys if attrs.get(k)), None)
        iv = Interval(fields[0], start - 1, end, name, _score(path, lineno, fields[5]), strand)
        feature_id = attrs.get("ID")
        if join_parts and feature_id:
            key = (fields[0], feature_id)
            if key in by_id:
                prev = out[by_id[key]]
                out[by_id[key]] = Interval(
                    prev.chrom, min(prev.start, iv.start), max(prev.end, iv.end), prev.name, prev.score, prev.strand
                )
                continue
            by_id[key] = len(out)
        out.append(iv)
    return out
