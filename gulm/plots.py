"""The figures of the commands on a trained model: a scan's score along a region
(:func:`plot_scan_region`), the perturbation trace, mutagenesis heatmap and sequence logos of
:func:`gulm.interpret`, and ``gulm evaluate --figure``'s ROC, precision-recall, reliability and
confusion panels (:func:`plot_evaluation`). Set-up and save: :mod:`gulm.figure`. The training
curves every run writes are the training floor's (:mod:`gulm.train.curves`)."""
from __future__ import annotations

import numpy as np

from gulm.figure import pyplot, save_figure

__all__ = ["plot_scan_region", "plot_perturbation", "plot_mutagenesis"]


def plot_scan_region(d: dict, window: int, region: str, path: str, target_name: str,
                     annotation: str | None = None, feature_type: str = "gene", *, threshold: float | None = None,
                     calls: dict | None = None, model: str = "", stride: int | None = None) -> str:
    """PNG of a scan along ``region`` (chrom:start-end, 1-based inclusive): the plus strand's
    scores above, the genes of ``annotation`` (GFF3/GTF of ``feature_type``, or BED) drawn as
    arrows with their names in the middle, the minus strand's scores mirrored below; the
    ``threshold`` line, the ``calls`` (see :func:`gulm.scan_output.find_calls`) shaded and their
    summits marked; positions in bp or kb. ``d`` holds the scan's per-window arrays chrom,
    start, strand, score."""
    from matplotlib.ticker import FuncFormatter

    from gulm.data.intervals import parse_region

    plt = pyplot()
    iv = parse_region(region)
    span = iv.end - iv.start
    unit, scale = ("kb", 1e3) if span >= 20_000 else ("bp", 1.0)
    fig, (ax_p, ax_g, ax_m) = plt.subplots(3, 1, figsize=(11, 5.8), sharex=True,
                                           gridspec_kw={"height_ratios": [3, 1.4, 3], "hspace": 0.08})
    chroms = d["chrom"].astype(str)
    colors = {"+": "#1f5fa8", "-": "#c0392b"}
    for ax, strand, label in ((ax_p, "+", "plus (+) strand"), (ax_m, "-", "minus (\u2212) strand")):
        sel = ((chroms == iv.chrom) & (d["strand"] == strand) & (d["start"] + window > iv.start)
               & (d["start"] < iv.end))
        x = d["start"][sel] + window / 2
        y = d["score"][sel]
        if x.size:
            ax.plot(x, y, lw=0.9, color=colors[strand])
            ax.fill_between(x, 0, y, color=colors[strand], alpha=0.08, lw=0)
        if threshold is not None and threshold <= 1:
            ax.axhline(threshold, color="0.25", ls="--", lw=0.8)
            ax.text(1.0, threshold, f" {threshold:.3g}", transform=ax.get_yaxis_transform(), va="center",
                    ha="left", fontsize=7, color="0.25")
        if calls is not None:
            c = ((np.asarray(calls["chrom"]).astype(str) == iv.chrom) & (calls["strand"] == strand)
                 & (calls["end"] > iv.start) & (calls["start"] < iv.end))
            for a, b in zip(calls["start"][c], calls["end"][c]):
                ax.axvspan(a, b, color="#f39c12", alpha=0.22, lw=0)
            ax.plot(calls["summit"][c], calls["peak"][c], "v" if strand == "+" else "^", color="black", ms=5,
                    ls="none")
        ax.set_ylim(0, 1.05)
        ax.set_ylabel(f"P({target_name})\n{label}", fontsize=8)
        ax.tick_params(labelsize=8)
        for side in ("top", "right"):
            ax.spines[side].set_visible(False)
    ax_m.invert_yaxis()  # mirrored: the minus strand's scores grow downwards

    _draw_genes(ax_g, iv, annotation, feature_type, colors)
    ax_m.set_xlim(iv.start, iv.end)
    ticks = ax_m.get_xticks()
    step = (ticks[1] - ticks[0]) / scale if len(ticks) > 1 else 1.0
    digits = 0 if float(step).is_integer() else 1 if float(step * 10).is_integer() else 2
    ax_m.xaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v / scale:,.{digits}f}"))
    ax_m.set_xlabel(f"{iv.chrom} position ({unit})", fontsize=9)
    ax_m.tick_params(axis="x", labelsize=8)
    handles = [plt.Line2D([], [], color=colors["+"], lw=1, label="score, + strand"),
               plt.Line2D([], [], color=colors["-"], lw=1, label="score, \u2212 strand")]
    if threshold is not None:
        handles.append(plt.Line2D([], [], color="0.25", ls="--", lw=0.8, label="threshold"))
    if calls is not None:
        from matplotlib.patches import Patch

        handles += [Patch(color="#f39c12", alpha=0.35, label="calls"),
                    plt.Line2D([], [], marker="v", color="black", ls="none", ms=5, label="summits")]
    fig.legend(handles=handles, loc="lower center", bbox_to_anchor=(0.5, 0.0), fontsize=8, ncol=len(handles),
               frameon=False)
    what = f"{window} bp windows" + (f", stride {stride} bp" if stride else "")
    ax_p.set_title(f"{iv.chrom}:{iv.start + 1:,}-{iv.end:,}" + (f" \u2014 {model}" if model else "")
                   + f" \u2014 P({target_name}), {what}", fontsize=10)
    fig.subplots_adjust(left=0.08, right=0.95, top=0.93, bottom=0.14)
    fig.savefig(path, dpi=100, format="png")
    plt.close(fig)
    return path


def _draw_genes(ax, iv, annotation, feature_type, colors) -> None:
    """Genes of ``annotation`` overlapping ``iv`` as arrows (plus strand above the axis line,
    minus below), named where the name fits."""
    ax.set_ylim(-1, 1)
    ax.axhline(0, color="0.6", lw=0.6)
    ax.set_yticks([0.5, -0.5], ["+", "\u2212"], fontsize=8)
    ax.tick_params(axis="y", length=0)
    for side in ("top", "right", "left"):
        ax.spines[side].set_visible(False)
    if not annotation:
        ax.text(0.5, 0.5, "no annotation given", transform=ax.transAxes, ha="center", va="center",
                fontsize=7, color="0.5")
        return
    from gulm.data.intervals import read_bed, read_gff_features

    feats = (read_bed(annotation) if annotation.endswith((".bed", ".bed.gz"))
             else read_gff_features(annotation, feature_type))
    span = iv.end - iv.start
    head = span * 0.008
    last_label_end = {"+": -np.inf, "-": -np.inf, ".": -np.inf}
    for f in sorted(feats, key=lambda f: f.start):
        if f.chrom != iv.chrom or f.end <= iv.start or f.start >= iv.end:
            continue
        y = 0.5 if f.strand != "-" else -0.5
        a, b = max(f.start, iv.start - head), min(f.end, iv.end + head)
        h = min(head, (b - a) * 0.6)
        body = 0.22
        if f.strand == "-":
            xs = [b, a + h, a, a + h, b]
        else:
            xs = [a, b - h, b, b - h, a]
        ys = [y + body, y + body, y, y - body, y - body]
        color = colors.get(f.strand, "0.5")
        ax.fill(xs, ys, color=color, alpha=0.55, lw=0.5, ec=color)
        name = f.name or ""
        width_chars = len(name) * span / 110  # ~110 characters across the axis at this size
        mid = (max(a, iv.start) + min(b, iv.end)) / 2
        if name and mid - width_chars / 2 > last_label_end[f.strand]:
            ax.text(mid, y + (0.3 if f.strand != "-" else -0.3), name, ha="center",
                    va="bottom" if f.strand != "-" else "top", fontsize=6.5, style="italic")
            last_label_end[f.strand] = mid + width_chars / 2
    ax.set_ylabel(feature_type + "s", fontsize=8)


def plot_perturbation(pert: dict[int, np.ndarray], ref: float, length: int, target: str, mark: int,
                      path: str) -> str:
    """Trace of P(target) against the position of each randomized k-bp stretch, one line per k."""
    plt = pyplot()
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
    return save_figure(fig, path)


def plot_mutagenesis(delta: np.ndarray, seq: str, target: str, mark: int, path: str) -> str:
    """Heatmap of the change of P(target) for every base (rows A, C, G, T) at every position."""
    plt = pyplot()
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
    return save_figure(fig, path)


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

    plt = pyplot()
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
    return save_figure(fig, path)


# ---------------------------------------------------------------------------- evaluation figure
__all__ += ["plot_evaluation", "curve_points", "reliability_points", "figure_path_problem"]

#: most classes whose names label the confusion matrix's axes (more: indices only)
NAMED_CLASSES = 30


def figure_path_problem(path: str) -> str | None:
    """Why a figure cannot be written to ``path`` (a missing folder, a format matplotlib cannot
    write), or None: checked before the work that the figure would show."""
    import os

    from matplotlib.backend_bases import FigureCanvasBase

    folder = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(folder):
        return f"folder {folder} does not exist"
    ext = os.path.splitext(path)[1].lstrip(".").lower()
    formats = FigureCanvasBase.get_supported_filetypes()
    if ext not in formats:
        return f"cannot write a figure as {ext or 'a file without an extension'!r}: name it .png, .pdf or .svg"
    return None


def curve_points(y: np.ndarray, probs: np.ndarray) -> dict:
    """The ROC and precision-recall points of class probabilities against labels ``y`` in
    ``[0, C)``: of class 1 for two classes, micro-averaged over classes (every (sequence, class)
    pair one decision) for more. Keys ``fpr``, ``tpr``, ``auc``, ``recall``, ``precision``, ``ap``
    (average precision), ``prevalence`` and ``averaged`` (False for two classes); None when ``y``
    holds one class only, where neither curve exists."""
    from sklearn import metrics as skm

    y = np.asarray(y, dtype=np.int64)
    probs = np.asarray(probs, dtype=np.float64)
    if np.unique(y).size < 2:
        return None
    if probs.shape[1] == 2:
        truth, score = y == 1, probs[:, 1]
    else:
        truth = (y[:, None] == np.arange(probs.shape[1])[None, :]).ravel()
        score = probs.ravel()
    fpr, tpr, _ = skm.roc_curve(truth, score)
    precision, recall, _ = skm.precision_recall_curve(truth, score)
    return {"fpr": fpr, "tpr": tpr, "auc": float(skm.auc(fpr, tpr)), "recall": recall, "precision": precision,
            "ap": float(skm.average_precision_score(truth, score)), "prevalence": float(truth.mean()),
            "averaged": probs.shape[1] > 2}


def reliability_points(y, probs, bins: int = 10) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(mean confidence, observed frequency, count) per occupied bin: P(class 1) against the share of
    class 1 for two classes, the top class's probability against accuracy for more."""
    y, probs = np.asarray(y, dtype=np.int64), np.asarray(probs, dtype=np.float64)
    if probs.shape[1] == 2:
        conf, hit = probs[:, 1], (y == 1).astype(np.float64)
    else:
        conf, hit = probs.max(1), (probs.argmax(1) == y).astype(np.float64)
    which = np.minimum((conf * bins).astype(np.int64), bins - 1)
    count = np.bincount(which, minlength=bins)
    keep = count > 0
    mean_conf = np.bincount(which, conf, bins)[keep] / count[keep]
    observed = np.bincount(which, hit, bins)[keep] / count[keep]
    return mean_conf, observed, count[keep]


def plot_evaluation(models: dict[str, np.ndarray], y, classes, path: str, title: str = "") -> str:
    """One figure of a classifier's test, for a paper: the ROC and precision-recall curves and the
    reliability diagram of every model in ``models`` (name -> [N, C] probabilities, the first one
    being the classifier, e.g. then its k-mer baseline) and the first model's confusion matrix
    (shares of each true class, counts written in the cells up to 10 classes). Two classes: the
    curves of class 1 (``classes[1]``); more: micro-averaged curves, and the reliability of the top
    class. With one class in ``y`` the curve panels say why they are empty."""
    plt = pyplot()
    y = np.asarray(y, dtype=np.int64)
    classes = [str(c) for c in classes]
    n_classes = len(classes)
    fig, axes = plt.subplots(2, 2, figsize=(10, 9))
    (roc, pr), (rel, conf) = axes
    colors = plt.get_cmap("tab10")
    points = {name: curve_points(y, p) for name, p in models.items()}
    target = f"class {classes[1]!r}" if n_classes == 2 else f"micro-averaged over {n_classes} classes"
    for ax in (roc, pr):
        if all(v is None for v in points.values()):
            ax.text(0.5, 0.5, "one class only in these labels:\nno curve", ha="center", va="center")
    for j, (name, c) in enumerate(points.items()):
        if c is None:
            continue
        micro = "micro " if c["averaged"] else ""  # not the table's ROC-AUC, a macro mean over classes
        roc.plot(c["fpr"], c["tpr"], color=colors(j), lw=1.5, label=f"{name} ({micro}AUC {c['auc']:.3f})")
        pr.plot(c["recall"], c["precision"], color=colors(j), lw=1.5, label=f"{name} ({micro}AP {c['ap']:.3f})")
    roc.plot([0, 1], [0, 1], color="gray", ls=":", lw=1, label="chance")
    roc.set(xlim=(0, 1), ylim=(0, 1.01), xlabel="false-positive rate", ylabel="true-positive rate",
            title=f"ROC, {target}")
    prevalence = next((c["prevalence"] for c in points.values() if c is not None), None)
    if prevalence is not None:
        pr.axhline(prevalence, color="gray", ls=":", lw=1, label=f"chance ({prevalence:.3f})")
    pr.set(xlim=(0, 1), ylim=(0, 1.01), xlabel="recall", ylabel="precision", title=f"precision-recall, {target}")
    for ax in (roc, pr):
        if ax.get_legend_handles_labels()[0]:
            ax.legend(fontsize=8, loc="lower right" if ax is roc else "lower left")
    for j, (name, p) in enumerate(models.items()):
        x, obs, _ = reliability_points(y, p)
        rel.plot(x, obs, "o-", color=colors(j), lw=1.2, ms=4, label=name)
    rel.plot([0, 1], [0, 1], color="gray", ls=":", lw=1, label="calibrated")
    what = f"P({classes[1]})" if n_classes == 2 else "probability of the predicted class"
    observed = f"share that is {classes[1]}" if n_classes == 2 else "share predicted right"
    rel.set(xlim=(0, 1), ylim=(0, 1.01), xlabel=f"{what} (binned in tenths)", ylabel=observed,
            title="reliability (10 equal bins)")
    rel.legend(fontsize=8, loc="upper left")
    first, probs = next(iter(models.items()))
    cm = np.zeros((n_classes, n_classes), dtype=np.int64)
    np.add.at(cm, (y, np.asarray(probs).argmax(1)), 1)
    share = cm / np.clip(cm.sum(1, keepdims=True), 1, None)
    im = conf.imshow(share, cmap="Blues", vmin=0, vmax=1, interpolation="nearest")
    if n_classes <= 10:
        for i in range(n_classes):
            for k in range(n_classes):
                conf.text(k, i, f"{cm[i, k]}", ha="center", va="center", fontsize=9,
                          color="white" if share[i, k] > 0.5 else "black")
    if n_classes <= NAMED_CLASSES:
        slanted = n_classes > 2
        conf.set_xticks(range(n_classes), classes, rotation=45 if slanted else 0,
                        ha="right" if slanted else "center", fontsize=8)
        conf.set_yticks(range(n_classes), classes, fontsize=8)
    conf.set(xlabel="predicted class", ylabel="true class", title=f"confusion matrix, {first}")
    fig.colorbar(im, ax=conf, fraction=0.046, pad=0.04, label="share of the true class")
    if title:
        fig.suptitle(title)
    return save_figure(fig, path)

