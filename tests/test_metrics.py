import json
import math

import numpy as np
import pytest

from gulm.metrics import classification_metrics, format_table, write_metrics


def test_binary_metrics_match_hand_counts():
    # TP=3, FN=1, TN=4, FP=2
    y = np.array([1, 1, 1, 1, 0, 0, 0, 0, 0, 0])
    pred = np.array([1, 1, 1, 0, 0, 0, 0, 0, 1, 1])
    probs = np.stack([1 - pred * 0.9 - 0.05, pred * 0.9 + 0.05], axis=1)
    m = classification_metrics(y, probs)
    assert m["accuracy"] == pytest.approx(7 / 10)
    assert m["precision"] == pytest.approx(3 / 5)
    assert m["recall"] == pytest.approx(3 / 4)
    assert m["specificity"] == pytest.approx(4 / 6)
    assert m["f1"] == pytest.approx(2 * 0.6 * 0.75 / 1.35)
    mcc = (3 * 4 - 2 * 1) / math.sqrt(5 * 4 * 6 * 5)
    assert m["mcc"] == pytest.approx(mcc)
    assert m["confusion_matrix"] == [[4, 2], [1, 3]]


def test_multiclass_macro_and_auc():
    rng = np.random.default_rng(0)
    y = np.repeat(np.arange(4), 25)
    logits = rng.normal(size=(100, 4))
    logits[np.arange(100), y] += 2.0
    probs = np.exp(logits) / np.exp(logits).sum(1, keepdims=True)
    m = classification_metrics(y, probs)
    assert 0.5 < m["accuracy"] <= 1.0
    assert 0.5 < m["roc_auc"] <= 1.0
    assert np.array(m["confusion_matrix"]).sum() == 100


def test_single_class_auc_is_nan_and_json_null(tmp_path):
    m = classification_metrics([1, 1], np.array([[0.2, 0.8], [0.6, 0.4]]))
    assert math.isnan(m["roc_auc"])
    p = tmp_path / "m.json"
    write_metrics(p, m)
    assert json.loads(p.read_text())["roc_auc"] is None
    assert "accuracy" in format_table({"run": m})


def test_shape_errors():
    with pytest.raises(ValueError, match="probs must be"):
        classification_metrics([0, 1], np.zeros((3, 2)))
