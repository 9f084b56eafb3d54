"""The honest baseline: k-mer frequencies + logistic regression (scikit-learn).

Features: for each k in ``ks`` (default 1..6) the counts of all 4^k k-mers of a sequence (windows
touching a non-ACGT base skipped), divided by the number of counted windows, so each k block sums
to 1; with ``both_strands`` the reverse-complement strand is counted too (strand-symmetric
features). Features are standardised on the training split; the inverse penalty C of an L2
``LogisticRegression`` is chosen from ``Cs`` by accuracy on the valid split, and the model is
trained on the train split only - like gulm's classifiers, so the two compare on the same split.

A fitted baseline is saved without pickles: ``baseline.npz`` (arrays only, loaded with
``allow_pickle=False``) plus ``baseline.json`` (options, classes and metrics).
"""
from __future__ import annotations

import json
import os
import time
import warnings
from dataclasses import dataclass, field
from typing import Sequence

import numpy as np

from gulm.configs.commands import KMER_CS, KMER_KS

__all__ = ["kmer_features", "gapped_kmer_features", "positional_kmer_features", "resolve_positional",
           "baseline_features", "KmerLogReg", "fit_kmer_logreg",
           "kmer_baseline", "baseline_probs", "baseline_metrics", "baseline_name", "DEFAULT_KS", "DEFAULT_CS",
           "BASELINE_NPZ", "BASELINE_JSON"]

DEFAULT_KS = KMER_KS  # one place for both: gulm.configs (the CLI's defaults come from there too)
DEFAULT_CS = KMER_CS
BASELINE_NPZ, BASELINE_JSON = "baseline.npz", "baseline.json"


def _kmer_counts(sequences: Sequence[str | bytes], k: int) -> np.ndarray:
    """[N, 4^k] counts of the k-mers (stride 1) of each sequence, non-ACGT windows skipped."""
    from gulm.data.tokenizer import KmerTokenizer

    tok = KmerTokenizer(k, 1)
    width = 4 ** k
    out = np.zeros((len(sequences), width), dtype=np.float64)
    step = max(1, 2_000_000 // max(1, max((len(s) for s in sequences), default=1)))  # rows per batch
    for a in range(0, len(sequences), step):
        ids, _ = tok.encode_batch(list(sequences[a:a + step]))
        ids = ids.numpy()
        rows = np.broadcast_to(np.arange(ids.shape[0])[:, None], ids.shape)
        keep = ids >= 2  # pad 0 and unk 1 are not k-mers
        flat = rows[keep] * width + (ids[keep] - 2)
        out[a:a + ids.shape[0]] = np.bincount(flat, minlength=ids.shape[0] * width).reshape(-1, width)
    return out


def _revcomp_all(sequences: Sequence[str | bytes]) -> list[bytes]:
    table = bytes.maketrans(b"ACGTUacgtu", b"TGCAAtgcaa")
    return [(s.encode() if isinstance(s, str) else bytes(s)).translate(table)[::-1] for s in sequences]


def kmer_features(sequences: Sequence[str | bytes], ks: Sequence[int] = DEFAULT_KS, *,
                  both_strands: bool = False, dtype=np.float32, window: int = 0) -> np.ndarray:
    """[N, sum(4^k)] normalised k-mer frequencies (see the module doc); with ``window`` > 0,
    [N, 2 * sum(4^k)]: those of the first ``window`` bases, then those of the last ``window``
    (the features of a classifier's ``--kmer-window`` branch)."""
    if window:
        return np.concatenate([kmer_features([s[:window] for s in sequences], ks, both_strands=both_strands,
                                             dtype=dtype),
                               kmer_features([s[-window:] for s in sequences], ks, both_strands=both_strands,
                                             dtype=dtype)], axis=1)
    blocks = []
    rc = _revcomp_all(sequences) if both_strands else None
    for k in ks:
        counts = _kmer_counts(sequences, k)
        if rc is not None:
            counts += _kmer_counts(rc, k)
        total = counts.sum(1, keepdims=True)
        blocks.append(np.divide(counts, total, out=np.zeros_like(counts), where=total > 0))
    return np.concatenate(blocks, axis=1).astype(dtype, copy=False)


def gapped_kmer_features(sequences: Sequence[str | bytes], length: int, informative: int, *,
                         both_strands: bool = False, dtype=np.float32) -> np.ndarray:
    """Gapped k-mer frequencies (the features behind gkm-SVM): for every way of keeping
    ``informative`` positions of a ``length``-base window, its first and last among them (the
    rest are wildcards; patterns that do not span the whole window are the shorter windows'),
    the counts of the 4^informative base patterns (stride 1; a window with a non-ACGT base at an
    informative position is skipped, one at a wildcard counts), each block divided by its number of
    counted windows. [N, C(length-2, informative-2) * 4^informative]; ``both_strands`` adds the
    reverse strand's counts. ``length == informative`` gives the plain k-mer block of k = ``length``."""
    from gulm.nn.spectrum import gapped_masks

    masks = gapped_masks(length, informative)
    strands = [sequences, _revcomp_all(sequences)] if both_strands else [sequences]
    width = 4 ** informative
    out = np.zeros((len(sequences), len(masks) * width), dtype=np.float64)
    for seqs in strands:
        for a in range(0, len(seqs), 512):
            codes = _base_codes(seqs[a:a + 512])
            n, span = codes.shape
            windows = span - length + 1
            if windows < 1:
                continue
            rows = np.broadcast_to(np.arange(n)[:, None], (n, windows))
            for m, positions in enumerate(masks):
                index, bad = _pattern_codes(codes, positions, windows)
                flat = rows[~bad] * width + index[~bad]
                out[a:a + n, m * width:(m + 1) * width] += np.bincount(
                    flat, minlength=n * width).reshape(n, width)
    for m in range(len(masks)):
        block = out[:, m * width:(m + 1) * width]
        total = block.sum(1, keepdims=True)
        np.divide(block, total, out=block, where=total > 0)
    return out.astype(dtype, copy=False)


def positional_kmer_features(sequences: Sequence[str | bytes], k: int, stretch: int, span: int, *,
                             dtype=np.float32) -> np.ndarray:
    """Position-resolved k-mer counts, for sequences aligned on a site (promoter windows around a
    TSS): the k-mers (stride 1) whose first base lies in each ``stretch``-base bin of the first
    ``span`` bases, counted per bin (not divided; a k-mer with a non-ACGT base is skipped, bases
    past ``span`` are not read). [N, bins * 4^k], bins = ceil((span - k + 1) / stretch), bin by bin."""
    from gulm.nn.spectrum import check_positional, positional_bins

    k, stretch, span = check_positional((k, stretch, span))
    bins, width = positional_bins(k, stretch, span), 4 ** k
    out = np.zeros((len(sequences), bins * width), dtype=np.float64)
    for a in range(0, len(sequences), 512):
        codes = _base_codes([s[:span] for s in sequences[a:a + 512]])
        n, windows = codes.shape[0], codes.shape[1] - k + 1
        if windows < 1:
            continue
        index, bad = _pattern_codes(codes, range(k), windows)
        where = np.arange(windows) // stretch
        flat = ((np.arange(n)[:, None] * bins + where) * width + index)[~bad]
        out[a:a + n] = np.bincount(flat, minlength=n * bins * width).reshape(n, -1)
    return out.astype(dtype, copy=False)


def resolve_positional(values: Sequence[int], sequences: Sequence[str | bytes], what: str) -> tuple[int, int, int] | None:
    """(k, stretch, span) from an option's K B [S] (``what`` names it in errors); S defaults to
    the longest of ``sequences`` (the training split's). None when ``values`` is empty."""
    from gulm.nn.spectrum import check_positional

    if not values:
        return None
    if len(values) not in (2, 3):
        raise ValueError(f"{what} takes K B or K B S (k-mer length, bin and span in bases), got "
                         f"{' '.join(map(str, values))}")
    span = values[2] if len(values) == 3 else max((len(s) for s in sequences), default=0)
    return check_positional((*values[:2], span), what)


def baseline_features(sequences: Sequence[str | bytes], ks: Sequence[int] = DEFAULT_KS, *,
                      both_strands: bool = False, window: int = 0,
                      gapped: Sequence[int] | None = None, positional: Sequence[int] | None = None) -> np.ndarray:
    """The features of a :class:`KmerLogReg`: the k-mer spectrum (:func:`kmer_features`), or with
    ``gapped`` = (length, informative) the gapped one in its place (:func:`gapped_kmer_features`);
    with ``window`` > 0 counted over the first and the last ``window`` bases, two blocks.
    ``positional`` = (k, stretch, span) appends :func:`positional_kmer_features` (given strand
    only; not with ``window``)."""
    if positional:
        if window:
            raise ValueError("positional k-mers count from the sequence's start: they do not go with a window")
        spectrum = baseline_features(sequences, ks, both_strands=both_strands, gapped=gapped) if ks or gapped \
            else np.zeros((len(sequences), 0), dtype=np.float32)
        return np.concatenate([spectrum, positional_kmer_features(sequences, *positional)], axis=1)
    if window:
        return np.concatenate([baseline_features([s[:window] for s in sequences], ks, both_strands=both_strands,
                                                 gapped=gapped),
                               baseline_features([s[-window:] for s in sequences], ks, both_strands=both_strands,
                                                 gapped=gapped)], axis=1)
    if gapped:
        return gapped_kmer_features(sequences, *gapped, both_strands=both_strands)
    return kmer_features(sequences, ks, both_strands=both_strands)


def _pattern_codes(codes: np.ndarray, positions, windows: int) -> tuple[np.ndarray, np.ndarray]:
    """For each of the first ``windows`` start positions of base codes ``codes`` [N, L] (4: not
    A/C/G/T), the base-4 index of the bases at offsets ``positions`` from it, and whether one of
    them is not A/C/G/T: [N, windows] each."""
    index = np.zeros((codes.shape[0], windows), dtype=np.int64)
    bad = np.zeros((codes.shape[0], windows), dtype=bool)
    for pos in positions:
        code = codes[:, pos:pos + windows]
        index = index * 4 + np.minimum(code, 3)
        bad |= code > 3
    return index, bad


def _base_codes(sequences: Sequence[str | bytes]) -> np.ndarray:
    """[N, longest] base codes from the 1-mer tokenizer: A C G T 0-3 (as it reads them), anything
    else and padding 4."""
    from gulm.data.tokenizer import KmerTokenizer

    ids, _ = KmerTokenizer(1, 1).encode_batch(list(sequences))
    ids = ids.numpy()
    return np.where(ids >= 2, ids - 2, 4).astype(np.uint8)


@dataclass
class KmerLogReg:
    """A fitted k-mer logistic regression: standardisation + linear model, as plain arrays."""

    classes: list[str]
    ks: list[int]
    both_strands: bool
    C: float
    mean: np.ndarray
    scale: np.ndarray
    coef: np.ndarray  # [C or 1, F]
    intercept: np.ndarray  # [C or 1]
    model_classes: np.ndarray  # class indices the model saw in training
    valid_accuracy_by_C: dict = field(default_factory=dict)
    window: int = 0  # > 0: features of the first and the last ``window`` bases (kmer_features)
    gapped: tuple[int, int] | None = None  # (length, informative): gapped k-mers in place of ``ks``
    positional: tuple[int, int, int] | None = None  # (k, stretch, span): position-resolved counts appended

    def decision(self, x: np.ndarray) -> np.ndarray:
        z = (x - self.mean) / self.scale
        return z @ self.coef.T + self.intercept

    def probs_from_features(self, x: np.ndarray) -> np.ndarray:
        """[N, n_classes] probabilities (a class absent from training gets 0)."""
        d = self.decision(np.asarray(x, dtype=np.float64))
        if d.shape[1] == 1:  # binary: sigmoid of one logit for model_classes[1]
            p1 = 1.0 / (1.0 + np.exp(-d[:, 0]))
            p = np.stack([1.0 - p1, p1], axis=1)
        else:
            d = d - d.max(1, keepdims=True)
            e = np.exp(d)
            p = e / e.sum(1, keepdims=True)
        out = np.zeros((x.shape[0], len(self.classes)))
        out[:, self.model_classes] = p
        return out

    def class_logits(self, n_classes: int) -> tuple[np.ndarray, np.ndarray]:
        """The weights [n_classes, F] and biases [n_classes] of per-class logits on standardised
        features (:meth:`decision`'s layout spread over the classes): a two-class fit's one logit
        goes to its second class (the first gets 0); a class the fit never saw gets a bias of -30
        (never predicted)."""
        w = np.zeros((n_classes, self.coef.shape[1]))
        b = np.full(n_classes, -30.0)
        seen = np.asarray(self.model_classes)
        if self.coef.shape[0] == 1:
            w[seen[1]], b[seen[1]], b[seen[0]] = self.coef[0], self.intercept[0], 0.0
        else:
            w[seen], b[seen] = self.coef, self.intercept
        return w, b

    def probs(self, sequences: Sequence[str | bytes]) -> np.ndarray:
        return self.probs_from_features(baseline_features(sequences, self.ks, both_strands=self.both_strands,
                                                          window=self.window, gapped=self.gapped,
                                                          positional=self.positional))

    # ---- files (no pickles) ---------------------------------------------------------------
    def save(self, folder: str | os.PathLike, extra: dict | None = None) -> None:
        folder = os.fspath(folder)
        os.makedirs(folder, exist_ok=True)
        tmp = os.path.join(folder, ".baseline.tmp.npz")
        np.savez(tmp, mean=self.mean, scale=self.scale, coef=self.coef, intercept=self.intercept,
                 model_classes=self.model_classes)
        os.replace(tmp, os.path.join(folder, BASELINE_NPZ))
        meta = {"kind": "kmer_logreg", "classes": self.classes, "ks": self.ks,
                "both_strands": self.both_strands, "window": self.window,
                "gapped": list(self.gapped) if self.gapped else None,
                "positional": list(self.positional) if self.positional else None, "C": self.C,
                "valid_accuracy_by_C": {str(c): a for c, a in self.valid_accuracy_by_C.items()},
                **(extra or {})}
        with open(os.path.join(folder, ".baseline.tmp.json"), "w") as fh:
            json.dump(meta, fh, indent=2, default=float)
            fh.write("\n")
        os.replace(os.path.join(folder, ".baseline.tmp.json"), os.path.join(folder, BASELINE_JSON))

    @classmethod
    def load(cls, folder: str | os.PathLike) -> "KmerLogReg":
        folder = os.fspath(folder)
        path = os.path.join(folder, BASELINE_NPZ)
        try:
            with open(os.path.join(folder, BASELINE_JSON)) as fh:
                meta = json.load(fh)
            arrays = np.load(path, allow_pickle=False)
        except (OSError, ValueError) as err:
            raise ValueError(f"{folder}: no readable k-mer baseline ({err})") from None
        return cls(classes=list(meta["classes"]), ks=[int(k) for k in meta["ks"]],
                   both_strands=bool(meta["both_strands"]), C=float(meta["C"]),
                   mean=arrays["mean"], scale=arrays["scale"], coef=arrays["coef"],
                   intercept=arrays["intercept"], model_classes=arrays["model_classes"],
                   valid_accuracy_by_C={float(c): a for c, a in meta.get("valid_accuracy_by_C", {}).items()},
                   window=int(meta.get("window", 0)),
                   gapped=tuple(int(v) for v in meta["gapped"]) if meta.get("gapped") else None,
                   positional=tuple(int(v) for v in meta["positional"]) if meta.get("positional") else None)

    @staticmethod
    def exists(folder: str | os.PathLike) -> bool:
        return os.path.exists(os.path.join(os.fspath(folder), BASELINE_NPZ))


def fit_kmer_logreg(x_train: np.ndarray, y_train: np.ndarray, x_valid: np.ndarray | None,
                    y_valid: np.ndarray | None, classes: Sequence[str], *, ks: Sequence[int] = DEFAULT_KS,
                    both_strands: bool = False, Cs: Sequence[float] = DEFAULT_CS,
                    max_iter: int = 500, window: int = 0, gapped: Sequence[int] | None = None,
                    positional: Sequence[int] | None = None) -> KmerLogReg:
    """Standardise, fit one LogisticRegression per C, keep the best valid accuracy (ties: the
    smaller C; without a valid split, the largest C of ``Cs`` below 1e-1, i.e. mild penalty)."""
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.linear_model import LogisticRegression

    mean = x_train.mean(0).astype(np.float64)
    scale = x_train.std(0).astype(np.float64)
    scale[scale == 0] = 1.0  # sklearn's StandardScaler does the same for constant features
    xt = ((x_train - mean) / scale).astype(x_train.dtype, copy=False)
    if len(np.unique(y_train)) < 2:
        raise ValueError("the k-mer baseline needs at least two classes in the training split")
    have_valid = x_valid is not None and len(x_valid) > 0
    grid = sorted(Cs) if have_valid else [max([c for c in Cs if c <= 1e-1] or [min(Cs)])]
    best, scores = None, {}
    for C in grid:
        model = LogisticRegression(C=C, max_iter=max_iter, tol=1e-4)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            model.fit(xt, y_train)
        if have_valid:
            xv = ((x_valid - mean) / scale).astype(x_valid.dtype, copy=False)
            acc = float((model.predict(xv) == y_valid).mean())
        else:
            acc = float("nan")
        scores[C] = acc
        if best is None or acc > best[2]:
            best = (model, C, acc)
    model, C = best[0], best[1]
    return KmerLogReg(classes=list(classes), ks=list(ks), both_strands=both_strands, C=float(C),
                      mean=mean, scale=scale, coef=model.coef_.astype(np.float64),
                      intercept=model.intercept_.astype(np.float64),
                      model_classes=np.asarray(model.classes_, dtype=np.int64), valid_accuracy_by_C=scores,
                      window=int(window), gapped=tuple(int(v) for v in gapped) if gapped else None,
                      positional=tuple(int(v) for v in positional) if positional else None)


def _training_data(checkpoint_cfg: dict, checkpoint: str):
    """The DataConfig a classifier checkpoint was trained on (recorded in its config.json)."""
    from gulm.configs import DataConfig

    training = checkpoint_cfg.get("training") or {}
    data = training.get("data")
    if not isinstance(data, dict):
        raise ValueError(f"{checkpoint}: the checkpoint does not record its training data; give the data "
                         "source (--csv, --fasta-class or --bed with --genome)")
    known = {f for f in DataConfig.__dataclass_fields__}
    return DataConfig(**{k: v for k, v in data.items() if k in known})


def kmer_baseline(cfg=None, **options) -> dict:
    """Fit the k-mer logistic regression on the same split as a classifier checkpoint (its own
    training data unless ``data`` is given), save it in the checkpoint folder (or ``out``) and
    return its valid and test metrics beside the classifier's own test metrics."""
    from gulm.configs import BaselineConfig
    from gulm.configs.fields import config_from, option_name
    from gulm.data.batches import encode_labels
    from gulm.data.sources import load_labeled, select_split
    from gulm.metrics import classification_metrics
    from gulm.runtime.checkpoint import read_config, resolve_checkpoint
    from gulm.threads import resolve_threads

    cfg = config_from(BaselineConfig, cfg, options, value_field="checkpoint")
    resolve_threads(cfg.threads)
    folder = resolve_checkpoint(cfg.checkpoint)
    ck = read_config(folder, "classifier")
    data = cfg.data if any((cfg.data.csv, cfg.data.fasta, cfg.data.bed)) else _training_data(ck, folder)
    ds = load_labeled(data)
    classes = list(ck["classes"])
    positional = list(cfg.positional)
    if not positional:  # as the classifier's branch: its regression is then the same model
        positional = list((ck.get("training") or {}).get("kmer_positional") or [])
    elif positional == [0]:
        positional = []
    both = cfg.both_strands
    if both is None and positional:  # places on the given strand
        both = False
    if both is None:  # as the classifier: strand-symmetric when it learnt both orientations
        t = ck.get("training") or {}
        both = bool(t.get("rc_augment") or t.get("rc_average"))
    window = cfg.window
    if window is None:  # as the classifier's wide branch (--kmer-window), else the whole sequence
        window = int((ck.get("training") or {}).get("kmer_window") or 0)
    parts = {}
    for split in ("train", "valid", "test"):
        seqs, labels = select_split(ds, split)
        if seqs:
            y, _ = encode_labels(labels, classes)
            parts[split] = (seqs, y)
    if "train" not in parts:
        raise ValueError(f"{folder}: the data has no training sequences")
    t0 = time.perf_counter()
    gapped = tuple(cfg.gapped) or None
    if gapped and (len(gapped) != 2 or not 2 <= gapped[1] <= gapped[0] or (window and window < gapped[0])):
        raise ValueError(f"{option_name('gapped', BaselineConfig)} takes a window length L and K informative "
                         f"bases with 2 <= K <= L (and L within --window when that is set), got "
                         f"{' '.join(map(str, gapped))}")
    positional = resolve_positional(positional, parts["train"][0], option_name("positional", BaselineConfig))
    if positional and (window or both):
        raise ValueError(f"{option_name('positional', BaselineConfig)} counts k-mers by their place on the given "
                         f"strand: it does not go with --window or --both-strands true")
    feats = {s: baseline_features(seqs, cfg.ks, both_strands=both, window=window, gapped=gapped, positional=positional)
             for s, (seqs, _) in parts.items()}
    xv, yv = (feats["valid"], parts["valid"][1]) if "valid" in parts else (None, None)
    model = fit_kmer_logreg(feats["train"], parts["train"][1], xv, yv, classes, ks=cfg.ks, both_strands=both,
                            Cs=cfg.cs, max_iter=cfg.max_iter, window=window, gapped=gapped, positional=positional)
    out = {"classes": classes, "C": model.C, "window": window, "gapped": list(gapped) if gapped else None,
           "positional": list(positional) if positional else None, "name": baseline_name(gapped, positional),
           "seconds": round(time.perf_counter() - t0, 2)}
    for split in ("valid", "test"):
        if split in parts:
            out[split] = classification_metrics(parts[split][1], model.probs_from_features(feats[split]), classes)
    model.save(cfg.out or folder, extra={"checkpoint": folder, "metrics": {k: out[k] for k in ("valid", "test")
                                                                          if k in out}})
    out["classifier_test"] = _own_metrics(folder)
    out["saved_in"] = cfg.out or folder
    return out


def _own_metrics(folder: str) -> dict | None:
    path = os.path.join(folder, "metrics.json")
    if not os.path.exists(path):
        return None
    with open(path) as fh:
        m = json.load(fh)
    return m if m.get("split") == "test" else None


def baseline_name(gapped, positional=None) -> str:
    """How tables name a baseline: "k-mer LR", or "gapped k-mer LR (L, K)", with
    " + positional (k, bin, span)" when position-resolved counts are part of it."""
    name = f"gapped k-mer LR ({gapped[0]}, {gapped[1]})" if gapped else "k-mer LR"
    return f"{name} + positional ({', '.join(map(str, positional))})" if positional else name


def baseline_probs(checkpoint_folder: str, sequences, classes: Sequence[str]) -> tuple[str, np.ndarray] | None:
    """The name and the [N, C] class probabilities, in the order of ``classes`` (the checkpoint's),
    of the baseline saved in a checkpoint folder on these sequences. None when the folder holds no
    baseline, or (with a DataWarning) one fitted for other classes: a classifier trained again
    into the same folder keeps the files it does not write, so an old baseline may sit beside it."""
    from gulm.data.errors import DataWarning

    if not KmerLogReg.exists(checkpoint_folder):
        return None
    model = KmerLogReg.load(checkpoint_folder)
    if sorted(model.classes) != sorted(classes):
        warnings.warn(f"{checkpoint_folder}: its k-mer baseline was fitted for the classes {model.classes}, not the "
                      f"classifier's {list(classes)}; it is left out (`gulm baseline {checkpoint_folder}` fits one "
                      "again)", DataWarning, stacklevel=2)
        return None
    order = [model.classes.index(c) for c in classes]
    return baseline_name(model.gapped, model.positional), model.probs(sequences)[:, order]


def baseline_metrics(checkpoint_folder: str, sequences, labels, classes) -> dict | None:
    """Metrics of the baseline saved in a checkpoint folder on these sequences, with its ``name``
    (None as :func:`baseline_probs`); :func:`gulm.evaluate` returns the same under ``baseline``."""
    from gulm.data.batches import encode_labels
    from gulm.metrics import classification_metrics

    got = baseline_probs(checkpoint_folder, sequences, classes)
    if got is None:
        return None
    y, _ = encode_labels(labels, classes)
    return {**classification_metrics(y, got[1], classes), "name": got[0]}
