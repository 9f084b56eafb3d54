"""Tiny end-to-end runs of the three phases, checkpoints, resume and refusals."""
import json
import os

import numpy as np
import pytest
import torch

import gulm
from gulm.runtime.checkpoint import TokenizerMismatchError, load_checkpoint, load_encoder_from_lm
from gulm.configs import ClassifierConfig, DataConfig, FinetuneConfig, PretrainConfig
from gulm.train.classifier import train_classifier
from gulm.train.phases import finetune_lm, pretrain_lm

TINY = dict(emb_size=16, hidden_size=32, n_layers=2, bs=8, bptt=20, progress=False)


def _pretrain(demo_files, out, **kw):
    cfg = PretrainConfig(fasta=[str(demo_files["genome"])], out=str(out), epochs=1, **TINY)
    return pretrain_lm(cfg, **kw)


def _state(folder):
    from safetensors.torch import load_file

    return load_file(os.path.join(folder, "model.safetensors"))


def test_three_phases_end_to_end(demo_files, tmp_path):
    lm = _pretrain(demo_files, tmp_path / "lm")
    assert np.isfinite(lm["loss"]) and lm["perplexity"] > 1
    for name in ("model.safetensors", "config.json", "metrics.json", "log.csv", "resume.pt"):
        assert (tmp_path / "lm" / name).exists(), name
    cfg = json.loads((tmp_path / "lm" / "config.json").read_text())
    assert cfg["kind"] == "lm" and cfg["tokenizer"]["k"] == 5 and cfg["gulm_version"] == gulm.__version__
    assert cfg["corpus"]["train_tokens"] > 0

    data = DataConfig(csv=str(demo_files["promoters"]))
    ft = finetune_lm(FinetuneConfig(lm=str(tmp_path / "lm"), data=data, out=str(tmp_path / "ft"),
                                    epochs=1, bs=4, bptt=20, progress=False))
    assert np.isfinite(ft["loss"])

    m = train_classifier(ClassifierConfig(lm=str(tmp_path / "ft"), data=data, out=str(tmp_path / "clf"),
                                          stages=[[1, 1e-2, 1], [1, 5e-3, 0]], bs=8, progress=False))
    assert m["split"] == "test" and m["n"] > 0
    for key in ("accuracy", "precision", "recall", "f1", "mcc", "specificity", "roc_auc"):
        assert key in m
    saved = json.loads((tmp_path / "clf" / "metrics.json").read_text())
    assert saved["accuracy"] == pytest.approx(m["accuracy"])

    model, tok, cfg = gulm.load(tmp_path / "clf")
    assert cfg["classes"] == ["non_promoter", "promoter"] and not model.training
    probs, classes = gulm.predict(str(tmp_path / "clf"), ["ACGT" * 40, "TTGACA" * 25])
    assert probs.shape == (2, 2) and np.allclose(probs.sum(1), 1.0)

    # the LM's encoder really initialised the classifier before training moved it
    ft_state = _state(tmp_path / "ft")
    clf_state = _state(tmp_path / "clf")
    assert ft_state["encoder.encoder.weight"].shape == clf_state["encoder.encoder.weight"].shape


def test_checkpoint_round_trip_keeps_outputs_and_ties(demo_files, tmp_path):
    _pretrain(demo_files, tmp_path / "lm", stop_after=None)
    model, tok, cfg = load_checkpoint(tmp_path / "lm")
    assert model.decoder.decoder.weight is model.encoder.encoder.weight
    assert "decoder.decoder.weight" in cfg["tied_keys"]
    x = torch.randint(2, tok.vocab_size, (12, 3))
    a = model(x)[0]
    model.reset()
    again, _, _ = load_checkpoint(tmp_path / "lm")
    torch.testing.assert_close(again(x)[0], a)


def test_resume_after_interrupt_matches_uninterrupted_run(demo_files, tmp_path):
    kw = dict(epochs=3)
    full = PretrainConfig(fasta=[str(demo_files["genome"])], out=str(tmp_path / "full"), **TINY, **kw)
    pretrain_lm(full)
    part = PretrainConfig(fasta=[str(demo_files["genome"])], out=str(tmp_path / "part"), **TINY, **kw)
    m = pretrain_lm(part, stop_after=1)  # "interrupted" after one epoch
    assert m["complete"] is False and m["epochs_done"] == 1
    pretrain_lm(part, resume=True)
    a, b = _state(tmp_path / "full"), _state(tmp_path / "part")
    assert a.keys() == b.keys()
    for k in a:
        torch.testing.assert_close(a[k], b[k], rtol=0, atol=0, msg=k)


def test_classifier_resume_mid_unfreezing(demo_files, tmp_path):
    data = DataConfig(csv=str(demo_files["promoters"]))
    stages = [[1, 1e-2, 1], [1, 5e-3, 2], [1, 1e-3, 0]]
    base = dict(data=data, k=5, stride=2, stages=stages, **TINY)
    train_classifier(ClassifierConfig(out=str(tmp_path / "full"), **base))
    m = train_classifier(ClassifierConfig(out=str(tmp_path / "part"), **base), stop_after=2)
    assert m["complete"] is False
    train_classifier(ClassifierConfig(out=str(tmp_path / "part"), resume=True, **base))
    a, b = _state(tmp_path / "full"), _state(tmp_path / "part")
    for k in a:
        torch.testing.assert_close(a[k], b[k], rtol=0, atol=0, msg=k)


def test_classifier_refuses_lm_with_another_tokenizer(demo_files, tmp_path):
    cfg = PretrainConfig(fasta=[str(demo_files["genome"])], out=str(tmp_path / "lm3"), k=3, stride=1,
                         epochs=1, max_tokens=2000, **TINY)
    pretrain_lm(cfg)
    data = DataConfig(csv=str(demo_files["promoters"]))
    with pytest.raises(TokenizerMismatchError, match="k=5"):
        train_classifier(ClassifierConfig(lm=str(tmp_path / "lm3"), data=data, k=5, stride=2,
                                          out=str(tmp_path / "c"), **TINY))
    from gulm.data.tokenizer import KmerTokenizer
    from gulm.nn import AWDConfig, classifier

    model = classifier(AWDConfig(vocab_size=KmerTokenizer(5, 2).vocab_size, emb_size=16, hidden_size=32, n_layers=2))
    with pytest.raises(TokenizerMismatchError, match="tokenizer"):
        load_encoder_from_lm(model, tmp_path / "lm3", KmerTokenizer(5, 2))


def test_leak_safe_pretraining_removes_excluded_loci(demo_files, tmp_path):
    from gulm.data.corpus import LMCorpus
    from gulm.data.genome import Genome
    from gulm.data.tokenizer import KmerTokenizer

    g = Genome(demo_files["genome"])
    name = g.names[0]
    bed = tmp_path / "exclude.bed"
    bed.write_text(f"{name}\t1000\t6000\n")
    tok = KmerTokenizer(5, 2)
    full = LMCorpus.from_fasta([demo_files["genome"]], tok, both_strands=False)
    safe = LMCorpus.from_fasta([demo_files["genome"]], tok, both_strands=False, exclude_bed=bed)
    assert safe.stats["excluded_bases"] == 5000
    assert full.train.size - safe.train.size == pytest.approx(5000 / 2, abs=5)
    # an excluded 50-bp stretch never appears in the training stream
    probe = tok.encode(g.fetch(name, 3000, 3050)).numpy()
    def contains(arr, sub):
        w = np.lib.stride_tricks.sliding_window_view(arr, sub.size)
        return bool((w == sub).all(1).any())
    assert contains(full.train.astype(np.int64), probe)
    assert not contains(safe.train.astype(np.int64), probe)


def test_lm_corpus_splits_at_n_runs_and_validates_by_position(tmp_path):
    from gulm.data.corpus import LMCorpus, acgt_segments
    from gulm.data.tokenizer import KmerTokenizer

    assert acgt_segments(b"ACGTNNNNacgtRAC") == [(0, 4), (8, 12), (13, 15)]
    tok = KmerTokenizer(3, 1)
    seq = "ACGTACGTAC" + "N" * 5 + "GGGTTTCCCA" * 9
    c = LMCorpus.from_sequences([("r", seq)], tok, valid_frac=0.1)
    # no token spans the N run: tokens are unk only as separators
    ids = c.train.tolist()
    assert ids.count(1) == 2  # one separator after each of the two training pieces
    cut = int(round(len(seq) * 0.9))
    assert c.valid.size == (len(seq) - cut) - 3 + 1 + 1
    with pytest.raises(ValueError, match="no training tokens"):
        LMCorpus.from_sequences([("r", "N" * 100)], tok)


def test_classifier_sizes_must_match_the_lm_and_best_epoch_selection(demo_files, tmp_path):
    _pretrain(demo_files, tmp_path / "lm")
    data = DataConfig(csv=str(demo_files["promoters"]))
    with pytest.raises(ValueError, match="hidden_size 64 != LM 32"):
        train_classifier(ClassifierConfig(lm=str(tmp_path / "lm"), data=data, out=str(tmp_path / "c"),
                                          **{**TINY, "hidden_size": 64}))
    m = train_classifier(ClassifierConfig(lm=str(tmp_path / "lm"), data=data, out=str(tmp_path / "c"),
                                          stages=[[1, 1e-2, 1], [2, 5e-3, 0]], select="best",
                                          select_metric="accuracy", bs=8, progress=False))
    assert m["selected_epoch"] == "best"
    log = (tmp_path / "c" / "log.csv").read_text().splitlines()
    best = max(float(r.split(",")[log[0].split(",").index("valid_accuracy")]) for r in log[1:])
    assert m["best_valid"] == pytest.approx(best)
    saved = json.loads((tmp_path / "c" / "config.json").read_text())
    assert saved["training"]["hidden_size"] == 32  # the sizes that were really used


def test_max_tokens_samples_the_whole_stream():
    from gulm.data.corpus import cap_tokens

    t = np.arange(1_000_000)
    c = cap_tokens(t, 50_000)
    assert c.size == 50_000 and c[0] == 0 and c[-1] == t[-1]
    assert cap_tokens(t, 0) is t


def test_classifier_resumes_inside_an_epoch(demo_files, tmp_path, monkeypatch):
    """checkpoint_every saves resume state between batches; a run killed mid-epoch continues at
    the next batch and ends with the uninterrupted run's weights."""
    from gulm.train import learner as learner_mod

    data = DataConfig(csv=str(demo_files["promoters"]))
    base = dict(data=data, k=5, stride=2, stages=[[2, 1e-2, 0]], checkpoint_every=1e-9, **TINY)
    train_classifier(ClassifierConfig(out=str(tmp_path / "full"), **base))

    class Killed(Exception):
        pass

    calls = {"n": 0}
    real = learner_mod.Learner.save_resume_state

    def save_then_die(self, stage, epoch, step=0, partial=None):
        real(self, stage, epoch, step, partial)
        calls["n"] += 1
        if step == 3 and epoch == 1:  # the second epoch, after its third batch
            raise Killed()

    monkeypatch.setattr(learner_mod.Learner, "save_resume_state", save_then_die)
    with pytest.raises(Killed):
        train_classifier(ClassifierConfig(out=str(tmp_path / "part"), **base))
    monkeypatch.setattr(learner_mod.Learner, "save_resume_state", real)
    state = torch.load(tmp_path / "part" / "resume.pt", weights_only=True)
    assert (state["epoch"], state["step"]) == (1, 3)
    train_classifier(ClassifierConfig(out=str(tmp_path / "part"), resume=True, **base))
    a, b = _state(tmp_path / "full"), _state(tmp_path / "part")
    for k in a:
        torch.testing.assert_close(a[k], b[k], rtol=0, atol=0, msg=k)


def test_a_backward_classifier_is_the_forward_one_trained_on_reverse_complements(demo_files, tmp_path):
    """--backward reads every sequence from its 3' end: the same training on the reverse-
    complemented CSV gives the same weights, and the checkpoint predicts as it was trained."""
    from gulm.data import read_labeled_csv, write_labeled_csv
    from gulm.data.fasta import reverse_complement
    from gulm.infer import Classifier

    ds = read_labeled_csv(demo_files["promoters"])
    rc = ds.subset(list(range(len(ds))))
    rc.sequences = [reverse_complement(s) for s in ds.sequences]
    write_labeled_csv(tmp_path / "rc.csv", rc)
    opts = dict(stages=[[1, 1e-2, 0]], k=3, stride=1, **TINY)
    m_bwd = train_classifier(ClassifierConfig(data=DataConfig(csv=str(demo_files["promoters"])), backward=True,
                                              out=str(tmp_path / "bwd"), **opts))
    m_rc = train_classifier(ClassifierConfig(data=DataConfig(csv=str(tmp_path / "rc.csv")), out=str(tmp_path / "rc"),
                                             **opts))
    a, b = _state(tmp_path / "bwd"), _state(tmp_path / "rc")
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    assert m_bwd["accuracy"] == m_rc["accuracy"] and m_bwd["roc_auc"] == pytest.approx(m_rc["roc_auc"])
    clf = Classifier.load(tmp_path / "bwd")
    assert clf.backward and not Classifier.load(tmp_path / "rc").backward
    test = [s for s, t in zip(ds.sequences, ds.split) if t == "test"]
    np.testing.assert_allclose(clf.probs(test), Classifier.load(tmp_path / "rc").probs(
        [reverse_complement(s) for s in test]), rtol=1e-5, atol=1e-6)
    with pytest.raises(ValueError, match="cannot be combined with"):
        train_classifier(ClassifierConfig(data=DataConfig(csv=str(demo_files["promoters"])), backward=True,
                                          stranded=False, out=str(tmp_path / "both"), **opts))


def test_a_binned_head_trains_saves_and_predicts(demo_files, tmp_path):
    """--head-bins N: the head reads N equal parts of each sequence besides ULMFiT's pooling; the
    checkpoint keeps it, predicts as it was trained, and a negative N is refused by name."""
    from gulm.data import read_labeled_csv
    from gulm.infer import Classifier

    opts = dict(data=DataConfig(csv=str(demo_files["promoters"])), stages=[[1, 1e-2, 0]], k=3, stride=1, **TINY)
    m = train_classifier(ClassifierConfig(head_bins=5, out=str(tmp_path / "bins"), **opts))
    assert 0 <= m["accuracy"] <= 1
    clf = Classifier.load(tmp_path / "bins")
    assert clf.model.config.head_bins == 5 and clf.model.head.layers[0].num_features == 8 * 16
    ds = read_labeled_csv(demo_files["promoters"])
    test = [s for s, t in zip(ds.sequences, ds.split) if t == "test"]
    probs = clf.probs(test)
    assert probs.shape == (len(test), 2) and np.allclose(probs.sum(1), 1)
    with pytest.raises(ValueError, match="head.bins=? must be 0"):
        train_classifier(ClassifierConfig(head_bins=-1, out=str(tmp_path / "bad"), **opts))


def test_stranded_windows_of_one_length_get_the_positional_hint(tmp_path, capsys):
    """Stranded sequences all of one length (likely aligned on a site) trained without place-resolved
    features (a preset other than auto's `aligned`): one stderr note points to the positional baseline; none when lengths vary or a
    positional branch or binned head is already there."""
    from gulm.train.classifier import aligned_hint

    rng = np.random.default_rng(0)
    rows = [("".join(rng.choice(list("ACGT"), 60)), "ab"[i % 2]) for i in range(80)]
    (tmp_path / "w.csv").write_text("sequence,label\n" + "".join(f"{s},{y}\n" for s, y in rows))
    opts = dict(data=DataConfig(csv=str(tmp_path / "w.csv")), stages=[[1, 1e-2, 0]], k=3, stride=1,
                **{**TINY, "progress": True})
    train_classifier(ClassifierConfig(out=str(tmp_path / "c"), preset="short", **opts))  # auto: `aligned`
    err = capsys.readouterr().err
    assert "sequences are 60 bp on their given strand" in err and f"gulm baseline {tmp_path / 'c'} --positional 3 3" in err
    seqs = [s for s, _ in rows]
    cfg = ClassifierConfig(out="x")
    assert aligned_hint(cfg, seqs) is not None
    assert aligned_hint(cfg, seqs[:-1] + [seqs[-1][:50]]) is None  # lengths vary
    assert aligned_hint(ClassifierConfig(out="x", stranded=False), seqs) is None
    assert aligned_hint(ClassifierConfig(out="x", kmer_positional=[3, 3]), seqs) is None
    assert aligned_hint(ClassifierConfig(out="x", head_bins=4), seqs) is None
    assert aligned_hint(cfg, seqs[:20]) is None  # too few to say
