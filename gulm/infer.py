"""The one inference path: every command that runs a trained model (evaluate, predict, scan,
interpret, variant effects and embeddings) loads it and runs it through here.

    clf = Classifier.load("runs/clf", device="cpu", dtype="bf16")
    probs = clf.probs(["ACGT...", "TTGACA..."])      # [N, C], batched and length-sorted
    p = clf.batch_probs(ids, lengths)[:, clf.target_index("promoter")]   # hot loops (scan)
    feats = Encoder.load("runs/lm").features(seqs)   # pooled [last, max, mean] features [N, 3E]
    p = clf.window_probs(windows_uint8)              # equal-length windows [N, W] (variants, mutants)
    logits = clf.logits_from_embeddings(ids, lengths, embeds)   # autograd on: gradient attributions

Precision ("fp32", "bf16", "fp16") is mapped to autocast in one place,
:func:`gulm.runtime.device.precision` (re-exported here).
"""
from __future__ import annotations

import os
from typing import Callable, Sequence

import numpy as np
import torch

from gulm.data.batches import TokenizedSet
from gulm.data.fasta import revcomp_windows
from gulm.runtime.checkpoint import CheckpointError, load_checkpoint, resolve_checkpoint
from gulm.runtime.device import check_dtype, input_table_enabled, precision, resolve_device

__all__ = ["Classifier", "Ensemble", "Encoder", "precision", "write_predictions"]


def _trained(cfg: dict, option: str) -> bool:
    """A boolean training option (``rc_average``, ``backward``) as a checkpoint's config.json
    records it; False when the record or the option is absent."""
    return bool((cfg.get("training") or {}).get(option, False))


class _Loaded:
    """A model in eval mode with its tokenizer, device and precision (see the subclasses)."""

    kind: str | None = None  # the checkpoint kind load() accepts; None: any

    def __init__(self, model: torch.nn.Module, tokenizer, *, config: dict | None = None,
                 device: str | torch.device = "cpu", dtype: str = "fp32", path: str | None = None):
        self.device = torch.device(device)
        self.dtype = check_dtype(dtype)
        precision(dtype, self.device)  # refuses fp16 on CPU before any work is done
        self.model = model.to(self.device).eval()
        encoder = getattr(model, "encoder", None)
        if hasattr(encoder, "use_input_table"):
            encoder.use_input_table = input_table_enabled()
        self.tokenizer = tokenizer
        self.config = config or {}
        self.path = path

    @classmethod
    def load(cls, path_or_name, device: str | torch.device = "cpu", dtype: str = "fp32"):
        """Load a checkpoint folder (or, later, a shipped model's name)."""
        folder = resolve_checkpoint(path_or_name)
        device = resolve_device(device)
        model, tok, cfg = load_checkpoint(folder, device, kind=cls.kind)
        return cls._from_checkpoint(model, tok, cfg, device, dtype, os.path.abspath(folder))

    @classmethod
    def _from_checkpoint(cls, model, tok, cfg, device, dtype, path):
        return cls(model, tok, config=cfg, device=device, dtype=dtype, path=path)

    def precision(self):
        """The autocast context of this model's dtype and device."""
        return precision(self.dtype, self.device)

    def tokenize(self, sequences: Sequence, with_rc: bool = False, name: str = "input") -> TokenizedSet:
        return TokenizedSet.build(list(sequences), self.tokenizer, None, with_rc=with_rc, name=name)

    @torch.inference_mode()
    def map_batches(self, data: TokenizedSet, fn: Callable, width: int, bs: int = 64,
                    rc_views: Sequence[bool] = (False,), progress: bool = False, desc: str = "") -> np.ndarray:
        """``fn(ids [B, L], lengths [B]) -> [B, width]`` over ``data`` in batches of similar
        length, averaged over ``rc_views`` (False: the sequence, True: its reverse complement);
        returns [N, width] float64 in the order of ``data``."""
        order = np.argsort(-data.lengths, kind="stable")
        out = np.zeros((len(data), width), dtype=np.float64)
        batches = [order[i:i + bs] for i in range(0, len(order), bs)]
        if progress:
            from tqdm.auto import tqdm

            batches = tqdm(batches, desc=desc, leave=False)
        for b in batches:
            acc = 0
            for rc in rc_views:
                ids, lengths, _ = data.batch(b, rc=rc)
                acc = acc + fn(ids.to(self.device), lengths.to(self.device)).float().cpu().numpy()
            out[b] = acc / len(rc_views)
        return out


class Classifier(_Loaded):
    """A sequence classifier ready for inference.

    ``classes``: class names; ``rc_average``: whether predictions average both strands (as the
    checkpoint was trained); ``backward``: the model reads each sequence's reverse complement (it
    was trained so, ``--backward``): every method here takes sequences as given and turns them;
    ``window``: the median training length in bp (0 if unknown).
    """

    kind = "classifier"

    def __init__(self, model, tokenizer, *, classes: Sequence[str], rc_average: bool = False,
                 backward: bool = False, window: int = 0, **kw):
        super().__init__(model, tokenizer, **kw)
        self.classes = list(classes)
        self.rc_average = bool(rc_average)
        self.backward = bool(backward)
        self.window = int(window or 0)

    @classmethod
    def _from_checkpoint(cls, model, tok, cfg, device, dtype, path):
        n = cfg["model"].get("n_classes")
        if len(cfg.get("classes") or []) != n:
            raise CheckpointError(f"{path}: {len(cfg.get('classes') or [])} class names for a model with {n} outputs")
        return cls(model, tok, classes=cfg["classes"], rc_average=_trained(cfg, "rc_average"),
                   backward=_trained(cfg, "backward"), window=cfg.get("window") or 0, config=cfg,
                   device=device, dtype=dtype, path=path)

    @property
    def positional_span(self) -> int:
        """The bases its positional k-mer branch reads by place (``--kmer-positional``), 0 without one."""
        positional = (self.config.get("model") or {}).get("wide_positional") or ()
        return int(positional[2]) if positional else 0

    def target_index(self, target: str = "") -> int:
        """Index of class ``target``; by default "promoter" if present, else the last class."""
        if target:
            if target not in self.classes:
                raise ValueError(f"class {target!r} is not one of the model's classes {self.classes}")
            return self.classes.index(target)
        return self.classes.index("promoter") if "promoter" in self.classes else len(self.classes) - 1

    def batch_probs(self, ids: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        """Class probabilities [B, C] (float32, on the model's device) of right-padded token ids
        [B, L] with ``lengths`` [B], both on the model's device."""
        with torch.inference_mode(), self.precision():
            logits = self.model(ids, lengths)[0]
        return logits.float().softmax(-1)

    def window_probs(self, windows: np.ndarray, bs: int = 256, progress: bool = False, desc: str = "windows") -> np.ndarray:
        """Class probabilities [N, C] (float64) of equal-length windows given as a uint8 matrix
        [N, W] of ASCII bases (variants, mutants): tokenized a batch at a time by the batched
        kernel, scored by :meth:`batch_probs`; no Python per window. One strand, as given (a
        backward model reads each window from its 3' end)."""
        windows = np.asarray(windows, dtype=np.uint8)
        if windows.ndim != 2:
            raise ValueError(f"windows must be a uint8 matrix [N, W], got shape {windows.shape}")
        if self.backward:
            windows = revcomp_windows(windows)
        n, width = windows.shape
        if width < self.tokenizer.k:
            raise ValueError(f"windows of {width} bp are shorter than k={self.tokenizer.k}")
        windows = np.ascontiguousarray(windows)
        if not windows.flags.writeable:
            windows = windows.copy()
        flat = torch.from_numpy(windows.reshape(-1))
        out = np.empty((n, len(self.classes)), dtype=np.float64)
        starts = range(0, n, bs)
        if progress:
            from tqdm.auto import tqdm

            starts = tqdm(starts, desc=desc, leave=False)
        for i in starts:
            j = min(n, i + bs)
            offsets = torch.arange(i, j + 1, dtype=torch.int64) * width
            ids, lengths = self.tokenizer.encode_batch((flat, offsets), dtype=torch.int64)
            out[i:j] = self.batch_probs(ids.to(self.device), lengths.to(self.device)).cpu().numpy()
        return out

    def token_embeddings(self, ids: torch.Tensor) -> torch.Tensor:
        """The embedding vectors [B, L, E] (float32, detached) of token ids [B, L] on the model's
        device: the input that :meth:`logits_from_embeddings` attributes to."""
        with torch.no_grad():
            return self.model.encoder.encoder.weight[ids].float()

    def logits_from_embeddings(self, ids: torch.Tensor, lengths: torch.Tensor, embeds: torch.Tensor) -> torch.Tensor:
        """Logits [B, C] (float32) of right-padded token ids [B, L] with the embedding lookup
        replaced by ``embeds`` [B, L, E]: the differentiable path of gradient attributions
        (gradient x input, integrated gradients). Unlike :meth:`batch_probs` it runs with
        autograd on, so ``torch.autograd.grad(logits..., embeds)`` works; the model stays in eval
        mode (no dropout). Tokens the classifier reads only to set its state (beyond ``max_len``)
        take their embeddings from ``embeds`` too but pass no gradient."""
        enc = self.model.encoder
        if ids.dim() != 2 or tuple(embeds.shape) != (*ids.shape, enc.emb_size):
            raise ValueError(f"embeds must be [B, L, E] = {(*ids.shape, enc.emb_size)} for ids "
                             f"{tuple(ids.shape)}, got {tuple(embeds.shape)}")
        steps = embeds.transpose(0, 1)  # time-major, as the encoder reads
        read = [0]

        def swap(module, args, out):  # the encoder reads in chunks: hand out the matching slice
            t = args[0].size(0)
            x = steps[read[0]:read[0] + t]
            read[0] += t
            return x.to(out.dtype)

        handle = enc.encoder_dp.register_forward_hook(swap)
        table = enc.use_input_table
        enc.use_input_table = False  # the no-grad prefix must read the embeddings too, not the table
        try:
            with torch.enable_grad(), self.precision():
                logits = self.model(ids, lengths)[0]
        finally:
            enc.use_input_table = table
            handle.remove()
        if read[0] != ids.size(1):
            raise RuntimeError(f"the encoder read {read[0]} of {ids.size(1)} token positions")
        return logits.float()

    def averages_strands(self, rc_average: bool | None = None) -> bool:
        """Whether predictions average both strands: ``rc_average``, or None for as trained."""
        return self.rc_average if rc_average is None else bool(rc_average)

    def views(self, rc_average: bool | None = None) -> tuple[bool, ...]:
        """The strands a prediction reads (False: the sequence, True: its reverse complement):
        both when averaging, else the reverse one for a backward model, else the sequence."""
        if self.averages_strands(rc_average):
            return (False, True)
        return (True,) if self.backward else (False,)

    def reads_rc(self, rc_average: bool | None = None) -> bool:
        """Whether a prediction reads reverse complements (its tokenized set needs them)."""
        return True in self.views(rc_average)

    def probs_of_set(self, data: TokenizedSet, bs: int = 64, rc_average: bool | None = None,
                     progress: bool = False) -> np.ndarray:
        """Probabilities [N, C] of a tokenized set (built ``with_rc`` when :meth:`reads_rc`)."""
        return self.map_batches(data, self.batch_probs, len(self.classes), bs, self.views(rc_average),
                                progress, "predict")

    def probs(self, sequences: Sequence, bs: int = 64, rc_average: bool | None = None,
              progress: bool = False) -> np.ndarray:
        """Probabilities [N, C] of raw sequences (str or bytes), in their order."""
        return self.probs_of_set(self.tokenize(sequences, with_rc=self.reads_rc(rc_average)), bs, rc_average,
                                 progress)


class Ensemble:
    """Classifiers whose class probabilities are averaged: a seed ensemble (one recipe trained
    with several seeds) or any set of classifiers of the same classes, in the same order. The
    members may differ in tokenizer, size and strand averaging; each reads the sequences its own way.

        ens = Ensemble.load(["runs/clf_s0", "runs/clf_s1", "runs/clf_s2"])
        probs = ens.probs(["ACGT...", "TTGACA..."])      # [N, C], the members' mean
    """

    def __init__(self, members: Sequence[Classifier]):
        if not members:
            raise ValueError("an ensemble needs at least one classifier")
        first = members[0]
        for m in members[1:]:
            if m.classes != first.classes:
                raise ValueError(f"{m.path}: classes {m.classes} differ from {first.path}'s {first.classes}; "
                                 "an ensemble averages the probabilities of the same classes")
        self.members = list(members)

    @classmethod
    def load(cls, paths, device: str | torch.device = "cpu", dtype: str = "fp32") -> "Ensemble":
        """Load the classifiers of checkpoint folders (or one folder: an ensemble of one)."""
        if isinstance(paths, (str, os.PathLike)):
            paths = [paths]
        return cls([Classifier.load(p, device, dtype) for p in paths])

    @property
    def classes(self) -> list[str]:
        return self.members[0].classes

    def short_of_span(self, sequences: Sequence) -> tuple[np.ndarray, int]:
        """Indices of the sequences shorter than the span a member's positional k-mer branch
        reads by place (their last bins stay empty: a window cut shorter than the training windows
        is misread), and that span (0: no member has such a branch)."""
        span = max(m.positional_span for m in self.members)
        if not span:
            return np.zeros(0, dtype=np.int64), 0
        return np.flatnonzero(np.array([len(s) for s in sequences]) < span), span

    def tokenize(self, sequences: Sequence, rc_average: bool | None = None, name: str = "input") -> list[TokenizedSet]:
        """One tokenized set per member; members with equal tokenizers that both read reverse
        complements (strand averaging, backward) or both do not share it."""
        sequences = list(sequences)
        built: dict = {}
        keys = [(m.tokenizer, m.reads_rc(rc_average)) for m in self.members]
        for m, key in zip(self.members, keys):
            if key not in built:
                built[key] = m.tokenize(sequences, with_rc=key[1], name=name)
        return [built[key] for key in keys]

    def member_probs(self, sets: Sequence[TokenizedSet], bs: int = 64, rc_average: bool | None = None,
                     progress: bool = False) -> list[np.ndarray]:
        """Each member's probabilities [N, C] of the sets :meth:`tokenize` built."""
        return [m.probs_of_set(data, bs, rc_average, progress)
                for m, data in zip(self.members, sets, strict=True)]

    def probs_of_sets(self, sets: Sequence[TokenizedSet], bs: int = 64, rc_average: bool | None = None,
                      progress: bool = False) -> np.ndarray:
        """The members' mean probabilities [N, C] of the sets :meth:`tokenize` built."""
        return np.mean(self.member_probs(sets, bs, rc_average, progress), axis=0)

    def probs(self, sequences: Sequence, bs: int = 64, rc_average: bool | None = None, progress: bool = False,
              name: str = "input") -> np.ndarray:
        """The members' mean probabilities [N, C] of raw sequences; ``rc_average`` None: each
        member as it was trained."""
        return self.probs_of_sets(self.tokenize(sequences, rc_average, name), bs, rc_average, progress)


class Encoder(_Loaded):
    """The encoder of a language-model or classifier checkpoint, for sequence features."""

    def features(self, sequences: Sequence, bs: int = 64, layer: int = -1, progress: bool = False,
                 bins: int = 0) -> np.ndarray:
        """Pooled features [N, (3 + bins) H] float32 of raw sequences, in their order: [last, max,
        mean] of ``layer``'s outputs (the classifier head's input for the last layer), then with
        ``bins`` > 0 the mean output over each of ``bins`` equal parts of the sequence (as
        ``--head-bins`` pools). The encoder of a backward classifier (``--backward``) reads each
        sequence from its 3' end, as it was trained."""
        if bins < 0:
            raise ValueError(f"bins must be >= 0, got {bins}")
        backward = _trained(self.config, "backward")
        data = self.tokenize(sequences, with_rc=backward)
        sizes = [r.hidden_size for r in self.model.encoder.rnns]
        width = (3 + bins) * sizes[layer]

        def fn(ids, lengths):
            with self.precision():
                return self.model.features(ids, lengths, layer, bins)

        return self.map_batches(data, fn, width, bs, (backward,), progress, "features").astype(np.float32)


def write_predictions(path_or_file, ids: Sequence[str], probs: np.ndarray, classes: Sequence[str],
                      columns: dict[str, Sequence[float]] | None = None) -> None:
    """TSV of predictions: ``id``, one ``p_<class>`` column per class, ``prediction``, then the
    ``columns`` given (name -> one value per row, such as ``valid_fraction``). ``path_or_file``
    is a path or an open text file (standard output, say)."""
    if len(ids) != len(probs):
        raise ValueError(f"{len(ids)} ids for {len(probs)} rows of probabilities")
    columns = dict(columns or {})
    for name, values in columns.items():
        if len(values) != len(ids):
            raise ValueError(f"column {name!r}: {len(values)} values for {len(ids)} rows")
    extra = "".join(f"\t{name}" for name in columns)
    lines = ["id\t" + "\t".join(f"p_{c}" for c in classes) + f"\tprediction{extra}\n"]
    lines += [name + "\t" + "\t".join(f"{x:.6f}" for x in p) + f"\t{classes[int(p.argmax())]}"
              + "".join(f"\t{float(v[i]):.4f}" for v in columns.values()) + "\n"
              for i, (name, p) in enumerate(zip(ids, probs))]
    if hasattr(path_or_file, "write"):
        path_or_file.writelines(lines)
        return
    tmp = f"{path_or_file}.tmp"
    with open(tmp, "w") as fh:
        fh.writelines(lines)
    os.replace(tmp, path_or_file)
