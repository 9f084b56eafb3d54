"""gulm.data: genomes (FASTA), intervals (BED/GFF), labeled sequence sets, tokenization and corpora.

All coordinates are 0-based half-open ``[start, end)`` with strand ``+``/``-``. The synthetic demo
genome lives in :mod:`gulm.demo.synthetic`.
"""
from gulm.data.errors import DataError, DataWarning, FastaError, RecordNotFoundError, RegionError, BedError, LabeledDataError  # noqa: F401
from gulm.data.fasta import iter_fasta, reverse_complement  # noqa: F401
from gulm.data.genome import Genome  # noqa: F401
from gulm.data.intervals import Interval, merge_intervals, parse_region, read_bed, read_gff_features, subtract_intervals, write_bed  # noqa: F401
from gulm.data.labeled import LabeledSequences, kfold_indices, read_labeled_bed, read_labeled_csv, read_labeled_fasta, stratified_split, write_labeled_csv  # noqa: F401
from gulm.data.promoters import promoter_dataset  # noqa: F401
from gulm.data.tokenizer import KmerTokenizer  # noqa: F401
