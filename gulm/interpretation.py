"""Model interpretation: perturbation as in Genomic-ULMFiT, saturation mutagenesis, and gradient
attributions over the token embeddings.

* ``perturbation`` (method ``perturb``): for each k in ``ks`` and every position i, bases
  [i, i+k) are replaced by a random k-mer (seeded) and the class probability of the variant is
  recorded: a trace of how much each stretch matters (the seed's plot around a TSS).
* ``mutagenesis`` (method ``ism``): every single-base substitution; the result is a 4 x L matrix
  of probability changes (0 at the reference base).
* ``gradient_x_input`` and ``integrated_gradients`` (method ``saliency``): attributions of the
  target's log-odds, ``log p_t - log(1 - p_t)`` (for two classes the logit difference), to the
  embedding vector of every token; integrated gradients take the straight path from the
  all-zero embedding (the padding token's) to the input, with Gauss-Legendre quadrature, so the
  attributions sum to ``log-odds(input) - log-odds(baseline)`` (completeness; the error is
  reported). A token's attribution is spread evenly over the k bases it covers, so per-base
  attributions keep the sum.

Perturbation and mutagenesis variants are built as one uint8 matrix with numpy, tokenized by
the batched kernel and scored in batches by :class:`gulm.infer.Classifier`; gradients go
through :meth:`gulm.infer.Classifier.logits_from_embeddings`. There is no Python loop over
variants or positions.
"""
from __future__ import annotations

import os
from dataclasses import dataclass

import numpy as np
import torch

from gulm.configs import InterpretConfig, option_name
from gulm.configs.fields import config_from
from gulm.data.fasta import reverse_complement
from gulm.infer import Classifier
from gulm.plots import plot_attribution_logo, plot_mutagenesis, plot_perturbation
from gulm.runtime.device import setup

__all__ = ["interpret", "perturbation", "mutagenesis", "score_sequences", "Attribution", "gradient_x_input",
           "integrated_gradients", "tokens_to_bases", "METHODS"]

#: the methods of :func:`interpret`
METHODS = ("saliency", "ism", "perturb")
#: :func:`interpret` doubles the integrated-gradients points (up to 8x) until the attributions
#: sum to the log-odds difference within this fraction
IG_TOLERANCE = 0.01

BASES = np.frombuffer(b"ACGT", dtype=np.uint8)


def score_sequences(clf: Classifier, seqs: np.ndarray, target: int, bs: int = 256) -> np.ndarray:
    """P(target) of each row of a uint8 matrix [N, L] of bases."""
    return clf.window_probs(seqs, bs)[:, target]


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


@dataclass
class Attribution:
    """Attributions of the target's log-odds to one sequence.

    ``tokens`` [T] per token (embedding vector), ``bases`` [L] per base (each token's share
    spread evenly over its k bases); ``output`` the log-odds of the input and ``baseline`` that
    of the all-zero embedding (integrated gradients; NaN for gradient x input).
    """

    tokens: np.ndarray
    bases: np.ndarray
    output: float
    baseline: float = float("nan")

    @property
    def completeness_error(self) -> float:
        """|sum of attributions - (output - baseline)| / |output - baseline| (integrated gradients)."""
        gap = self.output - self.baseline
        return abs(float(self.tokens.sum()) - gap) / max(abs(gap), 1e-12)


def log_odds(logits: torch.Tensor, target: int) -> torch.Tensor:
    """log p_target - log(1 - p_target) of logits [B, C] -> [B] (for C = 2: the logit difference)."""
    others = torch.cat([logits[:, :target], logits[:, target + 1:]], dim=1)
    return logits[:, target] - torch.logsumexp(others, dim=1)


def tokens_to_bases(values: np.ndarray, length: int, k: int, stride: int) -> np.ndarray:
    """Per-base values [length] from per-token values [T]: token t covers bases
    [t*stride, t*stride + k) and gives each of them 1/k of its value (the sum is kept)."""
    values = np.asarray(values, dtype=np.float64)
    out = np.zeros(length, dtype=np.float64)
    starts = np.arange(values.size) * stride
    for j in range(k):  # k is small; no loop over positions
        np.add.at(out, starts + j, values / k)
    return out


def _encode(clf: Classifier, seq: str):
    """Token ids [1, T] and length of ``seq`` as the model reads it (a backward model: its
    reverse complement)."""
    read = reverse_complement(seq) if clf.backward else seq
    ids = clf.tokenizer.encode(read, dtype=torch.int64)[None].to(clf.device)
    return ids, torch.tensor([ids.size(1)], device=clf.device)


def _attribution(clf: Classifier, tokens: np.ndarray, length: int, *outputs: float) -> Attribution:
    """The :class:`Attribution` of per-token values in the order the model read them, given in
    the sequence's own order (a backward model's are reversed back)."""
    bases = tokens_to_bases(tokens, length, clf.tokenizer.k, clf.tokenizer.stride)
    if clf.backward:
        tokens, bases = tokens[::-1].copy(), bases[::-1].copy()
    return Attribution(tokens, bases, *outputs)


def _grad(clf: Classifier, ids, lengths, embeds: torch.Tensor, target: int):
    """(log-odds [B], d log-odds / d embeds [B, T, E]) of a batch of embedding inputs."""
    embeds = embeds.detach().requires_grad_(True)
    f = log_odds(clf.logits_from_embeddings(ids, lengths, embeds), target)
    (g,) = torch.autograd.grad(f.sum(), embeds)
    return f.detach(), g


def gradient_x_input(clf: Classifier, seq: str, target: int) -> Attribution:
    """Gradient x input over the token embeddings: ``sum_e x[t, e] * d log-odds / d x[t, e]``."""
    ids, lengths = _encode(clf, seq)
    x = clf.token_embeddings(ids)
    f, g = _grad(clf, ids, lengths, x, target)
    tokens = (g * x).sum(-1)[0].cpu().numpy().astype(np.float64)
    return _attribution(clf, tokens, len(seq), float(f[0]))


def integrated_gradients(clf: Classifier, seq: str, target: int, steps: int = 64, bs: int = 64) -> Attribution:
    """Integrated gradients (Sundararajan et al. 2017) over the token embeddings, from the
    all-zero embedding to the input: ``x[t, e] * integral_0^1 d log-odds(a x) / d x[t, e] da``,
    the integral by ``steps``-point Gauss-Legendre quadrature (exact for polynomials of degree
    2 steps - 1; the error on the kinks of max pooling and ReLU shrinks with ``steps``)."""
    if steps < 1:
        raise ValueError(f"integrated gradients need steps >= 1, got {steps}")
    ids, lengths = _encode(clf, seq)
    x = clf.token_embeddings(ids)  # [1, T, E]
    nodes, weights = np.polynomial.legendre.leggauss(steps)
    alphas, weights = (nodes + 1) / 2, weights / 2  # on [0, 1]
    total = torch.zeros_like(x[0])
    for i in range(0, steps, bs):
        a = torch.tensor(alphas[i:i + bs], dtype=x.dtype, device=x.device)
        w = torch.tensor(weights[i:i + bs], dtype=x.dtype, device=x.device)
        n = a.numel()
        _, g = _grad(clf, ids.expand(n, -1), lengths.expand(n), a[:, None, None] * x, target)
        total += (w[:, None, None] * g).sum(0)
    tokens = (x[0] * total).sum(-1).cpu().numpy().astype(np.float64)
    ends, _ = _grad(clf, ids.expand(2, -1), lengths.expand(2), torch.stack([x[0], torch.zeros_like(x[0])]), target)
    return _attribution(clf, tokens, len(seq), float(ends[0]), float(ends[1]))


def interpret(cfg: InterpretConfig | None = None, **overrides) -> dict:
    """Interpret one sequence with ``cfg.method`` (saliency, ism, perturb); writes TSVs and PNGs
    under ``cfg.out`` (a prefix). Returns the scores and file names."""
    cfg = config_from(InterpretConfig, cfg, overrides)
    methods = _methods(cfg)
    device = setup(cfg.device, cfg.threads)
    clf = Classifier.load(cfg.checkpoint, device, cfg.dtype)
    seq = _sequence(cfg).upper()
    bad = sorted(set(seq) - set("ACGT"))
    if bad:
        raise ValueError(f"the sequence contains non-ACGT characters {bad[:5]}; interpretation needs plain bases")
    if len(seq) < clf.tokenizer.k:
        raise ValueError(f"the sequence ({len(seq)} bp) is shorter than k={clf.tokenizer.k}")
    _check_options(cfg, len(seq), "perturb" in methods)
    target = clf.target_index(cfg.target)
    ref = float(score_sequences(clf, np.frombuffer(seq.encode(), np.uint8)[None, :], target, cfg.batch_size)[0])
    result = {"reference": ref, "target": clf.classes[target], "sequence": seq, "methods": list(methods)}
    os.makedirs(os.path.dirname(os.path.abspath(cfg.out)) or ".", exist_ok=True)
    files = {}
    if "perturb" in methods:
        pert = perturbation(clf, seq, cfg.ks, target, cfg.seed, cfg.batch_size)
        result["perturbation"] = pert
        path = f"{cfg.out}.perturbation.tsv"
        with open(path, "w") as fh:
            fh.write("k\tposition\tp_" + result["target"] + "\tdelta\n")
            for k, v in pert.items():
                fh.writelines(f"{k}\t{i}\t{x:.6f}\t{x - ref:.6f}\n" for i, x in enumerate(v.tolist()))
        files["perturbation_tsv"] = path
        files["perturbation_png"] = plot_perturbation(pert, ref, len(seq), result["target"], cfg.mark,
                                                      f"{cfg.out}.perturbation.png")
    columns = {}
    if "saliency" in methods:
        gxi = gradient_x_input(clf, seq, target)
        steps = cfg.ig_steps
        ig = integrated_gradients(clf, seq, target, steps, cfg.batch_size)
        while ig.completeness_error > IG_TOLERANCE and steps < 8 * cfg.ig_steps:  # kinks of max pooling
            steps *= 2
            ig = integrated_gradients(clf, seq, target, steps, cfg.batch_size)
        result["saliency"] = {"gradient_x_input": gxi, "integrated_gradients": ig}
        result["ig_completeness_error"] = ig.completeness_error
        result["ig_steps"] = steps
        columns["grad_x_input"] = gxi.bases
        columns["integrated_gradients"] = ig.bases
    if "ism" in methods:
        _, delta = mutagenesis(clf, seq, target, cfg.batch_size)
        result["mutagenesis"] = delta
        columns["ism"] = -delta.sum(0) / 3  # how much the reference base holds P(target) up
        path = f"{cfg.out}.mutagenesis.tsv"
        with open(path, "w") as fh:
            fh.write("position\tref\tA\tC\tG\tT\n")
            fh.writelines(f"{i}\t{seq[i]}\t" + "\t".join(f"{x:.6f}" for x in delta[:, i]) + "\n"
                          for i in range(len(seq)))
        files["mutagenesis_tsv"] = path
        files["mutagenesis_png"] = plot_mutagenesis(delta, seq, result["target"], cfg.mark,
                                                    f"{cfg.out}.mutagenesis.png")
    if columns:
        path = f"{cfg.out}.attribution.tsv"
        with open(path, "w") as fh:
            fh.write("position\tbase\t" + "\t".join(columns) + "\n")
            fh.writelines(f"{i}\t{seq[i]}\t" + "\t".join(f"{v[i]:.6g}" for v in columns.values()) + "\n"
                          for i in range(len(seq)))
        files["attribution_tsv"] = path
        name = "integrated_gradients" if "integrated_gradients" in columns else "ism"
        label = {"integrated_gradients": f"integrated gradients of log-odds({result['target']})",
                 "ism": f"mean loss of P({result['target']}) on mutation"}[name]
        result["logo"] = name
        files["logo_png"] = plot_attribution_logo(columns[name], seq, label, cfg.mark, f"{cfg.out}.logo.png")
    result["files"] = files
    return result


def _methods(cfg: InterpretConfig) -> list[str]:
    given = [cfg.method] if isinstance(cfg.method, str) else list(cfg.method)
    methods = list(dict.fromkeys(given))
    unknown = [m for m in methods if m not in METHODS]
    if not cfg.mutagenesis and "ism" in methods:
        methods.remove("ism")
    if unknown or not methods:
        raise ValueError(f"{option_name('method')} takes one or more of {', '.join(METHODS)}, got "
                         f"{' '.join(map(str, given)) or 'none'}" + ("" if cfg.mutagenesis else " without ism"))
    if cfg.ig_steps < 1:
        raise ValueError(f"{option_name('ig_steps')} must be >= 1, got {cfg.ig_steps}")
    return methods


def _check_options(cfg: InterpretConfig, length: int, perturb: bool = True) -> None:
    """Refuse stretch lengths (when perturbing) and a mark that do not fit the sequence (an empty
    table otherwise)."""
    bad = [k for k in cfg.ks if not 1 <= k <= length]
    if perturb and (bad or not cfg.ks):
        raise ValueError(f"{option_name('ks')} {' '.join(map(str, bad)) or '(none)'}: every stretch length must be "
                         f"between 1 and the sequence's length ({length} bp)")
    if cfg.mark >= length or cfg.mark < -1:
        raise ValueError(f"{option_name('mark')} {cfg.mark} is outside the {length}-bp sequence (0-based positions "
                         f"0 to {length - 1}; -1 for none)")


def _sequence(cfg: InterpretConfig) -> str:
    if cfg.sequence:
        if cfg.fasta:
            raise ValueError(f"give either {option_name('sequence')} or {option_name('fasta')}, not both")
        from gulm.data.fasta import check_sequence

        check_sequence(cfg.sequence, option_name("sequence"))
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
