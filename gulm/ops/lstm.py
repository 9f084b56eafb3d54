"""The weight-dropped LSTM (AWD-LSTM's DropConnect on ``w_hh``) as one fused operator.

``wd_lstm`` runs a single-layer, unidirectional LSTM over a whole sequence with
``torch.ops.gulm.wd_lstm`` (C++ on CPU, CUDA kernels on GPU) and differentiates it with
``torch.ops.gulm.wd_lstm_backward``. ``wd_lstm_ref`` computes the same thing as a readable
per-time-step PyTorch loop and is the oracle of the tests; ``torch.nn.LSTM`` is a second one.

Conventions (the same as ``torch.nn.LSTM`` with one layer, so state dicts move between them):

* ``x`` [T,B,I] (time major), ``w_ih`` [4H,I], ``w_hh`` [4H,H], ``b_ih``/``b_hh`` [4H],
  ``h0``/``c0`` [B,H]; gate order (i, f, g, o).
* DropConnect: when training with ``drop_p > 0`` a mask [4H,H] of Bernoulli(1-p)/(1-p) is drawn
  once per call (:func:`dropconnect_mask`) and the recurrence uses ``w_hh * mask``. The
  gradient is the one w.r.t. the raw ``w_hh`` (so it is multiplied by the mask). Pass ``mask``
  to reuse one (tests give the op and the reference the identical mask).
* CPU GEMMs: MKL, oneDNN or, for the per-step recurrent GEMMs in fp32 on AVX-512 CPUs, gulm's
  own kernel, chosen per GEMM shape by a first-use timing (``GULM_GEMM=auto``, the default) or
  forced with ``GULM_GEMM=mkl|onednn|avx512``; :func:`gemm_backend_report` lists the choices
  made so far. Threads: torch's intra-op setting (see :mod:`gulm.threads`).
* CUDA: the kernels are checked against the reference on small inputs the first time they run
  on a device (:mod:`gulm.ops.cuda_check`); a failing kernel is replaced by the reference (or
  by cuDNN through ``torch.lstm`` when no gradient is needed), with one warning.
* Precision: the op runs in the dtype of ``x`` (float32, bfloat16, float16 on CUDA, float64
  for gradcheck); under autocast, in the autocast dtype (x, weights, biases, h0 and the mask
  are cast once). Gate math and the cell state are float32 inside the op. ``cT`` has the
  dtype of ``c0``; a missing ``c0`` is zeros in float32 for reduced-precision compute and in
  the compute dtype otherwise.
"""
from __future__ import annotations

import functools

import torch
from torch import Tensor

from gulm import _ext
from gulm.ops import cuda_check

__all__ = ["wd_lstm", "wd_lstm_ref", "dropconnect_mask", "input_table", "wd_lstm_table",
           "wd_lstm_table_ref", "gemm_backend_report", "release_scratch", "releases_scratch", "kernel_check",
           "verified_lstm"]

_REDUCED = (torch.bfloat16, torch.float16)


def dropconnect_mask(w_hh: Tensor, p: float, generator: torch.Generator | None = None) -> Tensor:
    """DropConnect mask for ``w_hh`` [4H,H]: Bernoulli(1-p) scaled by 1/(1-p).

    Same shape, dtype and device as ``w_hh``; never requires grad. ``p == 1`` gives zeros.
    """
    p = float(p)
    if not 0.0 <= p <= 1.0:
        raise ValueError(f"dropconnect_mask: drop probability p must be in [0, 1], got {p}")
    if p == 1.0:
        return torch.zeros(w_hh.shape, dtype=w_hh.dtype, device=w_hh.device)
    keep = 1.0 - p
    # Bernoulli(keep) as U < keep with U ~ U[0,1) in float32 (whatever w_hh's dtype, so that
    # keep is not rounded): the same law as bernoulli_, about twice as fast on CPU, where
    # bernoulli_ is a serial loop over the 4H*H entries.
    u = torch.rand(w_hh.shape, dtype=torch.float32, device=w_hh.device, generator=generator)
    return (u < keep).to(w_hh.dtype).div_(keep)


def _check_shapes(x, w_ih, w_hh, b_ih, b_hh, h0, c0):
    if x.dim() != 3:
        raise ValueError(f"wd_lstm: x must be [T,B,I], got shape {tuple(x.shape)}")
    T, B, I = x.shape
    if w_hh.dim() != 2 or w_hh.shape[0] != 4 * w_hh.shape[1]:
        raise ValueError(f"wd_lstm: w_hh must be [4H,H], got shape {tuple(w_hh.shape)}")
    H = w_hh.shape[1]
    expected = {"w_ih": (w_ih, (4 * H, I)), "b_ih": (b_ih, (4 * H,)), "b_hh": (b_hh, (4 * H,))}
    if h0 is not None:
        expected["h0"] = (h0, (B, H))
    if c0 is not None:
        expected["c0"] = (c0, (B, H))
    for name, (t, shape) in expected.items():
        if tuple(t.shape) != shape:
            raise ValueError(f"wd_lstm: {name} must be {list(shape)}, got {list(t.shape)}")


def _resolve_mask(w_hh, drop_p, mask, training, generator):
    """The mask the recurrence uses: None in eval or without dropout."""
    if not training:
        return None
    if mask is not None:
        if tuple(mask.shape) != tuple(w_hh.shape):
            raise ValueError(
                f"wd_lstm: mask must have the shape of w_hh {list(w_hh.shape)}, "
                f"got {list(mask.shape)}"
            )
        return mask
    if drop_p > 0.0:
        return dropconnect_mask(w_hh, drop_p, generator)
    return None


def _autocast_dtype(x: Tensor):
    """The autocast dtype for x's device, or None. Like autocast itself, float64 is left alone."""
    device_type = x.device.type
    if (
        device_type in ("cpu", "cuda")
        and x.dtype != torch.float64
        and torch.is_autocast_enabled(device_type)
    ):
        return torch.get_autocast_dtype(device_type)
    return None


def _prepare(x, w_ih, w_hh, b_ih, b_hh, h0, c0, mask):
    """Casts to the compute dtype (autocast) and fills in missing states.

    Shared by the op and the reference so both see identical inputs.
    """
    autocast = _autocast_dtype(x)
    dtype = autocast or x.dtype
    if dtype != x.dtype or any(t.dtype != dtype for t in (w_ih, w_hh, b_ih, b_hh)):
        if autocast is None:
            raise TypeError(
                "wd_lstm: x, w_ih, w_hh, b_ih and b_hh must share a dtype outside autocast, got "
                f"{x.dtype}, {w_ih.dtype}, {w_hh.dtype}, {b_ih.dtype}, {b_hh.dtype}"
            )
        x, w_ih, w_hh, b_ih, b_hh = (t.to(dtype) for t in (x, w_ih, w_hh, b_ih, b_hh))
    if mask is not None and mask.dtype != dtype:
        mask = mask.to(dtype)
    B, H = x.shape[1], w_hh.shape[1]
    if h0 is None:
        h0 = x.new_zeros((B, H))
    elif h0.dtype != dtype:
        h0 = h0.to(dtype)
    if c0 is None:
        c0 = x.new_zeros((B, H), dtype=torch.float32 if dtype in _REDUCED else dtype)
    elif c0.dtype not in (dtype, torch.float32):
        c0 = c0.to(dtype)
    return x, w_ih, w_hh, b_ih, b_hh, h0, c0, mask


def wd_lstm(
    x: Tensor,
    w_ih: Tensor,
    w_hh: Tensor,
    b_ih: Tensor,
    b_hh: Tensor,
    h0: Tensor | None = None,
    c0: Tensor | None = None,
    *,
    drop_p: float = 0.0,
    mask: Tensor | None = None,
    training: bool = True,
    generator: torch.Generator | None = None,
) -> tuple[Tensor, Tensor, Tensor]:
    """Weight-dropped LSTM over a whole sequence with the fused gulm op.

    x [T,B,I], w_ih [4H,I], w_hh [4H,H], b_ih/b_hh [4H], h0/c0 [B,H] or None (zeros).
    Returns y [T,B,H], hT [B,H], cT [B,H].

    DropConnect applies only when ``training``: ``mask`` [4H,H] if given (already scaled by
    1/(1-p)), else a mask drawn with probability ``drop_p`` from ``generator``. In eval both
    are ignored and the raw w_hh is used. See the module docstring for dtypes.
    """
    _check_shapes(x, w_ih, w_hh, b_ih, b_hh, h0, c0)
    mask = _resolve_mask(w_hh, drop_p, mask, training, generator)
    args = _prepare(x, w_ih, w_hh, b_ih, b_hh, h0, c0, mask)
    save = torch.is_grad_enabled() and any(
        t is not None and t.requires_grad for t in args
    )
    if args[0].is_cuda:
        return _CUDA_GATE.run(args[0].device, _run_op, verified_lstm, *args, save=save)
    return _run_op(*args, save=save)


def _run_op(x, w_ih, w_hh, b_ih, b_hh, h0, c0, mask, *, save: bool):
    y, hT, cT, _, _ = _ext.ops().wd_lstm(x, w_ih, w_hh, b_ih, b_hh, h0, c0, mask, save)
    return y, hT, cT


def wd_lstm_ref(
    x: Tensor,
    w_ih: Tensor,
    w_hh: Tensor,
    b_ih: Tensor,
    b_hh: Tensor,
    h0: Tensor | None = None,
    c0: Tensor | None = None,
    *,
    drop_p: float = 0.0,
    mask: Tensor | None = None,
    training: bool = True,
    generator: torch.Generator | None = None,
) -> tuple[Tensor, Tensor, Tensor]:
    """Plain-PyTorch reference of :func:`wd_lstm`: one Python iteration per time step.

    Same arguments, results and precision rules (gate math and the cell state in float32,
    h rounded to the compute dtype each step); differentiable by autograd.
    """
    _check_shapes(x, w_ih, w_hh, b_ih, b_hh, h0, c0)
    mask = _resolve_mask(w_hh, drop_p, mask, training, generator)
    x, w_ih, w_hh, b_ih, b_hh, h0, c0, mask = _prepare(x, w_ih, w_hh, b_ih, b_hh, h0, c0, mask)
    with torch.autocast(x.device.type, enabled=False):
        dtype = x.dtype
        acc = torch.float64 if dtype == torch.float64 else torch.float32
        w_rec = w_hh * mask if mask is not None else w_hh
        bias = b_ih.to(acc) + b_hh.to(acc)
        # The input projection of all time steps does not depend on h: one matmul.
        gx = (x @ w_ih.t()).to(acc)  # [T,B,4H]
        h, c = h0, c0.to(acc)
        ys = []
        for t in range(x.shape[0]):
            gates = gx[t] + (h @ w_rec.t()).to(acc) + bias
            i, f, g, o = gates.chunk(4, dim=1)
            i, f, g, o = i.sigmoid(), f.sigmoid(), g.tanh(), o.sigmoid()
            c = f * c + i * g
            h = (o * c.tanh()).to(dtype)
            ys.append(h)
        return torch.stack(ys), h, c.to(c0.dtype)


# ---- the verified path and the first-use check of the CUDA kernels ---------------------------


def verified_lstm(x, w_ih, w_hh, b_ih, b_hh, h0, c0, mask, *, save: bool):
    """What :func:`wd_lstm` runs when its kernel failed the first-use check (arguments as
    prepared for the op: compute dtype, states filled in). With ``save`` (a gradient is
    needed) the reference, which autograd differentiates; without, one call of ``torch.lstm``
    (cuDNN on a GPU) with the dropped weight. Returns y, hT, cT as the op does."""
    if save:
        return wd_lstm_ref(x, w_ih, w_hh, b_ih, b_hh, h0, c0, mask=mask, training=mask is not None)
    w_rec = w_hh * mask if mask is not None else w_hh
    with torch.autocast(x.device.type, enabled=False):
        y, hT, cT = torch.lstm(x, (h0[None], c0.to(x.dtype)[None]), (w_ih, w_rec, b_ih, b_hh),
                               True, 1, 0.0, False, False, False)
    return y, hT[0], cT[0].to(c0.dtype)


def kernel_check(kernel, dtypes=(torch.float32, torch.bfloat16, torch.float16)):
    """A first-use check (see :class:`gulm.ops.cuda_check.KernelGate`) of ``kernel``, a function
    with the signature of ``torch.ops.gulm.wd_lstm``: its outputs, final states and the
    gradients of all inputs against :func:`wd_lstm_ref` on a small problem with DropConnect,
    in each of ``dtypes``."""
    tolerance = {torch.float32: 1e-4, torch.bfloat16: 5e-2, torch.float16: 5e-3}

    def check(device):
        T, B, I, H = 5, 3, 7, 6
        g = torch.Generator().manual_seed(0)
        base = [torch.rand(shape, generator=g) * 2 - 1 for shape in
                ((T, B, I), (4 * H, I), (4 * H, H), (4 * H,), (4 * H,), (B, H), (B, H))]
        weights = [torch.randn(shape, generator=g) for shape in ((T, B, H), (B, H), (B, H))]
        mask = (torch.rand(4 * H, H, generator=g) > 0.3).float() / 0.7
        for dtype in dtypes:
            results = []
            for fn in (kernel, None):
                leaves = [t.to(device, dtype).requires_grad_() for t in base[:6]]
                c0 = base[6].to(device).requires_grad_()  # float32 cell state
                args = (*leaves, c0, mask.to(device, dtype))
                with torch.enable_grad():
                    if fn is None:
                        outs = wd_lstm_ref(*args[:7], mask=args[7], training=True)
                    else:
                        outs = fn(*args, True)[:3]
                    loss = sum((o.float() * w.to(device)).sum() for o, w in zip(outs, weights))
                    grads = torch.autograd.grad(loss, [*leaves, c0], allow_unused=True)
                results.append([*outs, *grads])
            tol = tolerance.get(dtype, 1e-4)
            problem = cuda_check.compare_outputs(results[0], results[1], atol=tol, rtol=tol)
            if problem:
                return f"{dtype}: {problem}"
        return None

    return check


def gemm_backend_report() -> dict:
    """The CPU GEMM backend in use: what GULM_GEMM asks for, whether oneDNN is available, the
    CPU's vector level (gulm's own fp32 kernel needs "avx512"), and the per-shape choices timed
    so far in this process (a list of dicts with m, n, k, the flags, each backend's time in
    microseconds, negative where it could not run, and the backend kept)."""
    _ext.require()
    return {"request": _ext._C.gemm_request(), "onednn_available": _ext._C.gemm_onednn_available(),
            "cpu_isa": _ext._C.cpu_isa(), "choices": _ext._C.gemm_choices()}


def release_scratch() -> int:
    """Free the scratch memory that the CPU kernels keep between calls on this thread (their
    workspaces, by size: tens of MB per layer of an AWD-LSTM, at most 1 GiB, or the
    GULM_LSTM_SCRATCH_MB environment variable's limit; 0 keeps none), e.g. after training in a
    process that goes on to do other work. The training phases and scans call it when they end.
    Returns the bytes freed (0 without the compiled extension); the next call of the op
    allocates again."""
    if not _ext.HAS_EXTENSION:
        return 0
    return int(_ext._C.release_lstm_scratch())


def releases_scratch(fn):
    """Decorate a function that runs the op many times (a training phase, a scan) so that,
    however it ends, the scratch memory kept on this thread is freed (:func:`release_scratch`)."""
    @functools.wraps(fn)
    def run(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        finally:
            release_scratch()
    return run


_CUDA_GATE = cuda_check.KernelGate(
    "gulm::wd_lstm (forward and backward)",
    kernel_check(lambda *args: _ext.ops().wd_lstm(*args)),
    "the reference wd_lstm_ref (cuDNN torch.lstm without gradients)",
)


# ---- inference over token ids: the first layer's input projection as a table ----------------


def input_table(emb: Tensor, w_ih: Tensor) -> Tensor:
    """The first layer's input projection of every vocabulary entry: ``emb @ w_ih^T`` [V,4H].

    In eval mode the first LSTM layer sees ``emb[ids]``, so its input projection
    ``emb[ids] @ w_ih^T`` is ``input_table(emb, w_ih)[ids]``: a gather instead of a GEMM over
    every token. Under autocast both factors are cast first, as :func:`wd_lstm` casts them.
    """
    dtype = _autocast_dtype(emb) or emb.dtype
    with torch.autocast(emb.device.type, enabled=False):
        return emb.to(dtype) @ w_ih.to(dtype).t()


def _prepare_table(ids, table, w_hh, b_ih, b_hh, h0, c0):
    if ids.dim() != 2 or ids.dtype != torch.int64:
        raise ValueError(f"wd_lstm_table: ids must be int64 [T,B], got {ids.dtype} {tuple(ids.shape)}")
    if w_hh.dim() != 2 or w_hh.shape[0] != 4 * w_hh.shape[1]:
        raise ValueError(f"wd_lstm_table: w_hh must be [4H,H], got shape {tuple(w_hh.shape)}")
    H = w_hh.shape[1]
    if table.dim() != 2 or table.shape[1] != 4 * H:
        raise ValueError(f"wd_lstm_table: table must be [V,{4 * H}], got {tuple(table.shape)}")
    dtype = table.dtype
    w_hh, b_ih, b_hh = (t.to(dtype) for t in (w_hh, b_ih, b_hh))
    B = ids.shape[1]
    h0 = table.new_zeros((B, H)) if h0 is None else h0.to(dtype)
    if c0 is None:
        c0 = table.new_zeros((B, H), dtype=torch.float32 if dtype in _REDUCED else dtype)
    elif c0.dtype not in (dtype, torch.float32):
        c0 = c0.to(dtype)
    return ids, table, w_hh, b_ih, b_hh, h0, c0


def wd_lstm_table(ids: Tensor, table: Tensor, w_hh: Tensor, b_ih: Tensor, b_hh: Tensor,
                  h0: Tensor | None = None, c0: Tensor | None = None
                  ) -> tuple[Tensor, Tensor, Tensor]:
    """Inference-only LSTM layer over token ids (CPU): ``wd_lstm(emb[ids], w_ih, ...)`` in eval
    mode, with the input projection read from ``table = input_table(emb, w_ih)`` [V,4H].

    Runs in the table's dtype (w_hh, biases and h0 are cast to it); no gradients.
    Returns y [T,B,H], hT [B,H], cT [B,H].
    """
    args = _prepare_table(ids, table, w_hh, b_ih, b_hh, h0, c0)
    if torch.is_grad_enabled() and any(t.requires_grad for t in args[1:]):
        raise RuntimeError("wd_lstm_table is inference-only: call it under torch.no_grad() "
                           "or torch.inference_mode(), or use wd_lstm for training")
    return _ext.ops().wd_lstm_table(*args)


def wd_lstm_table_ref(ids: Tensor, table: Tensor, w_hh: Tensor, b_ih: Tensor, b_hh: Tensor,
                      h0: Tensor | None = None, c0: Tensor | None = None
                      ) -> tuple[Tensor, Tensor, Tensor]:
    """Reference of :func:`wd_lstm_table`: gather the rows, then :func:`wd_lstm_ref` with an
    identity input projection."""
    ids, table, w_hh, b_ih, b_hh, h0, c0 = _prepare_table(ids, table, w_hh, b_ih, b_hh, h0, c0)
    eye = torch.eye(table.shape[1], dtype=table.dtype, device=table.device)
    with torch.autocast(table.device.type, enabled=False):
        return wd_lstm_ref(table[ids], eye, w_hh, b_ih, b_hh, h0, c0, training=False)


# The torch.library registration (fake kernels, autograd) of the ops above; HAS_TABLE_OP says
# whether this build has the table op.
from gulm.ops.lstm_library import HAS_TABLE_OP  # noqa: E402  (registers on import)
