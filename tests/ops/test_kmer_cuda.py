"""CUDA k-mer ops vs the CPU kernels, bit for bit (marked `cuda`; skipped without a GPU).

Kept apart from test_kmer.py so that it needs only torch, numpy and pytest (no hypothesis):
the device machine runs `pytest -m cuda`.
"""
import pytest
import torch

from gulm import _ext
from gulm.ops import kmer as K
from kmer_samples import opcheck_samples, u8

pytestmark = [
    pytest.mark.cuda,
    pytest.mark.skipif(
        not (_ext.HAS_EXTENSION and _ext.HAS_CUDA_KERNELS and torch.cuda.is_available()),
        reason="needs a GPU and the CUDA build of gulm._C",
    ),
]

ops = torch.ops.gulm


@pytest.mark.parametrize("k,stride", [(1, 1), (3, 1), (5, 2), (8, 3), (12, 12), (15, 1), (4, 50)])
@pytest.mark.parametrize("dtype", [torch.int64, torch.int32])
def test_cuda_encode_matches_cpu(make_seq, k, stride, dtype):
    for length in (0, k - 1, k, 1000, 1 << 20):
        seq = u8(make_seq(length, bad_rate=0.01))
        cpu = K.kmer_encode(seq, k, stride, dtype)
        gpu = K.kmer_encode(seq.cuda(), k, stride, dtype)
        assert gpu.is_cuda
        torch.testing.assert_close(gpu.cpu(), cpu)


@pytest.mark.parametrize("pad_left", [False, True])
@pytest.mark.parametrize("max_tokens", [0, 7])
def test_cuda_batch_matches_cpu(make_seq, pad_left, max_tokens):
    seqs = [u8(make_seq(n)) for n in (0, 3, 100, 5000, 17)]
    cpu = K.kmer_encode_batch(seqs, 5, 2, torch.int32, pad_left, max_tokens)
    gpu = K.kmer_encode_batch([s.cuda() for s in seqs], 5, 2, torch.int32, pad_left, max_tokens)
    torch.testing.assert_close(gpu[0].cpu(), cpu[0])
    torch.testing.assert_close(gpu[1].cpu(), cpu[1])
    flat = torch.cat(seqs).cuda()
    with pytest.raises(RuntimeError, match="offsets must be non-decreasing"):
        ops.kmer_encode_batch(flat, torch.tensor([0, 9, 3], device="cuda"), 5, 2, torch.int64, False, 0)


def test_cuda_decode_revcomp_match_cpu(make_seq):
    seq = u8(make_seq(100000))
    every_byte = torch.arange(256, dtype=torch.uint8)
    torch.testing.assert_close(K.revcomp(every_byte.cuda()).cpu(), K.revcomp(every_byte))
    torch.testing.assert_close(K.revcomp(seq.cuda()).cpu(), K.revcomp(seq))
    ids = K.kmer_encode(seq, 5, 2)
    torch.testing.assert_close(K.kmer_decode(ids.cuda(), 5, 2).cpu(), K.kmer_decode(ids, 5, 2))
    batch, lengths = K.kmer_encode_batch([seq[:1000], seq[5:50], seq[:0]], 5, 2, pad_left=True)
    for pad_left, lens in ((True, lengths), (False, None)):
        torch.testing.assert_close(
            K.kmer_revcomp(batch.cuda(), 5, None if lens is None else lens.cuda(), pad_left).cpu(),
            K.kmer_revcomp(batch, 5, lens, pad_left),
        )
    with pytest.raises(RuntimeError, match="ids must lie in"):
        K.kmer_revcomp(torch.tensor([5, 2000], device="cuda"), 5)


def test_cuda_opcheck(make_seq):
    for op, args in opcheck_samples(make_seq, "cuda"):
        torch.library.opcheck(op, args)


def test_cuda_non_contiguous_and_device_checks(make_seq):
    seq = u8(make_seq(10001)).cuda()
    torch.testing.assert_close(K.kmer_encode(seq[::3], 5, 2).cpu(), K.kmer_encode(seq[::3].cpu(), 5, 2))
    with pytest.raises(RuntimeError, match="offsets must be on the device of seqs"):
        ops.kmer_encode_batch(seq, torch.tensor([0, 5]), 5, 2, torch.int64, False, 0)


def test_cuda_compile_matches_eager(make_seq):
    seq = u8(make_seq(5000)).cuda()
    f = torch.compile(lambda x: K.kmer_encode(x, 5, 2) + 1, fullgraph=True, backend="aot_eager")
    torch.testing.assert_close(f(seq), K.kmer_encode(seq, 5, 2) + 1)
