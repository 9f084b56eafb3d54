"""AWD-LSTM: the encoder of Genomic-ULMFiT, on gulm's fused weight-dropped LSTM op.

Everything is time-major: token ids [T, B], activations [T, B, D].
"""
from __future__ import annotations

import math

import torch
from torch import nn

from gulm.nn.dropout import EmbeddingDropout, RNNDropout
from gulm.ops import lstm as lstm_ops
from gulm.ops.lstm import wd_lstm

__all__ = ["WeightDropLSTM", "AWDLSTM"]

State = tuple[torch.Tensor, torch.Tensor]


class WeightDropLSTM(nn.Module):
    """One LSTM layer with DropConnect on its hidden-to-hidden weights.

    Parameters carry ``nn.LSTM``'s names and layout (``weight_ih_l0`` [4H, I],
    ``weight_hh_l0`` [4H, H], ``bias_ih_l0``, ``bias_hh_l0``; gates i, f, g, o), so state dicts
    move between the two unchanged. ``weight_hh_l0`` is the raw weight: in training a fresh
    mask (Bernoulli(1-p)/(1-p)) is drawn on each forward and applied inside the op.

    forward(x [T, B, I], state=(h0 [B, H], c0 [B, H]) or None) -> (y [T, B, H], (hT, cT))
    """

    def __init__(self, input_size: int, hidden_size: int, weight_p: float = 0.0):
        super().__init__()
        self.input_size = int(input_size)
        self.hidden_size = int(hidden_size)
        self.weight_p = float(weight_p)
        gates = 4 * self.hidden_size
        self.weight_ih_l0 = nn.Parameter(torch.empty(gates, self.input_size))
        self.weight_hh_l0 = nn.Parameter(torch.empty(gates, self.hidden_size))
        self.bias_ih_l0 = nn.Parameter(torch.empty(gates))
        self.bias_hh_l0 = nn.Parameter(torch.empty(gates))
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """nn.LSTM's initialisation: U(-1/sqrt(H), 1/sqrt(H)) for every parameter."""
        bound = 1.0 / math.sqrt(self.hidden_size)
        for p in self.parameters():
            nn.init.uniform_(p, -bound, bound)

    def forward(self, x: torch.Tensor, state: State | None = None):
        h0, c0 = state if state is not None else (None, None)
        y, h, c = wd_lstm(
            x,
            self.weight_ih_l0,
            self.weight_hh_l0,
            self.bias_ih_l0,
            self.bias_hh_l0,
            h0,
            c0,
            drop_p=self.weight_p,
            training=self.training,
        )
        return y, (h, c)

    def input_table(self, emb: torch.Tensor) -> torch.Tensor:
        """``emb @ weight_ih_l0^T`` [V, 4H]: this layer's input projection of every row of an
        embedding matrix ``emb`` [V, I], for :meth:`forward_from_table`."""
        return lstm_ops.input_table(emb, self.weight_ih_l0).contiguous()

    def input_table_key(self) -> tuple:
        """Changes whenever ``weight_ih_l0`` is replaced or updated (a table built from it is stale)."""
        return (self.weight_ih_l0.data_ptr(), self.weight_ih_l0._version)

    def forward_from_table(self, ids: torch.Tensor, table: torch.Tensor, state: State | None = None):
        """Inference from token ids [T, B] whose input projections are rows of ``table``
        (:meth:`input_table` of the embedding): the same result as ``forward(emb[ids])`` in eval
        mode, with a gather instead of the input GEMM. No gradients, no DropConnect."""
        h0, c0 = state if state is not None else (None, None)
        y, h, c = lstm_ops.wd_lstm_table(ids, table, self.weight_hh_l0, self.bias_ih_l0, self.bias_hh_l0, h0, c0)
        return y, (h, c)

    def extra_repr(self) -> str:
        return f"{self.input_size}, {self.hidden_size}, weight_p={self.weight_p}"


class AWDLSTM(nn.Module):
    """Embedding -> n weight-dropped LSTM layers with locked dropout between them.

    Layer sizes: emb -> hidden -> ... -> hidden -> emb (the last layer returns to the embedding
    size so a decoder can tie its weights to the embedding).

    forward(ids [T, B]) -> (raw_outputs, outputs): per layer [T, B, H_l]; ``outputs`` are after
    the between-layer dropout (the last layer's are undropped, as in fastai). The module is
    stateful for truncated BPTT: the final (h, c) of each layer is kept, detached, and used as
    the initial state of the next call; ``reset()`` clears it, and a change of batch size
    resets it automatically. Dropouts default to none; the models set them from
    :class:`~gulm.nn.AWDConfig`.
    """

    def __init__(self, vocab_size: int, emb_size: int, hidden_size: int, n_layers: int, pad_id: int = 0, *,
                 hidden_p: float = 0.0, input_p: float = 0.0, embed_p: float = 0.0, weight_p: float = 0.0,
                 use_input_table: bool = True):
        super().__init__()
        if n_layers < 1:
            raise ValueError(f"n_layers must be >= 1, got {n_layers}")
        self.vocab_size, self.emb_size, self.hidden_size = vocab_size, emb_size, hidden_size
        self.n_layers, self.pad_id = n_layers, pad_id
        self.encoder = nn.Embedding(vocab_size, emb_size, padding_idx=pad_id)
        nn.init.uniform_(self.encoder.weight, -0.1, 0.1)
        with torch.no_grad():
            self.encoder.weight[pad_id].zero_()
        self.encoder_dp = EmbeddingDropout(self.encoder, embed_p)
        sizes = [emb_size] + [hidden_size] * (n_layers - 1) + [emb_size]
        self.rnns = nn.ModuleList(
            WeightDropLSTM(sizes[i], sizes[i + 1], weight_p) for i in range(n_layers)
        )
        self.input_dp = RNNDropout(input_p)
        self.hidden_dps = nn.ModuleList(RNNDropout(hidden_p) for _ in range(n_layers))
        self.hidden: list[State] | None = None
        # Inference on CPU: the first layer's input projection of every vocabulary entry is
        # precomputed (emb @ w_ih^T, [V, 4H]) and gathered per token instead of a GEMM over
        # all tokens. Exact algebra; set False to compare against the plain path.
        self.use_input_table = bool(use_input_table)
        self._table_cache: tuple | None = None

    def reset(self) -> None:
        """Forget the carried hidden state (start of an epoch, or a new set of streams)."""
        self.hidden = None

    def forward(self, ids: torch.Tensor, state: list[State] | None = None):
        if ids.dim() != 2:
            raise ValueError(f"ids must be [T, B] token ids, got shape {tuple(ids.shape)}")
        if state is None:
            if self.hidden is not None and self.hidden[0][0].size(0) != ids.size(1):
                self.reset()
            state = self.hidden
        table = self._input_table(ids)
        x = None if table is not None else self.input_dp(self.encoder_dp(ids))
        raw_outputs, outputs, new_state = [], [], []
        for i, (rnn, hid_dp) in enumerate(zip(self.rnns, self.hidden_dps)):
            layer_state = None if state is None else state[i]
            if i == 0 and table is not None:
                x, (h, c) = rnn.forward_from_table(ids, table, layer_state)
            else:
                x, (h, c) = rnn(x, layer_state)
            raw_outputs.append(x)
            new_state.append((h.detach(), c.detach()))
            if i != self.n_layers - 1:
                x = hid_dp(x)
            outputs.append(x)
        self.hidden = new_state
        return raw_outputs, outputs

    def _input_table(self, ids: torch.Tensor) -> torch.Tensor | None:
        """The cached [V, 4H] first-layer input table when the table path applies (eval, no
        gradients, CPU), else None. Rebuilt when the weights or the compute dtype change."""
        if (not self.use_input_table or self.training or torch.is_grad_enabled()
                or ids.device.type != "cpu" or not lstm_ops.HAS_TABLE_OP):
            return None
        emb, first = self.encoder.weight, self.rnns[0]
        dtype = torch.get_autocast_dtype("cpu") if torch.is_autocast_enabled("cpu") else emb.dtype
        key = (dtype, emb.data_ptr(), emb._version, first.input_table_key())
        if self._table_cache is None or self._table_cache[0] != key:
            self._table_cache = (key, first.input_table(emb))
        return self._table_cache[1]
