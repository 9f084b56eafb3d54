"""Tests of the k-mer tokenizer ops: kernel vs *_ref vs hand-computed ids, properties, errors,
opcheck, torch.compile, the buffer API and thread splits. CUDA tests: test_kmer_cuda.py."""
import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gulm import _ext
from gulm.ops import kmer as K
from kmer_samples import opcheck_samples, u8

pytestmark = pytest.mark.skipif(not _ext.HAS_EXTENSION, reason="gulm._C is not built")

C = _ext._C
ops = torch.ops.gulm if _ext.HAS_EXTENSION else None
ISAS = ["scalar", "avx2", "avx512", "auto"]
ALPHABET = "ACGTacgtUuNnRYKMSWBDHVryk-. \t\r\n"


def idx(kmer: str) -> int:
    """Hand id: 2 + base-4 value with A=0 C=1 G=2 T=3."""
    v = 0
    for b in kmer:
        v = 4 * v + "ACGT".index(b)
    return 2 + v


# ---- hand-computed examples --------------------------------------------------------------------


@pytest.mark.parametrize(
    "seq,k,stride,expected",
    [
        ("ACGT", 2, 1, [2 + 1, 2 + 6, 2 + 11]),
        ("ACGT", 1, 1, [2, 3, 4, 5]),
        ("acgu", 2, 1, [3, 8, 13]),
        ("ACGTT", 3, 2, [idx("ACG"), idx("GTT")]),
        ("ACGTTG", 3, 2, [idx("ACG"), idx("GTT")]),  # tail shorter than k is dropped
        ("ACNGT", 2, 1, [3, 1, 1, 13]),
        ("AC-GT\r\n", 2, 1, [3, 1, 1, 13, 1, 1]),
        ("TTTTT", 5, 2, [2 + 4**5 - 1]),
        ("AAAA", 5, 2, []),
        ("", 1, 1, []),
        ("ACGTACGTA", 2, 4, [idx("AC"), idx("AC")]),  # stride > k skips bytes
        ("GATTACA", 7, 1, [idx("GATTACA")]),
        ("CCCCCCCCCCCCCCC", 15, 1, [2 + (4**15 - 1) // 3]),  # 0b0101...01
    ],
)
@pytest.mark.parametrize("dtype", [torch.int64, torch.int32])
def test_hand_examples(seq, k, stride, expected, dtype):
    want = torch.tensor(expected, dtype=dtype)
    got = K.kmer_encode(u8(seq), k, stride, dtype)
    assert got.dtype == dtype
    torch.testing.assert_close(got, want)
    torch.testing.assert_close(K.kmer_encode_ref(seq, k, stride, dtype), want)
    torch.testing.assert_close(K.kmer_encode(seq, k, stride, dtype), want)  # str via buffer API


def test_vocab_layout():
    assert K.vocab_size(5) == 1026
    assert K.num_tokens(10, 5, 2) == 3
    assert K.num_tokens(4, 5, 2) == 0
    ids = K.kmer_encode("AAAAA" + "TTTTT", 5, 5)
    assert ids.tolist() == [2, 1025]  # first and last k-mer


# ---- kernel vs reference ---------------------------------------------------------------------


@pytest.mark.parametrize("k", list(range(1, 16)))
@pytest.mark.parametrize("stride", [1, 2, 3, 5, 16, 49, 70])
def test_encode_matches_ref_all_k(make_seq, k, stride):
    for length in (k - 1, k, 63, 64, 65, 151, 2049):
        seq = make_seq(length, bad_rate=0.01)
        want = K.kmer_encode_ref(seq, k, stride)
        torch.testing.assert_close(K.kmer_encode(u8(seq), k, stride), want)
        for isa in ISAS:
            got = C.kmer_encode_buffer(seq, k, stride, int32=True, isa=isa)
            np.testing.assert_array_equal(got, want.numpy().astype(np.int32))


@settings(max_examples=2000, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    k=st.integers(1, 15),
    stride=st.integers(1, 20),
    text=st.text(alphabet=ALPHABET, max_size=5000),
    int32=st.booleans(),
)
def test_property_encode_matches_ref(k, stride, text, int32):
    dtype = torch.int32 if int32 else torch.int64
    want = K.kmer_encode_ref(text, k, stride, dtype)
    assert want.numel() == K.num_tokens(len(text), k, stride)
    torch.testing.assert_close(K.kmer_encode(u8(text), k, stride, dtype), want)
    for isa in ISAS:
        got = C.kmer_encode_buffer(text, k, stride, int32, isa)
        np.testing.assert_array_equal(got, want.numpy())


@settings(max_examples=1000, deadline=None)
@given(
    k=st.integers(1, 15),
    stride=st.integers(1, 8),
    base=st.text(alphabet="ACGT", min_size=0, max_size=3000),
    noise=st.lists(st.tuples(st.integers(0, 10**6), st.sampled_from(list("NnRY-\n acgtu"))), max_size=20),
)
def test_property_simd_paths_agree_with_sprinkled_bytes(k, stride, base, noise):
    seq = bytearray(base.encode())
    for pos, ch in noise:
        if seq:
            seq[pos % len(seq)] = ord(ch)
    outs = [C.kmer_encode_buffer(seq, k, stride, False, isa) for isa in ISAS]
    for o in outs[1:]:
        np.testing.assert_array_equal(o, outs[0])
    np.testing.assert_array_equal(outs[0], K.kmer_encode_ref(bytes(seq), k, stride).numpy())


# ---- reverse complement --------------------------------------------------------------------


def test_revcomp_bytes():
    assert K.revcomp("ACGTUNacgtunRYKMBDHVSW-x") == "x-WSBDHVKMRYnaacgtNAACGT"
    assert K.revcomp(b"AACG") == b"CGTT"
    t = u8("GATTACA")
    assert bytes(K.revcomp(t).numpy()) == b"TGTAATC"
    torch.testing.assert_close(K.revcomp(t), K.revcomp_ref(t))
    every_byte = torch.arange(256, dtype=torch.uint8)
    torch.testing.assert_close(K.revcomp(every_byte), K.revcomp_ref(every_byte))
    twice = K.revcomp(K.revcomp(every_byte))
    not_u = (every_byte != ord("U")) & (every_byte != ord("u"))  # U -> A -> T
    torch.testing.assert_close(twice[not_u], every_byte[not_u])
    assert bytes(twice[~not_u].numpy()) == b"Tt"


@settings(max_examples=800, deadline=None)
@given(k=st.integers(1, 15), stride=st.integers(1, 6), text=st.text(alphabet=ALPHABET, max_size=3000))
def test_property_kmer_revcomp_equals_encode_of_revcomp(k, stride, text):
    # Cut to (L - k) a multiple of the stride, so the windows of the reverse strand line up.
    seq = text[: k + (len(text) - k) // stride * stride] if len(text) >= k else text
    ids = K.kmer_encode(seq, k, stride)
    want = K.kmer_encode(K.revcomp(seq), k, stride)
    got = K.kmer_revcomp(ids, k)
    torch.testing.assert_close(got, want)
    torch.testing.assert_close(K.kmer_revcomp_ref(ids, k), want)
    torch.testing.assert_close(K.kmer_revcomp(got, k), ids)  # involution


@pytest.mark.parametrize("pad_left", [False, True])
@pytest.mark.parametrize("dtype", [torch.int64, torch.int32])
def test_kmer_revcomp_batch_keeps_padding(make_seq, pad_left, dtype):
    seqs = [make_seq(n) for n in (0, 3, 5, 17, 40, 101)]
    ids, lengths = K.kmer_encode_batch(seqs, 5, 2, dtype, pad_left=pad_left)
    got = K.kmer_revcomp(ids, 5, lengths, pad_left)
    torch.testing.assert_close(got, K.kmer_revcomp_ref(ids, 5, lengths, pad_left))
    for b, n in enumerate(lengths.tolist()):
        row = ids[b, ids.shape[1] - n :] if pad_left else ids[b, :n]
        out_row = got[b, ids.shape[1] - n :] if pad_left else got[b, :n]
        torch.testing.assert_close(out_row, K.kmer_revcomp(row, 5))
    assert (got[ids == 0] == 0).all()  # padding untouched
    # leading dims are rows: [2, 3, W] with lengths [2, 3]
    ids3 = ids.reshape(2, 3, -1)
    torch.testing.assert_close(
        K.kmer_revcomp(ids3, 5, lengths.reshape(2, 3), pad_left), got.reshape(2, 3, -1)
    )


# ---- batch ------------------------------------------------------------------------------------


@pytest.mark.parametrize("pad_left", [False, True])
@pytest.mark.parametrize("max_tokens", [0, 1, 4, 50])
@pytest.mark.parametrize("dtype", [torch.int64, torch.int32])
def test_batch_matches_ref(make_seq, pad_left, max_tokens, dtype):
    seqs = [make_seq(n) for n in (10, 0, 3, 4, 57, 200, 5)]
    want_ids, want_len = K.kmer_encode_batch_ref(seqs, 4, 3, dtype, pad_left, max_tokens)
    # list of bytes (buffer API), list of tensors, (flat, offsets)
    flat = u8(b"".join(seqs))
    offsets = torch.tensor(np.cumsum([0] + [len(s) for s in seqs]), dtype=torch.int64)
    for arg in (seqs, [u8(s) for s in seqs], (flat, offsets)):
        ids, lengths = K.kmer_encode_batch(arg, 4, 3, dtype, pad_left=pad_left, max_tokens=max_tokens)
        assert ids.dtype == dtype and lengths.dtype == torch.int64
        torch.testing.assert_close(ids, want_ids)
        torch.testing.assert_close(lengths, want_len)
    if max_tokens:
        assert ids.shape == (len(seqs), max_tokens)


def test_batch_hand_example():
    ids, lengths = K.kmer_encode_batch(["ACGT", "AC", "ACGTA"], 2, 1, pad_left=True)
    assert lengths.tolist() == [3, 1, 4]
    assert ids.tolist() == [[0, 3, 8, 13], [0, 0, 0, 3], [3, 8, 13, 14]]
    ids, _ = K.kmer_encode_batch(["ACGT", "AC", "ACGTA"], 2, 1, max_tokens=2)
    assert ids.tolist() == [[3, 8], [3, 0], [3, 8]]


def test_batch_empty_and_all_short():
    ids, lengths = K.kmer_encode_batch([], 5, 2)
    assert ids.shape == (0, 0) and lengths.shape == (0,)
    ids, lengths = K.kmer_encode_batch(["AC", ""], 5, 2)
    assert ids.shape == (2, 0) and lengths.tolist() == [0, 0]
    flat = torch.empty(0, dtype=torch.uint8)
    ids, lengths = ops.kmer_encode_batch(flat, torch.zeros(1, dtype=torch.int64), 5, 2, torch.int64, False, 0)
    assert ids.shape == (0, 0)


def test_batch_bad_offsets():
    flat = u8("ACGTACGT")
    with pytest.raises(RuntimeError, match="non-decreasing"):
        ops.kmer_encode_batch(flat, torch.tensor([0, 5, 3]), 2, 1, torch.int64, False, 0)
    with pytest.raises(RuntimeError, match="offsets must lie in"):
        ops.kmer_encode_batch(flat, torch.tensor([0, 9]), 2, 1, torch.int64, False, 0)
    with pytest.raises(RuntimeError, match="offsets must have dtype torch.int64"):
        ops.kmer_encode_batch(flat, torch.tensor([0, 8], dtype=torch.int32), 2, 1, torch.int64, False, 0)


# ---- decode --------------------------------------------------------------------------------


@pytest.mark.parametrize("k,stride", [(1, 1), (3, 1), (5, 2), (5, 5), (4, 6), (15, 7)])
def test_decode_round_trip(make_seq, k, stride):
    seq = make_seq(1000, bad_rate=0.0)
    ids = K.kmer_encode(seq, k, stride)
    dec = K.kmer_decode(ids, k, stride)
    torch.testing.assert_close(dec, K.kmer_decode_ref(ids, k, stride))
    clean = seq.upper().replace(b"U", b"T")[: dec.numel()]
    expect = bytes(c if (i % stride) < k else ord("N") for i, c in enumerate(clean))
    assert bytes(dec.numpy()) == expect
    torch.testing.assert_close(K.kmer_decode(ids.int(), k, stride), dec)


def test_decode_unknowns_and_errors():
    ids = K.kmer_encode("ACGNTTGCA", 3, 1)
    assert bytes(K.kmer_decode(ids, 3, 1).numpy()) == b"ACGNTTGCA"  # N is in no known window
    assert bytes(K.kmer_decode(torch.tensor([0, 1, 2]), 2, 2).numpy()) == b"NNNNAA"
    assert K.kmer_decode(torch.empty(0, dtype=torch.int64), 5, 2).numel() == 0
    with pytest.raises(RuntimeError, match=r"ids must lie in \[0, 4\^k \+ 2\)"):
        K.kmer_decode(torch.tensor([2, 1026]), 5, 1)
    with pytest.raises(RuntimeError, match="flat element 1 is -3"):
        K.kmer_revcomp(torch.tensor([2, -3]), 5)


# ---- inputs, dtypes, errors -----------------------------------------------------------------


def test_non_contiguous_input_is_handled(make_seq):
    seq = u8(make_seq(10001))
    view = seq[::2]
    assert not view.is_contiguous()
    torch.testing.assert_close(K.kmer_encode(view, 5, 2), K.kmer_encode(view.contiguous(), 5, 2))
    torch.testing.assert_close(K.revcomp(view), K.revcomp_ref(view.contiguous()))
    ids = K.kmer_encode(seq, 3, 1)[::2]
    torch.testing.assert_close(K.kmer_revcomp(ids, 3), K.kmer_revcomp(ids.contiguous(), 3))


def test_bad_arguments_give_clear_errors():
    s = u8("ACGTACGT")
    with pytest.raises(ValueError, match=r"k must be an int in \[1, 15\]"):
        K.kmer_encode(s, 16)
    with pytest.raises(ValueError, match="k must be"):
        K.kmer_encode(s, 0)
    with pytest.raises(ValueError, match="stride must be an int >= 1"):
        K.kmer_encode(s, 3, 0)
    with pytest.raises(ValueError, match="dtype must be torch.int64 or torch.int32"):
        K.kmer_encode(s, 3, 1, torch.float32)
    with pytest.raises(ValueError, match="1-D torch.uint8"):
        K.kmer_encode(s.int(), 3)
    # the C++ checks, reached directly
    with pytest.raises(RuntimeError, match=r"gulm::kmer_encode: k must be in \[1, 15\]"):
        ops.kmer_encode(s, 16, 1, torch.int64)
    with pytest.raises(RuntimeError, match="stride must be >= 1"):
        ops.kmer_encode(s, 3, -1, torch.int64)
    with pytest.raises(RuntimeError, match="dtype must be torch.int64 or torch.int32"):
        ops.kmer_encode(s, 3, 1, torch.int16)
    with pytest.raises(RuntimeError, match=r"seq must be a 1-D uint8 tensor \[L\]"):
        ops.kmer_encode(s.reshape(2, 4), 3, 1, torch.int64)
    with pytest.raises(RuntimeError, match="seq must have dtype torch.uint8"):
        ops.kmer_encode(s.to(torch.int8), 3, 1, torch.int64)
    with pytest.raises(RuntimeError, match=r"lengths must have shape ids.shape\[:-1\]"):
        ops.kmer_revcomp(torch.zeros(2, 3, dtype=torch.int64), 3, torch.zeros(3, dtype=torch.int64), False)
    with pytest.raises(ValueError, match="k must be in"):
        C.kmer_encode_buffer(b"ACGT", 16)
    with pytest.raises(ValueError, match="isa must be one of"):
        C.kmer_encode_buffer(b"ACGT", 3, isa="sse9")


def test_large_k_and_int32_range():
    seq = "T" * 15
    assert K.kmer_encode(seq, 15, 1, torch.int32).tolist() == [4**15 + 1]
    assert K.kmer_encode(seq, 15, 1).tolist() == [4**15 + 1]


# ---- buffer API ---------------------------------------------------------------------------


def test_buffer_api_inputs(make_seq):
    seq = make_seq(3001)
    want = K.kmer_encode_ref(seq, 5, 2).numpy()
    arr = np.frombuffer(seq, dtype=np.uint8)
    for obj in (seq, bytearray(seq), memoryview(seq), arr, arr.copy(), seq.decode("latin-1")):
        if isinstance(obj, str) and not obj.isascii():
            continue
        out = C.kmer_encode_buffer(obj, 5, 2)
        assert out.dtype == np.int64 and out.flags.c_contiguous
        np.testing.assert_array_equal(out, want)
    assert C.kmer_encode_buffer(seq, 5, 2, int32=True).dtype == np.int32
    # non-contiguous numpy: every other byte
    big = np.frombuffer(make_seq(4000), dtype=np.uint8)
    np.testing.assert_array_equal(
        C.kmer_encode_buffer(big[::2], 5, 2), K.kmer_encode_ref(big[::2].tobytes(), 5, 2).numpy()
    )
    # int8 numpy is read as bytes too
    np.testing.assert_array_equal(C.kmer_encode_buffer(arr.view(np.int8), 5, 2), want)


def test_buffer_api_out_argument(make_seq):
    seq = make_seq(1001)
    want = K.kmer_encode_ref(seq, 5, 2).numpy()
    out = np.full(600, -1, dtype=np.int64)
    got = C.kmer_encode_buffer(seq, 5, 2, out=out)
    assert np.shares_memory(got, out) and got.shape == want.shape
    np.testing.assert_array_equal(got, want)
    assert (out[want.size :] == -1).all()
    out32 = np.empty(want.size, dtype=np.int32)
    assert C.kmer_encode_buffer(seq, 5, 2, int32=True, out=out32) is not None
    np.testing.assert_array_equal(out32, want)
    with pytest.raises(ValueError, match="at least 499 elements"):
        C.kmer_encode_buffer(seq, 5, 2, out=out[:10])
    with pytest.raises(TypeError, match="C-contiguous numpy array of int64"):
        C.kmer_encode_buffer(seq, 5, 2, out=out32)
    with pytest.raises(TypeError, match="C-contiguous"):
        C.kmer_encode_buffer(seq, 5, 2, out=out[::2])


def test_buffer_api_non_ascii_str_and_bad_types():
    # each non-ASCII character is one unk byte, so positions are kept
    assert C.kmer_encode_buffer("ACGéACG", 3, 1).tolist() == [idx("ACG"), 1, 1, 1, idx("ACG")]
    with pytest.raises(TypeError, match="must be str, bytes"):
        C.kmer_encode_buffer(12345, 3)
    with pytest.raises(ValueError, match="1-D buffer of 1-byte items"):
        C.kmer_encode_buffer(np.zeros(4, dtype=np.int32), 3)
    with pytest.raises(ValueError, match="1-D buffer"):
        C.kmer_encode_buffer(np.zeros((2, 4), dtype=np.uint8), 3)


def test_buffer_batch_and_revcomp(make_seq):
    seqs = [make_seq(n) for n in (5, 0, 99)]
    ids, lengths = C.kmer_encode_batch_buffer(
        [seqs[0], bytearray(seqs[1]), np.frombuffer(seqs[2], dtype=np.uint8)], 3, 2, pad_left=True
    )
    want_ids, want_len = K.kmer_encode_batch_ref(seqs, 3, 2, pad_left=True)
    np.testing.assert_array_equal(ids, want_ids.numpy())
    np.testing.assert_array_equal(lengths, want_len.numpy())
    np.testing.assert_array_equal(C.revcomp_buffer(seqs[2]), K.revcomp_ref(seqs[2]).numpy())
    assert C.kmer_cpu_isa() in ("scalar", "avx2", "avx512")


# ---- threads ------------------------------------------------------------------------------


@pytest.mark.parametrize("k,stride", [(5, 2), (3, 1), (12, 7)])
def test_parallel_equals_single_thread(make_seq, threads, k, stride):
    seq = u8(make_seq(10**6, bad_rate=0.001))
    threads(1)
    one = K.kmer_encode(seq, k, stride)
    one_buf = C.kmer_encode_buffer(seq.numpy(), k, stride, isa="scalar")
    threads(2)
    two = K.kmer_encode(seq, k, stride)
    torch.testing.assert_close(two, one)
    np.testing.assert_array_equal(one_buf, one.numpy())
    np.testing.assert_array_equal(C.kmer_encode_buffer(seq.numpy(), k, stride), one.numpy())
    rows = [seq[i : i + 100003] for i in range(0, seq.numel(), 100003)]
    threads(1)
    b1 = K.kmer_encode_batch(rows, k, stride, pad_left=True)
    threads(2)
    b2 = K.kmer_encode_batch(rows, k, stride, pad_left=True)
    torch.testing.assert_close(b1, b2)


def test_streaming_into_reused_buffer(make_seq, threads):
    # 9 Mbp at k=3 s=1 gives a 72 MB int64 output: the streaming-store path of out=
    seq = np.frombuffer(make_seq(9_000_000, bad_rate=0.0005), dtype=np.uint8)
    want = K.kmer_encode(torch.from_numpy(seq.copy()), 3, 1).numpy()
    out = np.zeros(want.size + 3, dtype=np.int64)
    for n in (1, 2):
        threads(n)
        out[:] = -1
        np.testing.assert_array_equal(C.kmer_encode_buffer(seq, 3, 1, out=out[1:]), want)  # unaligned start
        np.testing.assert_array_equal(C.kmer_encode_buffer(seq, 3, 1, out=out), want)


# ---- torch.library integration -----------------------------------------------------------


def test_opcheck(make_seq):
    for op, args in opcheck_samples(make_seq):
        torch.library.opcheck(op, args)


def test_torch_compile_fullgraph_matches_eager(make_seq):
    seq = u8(make_seq(1000))

    def f(x):
        return K.kmer_encode(x, 5, 2) * 2 + 1

    compiled = torch.compile(f, fullgraph=True, backend="aot_eager", dynamic=True)
    torch.testing.assert_close(compiled(seq), f(seq))
    torch.testing.assert_close(compiled(seq[:501]), f(seq[:501]))  # dynamic length, no recompile needed


@pytest.mark.slow
def test_torch_compile_inductor(make_seq):
    seq = u8(make_seq(1000))
    compiled = torch.compile(lambda x: K.kmer_encode(x, 5, 2) + 1, fullgraph=True)
    torch.testing.assert_close(compiled(seq), K.kmer_encode(seq, 5, 2) + 1)
