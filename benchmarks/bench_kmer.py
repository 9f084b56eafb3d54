"""CPU benchmarks of the k-mer tokenizer (pytest-benchmark).

    PYTHONPATH=. pytest benchmarks/bench_kmer.py --benchmark-only --benchmark-json=kmer.json
    python benchmarks/report.py kmer.json

Input: GULM_BENCH_BP (default 10^7) seeded random ACGT bytes. One group per figure; inside a
group the gulm variants sit beside their baselines (extra_info["baseline"] = True):
  * gulm-op-{1,2}thread: torch.ops.gulm.kmer_encode on a uint8 tensor, allocating its output as a
    user's call does (threads via torch.set_num_threads).
  * gulm-prealloc-{1,2}thread: the buffer API writing into a reused numpy array (out=): the
    kernel without the page faults of a fresh output (outputs >= 64 MiB use streaming stores).
  * seed-python (k5s2-int64 only): the seed's tokenizer + defaultdict stoi + np.array(int64) on the
    same input; few rounds (pedantic) because one round takes seconds.
  * numpy: the fastest vectorised numpy found (LUT, k strided shift-or passes, cache blocking).
  * mem-limit-prealloc: copy the input bytes and write the output bytes into reused buffers, the
    memory-bandwidth floor of gulm-prealloc; mem-limit-alloc: the same into fresh arrays (numpy
    asks for huge pages, as gulm does), the floor of gulm-op.
  * threads-scalar-k5s2-int32: the scalar path (compute-bound) on 1 and 2 threads, the 1-thread
    run flagged as the baseline so the ratio is the parallel speedup.
  * gulm-train-path-{numpy,bytes} (k5s2-int32): gulm.ops.kmer.kmer_encode on the objects the
    data loaders pass, 1 thread: the path training takes (the registered op on a zero-copy
    uint8 view since issue 12; the buffer API before).
  * short-300bp-x10000: 10,000 sequences of 300 bp through KmerTokenizer.encode one by one (a
    classifier data set), where the per-call overhead is what is measured.
Throughput is input base pairs per second: extra_info["throughput"] in extra_info["unit"].
"""
from __future__ import annotations

import os
from collections import defaultdict
from itertools import product

import numpy as np
import pytest
import torch

from gulm import _ext
from gulm.ops import kmer as K

pytestmark = pytest.mark.skipif(not _ext.HAS_EXTENSION, reason="gulm._C is not built")

BP = int(os.environ.get("GULM_BENCH_BP", 10_000_000))
CASES = {
    "k5s2-int64": (5, 2, torch.int64),
    "k3s1-int64": (3, 1, torch.int64),
    "k5s2-int32": (5, 2, torch.int32),
}
_NP = {torch.int64: np.int64, torch.int32: np.int32}


@pytest.fixture(scope="module")
def genome():
    rng = np.random.default_rng(0)
    arr = np.frombuffer(b"ACGT", dtype=np.uint8)[rng.integers(0, 4, BP)]
    return {"np": arr, "torch": torch.from_numpy(arr), "str": arr.tobytes().decode("ascii"),
            "bytes": arr.tobytes()}


@pytest.fixture
def threads():
    before = torch.get_num_threads()
    yield torch.set_num_threads
    torch.set_num_threads(before)


def _record(benchmark, case: str, bp: int, *, threads: int = 1, baseline: bool = False, **extra) -> None:
    median = benchmark.stats.stats.median
    k, stride, dtype = CASES[case]
    n_out = K.num_tokens(bp, k, stride)
    benchmark.extra_info.update(
        throughput=bp / median / 1e9,
        unit="Gbp/s",
        baseline=baseline,
        input_bp=bp,
        output_bytes=n_out * (8 if dtype == torch.int64 else 4),
        threads=threads,
        **extra,
    )


# ---- gulm -------------------------------------------------------------------------------------


@pytest.mark.parametrize("n_threads", [1, 2], ids=["1thread", "2threads"])
@pytest.mark.parametrize("case", list(CASES))
def test_gulm_op(benchmark, genome, threads, case, n_threads):
    k, stride, dtype = CASES[case]
    benchmark.group = case
    benchmark.name = f"gulm-op-{n_threads}thread{'s' if n_threads > 1 else ''}"
    threads(n_threads)
    seq = genome["torch"]
    out = benchmark(torch.ops.gulm.kmer_encode, seq, k, stride, dtype)
    assert out.numel() == K.num_tokens(BP, k, stride)
    _record(benchmark, case, BP, threads=n_threads, isa=_ext._C.kmer_cpu_isa())


@pytest.mark.parametrize("n_threads", [1, 2], ids=["1thread", "2threads"])
@pytest.mark.parametrize("case", list(CASES))
def test_gulm_prealloc(benchmark, genome, threads, case, n_threads):
    k, stride, dtype = CASES[case]
    benchmark.group = case
    benchmark.name = f"gulm-prealloc-{n_threads}thread{'s' if n_threads > 1 else ''}"
    threads(n_threads)
    out = np.zeros(K.num_tokens(BP, k, stride), dtype=_NP[dtype])  # touched once, then reused
    benchmark(_ext._C.kmer_encode_buffer, genome["np"], k, stride, dtype == torch.int32, "auto", out)
    _record(benchmark, case, BP, threads=n_threads, isa=_ext._C.kmer_cpu_isa())


@pytest.mark.parametrize("n_threads", [1, 2], ids=["1thread", "2threads"])
def test_thread_scaling_scalar(benchmark, genome, threads, n_threads):
    """The portable scalar path is compute-bound, so it shows what the chunked parallel split
    gives; the SIMD path already runs at the memory-bandwidth limit with one thread here."""
    k, stride = 5, 2
    benchmark.group = "threads-scalar-k5s2-int32"
    benchmark.name = f"gulm-scalar-prealloc-{n_threads}thread{'s' if n_threads > 1 else ''}"
    threads(n_threads)
    out = np.zeros(K.num_tokens(BP, k, stride), dtype=np.int32)
    benchmark(_ext._C.kmer_encode_buffer, genome["np"], k, stride, True, "scalar", out)
    _record(benchmark, "k5s2-int32", BP, threads=n_threads, baseline=n_threads == 1, isa="scalar")


@pytest.mark.parametrize("kind", ["numpy", "bytes"])
def test_gulm_train_path(benchmark, genome, threads, kind):
    benchmark.group = "k5s2-int32"
    benchmark.name = f"gulm-train-path-{kind}-1thread"
    threads(1)
    seq = genome["np"] if kind == "numpy" else genome["bytes"]
    out = benchmark(K.kmer_encode, seq, 5, 2, torch.int32)
    assert out.numel() == K.num_tokens(BP, 5, 2)
    _record(benchmark, "k5s2-int32", BP, threads=1, isa=_ext._C.kmer_cpu_isa())


def test_short_sequences(benchmark, threads):
    from gulm.data.tokenizer import KmerTokenizer

    rng = np.random.default_rng(1)
    seqs = [np.frombuffer(b"ACGT", dtype=np.uint8)[rng.integers(0, 4, 300)].tobytes() for _ in range(10_000)]
    tok = KmerTokenizer(5, 2)
    benchmark.group = "short-300bp-x10000"
    benchmark.name = "gulm-tokenizer-encode-1thread"
    threads(1)

    def encode_all():
        return [tok.encode(q, dtype=torch.int32) for q in seqs]

    out = benchmark(encode_all)
    assert len(out) == len(seqs) and out[0].numel() == K.num_tokens(300, 5, 2)
    median = benchmark.stats.stats.median
    benchmark.extra_info.update(throughput=len(seqs) / median, unit="seq/s", baseline=False,
                                us_per_sequence=median / len(seqs) * 1e6, threads=1)


# ---- baselines --------------------------------------------------------------------------------


def seed_encode(text: str, k: int, stride: int, stoi) -> np.ndarray:
    """Genomic-ULMFiT: GenomicTokenizer.tokenizer, then numericalize through the defaultdict stoi
    and np.array(..., dtype=np.int64) as GenomicNumericalizeProcessor.process_one."""
    t = text.upper()
    toks = [t[i : i + k] for i in range(0, len(t), stride) if len(t[i : i + k]) == k]
    return np.array([stoi[tok] for tok in toks], dtype=np.int64)


def test_seed_python(benchmark, genome):
    case = "k5s2-int64"
    k, stride, _ = CASES[case]
    benchmark.group = case
    benchmark.name = "seed-python"
    itos = ["pad"] + ["".join(p) for p in product("ACGT", repeat=k)]
    stoi = defaultdict(int, {v: i for i, v in enumerate(itos)})
    out = benchmark.pedantic(seed_encode, args=(genome["str"], k, stride, stoi), rounds=3, iterations=1)
    assert out.size == K.num_tokens(BP, k, stride)
    _record(benchmark, case, BP, baseline=True, rounds_note="pedantic: 3 rounds x 1 iteration on the full input")


_LUT = np.full(256, 4, dtype=np.uint8)
for _code, _letters in enumerate(["Aa", "Cc", "Gg", "TtUu"]):
    for _letter in _letters:
        _LUT[ord(_letter)] = _code


def numpy_encode(seq: np.ndarray, k: int, stride: int, dtype=np.int64, block: int = 1 << 16) -> np.ndarray:
    """Vectorised numpy: base codes by a 256-entry LUT (4 = not a base), then k shift-or passes
    over strided views; blocks of 2^16 tokens keep the temporaries in cache."""
    n = K.num_tokens(seq.size, k, stride)
    out = np.empty(n, dtype=dtype)
    mask = np.uint32((1 << (2 * k)) - 1)
    for t0 in range(0, n, block):
        t1 = min(n, t0 + block)
        m = t1 - t0
        codes = _LUT[seq[t0 * stride : (t1 - 1) * stride + k]]
        acc = np.zeros(m, dtype=np.uint32)
        bad = np.zeros(m, dtype=np.uint8)
        for i in range(k):
            column = codes[i : i + (m - 1) * stride + 1 : stride]
            acc <<= 2
            acc |= column
            bad |= column
        acc &= mask
        acc += 2
        dst = out[t0:t1]
        dst[...] = acc
        dst[bad > 3] = 1
    return out


@pytest.mark.parametrize("case", list(CASES))
def test_numpy(benchmark, genome, case):
    k, stride, dtype = CASES[case]
    benchmark.group = case
    benchmark.name = "numpy"
    out = benchmark(numpy_encode, genome["np"], k, stride, _NP[dtype])
    np.testing.assert_array_equal(out[:1000], K.kmer_encode(genome["torch"][: 1000 * stride + k], k, stride, dtype)[:1000])
    _record(benchmark, case, BP, baseline=True)


@pytest.mark.parametrize("case", list(CASES))
def test_mem_limit_prealloc(benchmark, genome, case):
    k, stride, dtype = CASES[case]
    benchmark.group = case
    benchmark.name = "mem-limit-prealloc"
    src = genome["np"]
    copy = np.empty_like(src)
    out = np.zeros(K.num_tokens(BP, k, stride), dtype=_NP[dtype])

    def copy_in_write_out():
        np.copyto(copy, src)
        out.fill(1)

    benchmark(copy_in_write_out)
    _record(benchmark, case, BP, baseline=True, what="copy input bytes + write output bytes, reused buffers")


@pytest.mark.parametrize("case", list(CASES))
def test_mem_limit_alloc(benchmark, genome, case):
    k, stride, dtype = CASES[case]
    benchmark.group = case
    benchmark.name = "mem-limit-alloc"
    src = genome["np"]
    n_out = K.num_tokens(BP, k, stride)

    def copy_in_write_out():
        src.copy()
        np.empty(n_out, dtype=_NP[dtype]).fill(1)

    benchmark(copy_in_write_out)
    _record(benchmark, case, BP, baseline=True, what="copy input bytes + write output bytes, fresh arrays")
