"""Tests of gulm.ops.lstm: the fused weight-dropped LSTM op against its two oracles.

Oracles: ``wd_lstm_ref`` (a plain per-time-step PyTorch loop) and ``torch.nn.LSTM`` (with p=0,
or with the identical dropped weight copied in). Outputs, final states and the gradients of all
seven inputs are compared with ``assert_close``.
"""
import pytest
import torch

from gulm import _ext
from gulm.ops.lstm import dropconnect_mask, wd_lstm, wd_lstm_ref

NAMES = ("x", "w_ih", "w_hh", "b_ih", "b_hh", "h0", "c0")


def _has_kernel(device: str) -> bool:
    if not _ext.HAS_EXTENSION:
        return False
    return torch._C._dispatch_has_kernel_for_dispatch_key("gulm::wd_lstm", device.upper())


needs_cpu = pytest.mark.skipif(not _has_kernel("cpu"), reason="gulm CPU wd_lstm kernel not built")
needs_cuda = pytest.mark.skipif(
    not (torch.cuda.is_available() and _has_kernel("cuda")),
    reason="needs a CUDA device and the CUDA build of gulm._C",
)


# ---- helpers ---------------------------------------------------------------------------------


def make_inputs(T, B, I, H, dtype=torch.float32, seed=0, requires_grad=False, device="cpu"):
    """Random inputs in nn.LSTM's initialisation range, as a dict of the seven tensors."""
    g = torch.Generator().manual_seed(seed)
    s = H**-0.5

    def r(*shape, scale=1.0):
        t = (torch.rand(*shape, generator=g, dtype=torch.float64) * 2 - 1) * scale
        return t.to(device=device, dtype=dtype).requires_grad_(requires_grad)

    return dict(
        x=r(T, B, I), w_ih=r(4 * H, I, scale=s), w_hh=r(4 * H, H, scale=s),
        b_ih=r(4 * H, scale=s), b_hh=r(4 * H, scale=s), h0=r(B, H), c0=r(B, H),
    )


def loss_weights(T, B, H, seed=1, device="cpu"):
    g = torch.Generator().manual_seed(seed)
    return [torch.randn(s, generator=g, dtype=torch.float64).to(device) for s in ((T, B, H), (B, H), (B, H))]


def run(fn, inp, rw, **kw):
    """Outputs of fn and the gradients of a random linear loss w.r.t. every input."""
    outs = fn(**inp, **kw)
    loss = sum((o.double() * w).sum() for o, w in zip(outs, rw))
    leaves = [inp[n] for n in NAMES if inp[n] is not None and inp[n].requires_grad]
    grads = torch.autograd.grad(loss, leaves)
    return list(outs), dict(zip([n for n in NAMES if inp[n] is not None and inp[n].requires_grad], grads))


def nn_lstm(inp, w_rec):
    """torch.nn.LSTM with the given (already dropped) recurrent weight; returns (y, hT, cT)
    and the module, whose parameter gradients are the oracle's."""
    x = inp["x"]
    lstm = torch.nn.LSTM(x.shape[2], inp["w_hh"].shape[1], dtype=x.dtype)
    with torch.no_grad():
        lstm.weight_ih_l0.copy_(inp["w_ih"])
        lstm.weight_hh_l0.copy_(w_rec)
        lstm.bias_ih_l0.copy_(inp["b_ih"])
        lstm.bias_hh_l0.copy_(inp["b_hh"])
    x = x.detach().requires_grad_()
    h0 = inp["h0"].detach()[None].requires_grad_()
    c0 = inp["c0"].detach()[None].requires_grad_()
    y, (h, c) = lstm(x, (h0, c0))
    return (y, h[0], c[0]), lstm, (x, h0, c0)


def assert_all_close(a, b, **tol):
    for k in range(len(a)):
        torch.testing.assert_close(a[k], b[k], **tol, msg=lambda m, k=k: f"output {k}: {m}")


def assert_grads_close(ga, gb, **tol):
    assert ga.keys() == gb.keys()
    for k in ga:
        torch.testing.assert_close(ga[k], gb[k], **tol, msg=lambda m, k=k: f"grad {k}: {m}")


SIZES = [  # (T, B, I, H): T=1, B=1, H not a multiple of 8/16, I != H
    (1, 1, 3, 7),
    (5, 3, 9, 13),
    (4, 2, 16, 129),
    (3, 5, 8, 8),
]


# ---- the reference against nn.LSTM -------------------------------------------------------------


@pytest.mark.parametrize("p", [0.0, 0.3])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_ref_matches_nn_lstm(p, dtype):
    inp = make_inputs(5, 3, 7, 13, dtype, requires_grad=True)
    mask = dropconnect_mask(inp["w_hh"].detach(), p, torch.Generator().manual_seed(1)) if p else None
    rw = loss_weights(5, 3, 13)
    outs, grads = run(wd_lstm_ref, inp, rw, mask=mask)
    w_rec = inp["w_hh"].detach() * mask if mask is not None else inp["w_hh"].detach()
    eouts, lstm, (x, h0, c0) = nn_lstm(inp, w_rec)
    sum((o.double() * w).sum() for o, w in zip(eouts, rw)).backward()
    assert_all_close(outs, eouts)
    dw_hh = lstm.weight_hh_l0.grad * mask if mask is not None else lstm.weight_hh_l0.grad
    expected = dict(x=x.grad, w_ih=lstm.weight_ih_l0.grad, w_hh=dw_hh, b_ih=lstm.bias_ih_l0.grad,
                    b_hh=lstm.bias_hh_l0.grad, h0=h0.grad[0], c0=c0.grad[0])
    assert_grads_close(grads, expected)


# ---- the op against the references ---------------------------------------------------------------


@needs_cpu
@pytest.mark.parametrize("p", [0.0, 0.4])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("size", SIZES, ids=lambda s: "T{}B{}I{}H{}".format(*s))
def test_op_matches_ref(size, dtype, p):
    T, B, I, H = size
    inp = make_inputs(T, B, I, H, dtype, requires_grad=True)
    mask = dropconnect_mask(inp["w_hh"].detach(), p, torch.Generator().manual_seed(2)) if p else None
    rw = loss_weights(T, B, H)
    outs, grads = run(wd_lstm, inp, rw, mask=mask)
    eouts, egrads = run(wd_lstm_ref, inp, rw, mask=mask)
    assert_all_close(outs, eouts)
    assert_grads_close(grads, egrads)


@needs_cpu
@pytest.mark.parametrize("p", [0.0, 0.5])
def test_op_matches_nn_lstm(p):
    T, B, I, H = 6, 4, 11, 21
    inp = make_inputs(T, B, I, H, requires_grad=True)
    mask = dropconnect_mask(inp["w_hh"].detach(), p, torch.Generator().manual_seed(3)) if p else None
    rw = loss_weights(T, B, H)
    outs, grads = run(wd_lstm, inp, rw, mask=mask)
    w_rec = inp["w_hh"].detach() * mask if mask is not None else inp["w_hh"].detach()
    eouts, lstm, (x, h0, c0) = nn_lstm(inp, w_rec)
    sum((o.double() * w).sum() for o, w in zip(eouts, rw)).backward()
    assert_all_close(outs, eouts)
    dw_hh = lstm.weight_hh_l0.grad * mask if mask is not None else lstm.weight_hh_l0.grad
    expected = dict(x=x.grad, w_ih=lstm.weight_ih_l0.grad, w_hh=dw_hh, b_ih=lstm.bias_ih_l0.grad,
                    b_hh=lstm.bias_hh_l0.grad, h0=h0.grad[0], c0=c0.grad[0])
    assert_grads_close(grads, expected)


@needs_cpu
def test_noncontiguous_inputs():
    T, B, I, H = 4, 3, 6, 10
    base = make_inputs(T, B, I, H)
    g = torch.Generator().manual_seed(4)
    # Same values, strided layouts: x from a [B,T,I] buffer, weights as column slices, h0/c0
    # transposed, biases with stride 2.
    nc = {
        "x": base["x"].transpose(0, 1).contiguous().transpose(0, 1),
        "w_ih": torch.cat([base["w_ih"], torch.randn(4 * H, 5, generator=g)], 1)[:, :I],
        "w_hh": base["w_hh"].t().contiguous().t(),
        "b_ih": torch.stack([base["b_ih"], base["b_ih"]], 1)[:, 0],
        "b_hh": torch.stack([base["b_hh"], base["b_hh"]], 1)[:, 1],
        "h0": base["h0"].t().contiguous().t(),
        "c0": base["c0"].t().contiguous().t(),
    }
    assert not any(t.is_contiguous() for t in nc.values())
    for t in nc.values():
        t.requires_grad_()
    mask = dropconnect_mask(base["w_hh"], 0.3, torch.Generator().manual_seed(5))
    mask_nc = mask.t().contiguous().t()
    rw = loss_weights(T, B, H)
    outs, grads = run(wd_lstm, nc, rw, mask=mask_nc)
    for t in base.values():
        t.requires_grad_()
    eouts, egrads = run(wd_lstm_ref, base, rw, mask=mask)
    assert_all_close(outs, eouts)
    assert_grads_close(grads, egrads)


@needs_cpu
def test_train_eval_and_mask_drawing():
    inp = make_inputs(5, 2, 4, 9)
    p = 0.5
    # Eval: no DropConnect whatever drop_p or mask say.
    mask = dropconnect_mask(inp["w_hh"], p)
    ev = wd_lstm(**inp, drop_p=p, mask=mask, training=False)
    assert_all_close(ev, wd_lstm_ref(**inp))
    assert_all_close(wd_lstm(**inp, drop_p=0.0), wd_lstm_ref(**inp))
    # Train: the mask is drawn once from the generator, exactly as dropconnect_mask draws it.
    tr = wd_lstm(**inp, drop_p=p, generator=torch.Generator().manual_seed(7))
    m = dropconnect_mask(inp["w_hh"], p, torch.Generator().manual_seed(7))
    assert_all_close(tr, wd_lstm_ref(**inp, mask=m))
    assert_all_close(tr, wd_lstm_ref(**inp, drop_p=p, generator=torch.Generator().manual_seed(7)))
    assert not torch.allclose(tr[0], ev[0])


def test_dropconnect_mask():
    w = torch.empty(400, 100)
    m = dropconnect_mask(w, 0.25, torch.Generator().manual_seed(0))
    assert m.shape == w.shape and m.dtype == w.dtype and not m.requires_grad
    vals = set(m.unique().tolist())
    assert vals <= {0.0, torch.tensor(1 / 0.75).item()}
    assert abs(m.mean().item() - 1.0) < 0.02
    assert torch.equal(dropconnect_mask(w, 0.0), torch.ones_like(w))
    assert torch.equal(dropconnect_mask(w, 1.0), torch.zeros_like(w))
    with pytest.raises(ValueError, match="drop probability"):
        dropconnect_mask(w, 1.5)


@needs_cpu
def test_only_final_state_used():
    """Gradients arrive as None for unused outputs (y here); the op treats them as zeros."""
    inp = make_inputs(4, 2, 3, 6, requires_grad=True)
    rw = loss_weights(4, 2, 6)
    rw[0] = torch.zeros_like(rw[0])

    def last(fn):
        _, h, c = fn(**inp)
        loss = (h.double() * rw[1]).sum() + (c.double() * rw[2]).sum()
        return torch.autograd.grad(loss, [inp[n] for n in NAMES])

    for a, b in zip(last(wd_lstm), last(wd_lstm_ref)):
        torch.testing.assert_close(a, b)
    # Only y used: grad_hT / grad_cT are None.
    y, _, _ = wd_lstm(**inp)
    gy = torch.autograd.grad(y.sum(), [inp["x"]])[0]
    yr, _, _ = wd_lstm_ref(**inp)
    torch.testing.assert_close(gy, torch.autograd.grad(yr.sum(), [inp["x"]])[0])


@needs_cpu
def test_long_sequence_inference_chunks_match_training_path():
    """No grad: the input projection runs in chunks of steps (here 32 of 40); same result."""
    inp = make_inputs(40, 64, 16, 1024, seed=8)
    with torch.no_grad():
        infer = wd_lstm(**inp, training=False)
    inp["x"].requires_grad_()
    train = wd_lstm(**inp, training=False)
    assert_all_close(infer, [t.detach() for t in train], rtol=1e-5, atol=1e-5)


@needs_cpu
def test_zero_length_sequence():
    inp = make_inputs(0, 3, 4, 5)
    y, hT, cT, gates, cell = torch.ops.gulm.wd_lstm(*inp.values(), None, True)
    assert y.shape == (0, 3, 5)
    torch.testing.assert_close(hT, inp["h0"])
    torch.testing.assert_close(cT, inp["c0"])


@needs_cpu
def test_error_messages():
    inp = make_inputs(3, 2, 4, 5)
    ops = torch.ops.gulm
    args = list(inp.values())
    bad_h0 = args[:5] + [torch.zeros(2, 6)] + args[6:]
    with pytest.raises(RuntimeError, match=r"h0 must have shape \[2, 5\]"):
        ops.wd_lstm(*bad_h0, None, False)
    bad_w = args[:1] + [args[1].double()] + args[2:]
    with pytest.raises(RuntimeError, match="w_ih must have dtype Float"):
        ops.wd_lstm(*bad_w, None, False)
    with pytest.raises(RuntimeError, match=r"mask must have shape \[20, 5\]"):
        ops.wd_lstm(*args, torch.ones(5, 5), False)
    with pytest.raises(RuntimeError, match=r"x must be \[T,B,I\]"):
        ops.wd_lstm(args[0][0], *args[1:], None, False)
    with pytest.raises(RuntimeError, match="supported dtypes"):
        ops.wd_lstm(*[a.half() for a in args], None, False)
    y, hT, cT, gates, cell = ops.wd_lstm(*args, None, False)
    with pytest.raises(RuntimeError, match="save_workspace"):
        ops.wd_lstm_backward(torch.ones_like(y), None, None, inp["x"], inp["w_ih"], inp["w_hh"],
                             None, inp["h0"], inp["c0"], y, gates, cell)
    with pytest.raises(ValueError, match=r"w_ih must be \[20, 4\]"):
        wd_lstm(inp["x"], inp["w_ih"][:, :3], *args[2:])
    with pytest.raises(TypeError, match="share a dtype"):
        wd_lstm(inp["x"].double(), *args[1:])


# ---- gradcheck, opcheck, torch.compile --------------------------------------------------------------


@needs_cpu
@pytest.mark.parametrize("p", [0.0, 0.4])
def test_gradcheck_float64(p):
    inp = make_inputs(3, 2, 3, 5, torch.float64, requires_grad=True)
    mask = dropconnect_mask(inp["w_hh"].detach(), p, torch.Generator().manual_seed(6)) if p else None
    assert torch.autograd.gradcheck(lambda *a: wd_lstm(*a, mask=mask), tuple(inp.values()))


def _opcheck_args(requires_grad, with_mask, save):
    inp = make_inputs(3, 2, 4, 5, requires_grad=requires_grad)
    mask = dropconnect_mask(inp["w_hh"].detach(), 0.3, torch.Generator().manual_seed(9)) if with_mask else None
    return (*inp.values(), mask, save)


@needs_cpu
@pytest.mark.parametrize("with_mask", [False, True])
@pytest.mark.parametrize("requires_grad", [False, True])
def test_opcheck_forward(requires_grad, with_mask):
    torch.library.opcheck(torch.ops.gulm.wd_lstm.default, _opcheck_args(requires_grad, with_mask, True))
    if not requires_grad:
        torch.library.opcheck(torch.ops.gulm.wd_lstm.default, _opcheck_args(False, with_mask, False))


@needs_cpu
@pytest.mark.parametrize("with_state_grads", [False, True])
def test_opcheck_backward(with_state_grads):
    args = _opcheck_args(False, True, True)
    x, w_ih, w_hh, b_ih, b_hh, h0, c0, mask, _ = args
    y, hT, cT, gates, cell = torch.ops.gulm.wd_lstm(*args)
    g = torch.Generator().manual_seed(10)
    gy = torch.randn(y.shape, generator=g)
    ghT = torch.randn(hT.shape, generator=g) if with_state_grads else None
    gcT = torch.randn(cT.shape, generator=g) if with_state_grads else None
    torch.library.opcheck(
        torch.ops.gulm.wd_lstm_backward.default,
        (gy, ghT, gcT, x, w_ih, w_hh, mask, h0, c0, y, gates, cell),
    )


@needs_cpu
def test_torch_compile_fullgraph_matches_eager():
    torch._dynamo.reset()
    inp = make_inputs(5, 3, 6, 10, requires_grad=True)
    mask = dropconnect_mask(inp["w_hh"].detach(), 0.3, torch.Generator().manual_seed(11))

    def f(x, w_ih, w_hh, b_ih, b_hh, h0, c0, mask):
        y, h, c = wd_lstm(x, w_ih, w_hh, b_ih, b_hh, h0, c0, mask=mask)
        return (y * 2).sum() + h.sum() + c.sum()

    compiled = torch.compile(f, fullgraph=True)
    args = [*inp.values(), mask]
    loss_c = compiled(*args)
    grads_c = torch.autograd.grad(loss_c, list(inp.values()))
    loss_e = f(*args)
    grads_e = torch.autograd.grad(loss_e, list(inp.values()))
    torch.testing.assert_close(loss_c, loss_e)
    for a, b in zip(grads_c, grads_e):
        torch.testing.assert_close(a, b)


# ---- reduced precision ----------------------------------------------------------------------------


@needs_cpu
def test_bfloat16_matches_fp32_reference():
    T, B, I, H = 6, 4, 12, 24
    inp32 = make_inputs(T, B, I, H)
    # The same values, rounded to bf16; the fp32 reference runs on the rounded values.
    inp16 = {k: v.bfloat16().requires_grad_() for k, v in inp32.items()}
    inp16["c0"] = inp32["c0"].bfloat16().float().requires_grad_()  # fp32 cell state in and out
    ref_in = {k: v.detach().float().requires_grad_() for k, v in inp16.items()}
    mask = dropconnect_mask(inp32["w_hh"], 0.5, torch.Generator().manual_seed(12))  # exact in bf16
    rw = loss_weights(T, B, H)
    outs, grads = run(wd_lstm, inp16, rw, mask=mask.bfloat16())
    eouts, egrads = run(wd_lstm_ref, ref_in, rw, mask=mask)
    assert outs[0].dtype == torch.bfloat16 and outs[2].dtype == torch.float32
    assert_all_close([o.float() for o in outs], eouts, atol=2e-2, rtol=2e-2)
    for k, g in grads.items():
        e = egrads[k]
        scale = e.abs().max().item()
        torch.testing.assert_close(g.float(), e, atol=3e-2 * scale, rtol=0, msg=lambda m, k=k: f"grad {k}: {m}")
    # The bf16 reference follows the same precision rules: forward identical up to GEMM order.
    r16 = wd_lstm_ref(**{k: v.detach() for k, v in inp16.items()}, mask=mask.bfloat16())
    assert_all_close([o.float() for o in outs], [o.float() for o in r16], atol=1e-2, rtol=1e-2)


@needs_cpu
def test_autocast_bfloat16():
    T, B, I, H = 5, 3, 8, 16
    inp = make_inputs(T, B, I, H, requires_grad=True)
    del inp["c0"], inp["h0"]
    mask = dropconnect_mask(inp["w_hh"].detach(), 0.2, torch.Generator().manual_seed(13))
    rw = loss_weights(T, B, H)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        y, hT, cT = wd_lstm(**inp, mask=mask)
        yr, hr, cr = wd_lstm_ref(**inp, mask=mask)
    assert y.dtype == hT.dtype == torch.bfloat16
    assert cT.dtype == torch.float32  # c0 defaulted to fp32 zeros: the cell state stays fp32
    assert_all_close([y, hT, cT], [yr, hr, cr], atol=1e-2, rtol=1e-2)
    loss = sum((o.double() * w).sum() for o, w in zip((y, hT, cT), rw))
    grads = torch.autograd.grad(loss, list(inp.values()))
    assert all(g.dtype == torch.float32 for g in grads)  # w.r.t. the fp32 leaves
    # Against the fp32 computation.
    _, egrads = run(wd_lstm_ref, {**inp, "h0": None, "c0": None}, rw, mask=mask)
    for g, (k, e) in zip(grads, egrads.items()):
        torch.testing.assert_close(g, e, atol=5e-2 * e.abs().max().item(), rtol=0)
    # Like autocast itself, float64 inputs are left in float64.
    inp64 = {k: v.detach().double() for k, v in inp.items()}
    with torch.autocast("cpu", dtype=torch.bfloat16):
        y64, _, c64 = wd_lstm(**inp64, mask=mask.double())
    assert y64.dtype == c64.dtype == torch.float64


# ---- CUDA (run on a GPU machine) --------------------------------------------------------------------


@pytest.mark.cuda
@needs_cuda
@pytest.mark.parametrize(
    "dtype,tol",
    [
        (torch.float32, dict(atol=1e-5, rtol=1e-4)),
        (torch.bfloat16, dict(atol=2e-2, rtol=2e-2)),
        (torch.float16, dict(atol=5e-3, rtol=5e-3)),
    ],
    ids=["fp32", "bf16", "fp16"],
)
@pytest.mark.parametrize("size", SIZES + [(7, 64, 40, 300)], ids=lambda s: "T{}B{}I{}H{}".format(*s))
@pytest.mark.parametrize("p", [0.0, 0.3])
def test_cuda_matches_reference(size, dtype, tol, p):
    T, B, I, H = size
    inp = make_inputs(T, B, I, H, dtype, requires_grad=True, device="cuda")
    mask = dropconnect_mask(inp["w_hh"].detach(), p, torch.Generator("cuda").manual_seed(14)) if p else None
    rw = loss_weights(T, B, H, device="cuda")
    outs, grads = run(wd_lstm, inp, rw, mask=mask)
    # Oracle: the fp32 reference on the same (rounded) values; fp32 vs fp32 at default tolerance.
    ref_in = {k: v.detach().float().requires_grad_() for k, v in inp.items()}
    eouts, egrads = run(wd_lstm_ref, ref_in, rw, mask=None if mask is None else mask.float())
    assert_all_close([o.float() for o in outs], eouts, **tol)
    for k, g in grads.items():
        e = egrads[k]
        if dtype == torch.float32:
            torch.testing.assert_close(g, e, atol=1e-5, rtol=1e-4)
        else:
            torch.testing.assert_close(g.float(), e, atol=3e-2 * e.abs().max().item(), rtol=0)


@pytest.mark.cuda
@needs_cuda
def test_cuda_matches_cpu_op_and_compiles():
    T, B, I, H = 9, 5, 7, 33
    cpu = make_inputs(T, B, I, H, requires_grad=True)
    gpu = {k: v.detach().cuda().requires_grad_() for k, v in cpu.items()}
    mask = dropconnect_mask(cpu["w_hh"].detach(), 0.3, torch.Generator().manual_seed(15))
    rw = loss_weights(T, B, H)
    o_c, g_c = run(wd_lstm, cpu, rw, mask=mask)
    o_g, g_g = run(wd_lstm, gpu, [w.cuda() for w in rw], mask=mask.cuda())
    assert_all_close([o.cpu() for o in o_g], o_c, atol=1e-5, rtol=1e-4)
    assert_grads_close({k: v.cpu() for k, v in g_g.items()}, g_c, atol=1e-5, rtol=1e-4)
    # Non-contiguous CUDA inputs, opcheck and torch.compile on the device.
    nc = dict(gpu)
    nc["x"] = gpu["x"].detach().transpose(0, 1).contiguous().transpose(0, 1).requires_grad_()
    o_nc, _ = run(wd_lstm, nc, [w.cuda() for w in rw], mask=mask.cuda())
    assert_all_close(o_nc, o_g)
    args = (*[v.detach() for v in gpu.values()], mask.cuda(), True)
    torch.library.opcheck(torch.ops.gulm.wd_lstm.default, args)
    torch._dynamo.reset()
    f = torch.compile(lambda *a: wd_lstm(*a, mask=mask.cuda())[0].sum(), fullgraph=True)
    torch.testing.assert_close(f(*gpu.values()), o_g[0].sum())
    with torch.autocast("cuda", dtype=torch.bfloat16):
        y, _, c = wd_lstm(**gpu, mask=mask.cuda())
        yr, _, cr = wd_lstm_ref(**gpu, mask=mask.cuda())
    assert y.dtype == torch.bfloat16
    torch.testing.assert_close(y.float(), yr.float(), atol=2e-2, rtol=2e-2)
