"""Tests of the inference-only first-layer path: wd_lstm_table (ids + a [V,4H] input table).

Oracles: wd_lstm_table_ref (gather + the per-step reference loop) and wd_lstm in eval mode on
the embedded sequence, i.e. the plain path the AWD-LSTM takes when the table is off.
"""
import pytest
import torch

from gulm import _ext
from gulm.nn import AWDLSTM
from gulm.ops import lstm as ops

needs_table = pytest.mark.skipif(not ops.HAS_TABLE_OP, reason="gulm._C without wd_lstm_table")


def make(V, T, B, E, H, seed=0, dtype=torch.float32):
    g = torch.Generator().manual_seed(seed)
    s = H**-0.5

    def r(*shape, scale=1.0):
        return ((torch.rand(*shape, generator=g) * 2 - 1) * scale).to(dtype)

    ids = torch.randint(0, V, (T, B), generator=g)
    return dict(ids=ids, emb=r(V, E, scale=0.1), w_ih=r(4 * H, E, scale=s), w_hh=r(4 * H, H, scale=s),
                b_ih=r(4 * H, scale=s), b_hh=r(4 * H, scale=s), h0=r(B, H), c0=r(B, H))


@needs_table
@pytest.mark.parametrize("V,T,B,E,H", [(6, 1, 1, 3, 5), (66, 7, 3, 16, 13), (1026, 25, 9, 64, 37)])
@pytest.mark.parametrize("with_state", [False, True])
def test_table_matches_ref_and_plain_path(V, T, B, E, H, with_state):
    a = make(V, T, B, E, H)
    state = (a["h0"], a["c0"]) if with_state else (None, None)
    table = ops.input_table(a["emb"], a["w_ih"])
    with torch.no_grad():
        got = ops.wd_lstm_table(a["ids"], table, a["w_hh"], a["b_ih"], a["b_hh"], *state)
        ref = ops.wd_lstm_table_ref(a["ids"], table, a["w_hh"], a["b_ih"], a["b_hh"], *state)
        plain = ops.wd_lstm(a["emb"][a["ids"]], a["w_ih"], a["w_hh"], a["b_ih"], a["b_hh"], *state,
                            training=False)
    for g, r, p in zip(got, ref, plain):
        torch.testing.assert_close(g, r, atol=2e-6, rtol=1e-5)
        torch.testing.assert_close(g, p, atol=2e-6, rtol=1e-5)


@needs_table
def test_table_bfloat16_autocast_matches_plain_path():
    a = make(1026, 30, 8, 32, 48, seed=3)
    with torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16):
        table = ops.input_table(a["emb"], a["w_ih"])
        assert table.dtype == torch.bfloat16
        got = ops.wd_lstm_table(a["ids"], table, a["w_hh"], a["b_ih"], a["b_hh"])
        plain = ops.wd_lstm(a["emb"][a["ids"]], a["w_ih"], a["w_hh"], a["b_ih"], a["b_hh"],
                            training=False)
    assert got[0].dtype == torch.bfloat16
    # Same bf16 roundings of the projection (one GEMM either way), fp32 gate math.
    torch.testing.assert_close(got[0].float(), plain[0].float(), atol=1e-2, rtol=0)


@needs_table
def test_table_errors():
    a = make(10, 4, 2, 3, 5)
    table = ops.input_table(a["emb"], a["w_ih"])
    bad = a["ids"].clone()
    bad[1, 1] = 10
    with torch.no_grad(), pytest.raises(RuntimeError, match=r"ids must lie in \[0, 10\)"):
        ops.wd_lstm_table(bad, table, a["w_hh"], a["b_ih"], a["b_hh"])
    bad[1, 1] = -1
    with torch.no_grad(), pytest.raises(RuntimeError, match="ids must lie"):
        ops.wd_lstm_table(bad, table, a["w_hh"], a["b_ih"], a["b_hh"])
    with torch.no_grad(), pytest.raises(ValueError, match="table must be"):
        ops.wd_lstm_table(a["ids"], table[:, :-1], a["w_hh"], a["b_ih"], a["b_hh"])
    w = a["w_hh"].clone().requires_grad_(True)
    with pytest.raises(RuntimeError, match="inference-only"):
        ops.wd_lstm_table(a["ids"], table, w, a["b_ih"], a["b_hh"])


@needs_table
def test_awd_lstm_eval_uses_table_and_matches_plain_path():
    torch.manual_seed(0)
    enc = AWDLSTM(vocab_size=66, emb_size=16, hidden_size=24, n_layers=3).eval()
    ids = torch.randint(0, 66, (11, 5))
    ids[-3:, 0] = 0  # pad tokens go through the table like any id
    with torch.inference_mode():
        enc.reset()
        fast = enc(ids)[0]
        assert enc._table_cache is not None
        enc.use_input_table = False
        enc.reset()
        plain = enc(ids)[0]
    for f, p in zip(fast, plain):
        torch.testing.assert_close(f, p, atol=2e-6, rtol=1e-5)
    # The cached table follows weight updates.
    enc.use_input_table = True
    with torch.no_grad():
        enc.encoder.weight.mul_(2.0)
        enc.reset()
        fast2 = enc(ids)[0][-1]
        enc.use_input_table = False
        enc.reset()
        plain2 = enc(ids)[0][-1]
    torch.testing.assert_close(fast2, plain2, atol=2e-6, rtol=1e-5)
    assert not torch.allclose(fast2, fast[-1])


@needs_table
def test_training_and_grad_mode_do_not_use_table():
    enc = AWDLSTM(vocab_size=66, emb_size=8, hidden_size=12, n_layers=2).eval()
    ids = torch.randint(0, 66, (5, 3))
    out = enc(ids)[0][-1]  # grad mode: plain path, differentiable
    assert out.requires_grad and enc._table_cache is None


def test_flag_matches_registration():
    if _ext.HAS_EXTENSION:
        assert ops.HAS_TABLE_OP == hasattr(torch.ops.gulm, "wd_lstm_table")
    else:
        assert not ops.HAS_TABLE_OP


@needs_table
def test_opcheck():
    a = make(20, 6, 3, 4, 7)
    table = ops.input_table(a["emb"], a["w_ih"])
    args = (a["ids"], table, a["w_hh"], a["b_ih"], a["b_hh"], a["h0"], a["c0"])
    torch.library.opcheck(torch.ops.gulm.wd_lstm_table.default, args,
                          test_utils=("test_schema", "test_faketensor"))
