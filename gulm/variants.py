"""Variant effects: score the REF and ALT windows of every VCF allele with a classifier.

    gulm variant-effect runs/clf --vcf calls.vcf.gz --genome genome.fa --out effects

The VCF is read with pysam (``pip install 'gulm[vcf]'``), plain or bgzipped (a VCF compressed
with plain gzip, bzip2 or xz, which htslib cannot open, is read through a temporary plain copy
beside the outputs); multi-allelic
records are split into one row per ALT allele. SNVs, MNVs and indels up to ``max_indel`` bp are
scored; symbolic alleles (``<DEL>``, breakends, ``*``) are skipped and counted.

**Windows.** Each allele gets a window of ``window`` bp (the classifier's training length by
default) built around the variant. With ``p`` the 0-based position of the record's first REF
base, the window holds ``left`` bp of genome before ``p`` (``left = window // 2``), then the
allele, then the genome after the REF allele, cut so the window is exactly ``window`` bp. So the
left flank is the same for REF and ALT and the variant starts at the same offset; an insertion
shortens the right flank by its length and a deletion extends it by its length. Near a
chromosome end the window slides inward (``left`` shrinks or grows) so that it stays inside the
chromosome for every allele of the record; where that cannot hold an allele whole (a chromosome
shorter than the window, a deletion of a chromosome's last base) the allele is skipped and counted. ``strand`` "+" scores the window as it is on the forward strand, "-" its reverse
complement, "both" the mean of the two probabilities.

**REF check.** The VCF's REF must equal the genome's bases at its position. ``ref_mismatch``:
``error`` stops at the first mismatch, ``skip`` leaves the record unscored, ``warn`` (default)
scores it with the VCF's REF in the REF window (both windows then differ only at the allele) and
marks the row ``ref_match=false``; the summary counts mismatches either way. A chromosome the
FASTA lacks is an error naming both (with a hint when only a ``chr`` prefix differs);
``chrom_map`` renames VCF chromosomes (``VCF=FASTA`` pairs, two-column files, or ``auto`` for the
``chr`` prefix and ``chrM``/``MT``), and ``missing_chrom=skip`` skips records on chromosomes
that stay missing.

**Scores.** For the target class: ``ref_score`` = P(target | REF window), ``alt_score``, their
``delta`` = alt - ref and ``log_odds_delta`` = logit(alt) - logit(ref); for more than two
classes also ``ref_/alt_/delta_<class>`` per class. With ``mutagenesis``, every single-base
substitution of the REF window is scored too, and ``mutagenesis_percentile`` is the percentage
of them whose |delta| is at most the variant's |delta| (100: no single-base change in the
window moves the score more).

Outputs: ``<out>.tsv``, ``<out>.vcf.gz`` (a copy of the input with INFO fields ``GULM_REF``,
``GULM_ALT``, ``GULM_DELTA``, ``GULM_LOD`` and, with ``mutagenesis``, ``GULM_PCT``; one value per
ALT allele, ``.`` where unscored; tabix-indexed when sorted) and ``<out>.summary.json``.
"""
from __future__ import annotations

import json
import os
import shutil
import tempfile
import time
import warnings
from contextlib import contextmanager
from dataclasses import dataclass, field

import numpy as np

from gulm.configs import VariantEffectConfig, option_name
from gulm.configs.fields import config_from
from gulm.data.compression import DECOMPRESSION_ERRORS, open_binary, sniff_compression
from gulm.data.errors import DataError, DataWarning
from gulm.infer import Classifier
from gulm.runtime.device import setup

__all__ = ["variant_effect", "VcfError", "read_vcf_header", "ChromMap", "allele_windows", "strand_probs",
           "saturation_deltas", "EXTRA"]

#: the optional dependency group that installs the VCF reader
EXTRA = "vcf"
_EPS = 1e-7
_COMPLEMENT = np.zeros(256, dtype=np.uint8) + ord("N")
for _a, _b in zip(b"ACGTNacgtn", b"TGCANtgcan"):
    _COMPLEMENT[_a] = _b
_ACGT = np.frombuffer(b"ACGT", dtype=np.uint8)
_ALLELE_BASES = set("ACGTN")
# why an allele is not scored (counts in the summary)
_SKIPS = ("missing_chrom", "ref_mismatch", "symbolic_allele", "long_indel", "window_does_not_fit")


class VcfError(DataError):
    """A VCF that cannot be read or does not fit the genome; the message names the file and record."""


def _pysam():
    try:
        import pysam
    except ImportError:
        raise RuntimeError(f"reading VCF files needs pysam: pip install 'gulm[{EXTRA}]' (or pip install pysam)") \
            from None
    return pysam


@contextmanager
def _quiet_htslib(pysam):
    """htslib prints its own warnings on stderr; gulm reports problems itself."""
    old = pysam.set_verbosity(0)
    try:
        yield
    finally:
        pysam.set_verbosity(old)


@contextmanager
def _htslib_readable(path: str, folder: str):
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


def allele_windows(left: str, ref: str, right: str, alleles, window: int) -> np.ndarray:
    """Windows [len(alleles), window] uint8: ``left`` + allele + the start of ``right``, each
    exactly ``window`` bp (``right`` must be long enough for the shortest allele)."""
    out = np.empty((len(alleles), window), dtype=np.uint8)
    for i, allele in enumerate(alleles):
        s = (left + allele + right)[:window]
        if len(s) != window:
            raise ValueError(f"window of {len(s)} bp, expected {window}")
        out[i] = np.frombuffer(s.encode("ascii"), dtype=np.uint8)
    return out


def _revcomp(windows: np.ndarray) -> np.ndarray:
    return _COMPLEMENT[windows[:, ::-1]]


def strand_probs(clf: Classifier, windows: np.ndarray, strand: str, bs: int, progress: bool = False) -> np.ndarray:
    """Class probabilities [N, C] of windows [N, W] on ``strand`` ("+", "-" or "both": the mean)."""
    if strand == "+":
        return clf.window_probs(windows, bs, progress)
    if strand == "-":
        return clf.window_probs(_revcomp(windows), bs, progress)
    return (clf.window_probs(windows, bs, progress) + clf.window_probs(_revcomp(windows), bs, progress)) / 2


def saturation_deltas(clf: Classifier, window: np.ndarray, target: int, strand: str, bs: int) -> np.ndarray:
    """|change of P(target)| of every single-base substitution of one window [W] (uint8): [3 W]
    (more where the window holds N, whose four substitutions all count)."""
    width = window.size
    rows = np.arange(4 * width)
    bases = np.tile(_ACGT, width)
    mutants = np.repeat(window[None, :], 4 * width, axis=0)  # mutant j: position j // 4 set to base j % 4
    mutants[rows, rows // 4] = bases
    mutants = mutants[window[rows // 4] != bases]
    p = strand_probs(clf, np.concatenate([window[None, :], mutants]), strand, bs)[:, target]
    return np.abs(p[1:] - p[0])


def _logit(p: np.ndarray) -> np.ndarray:
    p = np.clip(p, _EPS, 1 - _EPS)
    return np.log(p) - np.log1p(-p)


@dataclass
class _Record:
    """One VCF record while its chunk is scored."""

    chrom: str
    pos: int  # 1-based, as in the VCF
    id: str
    ref: str
    alts: list
    ref_match: bool = True
    window_row: int = -1  # row of the REF window in the chunk's window matrix
    alleles: list = field(default_factory=list)  # (ALT index, row of its window) of the scored alleles
    scores: dict = field(default_factory=dict)  # alt_index -> dict of values


class _Summary:
    """Counts of a run: records, alleles, and the alleles left unscored by reason."""

    def __init__(self):
        self.records = 0
        self.alleles = 0
        self.alleles_scored = 0
        self.records_without_alt = 0
        self.ref_mismatches = 0
        self.mismatch_shown = 0
        self.not_scored = dict.fromkeys(_SKIPS, 0)


def _check_config(cfg: VariantEffectConfig, clf: Classifier) -> int:
    if not cfg.vcf:
        raise ValueError(f"give the VCF to score ({option_name('vcf')})")
    if not cfg.genome:
        raise ValueError(f"give the reference genome FASTA ({option_name('genome')})")
    window = cfg.window or clf.window
    if window <= 0:
        raise ValueError(f"{clf.path}: the checkpoint records no training window; pass {option_name('window')}")
    if window < clf.tokenizer.k + 1:
        raise ValueError(f"{option_name('window')} {window} is too short for k={clf.tokenizer.k}")
    if cfg.max_indel < 0:
        raise ValueError(f"{option_name('max_indel')} must be >= 0, got {cfg.max_indel}")
    return window


@dataclass
class _Run:
    """What scoring one VCF needs, passed down to the per-chunk steps."""

    cfg: VariantEffectConfig
    clf: Classifier
    genome: object
    names: ChromMap
    window: int
    target: int
    n_header: int
    summary: _Summary = field(default_factory=_Summary)


def variant_effect(cfg: VariantEffectConfig | None = None, **overrides) -> dict:
    """Score every allele of a VCF with a classifier (see the module docstring); writes
    ``<out>.tsv``, ``<out>.vcf.gz`` and ``<out>.summary.json``; returns the summary."""
    cfg = config_from(VariantEffectConfig, cfg, overrides)
    pysam = _pysam()
    device = setup(cfg.device, cfg.threads)
    clf = Classifier.load(cfg.checkpoint, device, cfg.dtype)
    window = _check_config(cfg, clf)
    target = clf.target_index(cfg.target)
    n_header = read_vcf_header(cfg.vcf)
    from gulm.data.genome import Genome

    genome = Genome(cfg.genome)
    run = _Run(cfg, clf, genome, ChromMap(cfg.chrom_map, genome), window, target, n_header)
    t0 = time.perf_counter()
    files = {"tsv": f"{cfg.out}.tsv", "vcf": f"{cfg.out}.vcf.gz", "summary": f"{cfg.out}.summary.json"}
    os.makedirs(os.path.dirname(os.path.abspath(cfg.out)) or ".", exist_ok=True)
    folder = os.path.dirname(os.path.abspath(cfg.out)) or "."
    with _quiet_htslib(pysam), _htslib_readable(cfg.vcf, folder) as vcf:
        total, contigs = _prescan(pysam, vcf, cfg.vcf)
        tmp_vcf, tmp_tsv = files["vcf"] + ".tmp.vcf.gz", files["tsv"] + ".tmp"
        with pysam.VariantFile(vcf) as vin:
            header = _output_header(vin.header, contigs, run.names, cfg.mutagenesis, clf.classes[target],
                                    cfg.strand)
            vout = pysam.VariantFile(tmp_vcf, "wz", header=header)
            try:
                with open(tmp_tsv, "w") as tsv:
                    tsv.write("\t".join(_columns(clf, cfg.mutagenesis)) + "\n")
                    _score_all(run, vin, total, tsv, vout)
            except BaseException:
                vout.close()
                for path in (tmp_vcf, tmp_tsv):
                    if os.path.exists(path):
                        os.remove(path)
                raise
            vout.close()
        if os.path.exists(files["vcf"] + ".tbi"):  # never leave an old index beside a new file
            os.remove(files["vcf"] + ".tbi")
        os.replace(tmp_tsv, files["tsv"])
        os.replace(tmp_vcf, files["vcf"])
        files["vcf_index"] = _tabix(pysam, files["vcf"])
    summary = run.summary
    if cfg.ref_mismatch == "warn" and summary.ref_mismatches > summary.mismatch_shown:
        warnings.warn(f"{cfg.vcf}: {summary.ref_mismatches} records in all whose REF does not match "
                      f"{genome.path} (scored with the VCF's REF; ref_match=false in {files['tsv']})",
                      DataWarning, stacklevel=2)
    seconds = time.perf_counter() - t0
    result = {
        "checkpoint": clf.path, "vcf": os.path.abspath(cfg.vcf), "genome": str(genome.path),
        "target": clf.classes[target], "window": window, "strand": cfg.strand, "dtype": cfg.dtype,
        "records": summary.records, "records_without_alt": summary.records_without_alt,
        "alleles": summary.alleles, "alleles_scored": summary.alleles_scored,
        "alleles_not_scored": summary.not_scored, "ref_mismatches": summary.ref_mismatches,
        "ref_mismatch_policy": cfg.ref_mismatch, "mutagenesis": cfg.mutagenesis, "seconds": round(seconds, 3),
        "alleles_per_second": round(summary.alleles_scored / max(seconds, 1e-9), 1),
        "files": {k: v for k, v in files.items() if v},
    }
    tmp = files["summary"] + ".tmp"
    with open(tmp, "w") as fh:
        json.dump(result, fh, indent=1)
        fh.write("\n")
    os.replace(tmp, files["summary"])
    return result


def _score_all(run: _Run, vin, total: int, tsv, vout) -> None:
    """Read, score and write the records ``chunk_size`` at a time, with a progress bar."""
    bar = None
    if run.cfg.progress:
        from tqdm.auto import tqdm

        bar = tqdm(total=total, desc="variants", unit="rec", leave=False)
    chunk = []
    try:
        for i, rec in enumerate(vin, 1):
            chunk.append((i, rec))
            if len(chunk) == run.cfg.chunk_size:
                _score_chunk(run, chunk, tsv, vout)
                if bar is not None:
                    bar.update(len(chunk))
                chunk = []
        if chunk:
            _score_chunk(run, chunk, tsv, vout)
    finally:
        if bar is not None:
            bar.close()


def _prescan(pysam, path, shown) -> tuple[int, list[str]]:
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


def _output_header(header, contigs, names: ChromMap, mutagenesis: bool, target: str, strand: str):
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


def _tabix(pysam, path: str) -> str:
    """Index a bgzipped VCF with tabix; '' when it cannot be (unsorted records)."""
    try:
        pysam.tabix_index(path, preset="vcf", force=True, keep_original=True)
        return path + ".tbi"
    except (OSError, ValueError) as err:
        warnings.warn(f"{path}: not indexed ({err}); sort it (bcftools sort) to index it", DataWarning, stacklevel=3)
        return ""


def _columns(clf: Classifier, mutagenesis: bool) -> list[str]:
    cols = ["chrom", "pos", "id", "ref", "alt", "ref_score", "alt_score", "delta", "log_odds_delta"]
    if mutagenesis:
        cols.append("mutagenesis_percentile")
    if len(clf.classes) > 2:
        for c in clf.classes:
            cols += [f"ref_{c}", f"alt_{c}", f"delta_{c}"]
    return cols + ["ref_match"]


def _symbolic(alt: str | None) -> bool:
    return alt is None or not alt or not set(alt.upper()) <= _ALLELE_BASES


def _score_chunk(run: _Run, chunk, tsv, vout) -> None:
    """Build the windows of a chunk of records, score them in batches, write their rows."""
    cfg, clf, target, summary = run.cfg, run.clf, run.target, run.summary
    records: list[_Record] = []
    rows: list[np.ndarray] = []
    n_rows = 0
    for i, rec in chunk:
        r = _Record(rec.chrom, rec.pos, rec.id or ".", rec.ref or "", list(rec.alts or []))
        records.append(r)
        summary.records += 1
        summary.alleles += len(r.alts)
        if not r.alts:
            summary.records_without_alt += 1
            continue
        made = _record_windows(run, r, f"record {i} (line {run.n_header + i}, {rec.chrom}:{rec.pos})")
        if made is not None:
            w, alt_indexes = made
            r.window_row = n_rows
            r.alleles = [(a, n_rows + 1 + j) for j, a in enumerate(alt_indexes)]
            rows.append(w)
            n_rows += len(w)
    if rows:
        windows = np.concatenate(rows)
        probs = strand_probs(clf, windows, cfg.strand, cfg.batch_size)
        for r in records:
            sat = None
            if cfg.mutagenesis and r.alleles:
                sat = saturation_deltas(clf, windows[r.window_row], target, cfg.strand, cfg.batch_size)
            for a, row in r.alleles:
                pr, pa = probs[r.window_row], probs[row]
                d = pa[target] - pr[target]
                values = {"ref": pr[target], "alt": pa[target], "delta": d,
                          "lod": float(_logit(pa[target]) - _logit(pr[target])), "probs": (pr, pa)}
                if sat is not None:
                    values["pct"] = 100.0 * float((sat <= abs(d) + 1e-12).mean())
                r.scores[a] = values
                summary.alleles_scored += 1
    _write(run, records, chunk, tsv, vout)


def _record_windows(run: _Run, r: _Record, where: str) -> tuple[np.ndarray, list[int]] | None:
    """(the REF window and the ALT windows of the scorable alleles of one record [1 + A, W], the
    ALT indexes of those alleles), or None when nothing of it is scored (counted)."""
    cfg, genome, window, summary = run.cfg, run.genome, run.window, run.summary
    chrom = run.names(r.chrom)
    if chrom is None:
        if cfg.missing_chrom == "error":
            raise VcfError(run.names.missing_message(cfg.vcf, r.chrom, where))
        summary.not_scored["missing_chrom"] += len(r.alts)
        return None
    length = genome.length(chrom)
    ref = r.ref.upper()
    start, stop = r.pos - 1, r.pos - 1 + len(ref)
    if stop > length:
        raise VcfError(f"{cfg.vcf}: {where}: REF {r.ref} at {r.pos}-{stop} lies outside chromosome '{chrom}' "
                       f"(length {length}) of {genome.path}; is this the genome the VCF was called against?")
    if not ref or not set(ref) <= _ALLELE_BASES:
        summary.not_scored["symbolic_allele"] += len(r.alts)
        return None
    genome_ref = genome.fetch(chrom, start, stop, upper=True)
    if genome_ref != ref:
        summary.ref_mismatches += 1
        r.ref_match = False
        msg = f"{cfg.vcf}: {where}: REF {r.ref} does not match {genome.path} ({genome_ref} at {chrom}:{r.pos})"
        if cfg.ref_mismatch == "error":
            raise VcfError(f"{msg}; pass {option_name('ref_mismatch')} skip or warn to go on")
        if cfg.ref_mismatch == "skip":
            summary.not_scored["ref_mismatch"] += len(r.alts)
            return None
        if summary.mismatch_shown < 10:
            summary.mismatch_shown += 1
            warnings.warn(f"{msg}; scored with the VCF's REF", DataWarning, stacklevel=5)
    alleles = []
    for a, alt in enumerate(r.alts):
        if _symbolic(alt):
            summary.not_scored["symbolic_allele"] += 1
        elif abs(len(alt) - len(ref)) > cfg.max_indel or max(len(alt), len(ref)) > window // 2:
            summary.not_scored["long_indel"] += 1
        else:
            alleles.append((a, alt.upper()))
    if not alleles:
        return None
    lens = [len(ref)] + [len(x) for _, x in alleles]
    left = min(window // 2, start)  # genome before the variant, the same for every allele
    right = window - left - min(lens)  # genome after the REF allele, enough for the shortest allele
    over = stop + right - length
    if over > 0:  # near the chromosome's end: slide the window inward
        left, right = left + over, right - over
    if left > start or left + max(lens) > window:
        summary.not_scored["window_does_not_fit"] += len(alleles)
        return None
    windows = allele_windows(genome.fetch(chrom, start - left, start, upper=True), ref,
                             genome.fetch(chrom, stop, stop + right, upper=True), [ref] + [x for _, x in alleles],
                             window)
    return windows, [a for a, _ in alleles]


def _fmt(x: float) -> str:
    return f"{x:.6g}"


def _write(run: _Run, records, chunk, tsv, vout) -> None:
    """The TSV rows of the scored alleles and the VCF copy of every record of a chunk."""
    cfg, clf = run.cfg, run.clf
    multiclass = len(clf.classes) > 2
    for r, (_, rec) in zip(records, chunk):
        for a, alt in enumerate(r.alts):
            v = r.scores.get(a)
            if v is None:
                continue
            row = [r.chrom, str(r.pos), r.id, r.ref, alt, _fmt(v["ref"]), _fmt(v["alt"]), _fmt(v["delta"]),
                   _fmt(v["lod"])]
            if cfg.mutagenesis:
                row.append(f"{v['pct']:.2f}")
            if multiclass:
                pr, pa = v["probs"]
                for c in range(len(clf.classes)):
                    row += [_fmt(pr[c]), _fmt(pa[c]), _fmt(pa[c] - pr[c])]
            row.append("true" if r.ref_match else "false")
            tsv.write("\t".join(row) + "\n")
        rec.translate(vout.header)
        if r.scores:
            keys = [("GULM_REF", "ref"), ("GULM_ALT", "alt"), ("GULM_DELTA", "delta"), ("GULM_LOD", "lod")]
            if cfg.mutagenesis:
                keys.append(("GULM_PCT", "pct"))
            for key, name in keys:
                rec.info[key] = tuple(float(r.scores[a][name]) if a in r.scores else None
                                      for a in range(len(r.alts)))
        vout.write(rec)
