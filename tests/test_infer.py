"""The one inference path (gulm.infer): loading, batched probabilities, strand averaging,
precision, encoder features, the predictions TSV and the checkpoint resolver."""
import io

import numpy as np
import pytest
import torch

pytest.importorskip("gulm._C", reason="compiled extension not built")

import gulm
from gulm.data.fasta import reverse_complement
from gulm.data.tokenizer import KmerTokenizer
from gulm.infer import Classifier, Encoder, Ensemble, precision, write_predictions
from gulm.nn import AWDConfig, classifier, language_model
from gulm.runtime.checkpoint import CheckpointError, resolve_checkpoint, save_checkpoint


def _save(folder, kind, seed=0, **extra):
    torch.manual_seed(seed)
    tok = KmerTokenizer(3, 1)
    cfg = AWDConfig(vocab_size=tok.vocab_size, emb_size=8, hidden_size=16, n_layers=2, n_classes=3)
    model = (classifier if kind == "classifier" else language_model)(cfg).eval()
    if kind == "classifier":
        with torch.no_grad():
            model.head.layers[-1].weight.mul_(30)  # spread the probabilities
    save_checkpoint(folder, model, kind=kind, model_config=cfg.to_dict(), tokenizer=tok, **extra)
    return model, tok


@pytest.fixture(scope="module")
def ckpt(tmp_path_factory):
    folder = tmp_path_factory.mktemp("infer") / "clf"
    model, tok = _save(folder, "classifier", extra={"classes": ["a", "b", "promoter"], "window": 40},
                       training={"rc_average": False})
    return str(folder), model, tok


def _seqs(n=9, seed=0):
    rng = np.random.default_rng(seed)
    return ["".join(rng.choice(list("ACGT"), rng.integers(20, 80))) for _ in range(n)]


def _reference(model, tok, seqs):
    out = []
    with torch.no_grad():
        for s in seqs:
            ids = tok.encode(s)[None]
            out.append(model(ids, torch.tensor([ids.shape[1]]))[0].float().softmax(-1)[0].numpy())
    return np.stack(out)


def test_probs_are_the_models_one_sequence_at_a_time(ckpt):
    path, model, tok = ckpt
    clf = Classifier.load(path)
    assert clf.classes == ["a", "b", "promoter"] and clf.window == 40 and not clf.rc_average
    assert clf.target_index() == 2 and clf.target_index("b") == 1
    with pytest.raises(ValueError, match="not one of the model's classes"):
        clf.target_index("x")
    seqs = _seqs()  # lengths differ: batches are length-sorted, results come back in input order
    want = _reference(model, tok, seqs)
    np.testing.assert_allclose(clf.probs(seqs, bs=4), want, rtol=1e-5, atol=1e-6)
    both = clf.probs(seqs, bs=4, rc_average=True)
    rc = _reference(model, tok, [reverse_complement(s) for s in seqs])
    np.testing.assert_allclose(both, (want + rc) / 2, rtol=1e-5, atol=1e-6)
    probs, classes = gulm.predict(path, seqs)
    np.testing.assert_allclose(probs, want, rtol=1e-5, atol=1e-6)
    for one in (seqs[2], seqs[2].encode()):  # one sequence, str or bytes: one query, not its letters
        single, _ = gulm.predict(path, one)
        np.testing.assert_allclose(single, want[2:3], rtol=1e-5, atol=1e-6)


def test_an_ensemble_averages_its_members_each_read_its_own_way(ckpt, tmp_path):
    path, _, _ = ckpt
    other = tmp_path / "seed1"
    _save(other, "classifier", seed=1, extra={"classes": ["a", "b", "promoter"]}, training={"rc_average": True})
    seqs = _seqs()
    a, b = Classifier.load(path).probs(seqs), Classifier.load(other).probs(seqs)  # b averages both strands
    assert not np.allclose(a, b)
    ens = Ensemble.load([path, other])
    assert ens.classes == ["a", "b", "promoter"]
    np.testing.assert_allclose(ens.probs(seqs, bs=4), (a + b) / 2, rtol=1e-6, atol=1e-7)
    sets = ens.tokenize(seqs)
    assert sets[0] is not sets[1]  # one strand for the first member, both for the second
    same = Ensemble.load([path, path]).tokenize(seqs)
    assert same[0] is same[1]  # equal tokenizers and strands share one tokenized set
    probs, classes = gulm.predict(path, seqs, ensemble=[str(other)])
    np.testing.assert_allclose(probs, (a + b) / 2, rtol=1e-6, atol=1e-7)
    one, _ = gulm.predict(path, seqs, ensemble=str(other))  # one folder as a string: one member, not its letters
    np.testing.assert_allclose(one, probs)
    assert len(Ensemble.load(path).members) == 1
    _save(tmp_path / "xyz", "classifier", extra={"classes": ["x", "y", "z"]})
    with pytest.raises(ValueError, match="differ from"):
        Ensemble.load([path, tmp_path / "xyz"])


def test_rc_average_follows_the_checkpoint(tmp_path):
    _, tok = _save(tmp_path / "c", "classifier", extra={"classes": ["x", "y", "z"]}, training={"rc_average": True})
    clf = Classifier.load(tmp_path / "c")
    seqs = _seqs(4, 1)
    assert clf.rc_average
    np.testing.assert_allclose(clf.probs(seqs), clf.probs(seqs, rc_average=True))
    assert not np.allclose(clf.probs(seqs), clf.probs(seqs, rc_average=False))


def test_precision_maps_dtypes_in_one_place(ckpt):
    assert not torch.is_autocast_enabled("cpu")
    with precision("fp32", "cpu"):
        assert not torch.is_autocast_enabled("cpu")
    with precision("bf16", torch.device("cpu")):
        assert torch.is_autocast_enabled("cpu") and torch.get_autocast_dtype("cpu") == torch.bfloat16
    with pytest.raises(ValueError, match="fp16 needs a CUDA device"):
        precision("fp16", "cpu")
    with pytest.raises(ValueError, match="dtype must be one of fp32, bf16, fp16"):
        precision("float16", "cpu")
    with pytest.raises(ValueError, match="fp16"):
        Classifier.load(ckpt[0], "cpu", "fp16")
    bf16 = Classifier.load(ckpt[0], "cpu", "bf16").probs(_seqs())
    np.testing.assert_allclose(bf16, Classifier.load(ckpt[0]).probs(_seqs()), atol=0.05)


def test_encoder_features_are_the_heads_input(ckpt, tmp_path):
    path, model, tok = ckpt
    seqs = _seqs(5, 2)
    feats = Encoder.load(path).features(seqs, bs=2)
    assert feats.shape == (5, 3 * 8) and feats.dtype == np.float32
    with torch.no_grad():  # the classifier's logits are its head applied to these features
        logits = model.head.layers(torch.from_numpy(feats))
    np.testing.assert_allclose(logits.softmax(-1).numpy(), _reference(model, tok, seqs), rtol=1e-4, atol=1e-5)
    inner = Encoder.load(path).features(seqs, layer=0)
    assert inner.shape == (5, 3 * 16)
    _save(tmp_path / "lm", "lm")
    lm = Encoder.load(tmp_path / "lm").features(seqs)
    assert lm.shape == (5, 24) and np.isfinite(lm).all()


def test_write_predictions(tmp_path):
    probs = np.array([[0.2, 0.8], [0.9, 0.1]])
    write_predictions(tmp_path / "p.tsv", ["r1", "r2"], probs, ["neg", "pos"])
    buf = io.StringIO()
    write_predictions(buf, ["r1", "r2"], probs, ["neg", "pos"])
    text = (tmp_path / "p.tsv").read_text()
    assert text == buf.getvalue()
    assert text.splitlines() == ["id\tp_neg\tp_pos\tprediction", "r1\t0.200000\t0.800000\tpos",
                                 "r2\t0.900000\t0.100000\tneg"]
    with pytest.raises(ValueError, match="2 ids for 1 rows"):
        write_predictions(buf, ["a", "b"], probs[:1], ["neg", "pos"])


def test_checkpoints_are_resolved_and_their_kind_checked(ckpt, tmp_path):
    with pytest.raises(CheckpointError, match="no such checkpoint folder"):
        resolve_checkpoint(tmp_path / "nope")
    (tmp_path / "empty").mkdir()
    with pytest.raises(CheckpointError, match="not a gulm checkpoint"):
        Classifier.load(tmp_path / "empty")
    _save(tmp_path / "lm", "lm")
    with pytest.raises(CheckpointError, match="not a classifier checkpoint"):
        Classifier.load(tmp_path / "lm")
    assert resolve_checkpoint(ckpt[0]) == ckpt[0]
    _save(tmp_path / "c2", "classifier", extra={"classes": ["x", "y"]})  # the model has 3 outputs
    with pytest.raises(CheckpointError, match="2 class names for a model with 3 outputs"):
        Classifier.load(tmp_path / "c2")


def test_the_input_table_switch_is_read_when_a_classifier_is_prepared(ckpt, monkeypatch):
    monkeypatch.setenv("GULM_NO_INPUT_TABLE", "1")
    assert Classifier.load(ckpt[0]).model.encoder.use_input_table is False
    monkeypatch.delenv("GULM_NO_INPUT_TABLE")
    assert Classifier.load(ckpt[0]).model.encoder.use_input_table is True


def test_api_names_are_functions_whatever_was_imported_before():
    import gulm.interpretation  # noqa: F401  (binds gulm.interpretation, not gulm.interpret)
    import gulm.scan  # noqa: F401

    assert callable(gulm.interpret) and gulm.interpret is gulm.interpret
    assert callable(gulm.predict) and callable(gulm.evaluate) and callable(gulm.run_demo)


def test_api_configs_hold_one_string_given_a_list_option_as_a_one_item_list():
    from gulm.configs import PredictConfig, PretrainConfig
    from gulm.configs.fields import config_from

    cfg = config_from(PredictConfig, "runs/clf", {"ensemble": "runs/clf_s1", "sequences": b"ACGT"},
                      value_field="checkpoint")
    assert cfg.ensemble == ["runs/clf_s1"] and cfg.sequences == [b"ACGT"]
    assert config_from(PretrainConfig, None, {"fasta": "genome.fa"}).fasta == ["genome.fa"]
    assert config_from(PredictConfig, None, {"ensemble": ["a", "b"]}).ensemble == ["a", "b"]


def test_a_backward_classifier_reads_the_reverse_complement_everywhere(ckpt, tmp_path):
    """A checkpoint trained with --backward: every inference path reads each sequence from its 3'
    end, so its probabilities are the same weights' forward probabilities of the reverse complements."""
    path, model, tok = ckpt
    _save(tmp_path / "bwd", "classifier", extra={"classes": ["a", "b", "promoter"], "window": 40},
          training={"rc_average": False, "backward": True})
    bwd, fwd = Classifier.load(tmp_path / "bwd"), Classifier.load(path)  # same seed: the same weights
    assert bwd.backward and not fwd.backward and bwd.views() == (True,) and bwd.views(True) == (False, True)
    seqs = _seqs()
    rc = [reverse_complement(s) for s in seqs]
    want = _reference(model, tok, rc)
    np.testing.assert_allclose(bwd.probs(seqs, bs=4), want, rtol=1e-5, atol=1e-6)
    assert not np.allclose(bwd.probs(seqs), fwd.probs(seqs))
    np.testing.assert_allclose(bwd.probs(seqs, rc_average=True), fwd.probs(seqs, rc_average=True), rtol=1e-6)
    windows = np.stack([np.frombuffer(s[:20].encode(), dtype=np.uint8) for s in seqs])
    np.testing.assert_allclose(bwd.window_probs(windows, bs=4),
                               _reference(model, tok, [reverse_complement(s[:20]) for s in seqs]), rtol=1e-5, atol=1e-6)
    # a forward + backward pair: each member reads its own strand, the mean is returned
    ens = Ensemble.load([path, tmp_path / "bwd"])
    np.testing.assert_allclose(ens.probs(seqs, bs=4), (fwd.probs(seqs) + want) / 2, rtol=1e-5, atol=1e-6)
    # the encoder of a backward classifier reads as it was trained: its features feed the head
    feats = Encoder.load(tmp_path / "bwd").features(seqs, bs=3)
    with torch.no_grad():
        logits = model.head.layers(torch.from_numpy(feats))
    np.testing.assert_allclose(logits.softmax(-1).numpy(), want, rtol=1e-4, atol=1e-5)
