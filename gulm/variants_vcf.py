"""VCF input and output of ``gulm variant-effect`` (see :mod:`gulm.variants`): pysam, the header check,
VCF chromosome names mapped to FASTA records, the first pass over the records, the annotated copy's
header and its tabix index."""
from __future__ import annotations

import os
import shutil
import tempfile
import warnings
from contextlib import contextmanager

from gulm.configs import option_name
from gulm.data.compression import DECOMPRESSION_ERRORS, open_binary, sniff_compression
from gulm.data.errors import DataError, DataWarning

__all__ = ["EXTRA", "VcfError", "load_pysam", "quiet_htslib", "htslib_readable", "read_vcf_header", "ChromMap",
           "prescan", "output_header", "tabix"]

#: the optional dependency group that installs the VCF reader
EXTRA = "vcf"


class VcfError(DataError):
    """A VCF that cannot be read or does not fit the genome; the message names the file and record."""


def load_pysam():
    """The pysam module, or a RuntimeError saying how to install it."""
    try:
        import pysam
    except ImportError:
        raise RuntimeError(f"reading VCF files needs pysam: pip install 'gulm[{EXTRA}]' (or pip install pysam)") \
            from None
    return pysam


@contextmanager
def quiet_htslib(pysam):
    """htslib prints its own warnings on stderr; gulm reports problems itself."""
    old = pysam.set_verbosity(0)
    try:
        yield
    finally:
        pysam.set_verbosity(old)


@contextmanager
def htslib_readable(path: str, folder: str):
    """``path``, or a temporary plain copy in ``folder`` when it is compressed other than with bgzip
    (htslib reads plain and bgzipped VCFs; a gzip-compressed one cannot be opened)."""
    if sniff_compression(path) in ("plain", "bgzip"):
        yield path
        return
    fd, tmp = tempfile.mkstemp(prefix=".gulm-vcf-", suffix=".vcf", dir=folder)
    try:
        with os.fdopen(fd, "wb") as out, open_binary(path) as fh:
            shutil.copyfileobj(fh, out, 1 << 20)
        yield tmp
    finally:
        os.remove(tmp)


def read_vcf_header(path) -> int:
    """Check that ``path`` starts like a VCF (``##fileformat=VCF...``, then ``#CHROM``); returns the
    number of header lines. Raises :class:`VcfError` naming the file and line otherwise."""
    path = os.fspath(path)
    if not os.path.exists(path):
        raise FileNotFoundError(f"VCF file not found: {path}")
    if os.path.isdir(path):
        raise VcfError(f"{path}: is a directory, not a VCF file")
    n = 0
    try:
        with open_binary(path) as fh:
            for n, raw in enumerate(fh, 1):
                line = raw.rstrip(b"\r\n")
                if n == 1 and not line.startswith(b"##fileformat=VCF"):
                    raise VcfError(f"{path}: line 1 is not a VCF header (expected '##fileformat=VCFv4.x'); "
                                   "a VCF needs its header lines")
                if line.startswith(b"#CHROM"):
                    return n
                if not line.startswith(b"#"):
                    raise VcfError(f"{path}: line {n}: a record before the '#CHROM' header line; the VCF "
                                   "header is incomplete")
    except DECOMPRESSION_ERRORS as err:
        raise VcfError(f"{path}: truncated or corrupt compressed file ({err})") from None
    if n == 0:
        raise VcfError(f"{path}: empty file; expected a VCF")
    raise VcfError(f"{path}: no '#CHROM' header line; the VCF header is incomplete")


class ChromMap:
    """VCF chromosome names -> FASTA record names.

    ``entries``: ``VCF=FASTA`` pairs, paths of two-column (VCF, FASTA) files, or ``auto`` (add or
    remove a ``chr`` prefix, and ``chrM``/``MT``, where that finds the record)."""

    def __init__(self, entries, genome):
        self.genome = genome
        self.pairs: dict[str, str] = {}
        self.auto = False
        for entry in entries or []:
            entry = str(entry)
            if entry == "auto":
                self.auto = True
            elif "=" in entry:
                a, b = entry.split("=", 1)
                self.pairs[a.strip()] = b.strip()
            elif os.path.isfile(entry):
                with open(entry) as fh:
                    for lineno, line in enumerate(fh, 1):
                        parts = line.split()
                        if not parts or line.startswith("#"):
                            continue
                        if len(parts) != 2:
                            raise ValueError(f"{entry}:{lineno}: expected two columns (VCF name, FASTA name)")
                        self.pairs[parts[0]] = parts[1]
            else:
                raise ValueError(f"{option_name('chrom_map')}: {entry!r} is neither VCF=FASTA, a file of name "
                                 "pairs nor 'auto'")
        self._cache: dict[str, str | None] = {}

    @staticmethod
    def prefix_variants(name: str) -> list[str]:
        """Spellings of ``name`` with and without a ``chr`` prefix (and chrM/MT)."""
        out = [name[3:]] if name.lower().startswith("chr") else ["chr" + name]
        if name in ("chrM", "chrMT"):
            out.append("MT")
        if name in ("MT", "M"):
            out.append("chrM")
        return out

    def __call__(self, name: str) -> str | None:
        """The FASTA record of VCF chromosome ``name``, or None when there is none."""
        if name not in self._cache:
            found = self.pairs.get(name, name)
            if found not in self.genome and self.auto:
                found = next((c for c in self.prefix_variants(name) if c in self.genome), found)
            self._cache[name] = found if found in self.genome else None
        return self._cache[name]

    def missing_message(self, vcf_path, name: str, where: str) -> str:
        """Why chromosome ``name`` cannot be found, and how to fix it."""
        g = self.genome
        close = [c for c in self.prefix_variants(name) if c in g]
        head = f"{vcf_path}: {where}: chromosome '{name}' is not in {g.path}"
        if close:
            return (f"{head}, which names it '{close[0]}' (a 'chr' prefix differs): pass "
                    f"{option_name('chrom_map')} auto (or {name}={close[0]})")
        shown = ", ".join(g.names[:5]) + (f", ... ({len(g)} records)" if len(g) > 5 else "")
        return (f"{head} (records: {shown}); map names with {option_name('chrom_map')} VCF=FASTA, or skip such "
                f"records with {option_name('missing_chrom')} skip")


def prescan(pysam, path, shown) -> tuple[int, list[str]]:
    """(number of records, chromosome names in order of appearance): a quick first pass for the
    progress bar and for the output header's contig lines. Errors name ``shown``."""
    n, seen = 0, {}
    try:
        with pysam.VariantFile(path) as vf:
            for rec in vf:
                n += 1
                seen.setdefault(rec.chrom, None)
    except (ValueError, OSError, NotImplementedError) as err:
        raise VcfError(f"{shown}: cannot read record {n + 1}: {err}") from None
    return n, list(seen)


def output_header(header, contigs, names: ChromMap, mutagenesis: bool, target: str, strand: str):
    """The annotated copy's header: ``header`` with every contig of the VCF and the GULM_* INFO fields."""
    out = header.copy()
    for c in contigs:
        if c not in out.contigs:
            fasta = names(c)
            if fasta is not None:
                out.contigs.add(c, length=names.genome.length(fasta))
            else:
                out.contigs.add(c)
    where = f"P({target}), strand {strand}"
    info = [("GULM_REF", f"gulm: {where} of the REF window"),
            ("GULM_ALT", f"gulm: {where} of the ALT window"),
            ("GULM_DELTA", "gulm: GULM_ALT - GULM_REF"),
            ("GULM_LOD", "gulm: log-odds change, logit(GULM_ALT) - logit(GULM_REF)")]
    if mutagenesis:
        info.append(("GULM_PCT", "gulm: percentile of |GULM_DELTA| among all single-base substitutions of the "
                                 "REF window"))
    for key, text in info:
        if key in out.info:
            raise VcfError(f"the VCF already has INFO field {key}; score the original VCF, not a gulm output")
        out.info.add(key, "A", "Float", text)
    return out


def tabix(pysam, path: str) -> str:
    """Index a bgzipped VCF with tabix; '' when it cannot be (unsorted records)."""
    try:
        pysam.tabix_index(path, preset="vcf", force=True, keep_original=True)
        return path + ".tbi"
    except (OSError, ValueError) as err:
        warnings.warn(f"{path}: not indexed ({err}); sort it (bcftools sort) to index it", DataWarning, stacklevel=3)
        return ""
