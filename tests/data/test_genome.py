"""Genome: random access to plain and compressed FASTA, its cache and its error messages."""
from __future__ import annotations

import gzip
import multiprocessing
import os
import pickle
import random
import warnings
from pathlib import Path

import pytest

from gulm.data import cache as cache_mod
from gulm.data import compression as compression_mod
from gulm.data.errors import DataWarning, FastaError, RecordNotFoundError, RegionError
from gulm.data.fasta import iter_fasta, reverse_complement
from gulm.data.genome import Genome
from gulm_data_helpers import COMPRESSIONS, bgzip_bytes, require_data, write_fasta


def _records(seed: int = 1) -> dict[str, str]:
    rng = random.Random(seed)
    recs = {}
    for name, n in (("chr1", 1003), ("chr2", 61), ("plasmid", 250), ("tiny", 1)):
        recs[name] = "".join(rng.choice("ACGTacgtN") for _ in range(n))
    return recs


def _fasta_text(recs: dict[str, str], width: int = 60, eol: str = "\n") -> str:
    out = []
    for name, seq in recs.items():
        out.append(f">{name} some description{eol}")
        out.extend(seq[i : i + width] + eol for i in range(0, len(seq), width))
    return "".join(out)


@pytest.fixture
def recs():
    return _records()


def _user_cache(tmp_path) -> Path:
    """The user cache directory under the test's HOME (see conftest.py)."""
    return tmp_path / "home" / ".cache" / "gulm"


def _written_beside(folder: Path, before: set) -> set:
    return {p.name for p in folder.iterdir()} - before


@pytest.mark.parametrize("read_ahead", [None, 97])
@pytest.mark.parametrize("compression", list(COMPRESSIONS))
def test_every_compression_gives_the_same_fetches(tmp_path, recs, compression, read_ahead):
    path = write_fasta(tmp_path / "g.fa", _fasta_text(recs), compression)
    with Genome(path, read_ahead=read_ahead) as g:
        assert g.compression == compression
        assert g.names == list(recs)
        assert g.lengths == {k: len(v) for k, v in recs.items()}
        rng = random.Random(7)
        for _ in range(200):
            name = rng.choice(list(recs))
            n = len(recs[name])
            start = rng.randrange(0, n + 1)
            end = rng.randrange(start, n + 1)
            assert g.fetch(name, start, end) == recs[name][start:end]
            assert g.fetch(name, start, end, "-") == reverse_complement(recs[name][start:end])
        seq = recs["chr1"]
        for start in range(0, len(seq) - 10, 7):  # sliding windows: the read-ahead buffer's use case
            assert g.fetch("chr1", start, start + 10) == seq[start : start + 10]


def test_bgzip_is_read_in_place_when_biopython_is_present(tmp_path, recs):
    pytest.importorskip("Bio.bgzf")
    path = write_fasta(tmp_path / "g.fa", _fasta_text(recs), "bgzip")
    g = Genome(path)
    assert g.indexed_path == path  # no decompressed copy
    assert not Path(str(path) + ".gzi").exists() and list(_user_cache(tmp_path).glob("g.fa.gz.*.gzi"))
    assert g.sequence("chr1") == recs["chr1"]


def test_bgzip_without_biopython_is_decompressed_to_the_cache(tmp_path, recs, monkeypatch):
    monkeypatch.setattr(compression_mod, "has_biopython", lambda: False)
    path = write_fasta(tmp_path / "g.fa", _fasta_text(recs), "bgzip")
    g = Genome(path)
    assert g.indexed_path != path and g.indexed_path.parent == _user_cache(tmp_path)
    assert g.sequence("plasmid") == recs["plasmid"]


def test_compression_is_read_from_magic_bytes_not_the_name(tmp_path, recs):
    path = tmp_path / "looks_plain.fa"
    path.write_bytes(COMPRESSIONS["gzip"][1](_fasta_text(recs).encode()))
    assert Genome(path).sequence("chr2") == recs["chr2"]


def test_fetch_at_record_ends_and_bounds(tmp_path, recs):
    g = Genome(write_fasta(tmp_path / "g.fa", _fasta_text(recs)))
    n = len(recs["chr1"])
    assert g.fetch("chr1", n - 1, n) == recs["chr1"][-1]
    assert g.fetch("chr1", 0, 1) == recs["chr1"][0]
    assert g.fetch("chr1", n, n) == "" and g.fetch("chr1", 0, 0) == ""
    assert g.fetch("tiny", 0, 1, "-") == reverse_complement(recs["tiny"])
    assert g.fetch("chr2", 0, 61) == recs["chr2"]  # a record that ends exactly on a full line
    with pytest.raises(RegionError, match=rf"chr1:{n - 1}-{n + 1} is outside record 'chr1' of length {n}"):
        g.fetch("chr1", n - 1, n + 1)
    with pytest.raises(RegionError, match="outside"):
        g.fetch("chr1", 5, 4)
    with pytest.raises(RegionError, match="outside"):
        g.fetch("chr1", -1, 4)
    with pytest.raises(RegionError, match="strand"):
        g.fetch("chr1", 0, 4, "x")
    with pytest.raises(RecordNotFoundError, match=r"g\.fa: no record named 'chrX' \(records: chr1, chr2"):
        g.fetch("chrX", 0, 1)
    with pytest.raises(KeyError):  # RecordNotFoundError is also a KeyError
        g.length("chrX")


def test_reverse_complement_is_iupac_aware_and_keeps_case():
    assert reverse_complement("ACGTRYKMSWBDHVN") == "NBDHVWSKMRYACGT"
    assert reverse_complement("acgTn") == "nAcgt"
    assert reverse_complement("AUG") == "CAT"
    assert reverse_complement("AC-*") == "*-GT"
    seq = "ACGTRYKMSWBDHVNacgtrykmswbdhvn"
    assert reverse_complement(reverse_complement(seq)) == seq


def test_soft_masking_is_kept_unless_upper(tmp_path):
    g = Genome(write_fasta(tmp_path / "g.fa", ">a\nACGTacgtNN\nacGT\n"))
    assert g.fetch("a", 2, 8) == "GTacgt"
    assert g.fetch("a", 2, 8, upper=True) == "GTACGT"
    assert g.fetch("a", 2, 8, "-") == "acgtAC"
    assert g.sequence("a") == "ACGTacgtNNacGT"
    assert dict(g.records(upper=True)) == {"a": "ACGTACGTNNACGT"}


@pytest.mark.parametrize("compression", ["plain", "gzip"])
def test_crlf_line_endings(tmp_path, recs, compression):
    path = write_fasta(tmp_path / "g.fa", _fasta_text(recs, eol="\r\n"), compression)
    g = Genome(path)
    assert dict(g.records()) == recs


def test_irregular_line_lengths_are_normalised_through_the_cache(tmp_path, recs):
    text = ">a\nACGT\nACGTACGT\nAC\n\n>b\nGG\n"
    path = write_fasta(tmp_path / "g.fa", text)
    with pytest.warns(DataWarning, match="line lengths vary"):
        g = Genome(path)
    assert dict(g.records()) == {"a": "ACGTACGTACGTAC", "b": "GG"}
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        again = Genome(path)  # reuses the normalised copy without re-indexing or warning
    assert again.indexed_path == g.indexed_path
    assert again.fetch("a", 3, 9) == "TACGTA"


@pytest.mark.parametrize("compression", ["plain", "gzip"])
def test_empty_record_is_skipped_with_a_warning(tmp_path, compression):
    path = write_fasta(tmp_path / "g.fa", ">a\nACGT\n>empty\n>c\nGGA\n", compression)
    with pytest.warns(DataWarning, match=r"record 'empty'.*no sequence; skipped"):
        g = Genome(path)
    assert g.names == ["a", "c"] and "empty" not in g
    assert g.fetch("c", 0, 3) == "GGA"


@pytest.mark.parametrize("compression", ["plain", "gzip"])
def test_only_empty_records_is_an_error(tmp_path, compression):
    path = write_fasta(tmp_path / "g.fa", ">a\n>b\n", compression)
    with pytest.warns(DataWarning), pytest.raises(FastaError, match="no FASTA records with sequence"):
        Genome(path)


def test_missing_and_empty_files(tmp_path):
    with pytest.raises(FileNotFoundError, match="nope.fa"):
        Genome(tmp_path / "nope.fa")
    (tmp_path / "empty.fa").write_bytes(b"")
    with pytest.raises(FastaError, match=r"empty\.fa: empty file"):
        Genome(tmp_path / "empty.fa")
    with pytest.raises(FastaError, match="is a directory"):
        Genome(tmp_path)
    path = write_fasta(tmp_path / "blank.fa", "\n\n", "gzip")
    with pytest.raises(FastaError, match="blank.fa.gz: no FASTA records"):
        Genome(path)


@pytest.mark.parametrize("compression", ["plain", "gzip"])
def test_duplicate_names_are_kept_renamed_with_a_warning(tmp_path, compression):
    """One rule for repeated record names (as iter_fasta): x, x_2, ... and a warning naming them,
    every time the file is opened (the renamed copy is reused)."""
    path = write_fasta(tmp_path / "dup.fa", ">x one\nACGT\n>y\nAA\n>x two\nGG\n>x_2\nC\n", compression)
    for _ in range(2):
        with pytest.warns(DataWarning, match=r"dup\.fa.*2 duplicate record names: the repeated 'x' "
                                             r"\(line 5; the first at line 1\) is kept as 'x_2', and 1 more"):
            g = Genome(path)
        assert g.names == ["x", "y", "x_2", "x_2_2"]
        assert [g.sequence(n) for n in g.names] == ["ACGT", "AA", "GG", "C"]
    assert not (tmp_path / "dup.fa.fai").exists()
    with pytest.warns(DataWarning, match="duplicate"):
        assert [n for n, _ in iter_fasta(path)] == g.names  # the same names from both readers


def test_truncated_gzip_names_the_file_and_leaves_no_cache(tmp_path, recs):
    good = write_fasta(tmp_path / "g.fa", _fasta_text(recs) * 3, "gzip")
    data = good.read_bytes()
    bad = tmp_path / "cut.fa.gz"
    bad.write_bytes(data[: len(data) // 2])
    with pytest.raises(FastaError, match=r"cut\.fa\.gz: truncated or corrupt gzip"):
        Genome(bad)
    cache = _user_cache(tmp_path)
    assert not cache.exists() or not any(p.name.startswith((".cut", "cut")) for p in cache.iterdir())


def test_corrupt_gzip_names_the_file(tmp_path, recs):
    data = bytearray(COMPRESSIONS["gzip"][1](_fasta_text(recs).encode()))
    data[30:40] = b"\x00" * 10
    bad = tmp_path / "bad.fa.gz"
    bad.write_bytes(bytes(data))
    with pytest.raises(FastaError, match=r"bad\.fa\.gz: truncated or corrupt gzip"):
        Genome(bad)


@pytest.mark.parametrize(
    "text, pattern",
    [
        ("hello world\n>a\nACGT\n", r"line 1: expected a FASTA header starting with '>', found 'hello world'"),
        ("\n\nACGT\n>a\nAC\n", r"line 3: expected a FASTA header"),
        ("@read1\nACGT\n+\nIIII\n", r"looks like FASTQ"),
        (">\nACGT\n", r"line 1: FASTA header without a record name"),
    ],
)
@pytest.mark.parametrize("compression", ["plain", "gzip"])
def test_non_fasta_content(tmp_path, text, pattern, compression):
    path = write_fasta(tmp_path / "x.fa", text, compression)
    with pytest.raises(FastaError, match=pattern):
        Genome(path)
    assert not (tmp_path / "x.fa.fai").exists()


@pytest.mark.parametrize("compression", ["plain", "gzip"])
def test_binary_sequence_bytes_are_an_error(tmp_path, compression):
    path = write_fasta(tmp_path / "b.fa", b">a\nACGT\nAC\xff\xfeGT\n", compression)
    with pytest.raises(FastaError, match=r"b\.fa.*: line 3: non-ASCII bytes"):
        Genome(path)


def test_unsupported_compression_is_named(tmp_path):
    path = tmp_path / "g.fa.zst"
    path.write_bytes(b"\x28\xb5\x2f\xfd" + b"\x00" * 20)
    with pytest.raises(FastaError, match="zstd"):
        Genome(path)


def test_gzip_cache_is_reused_then_rebuilt_when_the_source_changes(tmp_path, recs):
    path = write_fasta(tmp_path / "g.fa", _fasta_text(recs), "gzip")
    first = Genome(path)
    cached = first.indexed_path
    assert cached.parent == _user_cache(tmp_path) and cached.exists()
    stamp = cached.stat().st_mtime_ns
    second = Genome(path)
    assert second.indexed_path == cached and cached.stat().st_mtime_ns == stamp  # not rewritten

    changed = dict(recs, chr2="TTTTGGGG")
    write_fasta(tmp_path / "g.fa", _fasta_text(changed), "gzip")
    st = path.stat()
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns + 5_000_000_000))
    third = Genome(path)
    assert third.indexed_path != cached
    assert not cached.exists()  # the stale copy was removed
    assert third.sequence("chr2") == "TTTTGGGG"
    assert [p for p in cached.parent.iterdir() if p.name.endswith(".tmp")] == []


def test_cache_location_rules(tmp_path, recs, monkeypatch):
    path = write_fasta(tmp_path / "g.fa", _fasta_text(recs), "gzip")
    explicit = Genome(path, cache_dir=tmp_path / "mine")
    assert explicit.indexed_path.parent == tmp_path / "mine"
    monkeypatch.setenv("GULM_CACHE", str(tmp_path / "env"))
    assert Genome(path).indexed_path.parent == tmp_path / "env"
    monkeypatch.delenv("GULM_CACHE")
    assert Genome(path).indexed_path.parent == _user_cache(tmp_path)
    # a cache directory that cannot be created (here: below a file, which fails even for root)
    blocker = tmp_path / "not_a_dir"
    blocker.write_text("")
    monkeypatch.setenv("GULM_CACHE", str(blocker / "cache"))
    monkeypatch.setattr(cache_mod.tempfile, "gettempdir", lambda: str(tmp_path / "tmp"))
    with pytest.warns(DataWarning, match="cannot write the cache directory .*not_a_dir/cache; using"):
        g = Genome(path)
    assert g.indexed_path.parent.parent == tmp_path / "tmp" and g.sequence("chr2") == recs["chr2"]
    with pytest.raises(FastaError, match="cannot create or write the cache directory"):
        Genome(path, cache_dir=blocker / "explicit")


@pytest.mark.parametrize("compression", ["plain", "gzip", "bgzip"])
def test_nothing_is_written_beside_the_input(tmp_path, recs, compression):
    """Indexes and copies go to the user cache; the input folder is never written, so a
    read-only or shared data folder works (chmod has no effect on root, so the test checks
    that nothing at all is written there, which is what read-only needs)."""
    data = tmp_path / "data"
    data.mkdir()
    path = write_fasta(data / "g.fa", _fasta_text(recs), compression)
    before = {p.name for p in data.iterdir()}
    os.chmod(data, 0o555)
    try:
        g = Genome(path)
        assert g.sequence("chr1") == recs["chr1"]
        assert _written_beside(data, before) == set()
        assert Genome(path).sequence("plasmid") == recs["plasmid"]  # the cached index is reused
        assert list(_user_cache(tmp_path).glob("g.fa.*.fai"))
    finally:
        os.chmod(data, 0o755)


def test_a_fresh_index_beside_the_file_is_read_not_rewritten(tmp_path, recs):
    path = write_fasta(tmp_path / "g.fa", _fasta_text(recs))
    built = Genome(path)._index_path
    fai = tmp_path / "g.fa.fai"
    fai.write_bytes(Path(built).read_bytes())  # as samtools faidx would have made it
    stamp = fai.stat().st_mtime_ns
    g = Genome(path)
    assert g._index_path == fai and fai.stat().st_mtime_ns == stamp
    assert g.sequence("chr1") == recs["chr1"]


def test_stale_index_beside_the_file_is_left_alone(tmp_path, recs):
    path = write_fasta(tmp_path / "g.fa", _fasta_text(recs))
    fai = tmp_path / "g.fa.fai"
    fai.write_bytes(Path(Genome(path)._index_path).read_bytes())
    old = fai.stat()
    path.write_text(">chr1\nACGTACGT\n")  # replaced by a shorter file that looks older than its index
    os.utime(path, ns=(old.st_atime_ns, old.st_mtime_ns - 10_000_000_000))
    g = Genome(path)
    assert g.names == ["chr1"] and g.sequence("chr1") == "ACGTACGT"
    assert fai.exists() and fai.stat().st_mtime_ns == old.st_mtime_ns  # the user's file, untouched


def test_plain_text_named_gz_is_refused_naming_the_file(tmp_path):
    path = tmp_path / "plain.fa.gz"
    path.write_text(">a\nACGT\n")
    with pytest.raises(FastaError, match=r"plain\.fa\.gz: not gzip-compressed, although its name ends in "
                                         r"\.gz: it is plain text"):
        Genome(path)
    with pytest.raises(FastaError, match="not gzip-compressed"):
        list(iter_fasta(path))
    bz = tmp_path / "g.fa.bz2"
    bz.write_bytes(COMPRESSIONS["gzip"][1](b">a\nACGT\n"))
    with pytest.raises(FastaError, match=r"g\.fa\.bz2: not bzip2-compressed.*it is gzip-compressed"):
        Genome(bz)


def test_stream_chunks_cover_the_record(tmp_path, recs):
    g = Genome(write_fasta(tmp_path / "g.fa", _fasta_text(recs)))
    seq = recs["chr1"]
    chunks = list(g.stream("chr1", chunk_size=100, overlap=10))
    assert [s for s, _ in chunks] == list(range(0, len(seq) - 10, 90))
    assert all(c == seq[s : s + 100] for s, c in chunks)
    assert chunks[-1][0] + len(chunks[-1][1]) == len(seq)
    assert "".join(c for _, c in g.stream("chr1", chunk_size=64)) == seq
    assert list(g.stream("tiny", chunk_size=10)) == [(0, recs["tiny"])]
    with pytest.raises(ValueError, match="overlap"):
        next(g.stream("chr1", chunk_size=10, overlap=10))


def test_mapping_protocol_and_records(tmp_path, recs):
    g = Genome(write_fasta(tmp_path / "g.fa", _fasta_text(recs)), read_ahead=256)
    assert len(g) == 4 and list(g) == list(recs) and "chr2" in g and "nope" not in g
    assert g.total_length == sum(map(len, recs.values()))
    assert list(g.records()) == list(recs.items())
    assert "records=4" in repr(g)


def test_pickle_and_fork_reopen_the_file(tmp_path, recs):
    g = Genome(write_fasta(tmp_path / "g.fa", _fasta_text(recs), "gzip"))
    clone = pickle.loads(pickle.dumps(g))
    assert clone.sequence("chr1") == recs["chr1"]
    g._pid = -1  # as if this object came from another process
    assert g.fetch("chr1", 10, 20) == recs["chr1"][10:20] and g._pid == os.getpid()


_SHARED: Genome | None = None  # inherited by forked workers, not pickled to them


def _fetch_many(seed):
    rng = random.Random(seed)
    n = _SHARED.length("big")
    out = []
    for _ in range(1500):
        start = rng.randrange(0, n - 3000)
        out.append((start, _SHARED.fetch("big", start, start + 3000)))
    return out


@pytest.mark.skipif("fork" not in multiprocessing.get_all_start_methods(), reason="needs fork")
def test_forked_workers_read_correct_sequences(tmp_path):
    # A file handle inherited through fork shares its offset with the parent and siblings: without a
    # per-process reopen, concurrent seek+read pairs interleave and return wrong bases (pyfaidx #211).
    global _SHARED
    rng = random.Random(3)
    big = "".join(rng.choice("ACGT") for _ in range(200_000))
    _SHARED = Genome(write_fasta(tmp_path / "big.fa", _fasta_text({"big": big})))
    _SHARED.fetch("big", 0, 10)  # the parent's handle is open before the fork
    try:
        with multiprocessing.get_context("fork").Pool(2) as pool:
            results = pool.map(_fetch_many, range(4))
    finally:
        _SHARED = None
    for res in results:
        assert all(seq == big[s : s + 3000] for s, seq in res)


def test_iter_fasta_streams_small_files(tmp_path):
    path = write_fasta(tmp_path / "s.fa", ">a x\nac\ngt\n>b\n>a\nTT\r\n", "gzip")
    with pytest.warns(DataWarning, match="'b'"), pytest.warns(DataWarning, match="1 duplicate record name: .*'a_2'"):
        assert list(iter_fasta(path)) == [("a", "acgt"), ("a_2", "TT")]
    with pytest.warns(DataWarning):
        assert list(iter_fasta(path, upper=True))[0] == ("a", "ACGT")


def test_bgzip_helper_round_trips():
    import gzip

    data = os.urandom(10_000)
    assert gzip.decompress(bgzip_bytes(data)) == data


@pytest.mark.data
def test_real_ecoli_genome(tmp_path):
    path = require_data("ecoli_k12_mg1655", "GCF_000005845.2_ASM584v2_genomic.fna.gz")
    g = Genome(path, cache_dir=tmp_path)
    assert g.lengths == {"NC_000913.3": 4_641_652}
    # thrL, the first CDS of the annotation (GFF 190..255, +): starts with ATG and ends with a stop codon
    thrl = g.fetch("NC_000913.3", 189, 255)
    assert thrl.startswith("ATG") and thrl[-3:] in ("TAA", "TAG", "TGA")
    assert set(g.fetch("NC_000913.3", 1_000_000, 1_010_000)) <= set("ACGT")
    assert Genome(path, cache_dir=tmp_path).indexed_path == g.indexed_path


def test_nucleotide_symbols_pass_and_anything_else_is_named_with_its_position():
    from gulm.data.fasta import check_sequence, foreign_symbol

    ok = "ACGTU" + "RYSWKMBDHVN" + "X-." + "acgturyswkmbdhvnx"
    assert foreign_symbol(ok) is None and foreign_symbol(ok.encode()) is None and foreign_symbol("") is None
    assert foreign_symbol("ACGTEACGT") == (4, "E") and foreign_symbol(b"ACGT ACGT*") == (4, " ")
    assert foreign_symbol("ACGT1") == (4, "1") and foreign_symbol("ACGTé") == (4, "é")
    with pytest.raises(ValueError, match=r"^q, position 13: 'L' is not a nucleotide symbol .*protein sequence\?$"):
        check_sequence("MVLSPADK", "q", offset=10)
    with pytest.raises(ValueError, match=r"position 3: '\*' is not a nucleotide symbol[^?]*$"):
        check_sequence("AC*", "q")


def test_a_genome_with_a_foreign_symbol_is_refused_where_it_is_read(tmp_path):
    """In place (pyfaidx reads the file) the fetch names the record and base; a compressed or
    irregular file is refused while its normalised copy is written, naming the line."""
    plain = tmp_path / "g.fa"
    plain.write_text(">a\nACGTACGT\nACGTACGT\n>b\nACGTACGT\nACGE\n")
    g = Genome(plain)
    assert g.fetch("a", 0, 16) == "ACGTACGT" * 2 and g.fetch("b", 0, 3) == "ACG"
    with pytest.raises(FastaError, match=r"g.fa: record 'b', position 12: 'E' is not a nucleotide symbol"):
        g.fetch("b", 4, 12)
    packed = tmp_path / "g2.fa.gz"
    packed.write_bytes(gzip.compress(b">a\nACGTACGT\n>b\nACGTACGT\nAC?T\n"))
    with pytest.raises(FastaError, match=r"g2.fa.gz: line 5 \(record 'b'\), position 3: '\?' is not a nucleotide"):
        Genome(packed).fetch("a", 0, 4)
