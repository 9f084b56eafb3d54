"""Tests of gulm.data.KmerTokenizer: canonical and seed-style vocabularies."""
import json
from collections import Counter, defaultdict

import numpy as np
import pytest
import torch

from gulm import _ext
from gulm.data import KmerTokenizer

pytestmark = pytest.mark.skipif(not _ext.HAS_EXTENSION, reason="gulm._C is not built")


def seed_tokenize(t: str, k: int, s: int) -> list[str]:
    """Genomic-ULMFiT's GenomicTokenizer.tokenizer (without its special case for k == 1)."""
    t = t.upper()
    return [t[i : i + k] for i in range(0, len(t), s) if len(t[i : i + k]) == k]


def seed_itos(docs: list[str], k: int, s: int, max_vocab, min_freq: int) -> list[str]:
    """GenomicVocab.create: Counter over all tokens, most_common(max_vocab), min_freq, pad first."""
    freq = Counter(p for d in docs for p in seed_tokenize(d, k, s))
    itos = [o for o, c in freq.most_common(max_vocab) if c >= min_freq]
    itos.insert(0, "xxpad")
    return itos


def random_acgt(rng, n: int) -> str:
    return "".join(rng.choice(list("ACGT"), n))


def test_canonical_encode_decode():
    tok = KmerTokenizer()  # k=5, stride=2
    assert (tok.k, tok.stride, tok.vocab, tok.vocab_size) == (5, 2, "canonical", 4**5 + 2)
    ids = tok.encode("ACGTACGTAC")
    assert ids.dtype == torch.int64 and ids.tolist() == [2 + 0b0001101100, 2 + 0b1011000110, 2 + 0b0001101100]
    assert tok.decode(ids) == "ACGTACGTA"  # the last base is in no full window
    assert tok("acgtacgtac").tolist() == ids.tolist()
    for seq in (b"ACGTACGTAC", bytearray(b"ACGTACGTAC"), np.frombuffer(b"ACGTACGTAC", np.uint8)):
        assert tok.encode(seq).tolist() == ids.tolist()
    assert tok.encode(torch.frombuffer(bytearray(b"ACGTACGTAC"), dtype=torch.uint8)).tolist() == ids.tolist()
    assert tok.encode("ACGTACGTAC", dtype=torch.int32).dtype == torch.int32
    assert KmerTokenizer(3, 1, dtype=torch.int32).encode("ACGT").dtype == torch.int32
    assert tok.encode("ACGTNCGTAC").tolist()[:2] == [1, 1]
    assert tok.decode(tok.encode("ACGTNCGTAC")) == "N" * 9  # every window touches the N
    assert tok.encode("ACG").numel() == 0


def test_canonical_itos_stoi():
    tok = KmerTokenizer(2, 1)
    assert tok.itos[:4] == ["xxpad", "xxunk", "AA", "AC"] and tok.itos[-1] == "TT"
    assert tok.stoi["GT"] == 2 + 11 and tok.stoi["NN"] == 1
    with pytest.raises(ValueError, match="only listed for k <= 10"):
        KmerTokenizer(11, 1).itos


@pytest.mark.parametrize("pad_left", [False, True])
def test_encode_batch(pad_left):
    tok = KmerTokenizer(3, 1)
    ids, lengths = tok.encode_batch(["ACGT", "A", "ACGTTG"], pad_left=pad_left)
    assert lengths.tolist() == [2, 0, 4]
    rows = [tok.encode(s) for s in ["ACGT", "A", "ACGTTG"]]
    for b, r in enumerate(rows):
        row = ids[b, 4 - len(r) :] if pad_left else ids[b, : len(r)]
        assert row.tolist() == r.tolist()
    assert int((ids == 0).sum()) == 4 * 3 - 6
    ids, lengths = tok.encode_batch(["ACGT", "A", "ACGTTG"], max_tokens=3)
    assert ids.shape == (3, 3) and lengths.tolist() == [2, 0, 3]


def test_revcomp_ids():
    tok = KmerTokenizer(3, 1)
    seq = "GATTACAGG"
    rc = "CCTGTAATC"
    assert tok.revcomp_ids(tok.encode(seq)).tolist() == tok.encode(rc).tolist()


def test_to_dict_round_trip_and_equality():
    tok = KmerTokenizer(5, 2)
    d = json.loads(json.dumps(tok.to_dict()))
    assert d["k"] == 5 and d["stride"] == 2 and d["vocab"] == "canonical"
    assert KmerTokenizer.from_dict(d) == tok
    assert KmerTokenizer(5, 1) != tok and KmerTokenizer(4, 2) != tok
    assert KmerTokenizer(5, 2, dtype=torch.int32) == tok  # same ids, other width
    assert hash(KmerTokenizer(5, 2)) == hash(tok)
    seed = KmerTokenizer.from_itos(["xxpad", "ACGTA", "CCCCC"], 5, 2)
    assert seed != tok
    d = json.loads(json.dumps(seed.to_dict()))
    assert d["vocab"] == "itos" and d["itos"] == ["xxpad", "ACGTA", "CCCCC"]
    back = KmerTokenizer.from_dict(d)
    assert back == seed and back.encode("ACGTACCCCC").tolist() == seed.encode("ACGTACCCCC").tolist()
    assert KmerTokenizer.from_itos(["xxpad", "CCCCC", "ACGTA"], 5, 2) != seed
    with pytest.raises(ValueError, match="unknown vocab kind"):
        KmerTokenizer.from_dict({**d, "vocab": "bpe"})
    with pytest.raises(ValueError, match="vocab_size"):
        KmerTokenizer.from_dict({**d, "vocab_size": 7})


def test_bad_arguments():
    with pytest.raises(ValueError, match="k must be"):
        KmerTokenizer(16, 1)
    with pytest.raises(ValueError, match="stride must be"):
        KmerTokenizer(5, 0)
    with pytest.raises(ValueError, match="dtype must be"):
        KmerTokenizer(5, 2, dtype=torch.float32)


@pytest.mark.parametrize("k,stride,max_vocab,min_freq", [(3, 1, None, 1), (4, 2, 50, 2), (2, 1, 5, 1), (5, 2, None, 3)])
def test_seed_vocab_matches_seed_and_maps_unknown_to_zero(k, stride, max_vocab, min_freq):
    rng = np.random.default_rng(k * 100 + stride)
    docs = [random_acgt(rng, int(n)) for n in rng.integers(0, 400, 12)]
    docs.append(docs[0].lower())  # case is folded, as the seed's upper()
    tok = KmerTokenizer.seed_vocab(docs, k, stride, max_vocab=max_vocab, min_freq=min_freq)
    want_itos = seed_itos(docs, k, stride, max_vocab, min_freq)
    assert tok.itos == want_itos
    assert tok.vocab == "itos" and tok.vocab_size == len(want_itos)
    # ids equal the seed's numericalize: defaultdict(int) lookup per token (unknown -> 0)
    stoi = defaultdict(int, {v: i for i, v in enumerate(want_itos)})
    probe = random_acgt(rng, 500)
    assert tok.encode(probe).tolist() == [stoi[t] for t in seed_tokenize(probe, k, stride)]
    assert tok.stoi["N" * k] == 0 and tok.unk_id == 0
    ids, lengths = tok.encode_batch([probe, probe[:50]], pad_left=True)
    assert ids[0].tolist() == tok.encode(probe).tolist()
    assert ids[1, ids.shape[1] - int(lengths[1]) :].tolist() == tok.encode(probe[:50]).tolist()


def test_seed_vocab_details():
    # windows with N are unknown (0), even when the itos lists an N k-mer; decode maps
    # through the inverse table
    tok = KmerTokenizer.from_itos(["pad", "AAA", "CCC", "NNN", "acg", "TTT"], 3, 1)
    assert tok.encode("AAACCCNNNACG").tolist() == [1, 0, 0, 2, 0, 0, 0, 0, 0, 4]
    assert tok.decode(tok.encode("AAACCC")) == "AAACCC"
    assert tok.decode([1, 3, 4]) == "AAACG"  # 'NNN' (3) spells nothing, ACG covers it
    assert tok.decode([0, 1]) == "NAAA"
    # decode of a seed id that names no k-mer ('NNN') gives N
    assert tok.decode(torch.tensor([3])) == "NNN"
    with pytest.raises(ValueError, match="ids must lie in"):
        tok.decode([7])
    # revcomp through the seed table: AAA <-> TTT; revcomp(ACG) = CGT is not in the vocabulary
    assert tok.revcomp_ids(tok.encode("AAA")).tolist() == [5]
    assert tok.revcomp_ids(tok.encode("ACG")).tolist() == [0]
    # duplicates: the later index wins, as the seed's dict comprehension
    dup = KmerTokenizer.from_itos(["pad", "AAA", "AAA"], 3, 1)
    assert dup.encode("AAA").tolist() == [2]
