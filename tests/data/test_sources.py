"""The checks labelled data passes before a classifier trains on it: errors name the label source
and the class; what is allowed but changes the result is a warning that says what follows."""
import pytest

from gulm.configs import DataConfig
from gulm.data.errors import DataWarning, LabeledDataError
from gulm.data.labeled import LabeledSequences
from gulm.data.sources import check_training_data, label_source

CSV = DataConfig(csv="d.csv", label_col="kind")


def _set(labels, split):
    return LabeledSequences(["ACGT"] * len(labels), list(labels), [str(i) for i in range(len(labels))], list(split))


def test_label_source_names_the_column_the_files_or_the_bed():
    assert label_source(CSV) == "d.csv: label column 'kind' (label_col=)"
    assert "fasta=" in label_source(DataConfig(fasta={"p": "p.fa"})) and "p=p.fa" in label_source(DataConfig(fasta={"p": "p.fa"}))
    assert label_source(DataConfig(bed="s.bed", genome="g.fa")) == "s.bed: the BED name column"


def test_refusals():
    with pytest.raises(LabeledDataError, match=r"d.csv: label column 'kind'.*one class only \('a', 3 sequences\)"):
        check_training_data(_set("aaa", ["train"] * 3), CSV)
    with pytest.raises(LabeledDataError, match=r"class 'c' has no training sequences \(0 train, 1 valid, 1 test\)"):
        check_training_data(_set("ababcc", ["train", "train", "valid", "test", "valid", "test"]), CSV)
    drawn = LabeledSequences(["A"] * 23, ["a"] * 20 + ["b"] * 3, [str(i) for i in range(23)]).random_split()
    with pytest.raises(LabeledDataError, match=r"class 'b' has 3 sequences, too few for the random split "
                                               r"\(valid_frac=0.1, test_frac=0.1\): it gets 3 train, 0 valid, 0 test"):
        check_training_data(drawn, CSV)


def test_what_is_allowed_is_said():
    with pytest.warns(DataWarning, match="no test split: the final metrics are computed on the valid split"):
        check_training_data(_set("abab", ["train", "train", "valid", "valid"]), CSV)
    with pytest.warns(DataWarning, match=r"no valid split: no validation metrics per epoch, and select= best"):
        check_training_data(_set("abab", ["train", "train", "test", "test"]), CSV)
    with pytest.warns(DataWarning, match=r"the test split has no sequences of 1 of 3 classes \('c'\)"):
        check_training_data(_set("abcabcab", ["train"] * 3 + ["valid"] * 3 + ["test"] * 2), CSV)
    # a zero fraction asked for is no surprise: said, not refused
    drawn = LabeledSequences(["A"] * 20, ["a", "b"] * 10, [str(i) for i in range(20)]).random_split((0.9, 0.1, 0.0))
    with pytest.warns(DataWarning, match="no test split"):
        check_training_data(drawn, DataConfig(csv="d.csv", test_frac=0.0, valid_frac=0.1))
