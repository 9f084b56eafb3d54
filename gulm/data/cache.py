"""Where the indexes and decompressed copies of FASTA files go (the cache policy).

- a plain FASTA with regular lines is indexed in place (``<file>.fai``) when its folder is
  writable, else the index goes to the cache;
- a file pyfaidx cannot read in place (plain gzip, bzip2, xz, BGZF without Biopython, irregular
  line lengths) is rewritten once into the cache as regular FASTA with its ``.fai``, keyed by the
  source's absolute path, size and modification time: a second open reuses it, a changed source
  rebuilds it. It is written to a temporary file and renamed, so a crash or a concurrent reader
  never sees half a file.

The cache directory is ``cache_dir`` if given, else ``$GULM_CACHE`` if set, else ``.gulm_cache/``
beside the file if that folder is writable, else ``~/.cache/gulm``.
"""
from __future__ import annotations

import hashlib
import os
import tempfile
from pathlib import Path

from gulm.data.compression import COMPRESSED_SUFFIXES
from gulm.data.errors import FastaError
from gulm.data.fasta import LINE_WIDTH, normalize_fasta

__all__ = ["writable_dir", "cache_root", "source_key", "index_location", "cache_index_path",
           "current_copy", "cached_copy", "CACHE_FORMAT"]

CACHE_FORMAT = "1"  # bump when the cached layout changes, so old copies are rebuilt


def writable_dir(folder: Path) -> bool:
    return folder.is_dir() and os.access(folder, os.W_OK | os.X_OK)


def cache_root(path: Path, cache_dir: str | os.PathLike | None, *, create: bool = True) -> Path:
    """The cache directory for ``path`` (see the module doc), created unless ``create=False``."""
    if cache_dir is not None:
        root = Path(cache_dir)
    elif os.environ.get("GULM_CACHE"):
        root = Path(os.environ["GULM_CACHE"])
    elif writable_dir(path.parent):
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


def source_key(path: Path) -> tuple[str, str, str]:
    """(stem, path hash, version hash) naming the cached copy of ``path``."""
    st = path.stat()
    ident = hashlib.sha256(str(path.resolve()).encode()).hexdigest()[:12]
    version = hashlib.sha256(f"{st.st_size}:{st.st_mtime_ns}:{CACHE_FORMAT}".encode()).hexdigest()[:12]
    stem = path.name
    for suffix in COMPRESSED_SUFFIXES:
        if stem.lower().endswith(suffix):
            stem = stem[: -len(suffix)]
            break
    return stem, ident, version


def cache_index_path(path: Path, suffix: str, cache_dir) -> Path:
    """The index of ``path`` with ``suffix`` (``.fai``, ``.gzi``) inside the cache."""
    _, ident, _ = source_key(path)
    return cache_root(path, cache_dir) / f"{path.name}.{ident}{suffix}"


def index_location(path: Path, suffix: str, cache_dir) -> Path:
    """Beside the file when it is fresh there or can be written there, else in the cache."""
    beside = Path(str(path) + suffix)
    if beside.exists():
        fresh = beside.stat().st_mtime >= path.stat().st_mtime
        if fresh or os.access(beside, os.W_OK):
            return beside
    elif writable_dir(path.parent):
        return beside
    return cache_index_path(path, suffix, cache_dir)


def current_copy(path: Path, cache_dir) -> Path | None:
    """The cached copy of the current source, if one was built (creates nothing)."""
    stem, ident, version = source_key(path)
    cached = cache_root(path, cache_dir, create=False) / f"{stem}.{ident}.{version}.fa"
    return cached if cached.exists() and Path(str(cached) + ".fai").exists() else None


def cached_copy(path: Path, kind: str, cache_dir) -> tuple[Path, Path]:
    """(regular FASTA, its .fai) of ``path`` (compression ``kind``) in the cache, built if needed."""
    current = current_copy(path, cache_dir)
    if current is not None:
        return current, Path(str(current) + ".fai")
    root = cache_root(path, cache_dir)
    stem, ident, version = source_key(path)
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
            index = normalize_fasta(path, kind, out)
        with open(tmp_fai, "w") as out:
            for name, length, offset in index:
                out.write(f"{name}\t{length}\t{offset}\t{LINE_WIDTH}\t{LINE_WIDTH + 1}\n")
        os.replace(tmp, cached)
        os.replace(tmp_fai, fai)  # after the FASTA, so the index is never older than it
    except BaseException:
        tmp.unlink(missing_ok=True)
        tmp_fai.unlink(missing_ok=True)
        raise
    return cached, fai
