"""Whole models and their factories: the language model and the sequence classifier.

Both hold their AWD-LSTM under the name ``encoder``, so the encoder weights of a language
model checkpoint (keys ``encoder.*``) initialise a classifier by name.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, fields

import torch
from torch import nn

from gulm.configs.base import ModelSize
from gulm.configs.train import ClassifierConfig
from gulm.nn.awd_lstm import AWDLSTM
from gulm.nn.heads import HEAD_HIDDEN, LinearDecoder, PoolingClassifier, pool_outputs
from gulm.nn.spectrum import CrossFitLinear, KmerSpectrum

__all__ = [
    "AWDConfig", "LanguageModel", "SequenceClassifier", "language_model", "classifier",
    "LM_DROPOUTS", "CLASSIFIER_DROPOUTS", "read_sequences",
]

# Genomic-ULMFiT's dropouts (output_p, hidden_p, input_p, embed_p, weight_p), before drop_mult.
LM_DROPOUTS = dict(output_p=0.25, hidden_p=0.1, input_p=0.2, embed_p=0.02, weight_p=0.15)
CLASSIFIER_DROPOUTS = dict(output_p=0.4, hidden_p=0.2, input_p=0.6, embed_p=0.1, weight_p=0.5)


@dataclass
class AWDConfig:
    """Architecture of an AWD-LSTM model (the ``model`` record of a checkpoint's config.json).
    Sizes default to :class:`~gulm.configs.ModelSize`, dropouts to the LM's; dropouts are
    multiplied by ``drop_mult``."""

    vocab_size: int
    emb_size: int = ModelSize.emb_size
    hidden_size: int = ModelSize.hidden_size
    n_layers: int = ModelSize.n_layers
    pad_id: int = 0
    output_p: float = LM_DROPOUTS["output_p"]
    hidden_p: float = LM_DROPOUTS["hidden_p"]
    input_p: float = LM_DROPOUTS["input_p"]
    embed_p: float = LM_DROPOUTS["embed_p"]
    weight_p: float = LM_DROPOUTS["weight_p"]
    drop_mult: float = 1.0
    tie_weights: bool = True
    out_bias: bool = True
    # classifier only
    n_classes: int = 2
    head_hidden: int = HEAD_HIDDEN
    head_p: float = 0.1
    # > 0: the head also pools the mean outputs of this many equal parts of each sequence
    head_bins: int = 0
    bptt: int = ClassifierConfig.bptt
    max_len: int = ClassifierConfig.max_len
    # the optional wide branch: k-mer frequency lengths, and the tokens' k and stride to read them
    kmer_features: tuple = ()
    # > 0: the spectrum counted over the first and the last wide_window bases, two blocks
    wide_window: int = 0
    # (length, informative): gapped k-mer blocks in the spectrum too (kmer_features may be empty)
    wide_gapped: tuple = ()
    # (k, stretch, span): position-resolved k-mer counts in the spectrum too, last
    wide_positional: tuple = ()
    token_k: int = 0
    token_stride: int = 0
    # the wide branch is a fitted linear model (standardisation + linear, set by ``fix_wide``)
    # in cross-fitted versions (wide_folds of them, plus the full fit; 0: the full fit alone),
    # kept fixed and computed in float32; False: BatchNorm + dropout + linear, trained with the network
    wide_fixed: bool = False
    wide_folds: int = 0
    # a fixed branch's logits times a learned gain exp(g), g starting at 0 (weight decay pulls it
    # back to 1): the network can turn down a regression more confident than it is on new data
    wide_gain: bool = False

    def dropouts(self) -> dict:
        m = self.drop_mult
        return dict(output_p=self.output_p * m, hidden_p=self.hidden_p * m,
                    input_p=self.input_p * m, embed_p=self.embed_p * m,
                    weight_p=self.weight_p * m)

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> "AWDConfig":
        known = {f.name for f in fields(cls)}
        unknown = set(d) - known
        if unknown:
            raise ValueError(f"unknown model config keys: {sorted(unknown)}")
        return cls(**d)


def _encoder(cfg: AWDConfig) -> AWDLSTM:
    d = cfg.dropouts()
    return AWDLSTM(cfg.vocab_size, cfg.emb_size, cfg.hidden_size, cfg.n_layers, cfg.pad_id,
                   hidden_p=d["hidden_p"], input_p=d["input_p"], embed_p=d["embed_p"],
                   weight_p=d["weight_p"])


class LanguageModel(nn.Module):
    """AWD-LSTM encoder + tied decoder.

    forward(ids [T, B]) -> (logits [T, B, V], raw_outputs, outputs); the last two are the
    encoder's per-layer activations, for AR/TAR regularisation.
    """

    def __init__(self, cfg: AWDConfig):
        super().__init__()
        self.config = cfg
        self.encoder = _encoder(cfg)
        tie = self.encoder.encoder if cfg.tie_weights else None
        self.decoder = LinearDecoder(cfg.vocab_size, cfg.emb_size, cfg.dropouts()["output_p"],
                                     tie_encoder=tie, bias=cfg.out_bias)

    def reset(self) -> None:
        self.encoder.reset()

    def forward(self, ids: torch.Tensor):
        raw_outputs, outputs = self.encoder(ids)
        return self.decoder(outputs[-1]), raw_outputs, outputs

    def features(self, ids: torch.Tensor, lengths: torch.Tensor, layer: int = -1, bins: int = 0) -> torch.Tensor:
        """Pooled encoder features [B, (3 + bins) E] of right-padded sequences ids [B, L], read like a
        classifier reads them (:func:`read_sequences`) and pooled like its head
        (:func:`~gulm.nn.heads.pool_outputs`)."""
        _, outputs, lengths, start = read_sequences(self.encoder, ids, lengths, self.config)
        return pool_outputs(outputs[layer], lengths, start, bins)

    def layer_groups(self) -> list[list[nn.Parameter]]:
        """[embedding (tied decoder), lstm 0, ..., lstm n-1, decoder bias]."""
        groups = [[self.encoder.encoder.weight]]
        groups += [list(r.parameters()) for r in self.encoder.rnns]
        rest = [p for n, p in self.decoder.named_parameters() if p is not self.encoder.encoder.weight]
        groups[-1].extend(rest)
        return groups


class SequenceClassifier(nn.Module):
    """AWD-LSTM encoder + masked concat-pooling head.

    forward(ids [B, L] right-padded with pad_id, lengths [B]) -> (logits [B, C], raw_outputs,
    outputs). Sequences longer than ``max_len`` tokens are read as in ULMFiT: the prefix
    before the last ``max_len`` tokens only sets the LSTM state (run without gradient, in
    ``bptt``-sized chunks); pooling and gradients cover the last ``max_len`` tokens.
    Padding never changes the result: the LSTM is causal and pooling is masked.
    """

    def __init__(self, cfg: AWDConfig):
        super().__init__()
        self.config = cfg
        self.encoder = _encoder(cfg)
        d = cfg.dropouts()
        self.head = PoolingClassifier(cfg.emb_size, cfg.n_classes, cfg.head_hidden,
                                      output_p=d["output_p"], hidden_head_p=cfg.head_p, bins=cfg.head_bins)
        self.wide = None
        if cfg.kmer_features or cfg.wide_gapped or cfg.wide_positional:  # wide and deep: a linear model on k-mers
            spectrum = KmerSpectrum(cfg.token_k, cfg.token_stride, cfg.kmer_features, cfg.wide_window,
                                    cfg.wide_gapped, cfg.wide_positional)
            if cfg.wide_fixed:
                linear = CrossFitLinear(spectrum.size, cfg.n_classes, cfg.wide_folds)
            else:
                linear = nn.Sequential(nn.BatchNorm1d(spectrum.size), nn.Dropout(d["output_p"]),
                                       nn.Linear(spectrum.size, cfg.n_classes))
            self.wide = nn.ModuleDict({"spectrum": spectrum, "linear": linear})
            if cfg.wide_fixed and cfg.wide_gain:
                self.wide_log_gain = nn.Parameter(torch.zeros(()))

    def forward(self, ids: torch.Tensor, lengths: torch.Tensor):
        raw_outputs, outputs, pool_end, start = read_sequences(self.encoder, ids, lengths, self.config)
        logits = self.head(outputs[-1], pool_end, start)
        if self.wide is not None:
            wide = self.wide_logits(ids, lengths, logits.dtype)
            # a fixed branch's logits stay float32: the sum is taken in float32, not rounded to bf16
            logits = logits.float() + wide if self.config.wide_fixed else logits + wide.to(logits.dtype)
        return logits, raw_outputs, outputs

    def wide_logits(self, ids: torch.Tensor, lengths: torch.Tensor, dtype=torch.float32) -> torch.Tensor:
        """[B, C] the wide branch's logits (the head's are added to them). A fixed branch runs
        in float32 whatever the autocast around it, as the model it was fitted as; in training
        mode it scores each sequence by the version fitted without its cross-fitting fold."""
        spectrum = self.wide["spectrum"]
        lengths = lengths.to(ids.device)
        spec = spectrum(ids, lengths)
        if self.config.wide_fixed:
            crossfit = self.training and self.config.wide_folds > 0
            fold = spectrum.strand_fold(ids, lengths, self.config.wide_folds) if crossfit else None
            with torch.autocast(ids.device.type, enabled=False):
                logits = self.wide["linear"](spec.float(), fold)
                return logits * self.wide_log_gain.float().exp() if self.config.wide_gain else logits
        return self.wide["linear"](spec.to(dtype))

    def fix_wide(self, mean, scale, weight, bias) -> None:
        """Set a fixed wide branch (``wide_fixed``) to fitted linear models on the k-mer spectrum,
        logits = ((x - mean) / scale) @ weight.T + bias, in ``wide_folds`` + 1 versions (see
        :class:`~gulm.nn.spectrum.CrossFitLinear`): mean and scale [V, F], weight [V, C, F],
        bias [V, C]."""
        if self.wide is None or not self.config.wide_fixed:
            raise ValueError("fix_wide needs a classifier built with kmer_features and wide_fixed")
        self.wide["linear"].set(mean, scale, weight, bias)

    def features(self, ids: torch.Tensor, lengths: torch.Tensor, layer: int = -1, bins: int = 0) -> torch.Tensor:
        """Pooled encoder features [B, (3 + bins) E] ([last, max, mean] of ``layer``'s outputs, then
        the means of ``bins`` equal parts): the head's input for the last layer and its own bins."""
        _, outputs, lengths, start = read_sequences(self.encoder, ids, lengths, self.config)
        return pool_outputs(outputs[layer], lengths, start, bins)

    def layer_groups(self) -> list[list[nn.Parameter]]:
        """[embedding, lstm 0, ..., lstm n-1, head]: the groups of gradual unfreezing."""
        groups = [[self.encoder.encoder.weight]]
        groups += [list(r.parameters()) for r in self.encoder.rnns]
        # the head's group: everything outside the encoder (head, a trained wide branch, a fixed one's gain)
        groups.append([p for name, p in self.named_parameters() if not name.startswith("encoder.")])
        return groups


def read_sequences(encoder: AWDLSTM, ids: torch.Tensor, lengths: torch.Tensor, cfg: AWDConfig):
    """Run ``encoder`` over right-padded sequences ids [B, L] as ULMFiT's classifier reads them.

    Sequences longer than ``cfg.max_len`` tokens: the prefix before the last ``max_len`` tokens
    only sets the LSTM state (run without gradient, in ``bptt``-sized chunks); outputs and
    gradients cover the rest. Returns (raw_outputs, outputs) of the part read with outputs
    [T', B, H], and each row's end and start inside it ([B] each) for pooling. Padding never
    changes the result: the LSTM is causal and pooling is masked.
    """
    if ids.dim() != 2:
        raise ValueError(f"ids must be [B, L] token ids, got shape {tuple(ids.shape)}")
    lengths = lengths.to(ids.device)
    tokens = ids.t()  # [L, B]
    L = tokens.size(0)
    start = (lengths - cfg.max_len).clamp_min(0)
    # rows' windows [start, length) all lie inside [g, L)
    g = int(start.min()) if L > cfg.max_len else 0
    encoder.reset()
    state = None
    if g > 0:
        with torch.no_grad():
            bptt = max(1, cfg.bptt)
            for i in range(0, g, bptt * 16):
                encoder(tokens[i:min(g, i + bptt * 16)], state)
                state = encoder.hidden
    raw_outputs, outputs = encoder(tokens[g:], state)
    encoder.reset()
    return raw_outputs, outputs, lengths - g, start - g


def language_model(config: AWDConfig | dict) -> LanguageModel:
    """Build a language model from an :class:`AWDConfig` (or its dict)."""
    cfg = AWDConfig.from_dict(config) if isinstance(config, dict) else config
    return LanguageModel(cfg)


def classifier(config: AWDConfig | dict) -> SequenceClassifier:
    """Build a sequence classifier from an :class:`AWDConfig` (or its dict)."""
    cfg = AWDConfig.from_dict(config) if isinstance(config, dict) else config
    return SequenceClassifier(cfg)
