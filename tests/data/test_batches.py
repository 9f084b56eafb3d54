"""LM streams and classification batches: shapes, coverage, determinism, sharding."""
import numpy as np
import pytest
import torch

pytest.importorskip("gulm._C", reason="compiled extension not built")

from gulm.data.batches import ClassBatches, TokenizedSet, encode_labels
from gulm.data.corpus import LMBatches
from gulm.data.tokenizer import KmerTokenizer


def test_lm_batches_are_next_token_streams():
    tokens = np.arange(1000, dtype=np.int32)
    b = LMBatches(tokens, bs=4, bptt=10, shuffle=False)
    batches = list(b)
    x0, y0 = batches[0]
    assert x0.shape == (10, 4) and x0.dtype == torch.int64
    torch.testing.assert_close(y0[:-1], x0[1:])
    # stream s starts at s * stream_len and runs contiguously across batches
    xs = torch.cat([x for x, _ in batches])
    assert xs[:, 2].tolist() == list(range(2 * b.stream_len, 2 * b.stream_len + xs.shape[0]))
    assert xs.shape[0] == b.stream_len - 1


def test_lm_batches_shuffle_is_seeded_and_rank_sharded():
    tokens = np.arange(5000, dtype=np.int32)
    a = LMBatches(tokens, bs=4, bptt=20, seed=3)
    a.set_epoch(1)
    b = LMBatches(tokens, bs=4, bptt=20, seed=3)
    b.set_epoch(1)
    assert all(torch.equal(p[0], q[0]) for p, q in zip(a, b))
    b.set_epoch(2)
    assert not torch.equal(next(iter(a))[0], next(iter(b))[0])
    lengths = [x.shape[0] for x, _ in a]
    assert min(lengths) >= 5 and len(set(lengths)) > 1  # fastai-style jitter
    whole = LMBatches(tokens, bs=4, bptt=20, seed=3)
    r0 = LMBatches(tokens, bs=2, bptt=20, seed=3, rank=0, world=2)
    r1 = LMBatches(tokens, bs=2, bptt=20, seed=3, rank=1, world=2)
    for (xw, _), (x0, _), (x1, _) in zip(whole, r0, r1):
        torch.testing.assert_close(torch.cat([x0, x1], 1), xw)


def test_lm_batches_refuse_tiny_corpus():
    with pytest.raises(ValueError, match="corpus too small"):
        LMBatches(np.arange(10), bs=8, bptt=5)


def _set(n=40, seed=0):
    rng = np.random.default_rng(seed)
    seqs = ["".join(rng.choice(list("ACGT"), int(rng.integers(20, 60)))) for _ in range(n)]
    labels = ["b" if i % 3 else "a" for i in range(n)]
    y, classes = encode_labels(labels)
    return seqs, TokenizedSet.build(seqs, KmerTokenizer(3, 1), y, with_rc=True), classes


def test_tokenized_set_batches_pad_right_and_rc():
    seqs, data, classes = _set()
    assert classes == ["a", "b"]
    ids, lengths, labels = data.batch([0, 1, 2])
    assert ids.shape == (3, int(lengths.max()))
    for row, i in enumerate([0, 1, 2]):
        assert lengths[row] == len(seqs[i]) - 2
        assert (ids[row, lengths[row]:] == 0).all()
        assert (ids[row, :lengths[row]] >= 2).all()
    rc_ids, _, _ = data.batch([0], rc=True)
    tok = KmerTokenizer(3, 1)
    comp = str.maketrans("ACGT", "TGCA")
    assert rc_ids[0].tolist() == tok.encode(seqs[0].translate(comp)[::-1]).tolist()


def test_class_batches_cover_every_example_once_and_bucket():
    _, data, _ = _set(200)
    b = ClassBatches(data, bs=20, shuffle=True, seed=1)
    b.set_epoch(0)
    seen = []
    spans = []
    for ids, lengths, labels in b:
        seen += labels.tolist()
        spans.append(int(lengths.max() - lengths.min()))
    assert len(seen) == 200 and sorted(seen) == sorted(data.labels.tolist())
    assert len(b) == 10
    assert np.mean(spans) < 15  # sorted within mega-batches: little padding
    e0 = [l.tolist() for _, l, _ in b]
    b.set_epoch(1)
    assert e0 != [l.tolist() for _, l, _ in b]


def test_class_batches_shard_ranks_disjointly():
    _, data, _ = _set(64)
    r = [list(ClassBatches(data, bs=4, shuffle=True, seed=0, rank=k, world=2)) for k in (0, 1)]
    assert len(r[0]) == len(r[1])
    n = sum(x[0].shape[0] for x in r[0]) + sum(x[0].shape[0] for x in r[1])
    assert n == 64


def test_unknown_label_and_empty_set_errors():
    with pytest.raises(ValueError, match="not among"):
        encode_labels(["x", "z"], ["x", "y"])
    with pytest.raises(ValueError, match="empty"):
        TokenizedSet.build([], KmerTokenizer(3, 1))
    with pytest.raises(ValueError, match="shorter than k"):
        TokenizedSet.build(["AC"], KmerTokenizer(3, 1))


@pytest.mark.parametrize("n,bs", [(33, 16), (17, 16), (200, 16)])
def test_training_batches_drop_the_last_partial_batch(n, bs):
    """n % bs == 1 used to send a 1-row batch to BatchNorm; training drops the partial batch."""
    _, data, _ = _set(n)
    b = ClassBatches(data, bs=bs, shuffle=True, seed=0)
    sizes = [ids.shape[0] for ids, _, _ in b]
    assert sizes == [bs] * (n // bs) and len(b) == n // bs
    small = ClassBatches(data.subset(np.arange(5)), bs=bs, shuffle=True)
    assert [ids.shape[0] for ids, _, _ in small] == [5]  # smaller than one batch: kept whole
    ev = ClassBatches(data, bs=bs)  # evaluation keeps every example
    assert sum(ids.shape[0] for ids, _, _ in ev) == n


@pytest.mark.parametrize("n", [1, 5, 16, 33, 70])
@pytest.mark.parametrize("world", [1, 2, 3])
@pytest.mark.parametrize("shuffle", [True, False])
def test_class_batches_length_is_what_each_rank_yields(n, world, shuffle):
    """len() is the progress bar's total: exact for every rank, set size and mode."""
    _, data, _ = _set(max(n, 2))
    data = data.subset(np.arange(n))
    for rank in range(world):
        b = ClassBatches(data, bs=4, shuffle=shuffle, seed=0, rank=rank, world=world)
        assert len(b) == len(list(b)), (rank, n, world, shuffle)
