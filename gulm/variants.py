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

The VCF input and output live in :mod:`gulm.variants_vcf`, the windows and scores in
:mod:`gulm.variants_scoring`; their public names are re-exported here.
"""
from __future__ import annotations

import json
import os
import time
import warnings
from dataclasses import dataclass, field

import numpy as np

from gulm.configs import VariantEffectConfig, option_name
from gulm.configs.fields import config_from
from gulm.data.errors import DataWarning
from gulm.infer import Classifier
from gulm.runtime.device import setup
from gulm.variants_scoring import ALLELE_BASES, allele_windows, logit, saturation_deltas, strand_probs, symbolic
from gulm.variants_vcf import (EXTRA, ChromMap, VcfError, htslib_readable, load_pysam, output_header, prescan,
                               quiet_htslib, read_vcf_header, tabix)

__all__ = ["variant_effect", "VcfError", "read_vcf_header", "ChromMap", "allele_windows", "strand_probs",
           "saturation_deltas", "EXTRA"]

# why an allele is not scored (counts in the summary)
_SKIPS = ("missing_chrom", "ref_mismatch", "symbolic_allele", "long_indel", "window_does_not_fit")


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
    pysam = load_pysam()
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
    with quiet_htslib(pysam), htslib_readable(cfg.vcf, folder) as vcf:
        total, contigs = prescan(pysam, vcf, cfg.vcf)
        tmp_vcf, tmp_tsv = files["vcf"] + ".tmp.vcf.gz", files["tsv"] + ".tmp"
        with pysam.VariantFile(vcf) as vin:
            header = output_header(vin.header, contigs, run.names, cfg.mutagenesis, clf.classes[target],
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
        files["vcf_index"] = tabix(pysam, files["vcf"])
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


def _columns(clf: Classifier, mutagenesis: bool) -> list[str]:
    cols = ["chrom", "pos", "id", "ref", "alt", "ref_score", "alt_score", "delta", "log_odds_delta"]
    if mutagenesis:
        cols.append("mutagenesis_percentile")
    if len(clf.classes) > 2:
        for c in clf.classes:
            cols += [f"ref_{c}", f"alt_{c}", f"delta_{c}"]
    return cols + ["ref_match"]


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
                          "lod": float(logit(pa[target]) - logit(pr[target])), "probs": (pr, pa)}
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
    if not ref or not set(ref) <= ALLELE_BASES:
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
        if symbolic(alt):
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
