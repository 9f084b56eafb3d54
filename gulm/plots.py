"""The PNGs of gulm: a scan's score along a region (:func:`plot_scan_region`) and the
perturbation trace and mutagenesis heatmap of :func:`gulm.interpret` (one figure set-up and
one save, shared by all)."""
from __future__ import annotations

import numpy as np

__all__ = ["plot_scan_region", "plot_perturbation", "plot_mutagenesis"]


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _save(fig, path: str) -> str:
    import matplotlib.pyplot as plt

    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


def plot_scan_region(d: dict, window: int, region: str, path: str, target_name: str,
                     annotation: str | None = None, feature_type: str = "gene") -> str:
    """PNG of a scan's scores along ``region`` (both strands), with feature starts from a
    GFF/BED. ``d`` holds the scan's per-window arrays chrom, start, strand, score."""
    from gulm.data.intervals import parse_region, read_bed, read_gff_features

    plt = _pyplot()
    iv = parse_region(region)
    chroms = d["chrom"].astype(str)
    fig, ax = plt.subplots(figsize=(14, 4))
    for strand, color in (("+", "tab:blue"), ("-", "tab:orange")):
        sel = (chroms == iv.chrom) & (d["strand"] == strand) & (d["start"] >= iv.start) & (d["start"] + window <= iv.end)
        if sel.any():
            ax.plot(d["start"][sel] + window / 2, d["score"][sel], lw=0.8, color=color, label=f"strand {strand}")
    if annotation:
        feats = (read_bed(annotation) if annotation.endswith((".bed", ".bed.gz"))
                 else read_gff_features(annotation, feature_type))
        for f in feats:
            if f.chrom != iv.chrom:
                continue
            pos = f.start if f.strand != "-" else f.end
            if iv.start <= pos < iv.end:
                ax.axvline(pos, color="tab:green" if f.strand != "-" else "tab:red", lw=0.6, alpha=0.6)
        ax.plot([], [], color="tab:green", label=f"{feature_type} start (+)")
        ax.plot([], [], color="tab:red", label=f"{feature_type} start (-)")
    ax.set_xlim(iv.start, iv.end)
    ax.set_ylim(0, 1.02)
    ax.set_xlabel(f"{iv.chrom} position (bp)")
    ax.set_ylabel(f"P({target_name})")
    ax.set_title(f"gulm scan: {window} bp windows")
    ax.legend(loc="upper right", fontsize=8, ncol=4)
    return _save(fig, path)


def plot_perturbation(pert: dict[int, np.ndarray], ref: float, length: int, target: str, mark: int,
                      path: str) -> str:
    """Trace of P(target) against the position of each randomized k-bp stretch, one line per k."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(12, 4))
    cmap = plt.get_cmap("viridis")
    ks = sorted(pert)
    for j, k in enumerate(ks):
        v = pert[k]
        ax.plot(np.arange(v.size) + k / 2, v, lw=1, color=cmap(j / max(1, len(ks) - 1)), label=f"k={k}")
    ax.axhline(ref, color="black", ls="--", lw=0.8, label="unperturbed")
    if mark >= 0:
        ax.axvline(mark, color="red", lw=1, label=f"position {mark}")
    ax.set_xlim(0, length)
    ax.set_ylim(0, 1.02)
    ax.set_xlabel("position of the randomized stretch (centre, bp)")
    ax.set_ylabel(f"P({target})")
    ax.legend(fontsize=7, ncol=5, loc="lower right")
    return _save(fig, path)


def plot_mutagenesis(delta: np.ndarray, seq: str, target: str, mark: int, path: str) -> str:
    """Heatmap of the change of P(target) for every base (rows A, C, G, T) at every position."""
    plt = _pyplot()
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
    return _save(fig, path)


# ---------------------------------------------------------------------------- sequence logos
__all__ += ["plot_attribution_logo", "LOGO_COLORS"]

#: letter colours of the sequence logos (the usual nucleotide palette)
LOGO_COLORS = {"A": "#109648", "C": "#255c99", "G": "#f7b32b", "T": "#d62839"}


def _letter(ax, char: str, x: float, y: float, height: float, font) -> None:
    """Draw ``char`` filling the box [x, x+1) x [y, y+height) (a negative height hangs below y)."""
    from matplotlib.patches import PathPatch
    from matplotlib.textpath import TextPath
    from matplotlib.transforms import Affine2D

    path = TextPath((0, 0), char, size=1, prop=font)
    box = path.get_extents()
    bottom = y if height >= 0 else y + height
    t = (Affine2D().translate(-box.x0, -box.y0).scale(0.9 / box.width, abs(height) / box.height)
         .translate(x + 0.05, bottom))
    ax.add_patch(PathPatch(t.transform_path(path), facecolor=LOGO_COLORS.get(char, "gray"), lw=0))


def plot_attribution_logo(values: np.ndarray, seq: str, ylabel: str, mark: int, path: str) -> str:
    """Sequence logo of attributions: ``values`` [L] scales the reference letter at each position
    (above the axis when positive, below when negative), or ``values`` [4, L] (rows A, C, G, T)
    stacks the four letters, largest nearest the axis."""
    from matplotlib.font_manager import FontProperties

    plt = _pyplot()
    values = np.asarray(values, dtype=np.float64)
    L = len(seq)
    if values.ndim == 1:
        if values.shape[0] != L:
            raise ValueError(f"{values.shape[0]} attributions for a sequence of {L} bp")
        matrix = np.zeros((4, L))
        for row, base in enumerate("ACGT"):
            matrix[row] = np.where(np.frombuffer(seq.upper().encode(), np.uint8) == ord(base), values, 0.0)
    else:
        if values.shape != (4, L):
            raise ValueError(f"attributions must be [L] or [4, L] for a sequence of {L} bp, got {values.shape}")
        matrix = values
    font = FontProperties(family="DejaVu Sans", weight="bold")
    fig, ax = plt.subplots(figsize=(min(60.0, max(8.0, L / 6)), 3))
    for i in range(L):
        up = down = 0.0
        for row in np.argsort(np.abs(matrix[:, i]))[::-1]:
            h = matrix[row, i]
            if h > 0:
                _letter(ax, "ACGT"[row], i, up, h, font)
                up += h
            elif h < 0:
                _letter(ax, "ACGT"[row], i, down, h, font)
                down += h
    lo, hi = min(0.0, matrix.clip(max=0).sum(0).min()), max(0.0, matrix.clip(min=0).sum(0).max())
    pad = 0.05 * max(hi - lo, 1e-12)
    ax.set_xlim(0, L)
    ax.set_ylim(lo - pad, hi + pad)
    ax.axhline(0, color="black", lw=0.5)
    if mark >= 0:
        ax.axvline(mark + 0.5, color="gray", lw=1, ls="--")
    ax.set_xlabel("position (bp)")
    ax.set_ylabel(ylabel, fontsize=8)
    return _save(fig, path)
