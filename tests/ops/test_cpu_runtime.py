"""The CPU runtime of the bindings: one parallel-for module for every range loop (threads, nesting,
fork: the k-mer loops on OpenMP, on the task pool in a forked child; the LSTM on the task pool),
one ISA selector read from GULM_CPU_ISA (alias GULM_KMER_ISA), and tokenization through the
registered op whatever the input type."""
import multiprocessing as mp
import os
import subprocess
import sys

import numpy as np
import pytest
import torch
from torch.utils._python_dispatch import TorchDispatchMode

from gulm import _ext
from gulm.data.tokenizer import KmerTokenizer
from gulm.ops import kmer as K
from gulm.ops.lstm import wd_lstm, wd_lstm_ref

pytestmark = pytest.mark.skipif(not _ext.HAS_EXTENSION, reason="gulm._C not built")
ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def _lstm_inputs(T=3, B=32, I=24, H=192, seed=0):
    g = torch.Generator().manual_seed(seed)
    return [torch.randn(s, generator=g) * 0.3 for s in
            ((T, B, I), (4 * H, I), (4 * H, H), (4 * H,), (4 * H,), (B, H), (B, H))]


@pytest.mark.parametrize("n_threads", [1, 2, 8])
def test_more_threads_than_cpus_stay_correct(threads, make_seq, n_threads):
    # 8 threads on this (pinned) process: the pool's chunks outnumber the cores, some threads
    # wake late and find no work; the results must not change.
    threads(n_threads)
    seq = make_seq(300_001)
    torch.testing.assert_close(K.kmer_encode(seq, 5, 2), K.kmer_encode_ref(seq, 5, 2))
    args = _lstm_inputs()
    for a, b in zip(wd_lstm(*args), wd_lstm_ref(*args)):
        torch.testing.assert_close(a, b, atol=2e-5, rtol=2e-5)


def _child_encode(seq, conn):
    conn.send(K.kmer_encode(seq, 5, 2).tolist())
    conn.close()


def test_pool_works_in_a_forked_child(threads, make_seq):
    threads(2)
    seq = make_seq(1_000_003)
    want = K.kmer_encode(seq, 5, 2)  # the parent's pool threads now exist
    ctx = mp.get_context("fork")
    parent, child = ctx.Pipe()
    p = ctx.Process(target=_child_encode, args=(seq, child))
    p.start()
    assert parent.poll(120), "the forked child did not answer (pool deadlock?)"
    got = parent.recv()
    p.join(30)
    assert got == want.tolist()


def _isa_in_subprocess(env):
    code = ("import gulm.ops.kmer as K; from gulm import _ext; "
            "K.kmer_encode('ACGTACGT', 3); print(_ext._C.cpu_isa(), _ext._C.kmer_cpu_isa())")
    full = {**os.environ, "PYTHONPATH": ROOT, **env}
    for name in ("GULM_CPU_ISA", "GULM_KMER_ISA"):
        if name not in env:
            full.pop(name, None)
    return subprocess.run([sys.executable, "-c", code], env=full, capture_output=True, text=True,
                          timeout=120)


def test_one_isa_selector_with_the_old_name_as_alias():
    r = _isa_in_subprocess({"GULM_KMER_ISA": "scalar"})
    assert r.returncode == 0, r.stderr
    assert r.stdout.split() == ["baseline", "baseline"]  # caps the LSTM and the k-mer paths alike
    r = _isa_in_subprocess({"GULM_CPU_ISA": "sse", "GULM_KMER_ISA": "avx2"})
    assert r.returncode != 0
    assert "GULM_CPU_ISA must be one of auto, baseline (or scalar), avx2, avx512; got 'sse'" in r.stderr


class _RecordOps(TorchDispatchMode):
    def __init__(self):
        super().__init__()
        self.seen = []

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        self.seen.append(func)
        return func(*args, **(kwargs or {}))


@pytest.mark.parametrize("kind", ["str", "bytes", "bytearray", "memoryview", "numpy", "tensor"])
def test_tokenizer_encodes_through_the_registered_op(make_seq, kind):
    raw = make_seq(1001)
    seq = {"str": raw.decode("latin-1"), "bytes": raw, "bytearray": bytearray(raw),
           "memoryview": memoryview(raw), "numpy": np.frombuffer(raw, dtype=np.uint8),
           "tensor": torch.frombuffer(bytearray(raw), dtype=torch.uint8)}[kind]
    tok = KmerTokenizer(5, 2)
    with _RecordOps() as rec:
        ids = tok.encode(seq, dtype=torch.int32)
    assert torch.ops.gulm.kmer_encode.default in rec.seen
    want = K.kmer_encode_ref(raw.decode("latin-1").encode("ascii", "replace") if kind == "str" else raw, 5, 2,
                             torch.int32)
    torch.testing.assert_close(ids, want)
    with _RecordOps() as rec:
        ids, lengths = tok.encode_batch([seq, seq])
    assert torch.ops.gulm.kmer_encode_batch.default in rec.seen
    torch.testing.assert_close(ids[0, : int(lengths[0])], want.long())


def test_strided_and_empty_inputs():
    arr = np.frombuffer(b"AxCxGxTxAxCxGxT", dtype=np.uint8)[::2]  # "ACGTACGT", strided
    torch.testing.assert_close(K.kmer_encode(arr, 3), K.kmer_encode_ref(b"ACGTACGT", 3))
    assert K.kmer_encode(b"", 3).numel() == 0
    with pytest.raises(TypeError, match="seq must be str, bytes"):
        K.kmer_encode(12345, 3)
    with pytest.raises(ValueError, match="1-D array of 1-byte items"):
        K.kmer_encode(np.zeros((2, 2), dtype=np.uint8), 3)
