"""Compressed input files: the format is read from a file's first bytes, never from its name.

gzip, bgzip (BGZF), bzip2 and xz are decompressed transparently by :func:`open_binary`; zstd and
zip are refused with a clear message, and so is a file whose name promises a compression its
bytes do not have (a plain-text ``x.fa.gz``): the name would mislead every other tool too.
"""
from __future__ import annotations

import bz2
import gzip
import lzma
import os
import zlib
from typing import BinaryIO

from gulm.data.errors import CompressionError

__all__ = ["sniff_compression", "open_binary", "has_biopython", "COMPRESSED_SUFFIXES",
           "DECOMPRESSION_ERRORS"]

_MAGIC = {
    b"\x1f\x8b": "gzip",
    b"BZh": "bzip2",
    b"\xfd7zXZ\x00": "xz",
}
_UNSUPPORTED_MAGIC = {
    b"\x28\xb5\x2f\xfd": "zstd",
    b"PK\x03\x04": "zip",
}
COMPRESSED_SUFFIXES = (".gz", ".bgz", ".bgzf", ".bz2", ".xz")
#: the compressions a file name promises, by suffix
_SUFFIX_KIND = {".gz": "gzip", ".bgz": "gzip", ".bgzf": "gzip", ".bz2": "bzip2", ".xz": "xz"}
#: what a truncated or corrupt compressed stream raises while it is read
DECOMPRESSION_ERRORS = (EOFError, OSError, zlib.error, lzma.LZMAError)


def sniff_compression(path: str | os.PathLike) -> str:
    """``"plain"``, ``"gzip"``, ``"bgzip"``, ``"bzip2"`` or ``"xz"``, read from the file's magic bytes."""
    with open(path, "rb") as fh:
        head = fh.read(18)
    for magic, kind in _UNSUPPORTED_MAGIC.items():
        if head.startswith(magic):
            raise CompressionError(
                f"{path}: {kind}-compressed files are not supported; decompress it or recompress it with gzip"
            )
    found = "plain"
    for magic, kind in _MAGIC.items():
        if head.startswith(magic):
            # BGZF is gzip with an extra field whose subfield id is 'BC' (SAM/BAM spec, section 4.1).
            if kind == "gzip" and len(head) >= 14 and head[3] & 4 and head[12:14] == b"BC":
                kind = "bgzip"
            found = kind
            break
    _check_suffix(path, found, head)
    return found


def _check_suffix(path, found: str, head: bytes) -> None:
    """Refuse a name whose compression suffix the bytes contradict (``x.fa.gz`` holding text)."""
    name = os.fspath(path).lower()
    promised = next((kind for suffix, kind in _SUFFIX_KIND.items() if name.endswith(suffix)), None)
    family = "gzip" if found == "bgzip" else found
    if promised is None or promised == family:
        return
    if not head:
        found_text = "it is empty"
    elif found == "plain":
        what = "plain text" if head.isascii() else "neither gzip, bzip2 nor xz"
        found_text = f"it is {what}"
    else:
        found_text = f"it is {found}-compressed"
    suffix = name[name.rfind("."):]
    raise CompressionError(
        f"{path}: not {promised}-compressed, although its name ends in {suffix}: {found_text}; "
        f"rename it to match its contents, or compress it with {promised}")


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



def has_biopython() -> bool:
    """Whether Biopython's BGZF reader (which pyfaidx needs for bgzip files) is installed."""
    try:
        from Bio import bgzf  # noqa: F401
    except ImportError:
        return False
    return True
