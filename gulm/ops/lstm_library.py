"""torch.library registration of the fused LSTM ops (``gulm::wd_lstm``, ``gulm::wd_lstm_backward``,
``gulm::wd_lstm_table``): their fake (meta) kernels, for torch.compile and opcheck, and the autograd
formula of ``wd_lstm``, whose backward is the ``wd_lstm_backward`` op. Imported by
:mod:`gulm.ops.lstm`, which is the API; nothing here is called directly."""
from __future__ import annotations

import torch

from gulm import _ext

__all__ = ["HAS_TABLE_OP"]



def _wd_lstm_fake(x, w_ih, w_hh, b_ih, b_hh, h0, c0, mask, save_workspace):
    T, B, _ = x.shape
    H = w_hh.shape[1]
    y = x.new_empty((T, B, H))
    hT = h0.new_empty((B, H))
    cT = c0.new_empty((B, H))
    acc = torch.float64 if x.dtype == torch.float64 else torch.float32
    if save_workspace:
        gates = x.new_empty((T, B, 4 * H))
        cell = x.new_empty((T, B, H), dtype=acc)
    else:
        gates = x.new_empty((0,))
        cell = x.new_empty((0,), dtype=acc)
    return y, hT, cT, gates, cell


def _wd_lstm_backward_fake(
    grad_y, grad_hT, grad_cT, x, w_ih, w_hh, mask, h0, c0, y, gates, cell
):
    return (
        torch.empty_like(x, memory_format=torch.contiguous_format),
        torch.empty_like(w_ih, memory_format=torch.contiguous_format),
        torch.empty_like(w_hh, memory_format=torch.contiguous_format),
        w_ih.new_empty((w_ih.shape[0],)),
        torch.empty_like(h0, memory_format=torch.contiguous_format),
        torch.empty_like(c0, memory_format=torch.contiguous_format),
    )


def _setup_context(ctx, inputs, output):
    x, w_ih, w_hh, b_ih, b_hh, h0, c0, mask, save_workspace = inputs
    y, hT, cT, gates, cell = output
    ctx.save_for_backward(x, w_ih, w_hh, mask, h0, c0, y, gates, cell)
    # Gradients of unused outputs (the workspace, often hT/cT) arrive as None instead of
    # materialized zeros of [T,B,4H].
    ctx.set_materialize_grads(False)


def _backward(ctx, grad_y, grad_hT, grad_cT, _grad_gates, _grad_cell):
    x, w_ih, w_hh, mask, h0, c0, y, gates, cell = ctx.saved_tensors
    if grad_y is None:
        grad_y = torch.zeros_like(y)
    dx, dw_ih, dw_hh, db, dh0, dc0 = _ext.ops().wd_lstm_backward(
        grad_y, grad_hT, grad_cT, x, w_ih, w_hh, mask, h0, c0, y, gates, cell
    )
    return dx, dw_ih, dw_hh, db, db, dh0, dc0, None, None


def _wd_lstm_table_fake(ids, table, w_hh, b_ih, b_hh, h0, c0):
    T, B = ids.shape
    H = w_hh.shape[1]
    return table.new_empty((T, B, H)), table.new_empty((B, H)), c0.new_empty((B, H))


# An extension built before wd_lstm_table existed still serves wd_lstm; the table path is then
# off (the AWD-LSTM module checks this flag).
HAS_TABLE_OP = _ext.HAS_EXTENSION and hasattr(torch.ops.gulm, "wd_lstm_table")

if HAS_TABLE_OP:
    torch.library.register_fake("gulm::wd_lstm_table")(_wd_lstm_table_fake)
if _ext.HAS_EXTENSION:
    torch.library.register_fake("gulm::wd_lstm")(_wd_lstm_fake)
    torch.library.register_fake("gulm::wd_lstm_backward")(_wd_lstm_backward_fake)
    torch.library.register_autograd(
        "gulm::wd_lstm", _backward, setup_context=_setup_context
    )
