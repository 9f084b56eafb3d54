"""The two scan bugs of issue 13: tiles past the record end or before the region with a stride
larger than the window, and duplicate windows (and a crashing BigWig writer) from overlapping
regions."""
import json
import os

import numpy as np
import pytest

pytest.importorskip("gulm._C", reason="compiled extension not built")

from test_scan_calls import ckpts, genome, scan  # noqa: F401  (fixtures)


def _tiles(path):
    rows = [ln.split("\t") for ln in open(path).read().splitlines()[1:]]
    return [(r[0], int(r[1]), int(r[2]), float(r[3])) for r in rows]


@pytest.mark.parametrize("track_mode", ["center", "window"])
def test_stride_larger_than_window_keeps_every_tile_inside_the_region(ckpts, genome, tmp_path, track_mode):
    # chrA is 3000 bp: windows of 60 every 100 from 101 (0-based 100) leave 40 bp at each side
    res = scan(ckpts["plain"], genome, tmp_path, threshold="0.5", window=60, stride=100, track_mode=track_mode,
               regions=["chrA:101-3000", "chrB:1-700"])
    lengths = {"chrA": 3000, "chrB": 700}
    lo = {"chrA": 100, "chrB": 0}
    for strand in ("+", "-"):
        rows = _tiles(res.files[f"bedgraph{strand}"])
        assert rows, strand
        for c, a, b, _ in rows:
            assert lo[c] <= a < b <= lengths[c]
            assert b - a == 60  # the tile is the window itself: nothing outside it was scored
        starts = sorted(int(s) for s, st, c in zip(res.start, res.strand, res.chrom) if st == strand and c == "chrA")
        assert [a for c, a, _, _ in rows if c == "chrA"] == starts
    for line in open(res.files["calls"]):
        c, a, b = line.split("\t")[:3]
        assert lo[c] <= int(a) < int(b) <= lengths[c]


def test_bigwig_of_a_stride_larger_than_window_stays_in_bounds(ckpts, genome, tmp_path):
    pyBigWig = pytest.importorskip("pyBigWig")
    res = scan(ckpts["plain"], genome, tmp_path, threshold="0.5", window=60, stride=130)
    for strand in ("+", "-"):
        bw = pyBigWig.open(res.files[f"bigwig{strand}"])
        try:
            for chrom, length in bw.chroms().items():
                ivs = bw.intervals(chrom)
                assert ivs and all(0 <= a < b <= length for a, b, _ in ivs)
        finally:
            bw.close()


def test_overlapping_regions_are_merged_into_one_set_of_windows(ckpts, genome, tmp_path):
    one = scan(ckpts["plain"], genome, tmp_path, name="one", threshold="0.5", regions=["chrA:1001-1600"])
    both = scan(ckpts["plain"], genome, tmp_path, name="both", threshold="0.5",
                regions=["chrA:1201-1600", "chrA:1001-1400", "chrA:1301-1350"])
    assert both.summary["regions"] == ["chrA:1001-1600"]
    keys = list(zip(both.chrom, both.start, both.strand))
    assert len(keys) == len(set(keys))  # no duplicate windows
    assert keys == list(zip(one.chrom, one.start, one.strand)) and np.array_equal(both.score, one.score)
    for suffix in ("plus.bedGraph", "minus.bedGraph", "calls.bed", "peaks.narrowPeak", "windows.tsv"):
        assert (tmp_path / f"both.{suffix}").read_text() == (tmp_path / f"one.{suffix}").read_text(), suffix
    for strand in ("+", "-"):
        rows = _tiles(both.files[f"bedgraph{strand}"])
        assert all(b1 <= a2 for (_, _, b1, _), (_, a2, _, _) in zip(rows, rows[1:]))
    assert json.load(open(both.files["summary"]))["regions_called"] == both.summary["regions_called"]


def test_overlapping_bed_regions_and_adjacent_ones_merge_too(ckpts, genome, tmp_path):
    bed = tmp_path / "loci.bed"
    bed.write_text("chrA\t1200\t1600\tx\nchrA\t1000\t1400\ty\nchrB\t0\t300\nchrB\t300\t700\n")
    res = scan(ckpts["plain"], genome, tmp_path, threshold="0.5", regions=[str(bed), "chrA:1101-1200"])
    assert res.summary["regions"] == ["chrA:1001-1600", "chrB:1-700"]
    keys = list(zip(res.chrom, res.start, res.strand))
    assert len(keys) == len(set(keys))
    if "bigwig+" in res.files:  # pyBigWig installed: the writer no longer sees entries out of order
        assert os.path.getsize(res.files["bigwig+"]) > 0
    assert not list(tmp_path.glob("*.tmp"))
