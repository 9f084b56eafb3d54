"""AWD-LSTM modules on the fused op: layout compatibility with nn.LSTM, dropouts, state
handling, a tiny LM that learns, padding-invariant classification, LM -> classifier."""
import pytest
import torch
from torch import nn

pytest.importorskip("gulm._C", reason="compiled extension not built")

from gulm.nn import (AWDConfig, AWDLSTM, EmbeddingDropout, RNNDropout, WeightDropLSTM, classifier,
                     binned_mean_pool, language_model, masked_concat_pool)


def test_weight_drop_lstm_state_dict_is_nn_lstm_layout():
    torch.manual_seed(0)
    ours = WeightDropLSTM(5, 7, weight_p=0.5).eval()
    ref = nn.LSTM(5, 7)
    ref.load_state_dict(ours.state_dict())  # same names and shapes, both ways
    ours.load_state_dict(ref.state_dict())
    x = torch.randn(6, 3, 5)
    y, (h, c) = ours(x)
    y_ref, (h_ref, c_ref) = ref(x)
    torch.testing.assert_close(y, y_ref)
    torch.testing.assert_close(h, h_ref[0])
    torch.testing.assert_close(c, c_ref[0])


def test_weight_drop_lstm_train_mode_drops_connections():
    torch.manual_seed(0)
    m = WeightDropLSTM(4, 8, weight_p=0.5)
    x = torch.randn(5, 2, 4)
    m.train()
    y1, _ = m(x)
    y2, _ = m(x)
    assert not torch.allclose(y1, y2)  # a fresh mask each forward
    m.eval()
    torch.testing.assert_close(m(x)[0], m(x)[0])


def test_rnn_dropout_is_locked_over_time():
    torch.manual_seed(0)
    d = RNNDropout(0.5).train()
    y = d(torch.ones(10, 3, 8))
    zero = y == 0
    assert zero.any() and (~zero).any()
    assert torch.equal(zero, zero[:1].expand_as(zero))  # same mask at every step
    assert torch.allclose(y[~zero], torch.full_like(y[~zero], 2.0))
    assert torch.equal(d.eval()(torch.ones(2, 2, 2)), torch.ones(2, 2, 2))


def test_embedding_dropout_drops_whole_tokens():
    torch.manual_seed(0)
    emb = nn.Embedding(50, 6)
    d = EmbeddingDropout(emb, 0.5).train()
    ids = torch.arange(50).repeat(2)
    out = d(ids)
    row_zero = (out == 0).all(1)
    assert row_zero.any() and (~row_zero).any()
    assert torch.equal(row_zero[:50], row_zero[50:])  # a token is dropped everywhere it occurs
    torch.testing.assert_close(out[~row_zero], 2 * emb.weight[ids][~row_zero])


def test_awd_lstm_keeps_and_resets_state():
    torch.manual_seed(0)
    enc = AWDLSTM(20, 8, 16, 3, hidden_p=0, input_p=0, embed_p=0, weight_p=0).eval()
    ids = torch.randint(2, 20, (12, 3))
    full = enc(ids)[0][-1]
    enc.reset()
    first = enc(ids[:5])[0][-1]
    second = enc(ids[5:])[0][-1]  # continues from the carried state
    torch.testing.assert_close(torch.cat([first, second]), full, rtol=1e-5, atol=1e-6)
    assert enc.hidden[0][0].requires_grad is False
    enc(torch.randint(2, 20, (4, 5)))  # batch size change: state reset, no error
    assert enc.hidden[0][0].shape == (5, 16)
    assert [r.hidden_size for r in enc.rnns] == [16, 16, 8]


def test_tiny_language_model_overfits_a_repeated_sequence():
    torch.manual_seed(0)
    cfg = AWDConfig(vocab_size=10, emb_size=16, hidden_size=32, n_layers=2, drop_mult=0.0)
    lm = language_model(cfg)
    seq = torch.tensor([2, 5, 3, 9, 4, 7, 6, 8] * 12)
    x, y = seq[:-1].view(-1, 1).repeat(1, 4), seq[1:].view(-1, 1).repeat(1, 4)
    opt = torch.optim.Adam(lm.parameters(), lr=2e-2)
    for _ in range(300):
        lm.reset()
        logits = lm(x)[0]
        loss = nn.functional.cross_entropy(logits.reshape(-1, 10), y.reshape(-1))
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert loss.item() < 0.05
    assert (logits.argmax(-1) == y).all()
    assert lm.decoder.decoder.weight is lm.encoder.encoder.weight  # tied


def test_masked_pool_ignores_padding_and_window():
    out = torch.randn(6, 2, 3)
    lengths = torch.tensor([6, 3])
    pooled = masked_concat_pool(out, lengths)
    out2 = out.clone()
    out2[3:, 1] = 1e6  # garbage in the pad positions of column 1
    torch.testing.assert_close(masked_concat_pool(out2, lengths), pooled)
    torch.testing.assert_close(pooled[1, :3], out[2, 1])  # last = position length-1
    torch.testing.assert_close(pooled[1, 3:6], out[:3, 1].amax(0))
    torch.testing.assert_close(pooled[1, 6:], out[:3, 1].mean(0))
    start = torch.tensor([4, 0])
    torch.testing.assert_close(masked_concat_pool(out, lengths, start)[0, 6:], out[4:, 0].mean(0))


def test_binned_pool_means_equal_parts_of_each_window():
    torch.manual_seed(0)
    out = torch.randn(9, 3, 4)
    lengths = torch.tensor([9, 6, 2])
    got = binned_mean_pool(out, lengths, 3)
    assert got.shape == (3, 12)
    for j in range(3):
        torch.testing.assert_close(got[0, 4 * j:4 * j + 4], out[3 * j:3 * j + 3, 0].mean(0))
        torch.testing.assert_close(got[1, 4 * j:4 * j + 4], out[2 * j:2 * j + 2, 1].mean(0))
    # 2 positions in 3 parts: positions 0 and 1 fall in parts 0 and 1, part 2 is empty (zero)
    torch.testing.assert_close(got[2, :4], out[0, 2])
    torch.testing.assert_close(got[2, 4:8], out[1, 2])
    assert not got[2, 8:].any()
    garbage = out.clone()
    garbage[6:, 1] = 1e6
    garbage[2:, 2] = float("nan")
    torch.testing.assert_close(binned_mean_pool(garbage, lengths, 3), got)
    # uneven parts: 7 positions in 3 parts are [0, 3), [3, 5), [5, 7)
    seven = binned_mean_pool(out, torch.tensor([7, 7, 7]), 3)
    torch.testing.assert_close(seven[0, 4:8], out[3:5, 0].mean(0))
    torch.testing.assert_close(seven[0, 8:], out[5:7, 0].mean(0))
    # a window [start, length): the parts split it, nothing before start counts
    start = torch.tensor([3, 0, 0])
    windowed = binned_mean_pool(out, lengths, 2, start)
    torch.testing.assert_close(windowed[0, :4], out[3:6, 0].mean(0))
    torch.testing.assert_close(windowed[0, 4:], out[6:9, 0].mean(0))
    # one part is the concat pool's mean
    torch.testing.assert_close(binned_mean_pool(out, lengths, 1, start), masked_concat_pool(out, lengths, start)[:, 8:])
    with pytest.raises(ValueError, match="bins"):
        binned_mean_pool(out, lengths, 0)


def _clf(max_len=100, bptt=4, head_bins=0):
    cfg = AWDConfig(vocab_size=20, emb_size=8, hidden_size=16, n_layers=3, max_len=max_len, bptt=bptt,
                    head_bins=head_bins)
    return classifier(cfg).eval()


def test_binned_head_reads_where_along_the_sequence():
    torch.manual_seed(0)
    clf = _clf(head_bins=4)
    assert clf.head.layers[0].num_features == (3 + 4) * 8
    ids = torch.randint(2, 20, (5, 12))
    lengths = torch.full((5,), 12)
    logits = clf.train()(ids, lengths)[0]
    logits.sum().backward()
    assert clf.encoder.encoder.weight.grad.abs().sum() > 0
    assert clf.head.layers[2].weight.grad[:, 3 * 8:].abs().sum() > 0  # the binned features are read
    restored = classifier(AWDConfig.from_dict(clf.config.to_dict()))
    restored.load_state_dict(clf.state_dict())
    torch.testing.assert_close(restored.eval()(ids, lengths)[0], clf.eval()(ids, lengths)[0])


@pytest.mark.parametrize("head_bins", [0, 3])
def test_classifier_output_never_depends_on_padding(head_bins):
    torch.manual_seed(0)
    clf = _clf(head_bins=head_bins)
    ids = torch.randint(2, 20, (3, 11))
    lengths = torch.tensor([11, 7, 4])
    ref = clf(ids, lengths)[0]
    for fill in (0, 1, 13):
        other = ids.clone()
        for i, n in enumerate(lengths):
            other[i, n:] = fill
        torch.testing.assert_close(clf(other, lengths)[0], ref)
    # a row scored alone (no padding at all) equals its padded version
    torch.testing.assert_close(clf(ids[2:, :4], lengths[2:])[0], ref[2:], rtol=1e-5, atol=1e-5)


def test_classifier_max_len_reads_prefix_without_grad():
    torch.manual_seed(0)
    clf = _clf(max_len=5, bptt=3)
    clf.train()
    ids = torch.randint(2, 20, (2, 17))
    lengths = torch.tensor([17, 17])
    logits = clf(ids, lengths)[0]
    logits.sum().backward()
    assert clf.encoder.encoder.weight.grad is not None
    # the prefix changes the state, so it changes the output
    clf.eval()
    a = clf(ids, lengths)[0]
    ids2 = ids.clone()
    ids2[:, :3] = 2
    assert not torch.allclose(a, clf(ids2, lengths)[0])
    # tokens before the window only act through the state: the window alone differs
    assert not torch.allclose(a, clf(ids[:, -5:], torch.tensor([5, 5]))[0])


def test_lm_encoder_initialises_classifier_by_name():
    torch.manual_seed(0)
    cfg = AWDConfig(vocab_size=20, emb_size=8, hidden_size=16, n_layers=3)
    lm = language_model(cfg)
    clf = classifier(cfg)
    enc = {k: v for k, v in lm.state_dict().items() if k.startswith("encoder.")}
    missing, unexpected = clf.load_state_dict(enc, strict=False)
    assert not unexpected and all(k.startswith("head.") for k in missing)
    torch.testing.assert_close(clf.encoder.rnns[1].weight_hh_l0, lm.encoder.rnns[1].weight_hh_l0)
    groups = clf.layer_groups()
    assert len(groups) == 5 and sum(len(g) for g in groups) == len(list(clf.parameters()))
    lm_groups = lm.layer_groups()
    assert sum(len(g) for g in lm_groups) == len(list(lm.parameters()))
