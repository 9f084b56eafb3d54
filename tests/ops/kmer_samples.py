"""Helpers shared by test_kmer.py and test_kmer_cuda.py (torch only: the device machine runs the
CUDA tests without hypothesis)."""
import torch

from gulm.ops import kmer as K


def u8(seq) -> torch.Tensor:
    if isinstance(seq, str):
        seq = seq.encode()
    return torch.frombuffer(bytearray(seq), dtype=torch.uint8) if seq else torch.empty(0, dtype=torch.uint8)


def opcheck_samples(make_seq, device="cpu"):
    """(op overload, args) pairs covering every k-mer op, for torch.library.opcheck."""
    ops = torch.ops.gulm
    s = u8(make_seq(77)).to(device)
    offsets = torch.tensor([0, 10, 10, 77], device=device)
    ids = K.kmer_encode(s, 4, 3)
    batch, lengths = K.kmer_encode_batch((s, offsets), 4, 3, pad_left=True)
    return [
        (ops.kmer_encode.default, (s, 4, 3, torch.int64)),
        (ops.kmer_encode.default, (s[:2], 4, 3, torch.int32)),
        (ops.kmer_encode_batch.default, (s, offsets, 4, 3, torch.int32, False, 0)),
        (ops.kmer_encode_batch.default, (s, offsets, 4, 3, torch.int64, True, 5)),
        (ops.kmer_decode.default, (ids, 4, 3)),
        (ops.revcomp.default, (s,)),
        (ops.kmer_revcomp.default, (ids, 4, None, False)),
        (ops.kmer_revcomp.default, (batch, 4, lengths, True)),
    ]
