"""Helpers shared by the gulm.data tests: FASTA in every supported compression, real-data paths."""
from __future__ import annotations

import bz2
import gzip
import lzma
import os
import struct
import zlib
from pathlib import Path

import pytest

# The 28-byte empty block that ends every BGZF file (SAM/BAM specification, section 4.1.2).
_BGZF_EOF = bytes.fromhex("1f8b08040000000000ff0600424302001b0003000000000000000000")


def bgzip_bytes(data: bytes, block: int = 4096) -> bytes:
    """BGZF-compress ``data`` (what ``bgzip`` writes), with small blocks so fetches cross block borders."""
    out = bytearray()
    for i in range(0, len(data), block):
        chunk = data[i : i + block]
        comp = zlib.compressobj(6, zlib.DEFLATED, -15)
        body = comp.compress(chunk) + comp.flush()
        out += b"\x1f\x8b\x08\x04\x00\x00\x00\x00\x00\xff" + struct.pack("<H", 6) + b"BC"
        out += struct.pack("<HH", 2, 18 + len(body) + 8 - 1) + body
        out += struct.pack("<II", zlib.crc32(chunk), len(chunk))
    return bytes(out) + _BGZF_EOF


COMPRESSIONS = {
    "plain": ("", lambda b: b),
    "gzip": (".gz", gzip.compress),
    "bgzip": (".gz", bgzip_bytes),
    "bzip2": (".bz2", bz2.compress),
    "xz": (".xz", lzma.compress),
}


def write_fasta(path: Path, text: str | bytes, compression: str = "plain") -> Path:
    """Write ``text`` to ``path`` + the compression's suffix; return the path written."""
    suffix, compress = COMPRESSIONS[compression]
    data = text.encode() if isinstance(text, str) else text
    out = Path(str(path) + suffix)
    out.write_bytes(compress(data))
    return out


def data_dir() -> Path | None:
    root = os.environ.get("GULM_DATA")
    return Path(root) if root else None


def require_data(*parts: str) -> Path:
    """The path under $GULM_DATA, or skip the test when GULM_DATA is unset or the file is missing."""
    root = data_dir()
    if root is None:
        pytest.skip("GULM_DATA is not set (real data sets)")
    path = root.joinpath(*parts)
    if not path.exists():
        pytest.skip(f"{path} not found")
    return path
