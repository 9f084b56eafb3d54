"""Model interpretation by perturbation, as in Genomic-ULMFiT, plus saturation mutagenesis.

* ``perturbation``: for each k in ``ks`` and every position i, bases [i, i+k) are replaced by
  a random k-mer (seeded) and the class probability of the variant is recorded: a trace of
  how much each stretch matters (the seed's plot around a TSS).
* ``mutagenesis``: every single-base substitution; the result is a 4 x L matrix of
  probability changes (0 at the reference base).

All variants are built as one uint8 matrix with numpy, tokenized by the batched kernel and
scored in batches by :class:`gulm.infer.Classifier`; there is no Python loop over variants.
"""
from __future__ import annotations

import os

import numpy as np
import torch

from gulm.configs import InterpretConfig, option_name
from gulm.configs.fields import config_from
from gulm.infer import Classifier
from gulm.plots import plot_mutagenesis, plot_perturbation
from gulm.runtime.device import setup

__all__ = ["interpret", "perturbation", "mutagenesis", "score_sequences"]

BASES = np.frombuffer(b"ACGT", dtype=np.uint8)


def score_sequences(clf: Classifier, seqs: np.ndarray, target: int, bs: int = 256) -> np.ndarray:
    """P(target) of each row of a uint8 matrix [N, L] of bases."""
    n, L = seqs.shape
    seqs = np.ascontiguousarray(seqs, dtype=np.uint8)
    if not seqs.flags.writeable:
        seqs = seqs.copy()
    flat = torch.from_numpy(seqs.reshape(-1))
    out = np.empty(n, dtype=np.float64)
    for i in range(0, n, bs):
        j = min(n, i + bs)
        offsets = torch.arange(i, j + 1, dtype=torch.int64) * L
        ids, lengths = clf.tokenizer.encode_batch((flat, offsets), dtype=torch.int64)
        out[i:j] = clf.batch_probs(ids.to(clf.device), lengths.to(clf.device))[:, target].cpu().numpy()
    return out


def perturbation(clf: Classifier, seq: str, ks, target: int, seed: int = 0, bs: int = 256) -> dict[int, np.ndarray]:
    """{k: P(target) after randomizing [i, i+k), for i in 0..L-k}."""
    base = np.frombuffer(seq.upper().encode(), dtype=np.uint8)
    L = base.size
    rng = np.random.default_rng(seed)
    out = {}
    for k in ks:
        n = L - k + 1
        if n <= 0:
            continue
        variants = np.repeat(base[None, :], n, axis=0)
        rows = np.arange(n)[:, None]
        cols = rows + np.arange(k)[None, :]
        variants[rows, cols] = BASES[rng.integers(0, 4, size=(n, k))]
        out[k] = score_sequences(clf, variants, target, bs)
    return out


def mutagenesis(clf: Classifier, seq: str, target: int, bs: int = 256) -> tuple[float, np.ndarray]:
    """(P(target) of seq, delta [4, L]): the change of P(target) for each base at each
    position (rows A, C, G, T; 0 where the base is the reference)."""
    base = np.frombuffer(seq.upper().encode(), dtype=np.uint8)
    L = base.size
    variants = np.repeat(base[None, :], 4 * L, axis=0)
    pos = np.repeat(np.arange(L), 4)
    variants[np.arange(4 * L), pos] = np.tile(BASES, L)
    scores = score_sequences(clf, np.concatenate([base[None, :], variants]), target, bs)
    ref = scores[0]
    delta = (scores[1:] - ref).reshape(L, 4).T.copy()
    return float(ref), delta


def interpret(cfg: InterpretConfig | None = None, **overrides) -> dict:
    """Run perturbation (and mutagenesis) on one sequence; writes TSVs and PNGs under
    ``cfg.out`` (a prefix). Returns the scores and file names."""
    cfg = config_from(InterpretConfig, cfg, overrides)
    device = setup(cfg.device, cfg.threads)
    clf = Classifier.load(cfg.checkpoint, device, cfg.dtype)
    seq = _sequence(cfg).upper()
    bad = sorted(set(seq) - set("ACGT"))
    if bad:
        raise ValueError(f"the sequence contains non-ACGT characters {bad[:5]}; interpretation needs plain bases")
    if len(seq) < clf.tokenizer.k:
        raise ValueError(f"the sequence ({len(seq)} bp) is shorter than k={clf.tokenizer.k}")
    _check_options(cfg, len(seq))
    target = clf.target_index(cfg.target)
    ref = float(score_sequences(clf, np.frombuffer(seq.encode(), np.uint8)[None, :], target, cfg.batch_size)[0])
    pert = perturbation(clf, seq, cfg.ks, target, cfg.seed, cfg.batch_size)
    result = {"reference": ref, "perturbation": pert, "target": clf.classes[target], "sequence": seq}
    os.makedirs(os.path.dirname(os.path.abspath(cfg.out)) or ".", exist_ok=True)
    files = {}
    path = f"{cfg.out}.perturbation.tsv"
    with open(path, "w") as fh:
        fh.write("k\tposition\tp_" + result["target"] + "\tdelta\n")
        for k, v in pert.items():
            fh.writelines(f"{k}\t{i}\t{x:.6f}\t{x - ref:.6f}\n" for i, x in enumerate(v.tolist()))
    files["perturbation_tsv"] = path
    files["perturbation_png"] = plot_perturbation(pert, ref, len(seq), result["target"], cfg.mark,
                                                  f"{cfg.out}.perturbation.png")
    if cfg.mutagenesis:
        _, delta = mutagenesis(clf, seq, target, cfg.batch_size)
        result["mutagenesis"] = delta
        path = f"{cfg.out}.mutagenesis.tsv"
        with open(path, "w") as fh:
            fh.write("position\tref\tA\tC\tG\tT\n")
            fh.writelines(f"{i}\t{seq[i]}\t" + "\t".join(f"{x:.6f}" for x in delta[:, i]) + "\n"
                          for i in range(len(seq)))
        files["mutagenesis_tsv"] = path
        files["mutagenesis_png"] = plot_mutagenesis(delta, seq, result["target"], cfg.mark,
                                                    f"{cfg.out}.mutagenesis.png")
    result["files"] = files
    return result


def _check_options(cfg: InterpretConfig, length: int) -> None:
    """Refuse stretch lengths and a mark that do not fit the sequence (an empty table otherwise)."""
    bad = [k for k in cfg.ks if not 1 <= k <= length]
    if bad or not cfg.ks:
        raise ValueError(f"{option_name('ks')} {' '.join(map(str, bad)) or '(none)'}: every stretch length must be "
                         f"between 1 and the sequence's length ({length} bp)")
    if cfg.mark >= length or cfg.mark < -1:
        raise ValueError(f"{option_name('mark')} {cfg.mark} is outside the {length}-bp sequence (0-based positions "
                         f"0 to {length - 1}; -1 for none)")


def _sequence(cfg: InterpretConfig) -> str:
    if cfg.sequence:
        if cfg.fasta:
            raise ValueError(f"give either {option_name('sequence')} or {option_name('fasta')}, not both")
        return cfg.sequence
    if not cfg.fasta:
        raise ValueError(f"give a sequence or a FASTA to interpret ({option_name('sequence')} or "
                         f"{option_name('fasta')})")
    from gulm.data.genome import Genome

    g = Genome(cfg.fasta)
    if not cfg.record and len(g) > 1:
        shown = ", ".join(g.names[:5]) + (", ..." if len(g) > 5 else "")
        raise ValueError(f"{cfg.fasta} holds {len(g)} records ({shown}); choose the one to interpret with "
                         f"{option_name('record')}")
    return g.sequence(cfg.record or g.names[0], upper=True)
