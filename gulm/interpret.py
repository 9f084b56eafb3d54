"""Model interpretation by perturbation, as in Genomic-ULMFiT, plus saturation mutagenesis.

* ``perturbation``: for each k in ``ks`` and every position i, bases [i, i+k) are replaced by
  a random k-mer (seeded) and the class probability of the variant is recorded: a trace of
  how much each stretch matters (the seed's plot around a TSS).
* ``mutagenesis``: every single-base substitution; the result is a 4 x L matrix of
  probability changes (0 at the reference base).

All variants are built as one uint8 matrix with numpy, tokenized by the batched kernel and
scored in batches; there is no Python loop over variants.
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field

import numpy as np
import torch

__all__ = ["InterpretConfig", "interpret", "perturbation", "mutagenesis", "score_sequences"]

BASES = np.frombuffer(b"ACGT", dtype=np.uint8)


@dataclass
class InterpretConfig:
    checkpoint: str = ""
    sequence: str = ""  # a sequence, or
    fasta: str = ""  # a FASTA whose first record (or `record`) is analysed
    record: str = ""
    out: str = "interpret"
    ks: list[int] = field(default_factory=lambda: [1, 3, 5, 7, 9, 11, 13, 15])
    mutagenesis: bool = True
    target: str = ""
    mark: int = -1  # a position to mark on the plots (e.g. the TSS), 0-based; -1: none
    seed: int = 0
    batch_size: int = 256
    device: str = "cpu"
    dtype: str = "fp32"


def score_sequences(model, tokenizer, seqs: np.ndarray, target: int, bs: int = 256,
                    device="cpu", dtype: str = "fp32") -> np.ndarray:
    """P(target) of each row of a uint8 matrix [N, L] of bases."""
    from contextlib import nullcontext

    n, L = seqs.shape
    seqs = np.ascontiguousarray(seqs, dtype=np.uint8)
    if not seqs.flags.writeable:
        seqs = seqs.copy()
    flat = torch.from_numpy(seqs.reshape(-1))
    out = np.empty(n, dtype=np.float64)
    ctx = torch.autocast(torch.device(device).type, dtype=torch.bfloat16) if dtype == "bf16" else nullcontext()
    with torch.inference_mode():
        for i in range(0, n, bs):
            j = min(n, i + bs)
            offsets = torch.arange(i, j + 1, dtype=torch.int64) * L
            ids, lengths = tokenizer.encode_batch((flat, offsets), dtype=torch.int64)
            with ctx:
                logits = model(ids.to(device), lengths.to(device))[0]
            out[i:j] = logits.float().softmax(-1)[:, target].cpu().numpy()
    return out


def perturbation(model, tokenizer, seq: str, ks, target: int, seed: int = 0, **kw) -> dict[int, np.ndarray]:
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
        out[k] = score_sequences(model, tokenizer, variants, target, **kw)
    return out


def mutagenesis(model, tokenizer, seq: str, target: int, **kw) -> tuple[float, np.ndarray]:
    """(P(target) of seq, delta [4, L]): the change of P(target) for each base at each
    position (rows A, C, G, T; 0 where the base is the reference)."""
    base = np.frombuffer(seq.upper().encode(), dtype=np.uint8)
    L = base.size
    variants = np.repeat(base[None, :], 4 * L, axis=0)
    pos = np.repeat(np.arange(L), 4)
    variants[np.arange(4 * L), pos] = np.tile(BASES, L)
    scores = score_sequences(model, tokenizer, np.concatenate([base[None, :], variants]), target, **kw)
    ref = scores[0]
    delta = (scores[1:] - ref).reshape(L, 4).T.copy()
    return float(ref), delta


def interpret(cfg: InterpretConfig | None = None, **overrides) -> dict:
    """Run perturbation (and mutagenesis) on one sequence; writes TSVs and PNGs under
    ``cfg.out`` (a prefix). Returns the scores and file names."""
    import dataclasses

    from gulm.scan import _target_index
    from gulm.train.checkpoint import load_checkpoint

    cfg = dataclasses.replace(cfg or InterpretConfig(), **overrides)
    model, tok, mcfg = load_checkpoint(cfg.checkpoint, cfg.device)
    if mcfg["kind"] != "classifier":
        raise ValueError(f"{cfg.checkpoint}: not a classifier checkpoint")
    seq = cfg.sequence
    if not seq:
        if not cfg.fasta:
            raise ValueError("give a sequence or a FASTA to interpret")
        from gulm.data.genome import Genome

        g = Genome(cfg.fasta)
        name = cfg.record or g.names[0]
        seq = g.sequence(name, upper=True)
    seq = seq.upper()
    bad = sorted(set(seq) - set("ACGT"))
    if bad:
        raise ValueError(f"the sequence contains non-ACGT characters {bad[:5]}; interpretation needs plain bases")
    if len(seq) < tok.k:
        raise ValueError(f"the sequence ({len(seq)} bp) is shorter than k={tok.k}")
    target = _target_index(mcfg["classes"], cfg.target)
    kw = dict(bs=cfg.batch_size, device=cfg.device, dtype=cfg.dtype)
    ref = float(score_sequences(model, tok, np.frombuffer(seq.encode(), np.uint8)[None, :], target, **kw)[0])
    pert = perturbation(model, tok, seq, cfg.ks, target, cfg.seed, **kw)
    result = {"reference": ref, "perturbation": pert, "target": mcfg["classes"][target], "sequence": seq}
    os.makedirs(os.path.dirname(os.path.abspath(cfg.out)) or ".", exist_ok=True)
    files = {}
    path = f"{cfg.out}.perturbation.tsv"
    with open(path, "w") as fh:
        fh.write("k\tposition\tp_" + result["target"] + "\tdelta\n")
        for k, v in pert.items():
            fh.writelines(f"{k}\t{i}\t{x:.6f}\t{x - ref:.6f}\n" for i, x in enumerate(v.tolist()))
    files["perturbation_tsv"] = path
    files["perturbation_png"] = _plot_perturbation(pert, ref, len(seq), result["target"], cfg.mark,
                                                   f"{cfg.out}.perturbation.png")
    if cfg.mutagenesis:
        _, delta = mutagenesis(model, tok, seq, target, **kw)
        result["mutagenesis"] = delta
        path = f"{cfg.out}.mutagenesis.tsv"
        with open(path, "w") as fh:
            fh.write("position\tref\tA\tC\tG\tT\n")
            fh.writelines(f"{i}\t{seq[i]}\t" + "\t".join(f"{x:.6f}" for x in delta[:, i]) + "\n"
                          for i in range(len(seq)))
        files["mutagenesis_tsv"] = path
        files["mutagenesis_png"] = _plot_mutagenesis(delta, seq, result["target"], cfg.mark,
                                                     f"{cfg.out}.mutagenesis.png")
    result["files"] = files
    return result


def _plot_perturbation(pert, ref, L, target, mark, path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(12, 4))
    cmap = plt.get_cmap("viridis")
    ks = sorted(pert)
    for j, k in enumerate(ks):
        v = pert[k]
        ax.plot(np.arange(v.size) + k / 2, v, lw=1, color=cmap(j / max(1, len(ks) - 1)), label=f"k={k}")
    ax.axhline(ref, color="black", ls="--", lw=0.8, label="unperturbed")
    if mark >= 0:
        ax.axvline(mark, color="red", lw=1, label=f"position {mark}")
    ax.set_xlim(0, L)
    ax.set_ylim(0, 1.02)
    ax.set_xlabel("position of the randomized stretch (centre, bp)")
    ax.set_ylabel(f"P({target})")
    ax.legend(fontsize=7, ncol=5, loc="lower right")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


def _plot_mutagenesis(delta, seq, target, mark, path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    L = delta.shape[1]
    fig, ax = plt.subplots(figsize=(max(8, L / 8), 3))
    lim = max(1e-6, float(np.abs(delta).max()))
    im = ax.imshow(delta, aspect="auto", cmap="RdBu_r", vmin=-lim, vmax=lim, interpolation="nearest")
    ax.set_yticks(range(4), list("ACGT"))
    if L <= 300:
        ax.set_xticks(range(L), list(seq), fontsize=5, family="monospace")
    ax.set_xlabel("reference sequence")
    if mark >= 0:
        ax.axvline(mark, color="black", lw=1)
    fig.colorbar(im, ax=ax, label=f"change of P({target})")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path
