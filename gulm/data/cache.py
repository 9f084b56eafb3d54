"""Where the indexes and decompressed copies of FASTA files go (the cache policy).

gulm never writes beside a user's input files, which may be read-only or shared:

- the ``.fai`` (and ``.gzi``) index of a file pyfaidx can read in place (plain FASTA with regular
  lines, BGZF with Biopython) goes to the cache, unless a fresh index already sits beside the file
  (made by ``samtools faidx``, say): that one is read, never rewritten;
- a file pyfaidx cannot read in place (plain gzip, bzip2, xz, BGZF without Biopython, irregular
  line lengths, repeated record names) is rewritten once into the cache as regular FASTA with its
  ``.fai``.

Everything in the cache is keyed by the source's absolute path, size and modification time: a
second open reuses it, a changed source rebuilds it (and the stale entries are removed). Files are
written to a temporary name and renamed, so a crash or a concurrent reader never sees half a file.

The cache directory is ``cache_dir`` if given, else ``$GULM_CACHE`` if set, else the user's cache
directory (``platformdirs.user_cache_dir("gulm")``, ``~/.cache/gulm`` on Linux). When that cannot
be created or written, a per-user folder under the system's temporary directory is used, with a
DataWarning.
"""
from __future__ import annotations

import hashlib
import os
import tempfile
import warnings
from pathlib import Path

from gulm.data.compression import COMPRESSED_SUFFIXES
from gulm.data.errors import DataWarning, FastaError
from gulm.data.fasta import LINE_WIDTH, UniqueNames, normalize_fasta

__all__ = ["writable_dir", "cache_root", "user_cache_dir", "source_key", "index_location", "cache_index_path",
           "current_copy", "cached_copy", "renamed_records", "current_umask", "CACHE_FORMAT"]

CACHE_FORMAT = "2"  # bump when the cached layout changes, so old copies are rebuilt
RENAMED = ".renamed"  # sidecar of a cached copy: the records renamed for repeated names


def writable_dir(folder: Path) -> bool:
    return folder.is_dir() and os.access(folder, os.W_OK | os.X_OK)


def user_cache_dir() -> Path:
    """``$GULM_CACHE`` if set, else the platform's user cache directory for gulm."""
    if os.environ.get("GULM_CACHE"):
        return Path(os.environ["GULM_CACHE"]).expanduser()
    try:
        import platformdirs
    except ImportError:  # a declared dependency; the XDG default if it is missing anyway
        return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "gulm"
    return Path(platformdirs.user_cache_dir("gulm", appauthor=False))


def _usable(root: Path) -> bool:
    try:
        root.mkdir(parents=True, exist_ok=True)
    except OSError:
        return False
    return writable_dir(root)


def cache_root(path: Path, cache_dir: str | os.PathLike | None, *, create: bool = True) -> Path:
    """The cache directory for ``path`` (see the module doc), created unless ``create=False``."""
    root = Path(cache_dir).expanduser() if cache_dir is not None else user_cache_dir()
    if not create or _usable(root):
        return root
    if cache_dir is not None:
        raise FastaError(f"{path}: cannot create or write the cache directory {root}; pass another cache_dir=")
    fallback = Path(tempfile.gettempdir()) / f"gulm-cache-{os.getuid() if hasattr(os, 'getuid') else 'user'}"
    if not _usable(fallback):
        raise FastaError(f"{path}: cannot create or write the cache directory {root} (nor {fallback}); "
                         "set GULM_CACHE to a writable folder")
    warnings.warn(f"cannot write the cache directory {root}; using {fallback} (set GULM_CACHE to choose one)",
                  DataWarning, stacklevel=3)
    return fallback


def source_key(path: Path) -> tuple[str, str, str]:
    """(stem, path hash, version hash) naming the cached entries of ``path``."""
    st = path.stat()
    ident = hashlib.sha256(str(path.resolve()).encode()).hexdigest()[:12]
    version = hashlib.sha256(f"{st.st_size}:{st.st_mtime_ns}:{CACHE_FORMAT}".encode()).hexdigest()[:12]
    stem = path.name
    for suffix in COMPRESSED_SUFFIXES:
        if stem.lower().endswith(suffix):
            stem = stem[: -len(suffix)]
            break
    return stem, ident, version


def _remove_stale(root: Path, prefix: str, keep: str) -> None:
    """Cached entries of an older version of the same source."""
    for stale in root.glob(f"{prefix}*"):
        if not stale.name.startswith(keep):
            try:
                stale.unlink()
            except OSError:  # another user's entry in a shared cache, say: leave it
                pass


def cache_index_path(path: Path, suffix: str, cache_dir) -> Path:
    """The index of the current ``path`` with ``suffix`` (``.fai``, ``.gzi``) inside the cache."""
    _, ident, version = source_key(path)
    root = cache_root(path, cache_dir)
    prefix = f"{path.name}.{ident}."
    _remove_stale(root, prefix, f"{prefix}{version}.")
    return root / f"{prefix}{version}{suffix}"


def index_location(path: Path, suffix: str, cache_dir) -> Path:
    """A fresh index beside the file when there is one (read, never written), else the cache's."""
    beside = Path(str(path) + suffix)
    if beside.exists() and beside.stat().st_mtime >= path.stat().st_mtime:
        return beside
    return cache_index_path(path, suffix, cache_dir)


def current_copy(path: Path, cache_dir) -> Path | None:
    """The cached copy of the current source, if one was built (creates nothing)."""
    stem, ident, version = source_key(path)
    cached = cache_root(path, cache_dir, create=False) / f"{stem}.{ident}.{version}.fa"
    return cached if cached.exists() and Path(str(cached) + ".fai").exists() else None


def renamed_records(copy: Path) -> list[tuple[str, str, str, str]]:
    """The records of a cached copy renamed for repeated names (see
    :class:`~gulm.data.fasta.UniqueNames`): ``[(old, new, where, where the first one was)]``."""
    side = Path(str(copy) + RENAMED)
    if not side.exists():
        return []
    rows = [line.split("\t") for line in side.read_text().splitlines() if line.strip()]
    return [tuple((r + ["", "", ""])[:4]) for r in rows]


def cached_copy(path: Path, kind: str, cache_dir) -> tuple[Path, Path]:
    """(regular FASTA, its .fai) of ``path`` (compression ``kind``) in the cache, built if needed.
    Repeated record names are made unique in the copy (see :func:`renamed_records`)."""
    current = current_copy(path, cache_dir)
    if current is not None:
        return current, Path(str(current) + ".fai")
    root = cache_root(path, cache_dir)
    stem, ident, version = source_key(path)
    cached = root / f"{stem}.{ident}.{version}.fa"
    fai = Path(str(cached) + ".fai")
    _remove_stale(root, f"{stem}.{ident}.", f"{stem}.{ident}.{version}.")
    fd, tmp_name = tempfile.mkstemp(dir=root, prefix=f".{stem}.", suffix=".tmp")
    tmp = Path(tmp_name)
    tmp_fai = Path(tmp_name + ".fai")
    tmp_side = Path(tmp_name + RENAMED)
    names = UniqueNames()
    try:
        os.chmod(fd, 0o666 & ~current_umask())  # mkstemp makes it private; the cache may be shared
        with os.fdopen(fd, "wb") as out:
            index = normalize_fasta(path, kind, out, names=names)
        if names.renamed:
            tmp_side.write_text("".join("\t".join(r) + "\n" for r in names.renamed))
            os.replace(tmp_side, Path(str(cached) + RENAMED))
        with open(tmp_fai, "w") as out:
            for name, length, offset in index:
                out.write(f"{name}\t{length}\t{offset}\t{LINE_WIDTH}\t{LINE_WIDTH + 1}\n")
        os.replace(tmp, cached)
        os.replace(tmp_fai, fai)  # after the FASTA, so the index is never older than it
    except BaseException:
        for leftover in (tmp, tmp_fai, tmp_side):
            leftover.unlink(missing_ok=True)
        raise
    return cached, fai


def current_umask() -> int:
    """This process's umask (read from /proc where it can be, so nothing is changed even briefly)."""
    try:
        with open("/proc/self/status") as fh:
            for line in fh:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError, IndexError):
        pass
    mask = os.umask(0o022)
    os.umask(mask)
    return mask
