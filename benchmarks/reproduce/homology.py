"""Alignment-free homology between sequences: shared exact canonical k-mers.

Genomic-ULMFiT linked two E. coli windows when ``blastn -word_size 15`` reported any hit
between them and drew its test and validation sets from a maximal independent set of that
graph. BLAST is not available offline, so here an edge means "the two sequences share at least
``min_shared`` exact k-mers (k = 15 by default) on either strand" - every BLAST hit with word
size 15 starts from such a shared word, so this graph is a superset of the seed's (stricter: BLAST
also masks low-complexity words with DUST; ``mask_low_complexity`` can skip k-mers with very few
distinct trinucleotides, off by default - it changed no edge on the E. coli set).

Two ways to get held-out sequences from the graph:

- ``"isolated"`` (default): only sequences with no edge at all. No held-out sequence shares a
  k-mer with any other sequence of the set, so near-duplicates can never be split across train
  and test.
- ``"mis"``: a greedy maximal independent set (lowest degree first, random tie-break), the seed's
  criterion. Members are mutually unrelated, but a member may still have a homolog in the
  training split; :func:`homology_split` reports how many.

All k-mer arithmetic is numpy on 2-bit codes (k <= 31, so a k-mer fits a uint64).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Iterable, Sequence

import numpy as np

__all__ = ["encode_2bit", "canonical_kmers", "kmer_graph", "HomologyGraph", "greedy_mis",
           "homology_split", "kmer_hit_regions"]

_CODE = np.full(256, 4, dtype=np.uint8)
for _i, _b in enumerate(b"ACGT"):
    _CODE[_b] = _i
    _CODE[ord(chr(_b).lower())] = _i
_CODE[ord("U")] = _CODE[ord("u")] = 3


def encode_2bit(seq: str | bytes) -> np.ndarray:
    """A=0 C=1 G=2 T/U=3, anything else 4; uint8 [L]."""
    raw = seq.encode("ascii", "replace") if isinstance(seq, str) else bytes(seq)
    return _CODE[np.frombuffer(raw, dtype=np.uint8)]


def _rolling(codes: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Forward codes, reverse-complement codes and validity of every k-window of ``codes``."""
    n = codes.size - k + 1
    if n <= 0:
        empty = np.zeros(0, np.uint64)
        return empty, empty, np.zeros(0, bool)
    c = np.minimum(codes, 3).astype(np.uint64)
    fwd = np.zeros(n, np.uint64)
    rev = np.zeros(n, np.uint64)
    for j in range(k):
        part = c[j:j + n]
        fwd = (fwd << np.uint64(2)) | part
        rev |= (np.uint64(3) - part) << np.uint64(2 * j)
    bad = (codes > 3).astype(np.int32)
    csum = np.concatenate(([0], np.cumsum(bad)))
    valid = (csum[k:k + n] - csum[:n]) == 0
    return fwd, rev, valid


def _low_complexity(kmers: np.ndarray, k: int, max_distinct_triplets: int) -> np.ndarray:
    """True for k-mers with at most ``max_distinct_triplets`` distinct trinucleotides
    (poly-A, dinucleotide and trinucleotide repeats): a cheap stand-in for DUST."""
    if max_distinct_triplets <= 0 or kmers.size == 0:
        return np.zeros(kmers.size, bool)
    trip = np.stack([(kmers >> np.uint64(2 * (k - 3 - j))) & np.uint64(63) for j in range(k - 2)], axis=1)
    trip = np.sort(trip.astype(np.int16), axis=1)
    distinct = 1 + (np.diff(trip, axis=1) != 0).sum(axis=1)
    return distinct <= max_distinct_triplets


def canonical_kmers(seq: str | bytes, k: int = 15, *, unique: bool = True,
                    mask_low_complexity: int = 0) -> np.ndarray:
    """Canonical (min of forward and reverse complement) k-mer codes of ``seq`` as uint64,
    skipping windows with non-ACGT bases; sorted and unique by default."""
    if not 1 <= k <= 31:
        raise ValueError(f"k must be in [1, 31], got {k}")
    fwd, rev, valid = _rolling(encode_2bit(seq), k)
    km = np.minimum(fwd, rev)[valid]
    if mask_low_complexity:
        km = km[~_low_complexity(km, k, mask_low_complexity)]
    return np.unique(km) if unique else km


@dataclass
class HomologyGraph:
    """Undirected graph over ``n`` sequences; ``edges`` [E, 2] int64 with i < j, unique."""

    n: int
    edges: np.ndarray
    params: dict = field(default_factory=dict)

    def degrees(self) -> np.ndarray:
        return np.bincount(self.edges.ravel(), minlength=self.n) if self.edges.size else np.zeros(self.n, np.int64)

    def neighbours(self) -> list[np.ndarray]:
        if not self.edges.size:
            return [np.zeros(0, np.int64) for _ in range(self.n)]
        both = np.concatenate([self.edges, self.edges[:, ::-1]])
        both = both[np.argsort(both[:, 0], kind="stable")]
        bounds = np.searchsorted(both[:, 0], np.arange(self.n + 1))
        return [both[bounds[i]:bounds[i + 1], 1] for i in range(self.n)]

    def components(self) -> np.ndarray:
        """Connected-component label of each node (union-find), [n] int64."""
        parent = np.arange(self.n)

        def find(x):
            root = x
            while parent[root] != root:
                root = parent[root]
            while parent[x] != root:
                parent[x], x = root, parent[x]
            return root

        for a, b in self.edges:
            ra, rb = find(int(a)), find(int(b))
            if ra != rb:
                parent[max(ra, rb)] = min(ra, rb)
        return np.array([find(i) for i in range(self.n)], dtype=np.int64)


def kmer_graph(sequences: Sequence[str], k: int = 15, *, min_shared: int = 1,
               mask_low_complexity: int = 0, max_group: int = 10_000) -> HomologyGraph:
    """Edges between sequences sharing at least ``min_shared`` distinct canonical k-mers.

    ``mask_low_complexity``: k-mers with at most this many distinct trinucleotides are ignored
    (0: keep all). ``max_group``: a k-mer present in more sequences than this is reported in
    ``params`` and skipped (it would add a clique of that size).
    """
    per_seq = [canonical_kmers(s, k, mask_low_complexity=mask_low_complexity) for s in sequences]
    n = len(per_seq)
    owners = np.repeat(np.arange(n, dtype=np.int64), [p.size for p in per_seq])
    kmers = np.concatenate(per_seq) if per_seq else np.zeros(0, np.uint64)
    order = np.argsort(kmers, kind="stable")
    kmers, owners = kmers[order], owners[order]
    starts = np.flatnonzero(np.concatenate(([True], kmers[1:] != kmers[:-1])))
    sizes = np.diff(np.concatenate((starts, [kmers.size])))
    pair_codes = []
    skipped = 0
    for s, m in zip(starts[sizes > 1], sizes[sizes > 1]):
        if m > max_group:
            skipped += 1
            continue
        grp = owners[s:s + m]
        a, b = np.triu_indices(m, 1)
        i, j = np.minimum(grp[a], grp[b]), np.maximum(grp[a], grp[b])
        pair_codes.append(i * n + j)
    if pair_codes:
        codes, counts = np.unique(np.concatenate(pair_codes), return_counts=True)
        codes = codes[counts >= min_shared]
        edges = np.stack([codes // n, codes % n], axis=1).astype(np.int64)
        edges = edges[edges[:, 0] != edges[:, 1]]
    else:
        edges = np.zeros((0, 2), np.int64)
    params = dict(k=k, min_shared=min_shared, mask_low_complexity=mask_low_complexity,
                  shared_kmers=int((sizes > 1).sum()), skipped_frequent_kmers=skipped)
    return HomologyGraph(n, edges, params)


def greedy_mis(graph: HomologyGraph, seed: int = 0) -> np.ndarray:
    """A maximal independent set: visit nodes by increasing degree (random tie-break) and keep a
    node when none of its neighbours is kept. Returns a sorted int64 index array."""
    rng = np.random.default_rng(seed)
    deg = graph.degrees()
    order = np.lexsort((rng.random(graph.n), deg))
    nbrs = graph.neighbours()
    blocked = np.zeros(graph.n, bool)
    keep = []
    for v in order:
        if blocked[v]:
            continue
        keep.append(v)
        blocked[v] = True
        blocked[nbrs[v]] = True
    return np.sort(np.asarray(keep, dtype=np.int64))


def homology_split(labels: Sequence[str], graph: HomologyGraph, sizes: dict[str, dict[str, int]],
                   *, mode: str = "isolated", seed: int = 0) -> tuple[list[str], dict]:
    """Split names per item: held-out splits (``sizes = {"test": {label: n}, "valid": {...}}``,
    drawn in that order at random from the pool of ``mode``) and ``"train"`` for the rest.

    Returns (split names, report). The report counts, for each held-out split, its items with a
    homolog anywhere outside it (always 0 with ``mode="isolated"``).
    """
    labels = np.asarray([str(x) for x in labels], dtype=object)
    if len(labels) != graph.n:
        raise ValueError(f"{len(labels)} labels for a graph of {graph.n} sequences")
    deg = graph.degrees()
    if mode == "isolated":
        pool = np.flatnonzero(deg == 0)
    elif mode == "mis":
        pool = greedy_mis(graph, seed)
    else:
        raise ValueError(f"mode must be 'isolated' or 'mis', not {mode!r}")
    rng = np.random.default_rng(seed)
    split = np.array(["train"] * graph.n, dtype=object)
    available = np.zeros(graph.n, bool)
    available[pool] = True
    for name, per_label in sizes.items():
        for lab in sorted(per_label):
            want = int(per_label[lab])
            cand = np.flatnonzero(available & (labels == lab))
            if cand.size < want:
                raise ValueError(f"homology_split: {name} needs {want} {lab!r} items but only {cand.size} "
                                 f"remain in the {mode} pool")
            take = cand[np.argsort(rng.random(cand.size), kind="stable")[:want]]
            split[take] = name
            available[take] = False
    nbrs = graph.neighbours()
    report = {"mode": mode, "pool": int(pool.size), "nodes": graph.n, "edges": int(len(graph.edges)),
              "isolated": int((deg == 0).sum()), "graph": graph.params}
    for name in sizes:
        members = np.flatnonzero(split == name)
        report[f"{name}_with_homolog_outside"] = int(sum(bool((split[nbrs[i]] != name).any()) for i in members))
    return split.tolist(), report


def kmer_hit_regions(records: Iterable[tuple[str, str]], queries: Sequence[str], k: int = 21, *,
                     pad: int = 150, chunk: int = 1 << 20) -> list[tuple[str, int, int]]:
    """Regions of ``records`` (name, sequence) that share an exact canonical k-mer with any of
    ``queries``: each hit [pos, pos + k) padded by ``pad`` on both sides and merged.

    Used to extend a leak-safe exclusion BED to homologous copies of held-out loci (repeats in the
    same genome, orthologous promoters in related genomes). With k = 21 a random hit in ~30 Mbp
    of sequence against ~250k query k-mers is expected a few times, so the regions are nearly all
    true homologs."""
    if not queries:
        return []
    table = np.unique(np.concatenate([canonical_kmers(q, k) for q in queries]))
    if table.size == 0:
        return []
    out: list[tuple[str, int, int]] = []
    for name, seq in records:
        codes = encode_2bit(seq)
        hits = []
        for a in range(0, max(1, codes.size - k + 1), chunk):
            fwd, rev, valid = _rolling(codes[a:a + chunk + k - 1], k)
            km = np.minimum(fwd, rev)
            idx = np.minimum(np.searchsorted(table, km), table.size - 1)
            hits.append(np.flatnonzero(valid & (table[idx] == km)) + a)
        pos = np.concatenate(hits) if hits else np.zeros(0, np.int64)
        if pos.size == 0:
            continue
        starts = np.maximum(pos - pad, 0)
        ends = np.minimum(pos + k + pad, codes.size)
        cur_s, cur_e = int(starts[0]), int(ends[0])
        for s, e in zip(starts[1:].tolist(), ends[1:].tolist()):
            if s <= cur_e:
                cur_e = max(cur_e, e)
            else:
                out.append((name, cur_s, cur_e))
                cur_s, cur_e = s, e
        out.append((name, cur_s, cur_e))
    return out
