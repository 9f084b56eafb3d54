"""Tests of gulm.ops.lstm: the fused weight-dropped LSTM op against its references."""
import pytest
import torch

from gulm.ops.lstm import dropconnect_mask, wd_lstm, wd_lstm_ref


def _has_kernel(device: str) -> bool:
    try:
        return torch._C._dispatch_has_kernel_for_dispatch_key("gulm::wd_lstm", device.upper())
    except RuntimeError:
        return False


needs_cpu_kernel = pytest.mark.skipif(not _has_kernel("cpu"), reason="gulm CPU wd_lstm kernel not built")


def make_inputs(T, B, I, H, dtype=torch.float32, seed=0, requires_grad=False):
    g = torch.Generator().manual_seed(seed)
    s = H ** -0.5

    def r(*shape, scale=1.0):
        t = (torch.rand(*shape, generator=g, dtype=torch.float64) * 2 - 1) * scale
        return t.to(dtype).requires_grad_(requires_grad)

    return dict(
        x=r(T, B, I), w_ih=r(4 * H, I, scale=s), w_hh=r(4 * H, H, scale=s),
        b_ih=r(4 * H, scale=s), b_hh=r(4 * H, scale=s), h0=r(B, H), c0=r(B, H),
    )


def nn_lstm_oracle(inp, w_rec):
    """torch.nn.LSTM with the (already dropped) recurrent weight copied in."""
    x = inp["x"]
    lstm = torch.nn.LSTM(x.shape[2], inp["w_hh"].shape[1], dtype=x.dtype)
    with torch.no_grad():
        lstm.weight_ih_l0.copy_(inp["w_ih"])
        lstm.weight_hh_l0.copy_(w_rec)
        lstm.bias_ih_l0.copy_(inp["b_ih"])
        lstm.bias_hh_l0.copy_(inp["b_hh"])
        y, (h, c) = lstm(x, (inp["h0"][None], inp["c0"][None]))
    return y, h[0], c[0]


@pytest.mark.parametrize("p", [0.0, 0.3])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_ref_matches_nn_lstm(p, dtype):
    inp = make_inputs(5, 3, 7, 13, dtype)
    mask = dropconnect_mask(inp["w_hh"], p, torch.Generator().manual_seed(1)) if p else None
    y, h, c = wd_lstm_ref(**inp, mask=mask)
    w_rec = inp["w_hh"] * mask if mask is not None else inp["w_hh"]
    ey, eh, ec = nn_lstm_oracle(inp, w_rec)
    torch.testing.assert_close(y, ey)
    torch.testing.assert_close(h, eh)
    torch.testing.assert_close(c, ec)


@needs_cpu_kernel
def test_op_matches_ref_fp32():
    inp = make_inputs(6, 4, 9, 13)
    mask = dropconnect_mask(inp["w_hh"], 0.25, torch.Generator().manual_seed(2))
    for a, b in zip(wd_lstm(**inp, mask=mask), wd_lstm_ref(**inp, mask=mask)):
        torch.testing.assert_close(a, b)
