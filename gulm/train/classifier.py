"""Phase 3 of ULMFiT: a sequence classifier, its encoder from a language model (or from scratch),
trained with gradual unfreezing and scored on the test split at the end.

:func:`train_classifier` runs these steps, each its own function: start the run, read the
labelled data, resolve the architecture (from the LM checkpoint, read once), tokenize the
splits, build the model and load the LM's encoder, train, score, save.
"""
from __future__ import annotations

import dataclasses
import os
import time
from dataclasses import dataclass

import numpy as np

from gulm import presets
from gulm.configs import ClassifierConfig, ModelSize, TokenizerConfig
from gulm.configs.fields import config_from, option_name
from gulm.data.batches import ClassBatches, TokenizedSet, encode_labels
from gulm.data.labeled import SPLIT_NAMES
from gulm.data.sources import check_training_data, load_labeled, select_split
from gulm.nn import CLASSIFIER_DROPOUTS, AWDConfig, classifier
from gulm.ops.lstm import releases_scratch
from gulm.runtime import distributed as gdist
from gulm.runtime.checkpoint import load_encoder_from_lm, read_config, resolve_checkpoint, save_checkpoint
from gulm.train.common import apply_preset, check_memory, rank_batch_size, resume_state, start_phase, training_record
from gulm.train.learner import Learner
from gulm.train.log import notice
from gulm.train.tasks import ClassifierTask

__all__ = ["train_classifier", "Architecture", "resolve_architecture", "tokenized_splits"]

_SIZES = tuple(f.name for f in dataclasses.fields(ModelSize))


@dataclass
class Architecture:
    """What the classifier is built from: its tokenizer, sizes and (if any) the LM's config."""

    tokenizer: object
    sizes: dict
    lm_config: dict | None = None


def resolve_architecture(cfg: ClassifierConfig) -> Architecture:
    """Tokenizer and sizes: the LM's (those set in ``cfg`` must match), or from scratch
    ``cfg``'s, unset ones from :class:`TokenizerConfig` and :class:`ModelSize`."""
    from gulm.data.tokenizer import KmerTokenizer

    if not cfg.lm:
        base_tok, base_size = TokenizerConfig(), ModelSize()
        tok = KmerTokenizer(cfg.k or base_tok.k, cfg.stride or base_tok.stride)
        sizes = {k: getattr(cfg, k) or getattr(base_size, k) for k in _SIZES}
        check_memory(tok.vocab_size, sizes["emb_size"], f"k={tok.k}: ")
        return Architecture(tok, sizes)
    lm = read_config(cfg.lm, "lm")
    lm_tok = KmerTokenizer.from_dict(lm["tokenizer"])
    want = (cfg.k if cfg.k is not None else lm_tok.k, cfg.stride if cfg.stride is not None else lm_tok.stride)
    # another k or stride is refused when the encoder loads (check_tokenizer)
    tok = lm_tok if want == (lm_tok.k, lm_tok.stride) else KmerTokenizer(*want)
    sizes = {k: lm["model"][k] for k in _SIZES}
    clash = {k: (getattr(cfg, k), sizes[k]) for k in _SIZES if getattr(cfg, k) is not None and getattr(cfg, k) != sizes[k]}
    if clash:
        raise ValueError(
            f"{cfg.lm}: the language model's sizes differ from the requested ones ("
            + ", ".join(f"{k} {want} != LM {have}" for k, (want, have) in clash.items())
            + "); leave them unset to use the LM's")
    return Architecture(tok, sizes, lm)


def wide_tokens(tokenizer) -> bool:
    """Whether the wide branch can count k-mers from these tokens (canonical ids, stride <= k)."""
    return tokenizer.vocab == "canonical" and tokenizer.stride <= tokenizer.k


def wide_branch(cfg: ClassifierConfig, tokenizer, train_seqs=()) -> dict:
    """The AWDConfig fields of the optional k-mer-frequency branch (``cfg.kmer_features``);
    ``train_seqs`` set the default span of ``cfg.kmer_positional``."""
    from gulm.baseline import resolve_positional

    if cfg.kmer_logreg_folds < 0 or cfg.kmer_logreg_folds == 1:
        raise ValueError(f"{option_name('kmer_logreg_folds')} must be 0 (no cross-fitting) or at least 2, "
                         f"got {cfg.kmer_logreg_folds}")
    wide = bool(cfg.kmer_features or cfg.kmer_gapped or cfg.kmer_positional)
    if cfg.kmer_logreg and not wide:
        raise ValueError(f"{option_name('kmer_logreg')} fixes the wide branch: it needs "
                         f"{option_name('kmer_features')} (e.g. 1 2 3 4 5 6), {option_name('kmer_gapped')} "
                         f"or {option_name('kmer_positional')}")
    positional = resolve_positional(cfg.kmer_positional, train_seqs, option_name("kmer_positional"))
    if positional and (cfg.kmer_window or cfg.rc_augment or cfg.rc_average):
        raise ValueError(f"{option_name('kmer_positional')} counts k-mers by their place on the given strand: it "
                         f"needs --stranded data (no reverse-complement augmentation or averaging) and no "
                         f"{option_name('kmer_window')}")
    if cfg.kmer_logreg_gain and not cfg.kmer_logreg:
        raise ValueError(f"{option_name('kmer_logreg_gain')} scales the fixed branch of {option_name('kmer_logreg')}; "
                         f"turn that on too")
    if cfg.kmer_gapped and (len(cfg.kmer_gapped) != 2 or not 2 <= cfg.kmer_gapped[1] <= min(cfg.kmer_gapped[0], 8)):
        raise ValueError(f"{option_name('kmer_gapped')} takes a window length L and K informative bases with "
                         f"2 <= K <= L and K <= 8, got {' '.join(map(str, cfg.kmer_gapped))}")
    longest = max([*cfg.kmer_features, *cfg.kmer_gapped[:1]], default=0)
    if cfg.kmer_window and not wide:
        raise ValueError(f"{option_name('kmer_window')} sets where the wide branch counts its k-mers: it needs "
                         f"{option_name('kmer_features')} (e.g. 1 2 3 4 5 6)")
    if cfg.kmer_window and cfg.kmer_window < longest:  # a negative window too
        raise ValueError(f"{option_name('kmer_window')} must be 0 or at least the longest k-mer of "
                         f"{option_name('kmer_features')} or {option_name('kmer_gapped')} ({longest}), "
                         f"got {cfg.kmer_window}")
    if not wide:
        return {}
    if not wide_tokens(tokenizer):
        raise ValueError(f"{option_name('kmer_features')} needs canonical tokens with stride <= k "
                         f"(have {tokenizer!r})")
    return {"kmer_features": tuple(int(m) for m in cfg.kmer_features), "wide_window": int(cfg.kmer_window),
            "wide_gapped": tuple(int(v) for v in cfg.kmer_gapped), "wide_positional": positional or (),
            "token_k": tokenizer.k,
            "token_stride": tokenizer.stride, "wide_fixed": bool(cfg.kmer_logreg),
            "wide_folds": int(cfg.kmer_logreg_folds) if cfg.kmer_logreg else 0, "wide_gain": bool(cfg.kmer_logreg_gain)}


def fit_wide_logreg(model, sets: dict[str, TokenizedSet], classes: list[str], cfg: ClassifierConfig) -> dict:
    """Fit the k-mer logistic regression of a fixed wide branch (``cfg.kmer_logreg``) and set the
    branch to it: on the whole training split (C chosen on the valid split, gulm.baseline's grid
    and rule), and at that C once without each cross-fitting fold, the versions that score the
    training sequences while the network trains. Its features are the branch's own spectra of
    the strands the network reads in training (both with ``rc_augment``, the reverse one with
    ``backward``). Returns the fit's record for the metrics."""
    from gulm.baseline import fit_kmer_logreg

    spectrum, folds = model.wide["spectrum"], model.config.wide_folds
    strands = [True] if cfg.backward else ([False, True] if cfg.rc_augment else [False])

    def spectra(data: TokenizedSet):
        rows, fold = [], []
        for rc in strands:
            for i in range(0, len(data), 256):
                ids, lengths, _ = data.batch(np.arange(i, min(i + 256, len(data))), rc=rc)
                rows.append(spectrum(ids, lengths).numpy())
                fold.append(spectrum.strand_fold(ids, lengths, max(folds, 1)).numpy())
        return np.concatenate(rows), np.tile(data.labels, len(strands)), np.concatenate(fold)

    t0 = time.perf_counter()
    x_train, y_train, fold = spectra(sets["train"])
    x_valid, y_valid, _ = spectra(sets["valid"]) if "valid" in sets else (None, None, None)
    ks = list(model.config.kmer_features)
    gapped = tuple(model.config.wide_gapped) or None
    positional = tuple(model.config.wide_positional) or None
    full = fit_kmer_logreg(x_train, y_train, x_valid, y_valid, classes, ks=ks, gapped=gapped, positional=positional)
    fits = []
    for j in range(folds):
        keep = fold != j
        try:
            fits.append(fit_kmer_logreg(x_train[keep], y_train[keep], None, None, classes, ks=ks, Cs=[full.C],
                                        gapped=gapped, positional=positional))
        except ValueError:  # a fold whose complement lacks a class (tiny sets): the full fit
            fits.append(full)
    fits.append(full)
    weights = [f.class_logits(len(classes)) for f in fits]
    model.fix_wide(np.stack([f.mean for f in fits]), np.stack([f.scale for f in fits]),
                   np.stack([w for w, _ in weights]), np.stack([b for _, b in weights]))
    return {"C": full.C, "valid_accuracy_by_C": {str(c): a for c, a in full.valid_accuracy_by_C.items()},
            "folds": folds, "fold_sizes": np.bincount(fold, minlength=folds).tolist() if folds else [],
            "fit_seconds": round(time.perf_counter() - t0, 2)}


def wide_fit_line(fit: dict) -> str:
    """One line on a fitted fixed branch (:func:`fit_wide_logreg`'s record)."""
    acc = fit["valid_accuracy_by_C"].get(str(fit["C"]))
    return (f"fixed k-mer LR branch fitted in {fit['fit_seconds']:.1f} s (C={fit['C']:g}"
            + (f", valid accuracy {acc:.4f}" if acc is not None and acc == acc else "")
            + (f", cross-fitted over {fit['folds']} folds" if fit["folds"] else "") + ")")


def tokenized_splits(ds, tokenizer, classes: list[str], with_rc: bool) -> dict[str, TokenizedSet]:
    """The train, valid and test splits of a labelled set that has them, tokenized."""
    sets = {}
    for split in SPLIT_NAMES:
        seqs, labels = select_split(ds, split)
        if seqs:
            y, _ = encode_labels(labels, classes)
            sets[split] = TokenizedSet.build(seqs, tokenizer, y, with_rc=with_rc, name=f"{split} split")
    return sets


def aligned_hint(cfg: ClassifierConfig, train_seqs) -> str | None:
    """A note for stranded training sequences all of one length (windows cut around a site, most
    likely) trained with nothing that reads where a k-mer sits; None otherwise."""
    if cfg.kmer_positional or cfg.head_bins or not presets.aligned_windows([len(s) for s in train_seqs], cfg.stranded):
        return None
    length = len(train_seqs[0])
    return (f"all {len(train_seqs):,} training sequences are {length} bp on their given strand. If they are "
            f"windows aligned on a site (a TSS), fit `gulm baseline {cfg.out} --positional 3 3`, a k-mer LR that "
            "counts k-mers by their place, and compare; on aligned promoters it beat every model without "
            "place-resolved features. The classifier's own: --preset aligned (what auto picks for such windows: "
            "--kmer-features 1 2 3 4 5 6 --kmer-positional 3 3 --kmer-logreg)")


@releases_scratch
def train_classifier(cfg: ClassifierConfig | None = None, *, stop_after=None, **overrides) -> dict:
    """Train a classifier with gradual unfreezing; evaluates on the test split at the end.
    Returns the test metrics (or validation metrics when there is no test split)."""
    cfg = config_from(ClassifierConfig, cfg, overrides)
    device = start_phase(cfg)
    ds = load_labeled(cfg.data)
    check_training_data(ds, cfg.data)
    train_seqs, train_labels = select_split(ds, "train")
    if not train_seqs:
        raise ValueError("the classification data has no training sequences")
    _, classes = encode_labels(train_labels)
    own_wide = presets.wide_given(cfg)
    cfg, preset = apply_preset(cfg, "classifier", train_seqs, len(classes), scratch=not cfg.lm)
    check_orientation(cfg)
    if cfg.head_bins < 0:
        raise ValueError(f"{option_name('head_bins')} must be 0 (no binned pooling) or a number of parts, got {cfg.head_bins}")
    arch = resolve_architecture(cfg)
    if own_wide and preset.has_branch():
        preset.reason += "; its k-mer branch replaced by the --kmer-* options given"
    if not own_wide and presets.wide_given(cfg) and not wide_tokens(arch.tokenizer):
        cfg = presets.clear_wide(cfg)
        preset.reason += "; its k-mer branch dropped (the LM's tokens cannot carry it)"
        notice(f"preset {preset.name}: the k-mer branch needs canonical tokens with stride <= k, and the "
               f"language model has {arch.tokenizer!r}; training without the branch")
    cfg = dataclasses.replace(cfg, **arch.sizes, k=arch.tokenizer.k, stride=arch.tokenizer.stride)
    mcfg = AWDConfig(vocab_size=arch.tokenizer.vocab_size, **arch.sizes, drop_mult=cfg.drop_mult,
                     n_classes=len(classes), bptt=cfg.bptt, max_len=cfg.max_len, head_hidden=cfg.head_hidden,
                     head_bins=cfg.head_bins,
                     **wide_branch(cfg, arch.tokenizer, train_seqs), **CLASSIFIER_DROPOUTS)
    model = classifier(mcfg)
    if cfg.lm:
        load_encoder_from_lm(model, cfg.lm, arch.tokenizer, arch.lm_config)
    sets = tokenized_splits(ds, arch.tokenizer, classes, with_rc=cfg.rc_augment or cfg.rc_average or cfg.backward)
    world, rank, bs = gdist.world_size(), gdist.rank(), rank_batch_size(cfg.bs)
    wide_fit = fit_wide_logreg(model, sets, classes, cfg) if cfg.kmer_logreg else None
    if wide_fit and gdist.is_main() and cfg.progress:
        print(f"gulm classifier: {wide_fit_line(wide_fit)}", flush=True)
    train = ClassBatches(sets["train"], bs, shuffle=True, seed=cfg.seed, rc_augment=cfg.rc_augment,
                         rank=rank, world=world, rc=cfg.backward)
    valid = ClassBatches(sets["valid"], bs, rank=rank, world=world, rc=cfg.backward) if "valid" in sets else None
    learner = Learner(model, ClassifierTask(cfg.alpha, cfg.beta, classes), train, valid,
                      layer_groups=model.layer_groups(), wd=cfg.wd, clip=cfg.clip, eps=cfg.eps, device=device, dtype=cfg.dtype,
                      out_dir=cfg.out, progress=cfg.progress, desc="classifier", checkpoint_every=cfg.checkpoint_every,
                      keep_best=f"valid_{cfg.select_metric}" if cfg.select == "best" and valid else None)
    hint = aligned_hint(cfg, train_seqs) if gdist.is_main() and cfg.progress else None
    if hint:
        notice(hint)
    t0 = time.perf_counter()
    done = learner.fit_stages(cfg.stages, resume_state=resume_state(cfg), stop_after=stop_after)
    metrics = {"split": "test" if "test" in sets else "valid", "train_seconds": time.perf_counter() - t0,
               "complete": bool(done), **({"wide_logreg": wide_fit} if wide_fit else {})}
    if done and learner.restore_best():
        metrics.update(selected_epoch="best", best_valid=learner.best_score)
    else:
        metrics.update(selected_epoch="last")
    if wide_fit and mcfg.wide_gain:  # the selected model's
        wide_fit["gain"] = round(float(model.wide_log_gain.detach().exp()), 4)
    if metrics["split"] in sets:
        metrics.update(score_split(model, arch.tokenizer, classes, sets[metrics["split"]], cfg, device))
    calibration = valid_scores(model, arch.tokenizer, classes, sets["valid"], cfg, device) if valid else None
    if gdist.is_main():
        save_checkpoint(cfg.out, model, kind="classifier", model_config=mcfg.to_dict(), tokenizer=arch.tokenizer,
                        training=training_record(cfg), metrics=metrics,
                        extra={"classes": classes, "window": int(np.median([len(s) for s in train_seqs])),
                               "preset": {"name": preset.name, "reason": preset.reason},
                               "lm": os.path.abspath(resolve_checkpoint(cfg.lm)) if cfg.lm else None},
                        calibration=calibration)
    gdist.barrier()
    return metrics


def check_orientation(cfg: ClassifierConfig) -> None:
    """``backward`` reads one strand, the reverse one: it contradicts training or predicting on
    both strands (``rc_augment``, ``rc_average``, the default of unstranded data)."""
    if cfg.backward and (cfg.rc_augment or cfg.rc_average):
        both = [option_name(n, ClassifierConfig) for n in ("rc_augment", "rc_average") if getattr(cfg, n)]
        raise ValueError(f"{option_name('backward', ClassifierConfig)} reads each sequence's reverse complement "
                         f"alone; it cannot be combined with {' and '.join(both)} (both strands), which "
                         f"{option_name('stranded', ClassifierConfig)} false also turns on")


def score_split(model, tokenizer, classes, data: TokenizedSet, cfg: ClassifierConfig, device) -> dict:
    """Metrics of the trained model on a tokenized split (computed on every rank, kept on rank 0)."""
    from gulm.infer import Classifier
    from gulm.metrics import classification_metrics

    clf = Classifier(model, tokenizer, classes=classes, rc_average=cfg.rc_average, backward=cfg.backward,
                     device=device, dtype=cfg.dtype)
    probs = clf.probs_of_set(data, rank_batch_size(cfg.bs), progress=cfg.progress)
    return classification_metrics(data.labels, probs, classes) if gdist.is_main() else {}


def valid_scores(model, tokenizer, classes, data: TokenizedSet, cfg: ClassifierConfig, device) -> dict:
    """The valid split's labels (class indices) and class probabilities of each sequence as given
    (one strand, as a scan scores windows; a backward model reads it from its 3' end): what
    ``gulm scan --threshold auto`` sets thresholds on."""
    from gulm.infer import Classifier

    clf = Classifier(model, tokenizer, classes=classes, backward=cfg.backward, device=device, dtype=cfg.dtype)
    probs = clf.probs_of_set(data, rank_batch_size(cfg.bs), rc_average=False)
    return {"split": "valid", "classes": list(classes), "labels": [int(y) for y in data.labels],
            "probs": np.round(probs, 6).tolist()}
