"""Dataset builders for the reproduction tables: real data in, ``id,sequence,label,set`` CSVs out.

Every builder reads only from the data root (``--data`` or ``$GULM_DATA``), writes into its own
output folder (never into the repository), is deterministic for a given ``seed`` and writes a
``manifest.json`` (parameters, files, counts). ``build(name, ...)`` returns that manifest and
reuses a folder whose manifest has the same parameters.

Binary tasks name their classes so that the positive class sorts last (``gulm`` and
``gulm.metrics`` treat class index 1 as positive): promoter > non_promoter, enhancer > background,
mRNA > lncRNA.

| name | task | source | splits |
|---|---|---|---|
| ``ecoli_promoters`` | 1 | E. coli K-12 genome + GFF | homology-aware test 415+415 / valid 375+375 |
| ``umarov_ecoli`` | 2 | Umarov sigma70 81 bp | 5 stratified folds |
| ``metagenomics_amplicon`` / ``metagenomics_shotgun`` | 3 | 1,000 16S sequences, simulated reads | ``random`` (read-level, as the seed) and ``heldout`` (by source sequence) |
| ``cohn_enhancers`` | 4 | genomic-benchmarks Cohn test split | 5 stratified folds |
| ``mouse_lncrna`` | 5 | PreLnc mouse mRNA vs lncRNA | one 80/10/10 split (+ 5'-truncated and both-ends copies for the model) |
| ``umarov_arabidopsis_tata`` / ``umarov_arabidopsis_nontata`` / ``umarov_mouse_tata`` | 6 | Umarov 251 bp | 5 stratified folds |
"""
from __future__ import annotations

import hashlib
import json
import os
import time
from pathlib import Path
from typing import Callable

import numpy as np

from gulm.data import (Genome, Interval, LabeledSequences, iter_fasta, kfold_indices, promoter_dataset,
                       read_gff_features, read_labeled_csv, stratified_split, write_bed, write_labeled_csv)

from . import homology, reads

__all__ = ["DataMissing", "data_root", "build", "BUILDERS", "TASK_DATASETS", "BUILDER_VERSION"]

BUILDER_VERSION = 4  # bump whenever a builder's output or defaults change: it keys the dataset cache

ECOLI = "ecoli_k12_mg1655"
ECOLI_FASTA = f"{ECOLI}/GCF_000005845.2_ASM584v2_genomic.fna.gz"
ECOLI_GFF = f"{ECOLI}/GCF_000005845.2_ASM584v2_genomic.gff.gz"
ENSEMBLE_FASTAS = [
    "bacterial_genomes/GCF_000009045.1_ASM904v1_genomic.fna.gz",
    "bacterial_genomes/GCF_000006945.1_ASM694v1_genomic.fna.gz",
    "bacterial_genomes/GCF_000008865.2.fna.gz",
    "bacterial_genomes/GCF_001457455.1_NCTC11397_genomic.fna.gz",
    "bacterial_genomes/GCF_000783305.1_ASM78330v1_genomic.fna.gz",
    "bacterial_genomes/partial_500kb/akkermansia.fa.gz",
    "bacterial_genomes/partial_500kb/shew_os185.fa.gz",
    "bacterial_genomes/partial_500kb/shew_os223.fa.gz",
]
ATHALIANA_FASTA = "eukaryote_genome_samples/A.thaliana.fa.gz"
UMAROV_PAIRS = {
    "umarov_ecoli": ("Ecoli_prom.fa.gz", "Ecoli_non_prom.fa.gz"),
    "umarov_arabidopsis_tata": ("Arabidopsis_tata.fa.gz", "Arabidopsis_non_prom.fa.gz"),
    "umarov_arabidopsis_nontata": ("Arabidopsis_non_tata.fa.gz", "Arabidopsis_non_prom_big.fa.gz"),
    "umarov_mouse_tata": ("Mouse_tata.fa.gz", "Mouse_nonprom.fa.gz"),
}
# Genomic-ULMFiT's 16S split: train int(n*0.93*0.93), valid int(n*0.93) - train, test the rest
READ_SPLIT = (0.93 * 0.93, 0.93 - 0.93 * 0.93, 0.07)


class DataMissing(FileNotFoundError):
    """The real-data root (``--data`` / ``$GULM_DATA``) or a file under it is missing."""


def data_root(data: str | os.PathLike | None = None) -> Path:
    """``data``, else ``$GULM_DATA``; raises :class:`DataMissing` when neither is an existing folder."""
    root = data or os.environ.get("GULM_DATA")
    if not root:
        raise DataMissing("no data folder: pass --data or set GULM_DATA")
    root = Path(root)
    if not root.is_dir():
        raise DataMissing(f"data folder not found: {root}")
    return root


def _need(root: Path, rel: str) -> Path:
    path = root / rel
    if not path.exists():
        raise DataMissing(f"missing input file: {path}")
    return path


# ---- shared helpers -------------------------------------------------------------------------
def _counts(data: LabeledSequences) -> dict:
    out: dict[str, dict[str, int]] = {}
    for s, lab in zip(data.split, data.labels):
        out.setdefault(s, {}).setdefault(lab, 0)
        out[s][lab] += 1
    return {s: dict(sorted(v.items())) for s, v in sorted(out.items())}


def _dedupe(seqs: list[str], labels: list[str], ids: list[str]) -> tuple[LabeledSequences, dict]:
    """Drop exact duplicate sequences (keep the first) and sequences present in two classes
    (drop every copy), so identical sequences can never sit on both sides of a split."""
    classes_of: dict[str, set] = {}
    for s, lab in zip(seqs, labels):
        classes_of.setdefault(s, set()).add(lab)
    seen, keep = set(), []
    conflicts = 0
    for i, s in enumerate(seqs):
        if len(classes_of[s]) > 1:
            conflicts += 1
            continue
        if s in seen:
            continue
        seen.add(s)
        keep.append(i)
    data = LabeledSequences([seqs[i] for i in keep], [labels[i] for i in keep], [ids[i] for i in keep])
    return data, {"input": len(seqs), "kept": len(keep), "dropped_duplicates": len(seqs) - len(keep) - conflicts,
                  "dropped_in_both_classes": conflicts}


def _limit(data: LabeledSequences, limit: int | None, rng: np.random.Generator) -> LabeledSequences:
    """At most ``limit`` items per class (random, order kept) - for smoke runs."""
    if not limit:
        return data
    labels = np.asarray(data.labels, dtype=object)
    keep = []
    for lab in sorted(set(data.labels)):
        idx = np.flatnonzero(labels == lab)
        keep.append(np.sort(idx[np.argsort(rng.random(idx.size), kind="stable")[:limit]]))
    return data.subset(np.sort(np.concatenate(keep)))


def _folds(data: LabeledSequences, out: Path, n_folds: int, valid_frac: float, seed: int,
           prefix: str = "fold") -> list[dict]:
    """Stratified ``n_folds`` folds (fold i = test), a stratified ``valid_frac`` of the rest as
    valid; one CSV per fold."""
    splits = []
    for fold, (train_idx, test_idx) in enumerate(kfold_indices(data.labels, n_folds, seed)):
        split = np.array(["train"] * len(data), dtype=object)
        split[test_idx] = "test"
        tr_labels = [data.labels[i] for i in train_idx]
        _, valid_part = stratified_split(tr_labels, (1 - valid_frac, valid_frac), seed + 1000 + fold)
        split[train_idx[valid_part]] = "valid"
        fold_data = data.with_split(split.tolist())
        path = out / f"{prefix}{fold}.csv"
        write_labeled_csv(path, fold_data)
        splits.append({"name": f"{prefix}{fold}", "csv": path.name, "counts": _counts(fold_data)})
    return splits


def _fasta_records(path: Path) -> list[tuple[str, str]]:
    return [(name, seq) for name, seq in iter_fasta(path, upper=True)]


def _leak_bed(root: Path, out: Path, sequences: list[str], k: int, pad: int,
              extra: list[Interval] = (), genomes: str = "all", files: list[str] | None = None) -> dict:
    """Write ``leak_exclude.bed``: ``extra`` intervals plus every region of E. coli K-12 and the
    ensemble genomes (or of ``files``) sharing a canonical ``k``-mer with one of ``sequences``
    (padded by ``pad``, merged). Pretraining with ``exclude_bed`` set to it never sees those loci
    or their homologs. ``genomes="ecoli"`` scans E. coli only (smoke runs)."""
    leak = [(iv.chrom, iv.start, iv.end) for iv in extra]
    bases_by_file = {}
    if files is None:
        files = [ECOLI_FASTA] + (ENSEMBLE_FASTAS if genomes == "all" else [])
    for rel in files:
        path = root / rel
        if not path.exists():
            continue
        regions = homology.kmer_hit_regions(iter_fasta(path, upper=True), sequences, k, pad=pad)
        bases_by_file[rel] = int(sum(e - s for _, s, e in regions))
        leak += regions
    merged: list[Interval] = []
    for chrom, s, e in sorted(leak):
        if merged and merged[-1].chrom == chrom and s <= merged[-1].end:
            merged[-1] = Interval(chrom, merged[-1].start, max(merged[-1].end, e))
        else:
            merged.append(Interval(chrom, s, e))
    write_bed(out / "leak_exclude.bed", merged)
    return {"files": {"leak_exclude_bed": "leak_exclude.bed"},
            "leak_exclude": {"k": k, "pad": pad, "intervals": len(merged),
                             "bases": int(sum(iv.end - iv.start for iv in merged)),
                             "homolog_bases_by_file": bases_by_file}}


# ---- task 1: E. coli promoters from the genome annotation -----------------------------------
def build_ecoli_promoters(root: Path, out: Path, seed: int = 0, *, k: int = 15, min_shared: int = 1,
                          mode: str = "isolated", test_per_class: int = 415, valid_per_class: int = 375,
                          leak_k: int = 21, leak_pad: int = 150, leak_genomes: str = "all",
                          limit: int | None = None, seed_mis_variant: bool = True) -> dict:
    """Genomic-ULMFiT's E. coli promoter set, re-derived from the RefSeq annotation.

    Positives: -100/+50 around every CDS start, sense strand. Negatives: one random 150 bp window
    per CDS longer than 250 bp, starting in the CDS's [50, length - 200) in sense orientation.
    Held-out splits come from :mod:`homology` (``mode``); everything else is train. Also writes
    ``test_loci.bed``, ``valid_loci.bed``, ``heldout_loci.bed`` (both) and ``leak_exclude.bed``
    (held-out loci plus every region of E. coli and the ensemble genomes sharing a ``leak_k``-mer
    with a held-out window, padded by ``leak_pad``) for leak-safe pretraining.
    """
    genome = Genome(_need(root, ECOLI_FASTA), cache_dir=str(out / ".genome_cache"))
    cds = read_gff_features(_need(root, ECOLI_GFF), "CDS")
    rng = np.random.default_rng([seed, 1])
    if limit:
        cds = [cds[i] for i in np.sort(np.argsort(rng.random(len(cds)))[:limit])]
    ds = promoter_dataset(genome, cds, balance=False, fractions=(1.0, 0.0, 0.0), seed=seed)
    graph = homology.kmer_graph(ds.sequences, k, min_shared=min_shared)
    sizes = {"test": {"promoter": test_per_class, "non_promoter": test_per_class},
             "valid": {"promoter": valid_per_class, "non_promoter": valid_per_class}}
    split, report = homology.homology_split(ds.labels, graph, sizes, mode=mode, seed=seed)
    data = ds.with_split(split)
    write_labeled_csv(out / "split.csv", data)
    splits = [{"name": "split", "csv": "split.csv", "counts": _counts(data), "homology": report}]
    if seed_mis_variant and mode != "mis":
        split_mis, report_mis = homology.homology_split(ds.labels, graph, sizes, mode="mis", seed=seed)
        mis_data = ds.with_split(split_mis)
        write_labeled_csv(out / "split_seedmis.csv", mis_data)
        splits.append({"name": "split_seedmis", "csv": "split_seedmis.csv", "counts": _counts(mis_data),
                       "homology": report_mis, "note": "seed-style maximal independent set: held-out "
                       "windows are mutually unrelated but may have homologs in train"})

    def loci(which):
        ivs = []
        for i, s in enumerate(split):
            if s in which:
                gene, label, where = ds.ids[i].split("|")
                chrom, rest = where.rsplit(":", 1)
                span, strand = rest[:-3], rest[-2]
                a, b = span.split("-")
                ivs.append(Interval(chrom, int(a), int(b), f"{label}|{gene}", None, strand))
        return sorted(ivs, key=lambda iv: (iv.chrom, iv.start, iv.end))

    write_bed(out / "test_loci.bed", loci({"test"}))
    write_bed(out / "valid_loci.bed", loci({"valid"}))
    heldout = loci({"test", "valid"})
    write_bed(out / "heldout_loci.bed", heldout)
    held_seqs = [data.sequences[i] for i, s in enumerate(split) if s in ("test", "valid")]
    leak = _leak_bed(root, out, held_seqs, leak_k, leak_pad, extra=heldout, genomes=leak_genomes)
    return {
        "splits": splits,
        "files": {"test_bed": "test_loci.bed", "valid_bed": "valid_loci.bed", "heldout_bed": "heldout_loci.bed",
                  **leak.pop("files")},
        "source": {"cds": len(cds), "windows": ds.counts(), "annotation": ECOLI_GFF},
        **leak,
    }


# ---- tasks 2 and 6: Umarov promoter / non-promoter pairs ------------------------------------
def _build_umarov(name: str) -> Callable:
    pos_file, neg_file = UMAROV_PAIRS[name]

    def builder(root: Path, out: Path, seed: int = 0, *, n_folds: int = 5, valid_frac: float = 0.1,
                limit: int | None = None, leak_k: int = 21, leak_pad: int = 100, leak_genomes: str = "all") -> dict:
        seqs, labels, ids = [], [], []
        for label, fname in (("promoter", pos_file), ("non_promoter", neg_file)):
            for rec_id, seq in _fasta_records(_need(root, f"umarov_promoters/{fname}")):
                seqs.append(seq)
                labels.append(label)
                ids.append(f"{label}|{rec_id}")
        data, dedup = _dedupe(seqs, labels, ids)
        data = _limit(data, limit, np.random.default_rng([seed, 2]))
        body = {"splits": _folds(data, out, n_folds, valid_frac, seed), "dedupe": dedup,
                "source": {"positive": pos_file, "negative": neg_file}}
        if name == "umarov_ecoli":  # its loci lie in the E. coli genome the LMs are pretrained on
            body.update(_leak_bed(root, out, data.sequences, leak_k, leak_pad, genomes=leak_genomes))
        elif name.startswith("umarov_arabidopsis"):  # ... and these in the A. thaliana genome sample
            body.update(_leak_bed(root, out, data.sequences, leak_k, leak_pad, files=[ATHALIANA_FASTA]))
        return body

    builder.__name__ = f"build_{name}"
    builder.__doc__ = (f"Umarov {pos_file} (promoter) vs {neg_file} (non_promoter): exact duplicates dropped, "
                       "stratified folds, valid carved from each fold's training part (E. coli: also "
                       "leak_exclude.bed, every region of the LM genomes sharing a leak_k-mer with any sequence).")
    return builder


# ---- task 3: 16S reads ----------------------------------------------------------------------
def _read_16s(root: Path) -> list[dict]:
    out = []
    path = _need(root, "fiannaca_16s_metagenomics/1000seq.fasta.gz")
    import gzip

    with gzip.open(path, "rt", newline=None) as fh:  # CRLF in the source
        name, chunks = None, []
        for line in list(fh) + [">"]:
            line = line.strip()
            if line.startswith(">"):
                if name is not None:
                    fields = name.split()
                    out.append({"id": fields[0], "taxonomy": " ".join(fields[1:]), "genus": fields[-1],
                                "sequence": "".join(chunks).upper()})
                name, chunks = line[1:], []
            elif line:
                chunks.append(line)
    return out


def _build_reads(kind: str, **fixed) -> Callable:
    def builder(root: Path, out: Path, seed: int = 0, **params) -> dict:
        return _reads_dataset(kind, root, out, seed, **{**fixed, **params})

    builder.__name__ = f"build_metagenomics_{kind}"
    builder.__doc__ = f"Simulated 16S {kind} reads (see reads.py), labelled by genus; fixed options {fixed}."
    return builder


def _reads_dataset(kind: str, root: Path, out: Path, seed: int = 0, *, reads_per_genus: int = 280,
                   genera: int | None = None, substitution: float | None = None, insertion: float = 0.001,
                   deletion: float = 0.001, ramp: float = 0.5, min_len: int = 150, max_len: int = 250,
                   trim_sd: float = 20.0, read_length: int | None = None, max_mismatches: int = 2,
                   drop_non_acgt: bool = True, train_subsample: int | None = 100) -> dict:
    sources = _read_16s(root)
    rng = np.random.default_rng([seed, 3 if kind == "amplicon" else 4])
    by_genus: dict[str, list[int]] = {}
    for i, s in enumerate(sources):
        by_genus.setdefault(s["genus"], []).append(i)
    names = sorted(by_genus)
    if genera:
        names = sorted(np.asarray(names, dtype=object)[np.argsort(rng.random(len(names)))[:genera]].tolist())
    sub = substitution if substitution is not None else (0.006 if kind == "amplicon" else 0.008)
    errors = reads.ErrorModel(sub, insertion, deletion, ramp)
    seqs, labels, ids, src_of = [], [], [], []
    stats = {"substitution": 0, "insertion": 0, "deletion": 0, "template_bases": 0, "reads": 0,
             "dropped_non_acgt": 0, "sources_without_amplicon": [], "genera_without_reads": []}
    for genus in names:
        members = by_genus[genus]
        if kind == "amplicon":
            spans = {i: reads.find_amplicon(sources[i]["sequence"], max_mismatches=max_mismatches) for i in members}
            stats["sources_without_amplicon"] += [sources[i]["id"] for i in members if spans[i] is None]
            members = [i for i in members if spans[i] is not None]
        if not members:
            stats["genera_without_reads"].append(genus)
            continue
        per = np.full(len(members), reads_per_genus // len(members))
        per[rng.permutation(len(members))[: reads_per_genus % len(members)]] += 1
        for i, n in zip(members, per):
            src = sources[i]
            if kind == "amplicon":
                rs, st = reads.amplicon_reads(src["sequence"], int(n), rng, errors=errors, trim_sd=trim_sd,
                                              read_length=read_length, amplicon=spans[i])
            else:
                rs, st = reads.shotgun_reads(src["sequence"], int(n), rng, errors=errors, min_len=min_len,
                                             max_len=max_len)
            for key in ("substitution", "insertion", "deletion", "template_bases"):
                stats[key] += st[key]
            for j, r in enumerate(rs):
                stats["reads"] += 1
                if drop_non_acgt and set(r) - set("ACGT"):
                    stats["dropped_non_acgt"] += 1
                    continue
                seqs.append(r)
                labels.append(genus)
                ids.append(f"{src['id']}|{j}")
                src_of.append(src["sequence"])
    stats["error_rate_realised"] = (stats["substitution"] + stats["insertion"] + stats["deletion"]) / max(
        1, stats["template_bases"])
    data = LabeledSequences(seqs, labels, ids)
    # (a) the seed's protocol: reads split at random per genus, so a source sequence feeds all splits
    rand = data.random_split(READ_SPLIT, seed=seed)
    write_labeled_csv(out / "random.csv", rand)
    # (b) held out by source sequence: identical 16S copies form one group; per genus one group
    # goes to test and one to valid (genera with fewer than 3 groups keep theirs in train)
    split = np.array(["train"] * len(data), dtype=object)
    groups_by_genus: dict[str, list[str]] = {}
    for lab, s in zip(labels, src_of):
        groups = groups_by_genus.setdefault(lab, [])
        if s not in groups:
            groups.append(s)
    held_genera = {"test": 0, "valid": 0}
    assign: dict[str, str] = {}
    for genus in sorted(groups_by_genus):
        groups = groups_by_genus[genus]
        order = rng.permutation(len(groups))
        if len(groups) >= 3:
            assign[groups[order[0]]] = "test"
            assign[groups[order[1]]] = "valid"
            held_genera["test"] += 1
            held_genera["valid"] += 1
    for i, s in enumerate(src_of):
        split[i] = assign.get(s, "train")
    held = data.with_split(split.tolist())
    write_labeled_csv(out / "heldout.csv", held)
    splits = [
        {"name": "random", "csv": "random.csv", "counts": _counts(rand),
         "note": "read-level random split per genus (Genomic-ULMFiT protocol): reads of one 16S "
                 "sequence appear in train and test"},
        {"name": "heldout", "csv": "heldout.csv", "counts": _counts(held), "held_out_genera": held_genera,
         "note": "test/valid reads come from 16S sequences (exact-identity groups) never used for "
                 "training; other sequences of the same genus are in train"},
    ]
    if train_subsample:
        # the same valid/test with at most `train_subsample` training reads per genus (CPU budget of
        # the model rows; the baseline is run on these files too)
        sub_rng = np.random.default_rng([seed, 7])
        for full, name in ((rand, "random"), (held, "heldout")):
            lab, spl = np.asarray(full.labels, dtype=object), np.asarray(full.split, dtype=object)
            keep = spl != "train"
            for genus in sorted(set(full.labels)):
                idx = np.flatnonzero((lab == genus) & (spl == "train"))
                keep[idx[np.argsort(sub_rng.random(idx.size), kind="stable")[:train_subsample]]] = True
            sub = full.subset(np.flatnonzero(keep))
            fname = f"{name}_train{train_subsample}"
            write_labeled_csv(out / f"{fname}.csv", sub)
            splits.append({"name": fname, "csv": f"{fname}.csv", "counts": _counts(sub),
                           "note": f"{name} with at most {train_subsample} training reads per genus"})
    return {
        "splits": splits,
        "simulator": {"kind": kind, "errors": errors.to_dict(), "reads_per_genus": reads_per_genus,
                      "min_len": min_len, "max_len": max_len, "trim_sd": trim_sd, "read_length": read_length,
                      "primers": [reads.FORWARD_PRIMER, reads.REVERSE_PRIMER],
                      "max_mismatches": max_mismatches},
        "stats": stats,
    }


# ---- task 4: Cohn enhancers -----------------------------------------------------------------
def build_cohn_enhancers(root: Path, out: Path, seed: int = 0, *, n_folds: int = 5, valid_frac: float = 0.1,
                         limit: int | None = None) -> dict:
    """genomic-benchmarks ``human_enhancers_cohn`` test split (the only part with sequences):
    enhancer (label 1) vs background (label 0), exact duplicates dropped, stratified folds."""
    raw = read_labeled_csv(_need(root, "gb_human_enhancers_cohn/test.csv.gz"), sequence_col="seq", label_col="label",
                           split_col=None)
    names = {"1": "enhancer", "0": "background"}
    labels = [names[x] for x in raw.labels]
    ids = [f"{lab}|row{i}" for i, lab in enumerate(labels)]
    data, dedup = _dedupe(raw.sequences, labels, ids)
    data = _limit(data, limit, np.random.default_rng([seed, 5]))
    return {"splits": _folds(data, out, n_folds, valid_frac, seed), "dedupe": dedup}


# ---- task 5: mouse mRNA vs lncRNA ------------------------------------------------------------
def build_mouse_lncrna(root: Path, out: Path, seed: int = 0, *, fractions=(0.8, 0.1, 0.1), truncate: int = 1000,
                       limit: int | None = None) -> dict:
    """PreLnc mouse training transcripts: mRNA (protein-coding, positive) vs lncRNA, exact
    duplicates dropped, one stratified 80/10/10 split. ``split.csv`` holds full-length
    transcripts; ``split_first{truncate}.csv`` the same split with every transcript cut to its
    first ``truncate`` nt (the model rows' input, for the CPU budget); ``split_ends{truncate}.csv``
    keeps both ends instead: a transcript over ``2 * truncate`` nt becomes its first ``truncate``
    nt joined to its last ``truncate`` (rows that read both ends, ``--kmer-window``)."""
    seqs, labels, ids = [], [], []
    for label, fname in (("mRNA", "mouse_pc_train.fa.gz"), ("lncRNA", "mouse_lnc_train.fa.gz")):
        for rec_id, seq in _fasta_records(_need(root, f"prelnc_mrna_lncrna/{fname}")):
            seqs.append(seq)
            labels.append(label)
            ids.append(f"{label}|{rec_id}")
    data, dedup = _dedupe(seqs, labels, ids)
    data = _limit(data, limit, np.random.default_rng([seed, 6]))
    data = data.random_split(tuple(fractions), seed=seed)
    write_labeled_csv(out / "split.csv", data)
    cut = LabeledSequences([s[:truncate] for s in data.sequences], list(data.labels), list(data.ids), list(data.split))
    write_labeled_csv(out / f"split_first{truncate}.csv", cut)
    ends = LabeledSequences([s if len(s) <= 2 * truncate else s[:truncate] + s[-truncate:] for s in data.sequences],
                            list(data.labels), list(data.ids), list(data.split))
    write_labeled_csv(out / f"split_ends{truncate}.csv", ends)
    lengths = {lab: np.percentile([len(s) for s, l2 in zip(data.sequences, data.labels) if l2 == lab],
                                  [0, 25, 50, 75, 100]).round().astype(int).tolist() for lab in data.classes}
    return {"splits": [{"name": "split", "csv": "split.csv", "counts": _counts(data)},
                       {"name": f"split_first{truncate}", "csv": f"split_first{truncate}.csv", "counts": _counts(cut),
                        "note": f"same split, transcripts cut to their first {truncate} nt"},
                       {"name": f"split_ends{truncate}", "csv": f"split_ends{truncate}.csv", "counts": _counts(ends),
                        "note": f"same split, each transcript longer than {2 * truncate} nt cut to its first and "
                                f"last {truncate} nt, joined"}],
            "dedupe": dedup, "length_percentiles_0_25_50_75_100": lengths}


BUILDERS: dict[str, Callable] = {
    "ecoli_promoters": build_ecoli_promoters,
    "umarov_ecoli": _build_umarov("umarov_ecoli"),
    "metagenomics_amplicon": _build_reads("amplicon"),
    "metagenomics_shotgun": _build_reads("shotgun"),
    # 100 bp reads (a common Grinder setting; the lost reads' length is unknown): the baselines' read-length sensitivity
    "metagenomics_amplicon_r100": _build_reads("amplicon", read_length=100, trim_sd=5.0, train_subsample=None),
    "metagenomics_shotgun_r100": _build_reads("shotgun", min_len=100, max_len=100, train_subsample=None),
    "cohn_enhancers": build_cohn_enhancers,
    "mouse_lncrna": build_mouse_lncrna,
    "umarov_arabidopsis_tata": _build_umarov("umarov_arabidopsis_tata"),
    "umarov_arabidopsis_nontata": _build_umarov("umarov_arabidopsis_nontata"),
    "umarov_mouse_tata": _build_umarov("umarov_mouse_tata"),
}
TASK_DATASETS = {
    "task1": ["ecoli_promoters"],
    "task2": ["umarov_ecoli"],
    "task3": ["metagenomics_amplicon", "metagenomics_shotgun", "metagenomics_amplicon_r100",
              "metagenomics_shotgun_r100"],
    "task4": ["cohn_enhancers"],
    "task5": ["mouse_lncrna"],
    "task6": ["umarov_arabidopsis_tata", "umarov_arabidopsis_nontata", "umarov_mouse_tata"],
}


def _key(params: dict) -> str:
    return hashlib.sha256(json.dumps(params, sort_keys=True, default=str).encode()).hexdigest()[:16]


def build(name: str, data: str | os.PathLike | None, out: str | os.PathLike, seed: int = 0, *,
          force: bool = False, verbose: bool = True, **params) -> dict:
    """Build dataset ``name`` into ``out/name`` (cached by parameters) and return its manifest,
    with absolute CSV paths under ``splits[i]["path"]``."""
    if name not in BUILDERS:
        raise KeyError(f"unknown dataset {name!r}; choose from {sorted(BUILDERS)}")
    root = data_root(data)
    folder = Path(out) / name
    settings = {"name": name, "seed": seed, "version": BUILDER_VERSION, **params}
    key = _key(settings)
    manifest_path = folder / "manifest.json"
    if not force and manifest_path.exists():
        manifest = json.loads(manifest_path.read_text())
        if manifest.get("key") == key:
            return _absolute(manifest, folder)
    folder.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    body = BUILDERS[name](root, folder, seed, **params)
    manifest = {"key": key, "settings": settings, "data_root": str(root), **body,
                "build_seconds": round(time.perf_counter() - t0, 2)}
    tmp = manifest_path.with_suffix(".tmp")
    tmp.write_text(json.dumps(manifest, indent=1, default=str) + "\n")
    os.replace(tmp, manifest_path)
    if verbose:
        print(f"[data] {name}: built in {manifest['build_seconds']} s -> {folder}")
        for sp in manifest["splits"]:
            print(f"  {sp['name']}: " + "; ".join(f"{s} {sum(c.values())} ({', '.join(f'{k} {v}' for k, v in c.items())})"
                                                  if len(c) <= 4 else f"{s} {sum(c.values())} ({len(c)} classes)"
                                                  for s, c in sp["counts"].items()))
    return _absolute(manifest, folder)


def _absolute(manifest: dict, folder: Path) -> dict:
    manifest = dict(manifest)
    manifest["folder"] = str(folder)
    manifest["splits"] = [{**sp, "path": str(folder / sp["csv"])} for sp in manifest["splits"]]
    if "files" in manifest:
        manifest["paths"] = {k: str(folder / v) for k, v in manifest["files"].items()}
    return manifest
