"""Pretrained language models shipped inside the package: names, checksums, cards, loading by
name wherever a checkpoint path is accepted, and each shipped model's reported loss."""
import json
import os
import shutil

import numpy as np
import pytest
import torch

pytest.importorskip("gulm._C", reason="compiled extension not built")

import gulm  # noqa: E402
from gulm import pretrained  # noqa: E402

SHIPPED = pretrained.names()
DATA = os.environ.get("GULM_DATA")


def _lm_loss(model, tokens, bptt):
    """Mean next-token loss over one stream (bs 1), the LSTM state carried: the card's checks."""
    from gulm.data.corpus import LMBatches

    model.eval()
    model.reset()
    total, n = 0.0, 0
    with torch.no_grad():
        for x, y in LMBatches(np.asarray(tokens), 1, bptt, shuffle=False):
            logits = model(x)[0].float()
            total += torch.nn.functional.cross_entropy(logits.reshape(-1, logits.size(-1)), y.reshape(-1),
                                                       reduction="sum").item()
            n += y.numel()
    model.reset()
    return total / n


@pytest.fixture()
def fake_shipped(tmp_path, monkeypatch):
    """A tiny LM installed as shipped model 'tiny-test' in a temporary package folder."""
    from gulm.configs import PretrainConfig
    from gulm.demo.synthetic import write_demo_data
    from gulm.train.phases import pretrain_lm

    files = write_demo_data(tmp_path / "data", length=20_000, seed=4, n_train=20)
    src = tmp_path / "lm"
    pretrain_lm(PretrainConfig(fasta=[str(files["genome"])], out=str(src), k=3, stride=1, emb_size=16,
                               hidden_size=32, n_layers=2, epochs=1, bs=8, bptt=20, progress=False))
    models = tmp_path / "models"
    (models / "tiny-test").mkdir(parents=True)
    for f in ("model.safetensors", "config.json"):
        shutil.copy(src / f, models / "tiny-test" / f)
    (models / "tiny-test" / "card.json").write_text(json.dumps({
        "name": "tiny-test", "tokenizer": {"k": 3, "stride": 1}, "model": {"emb_size": 16, "hidden_size": 32,
        "n_layers": 2, "parameters": 1}, "valid": {"loss": 4.0, "accuracy": 0.1}, "corpus": {"summary": "demo"}}))
    registry = tmp_path / "registry.json"
    registry.write_text(json.dumps({"tiny-test": {"sha256": {
        f: pretrained.sha256_file(models / "tiny-test" / f) for f in ("model.safetensors", "config.json")}}}))
    monkeypatch.setattr(pretrained, "MODELS_DIR", models)
    monkeypatch.setattr(pretrained, "REGISTRY", registry)
    monkeypatch.setattr(pretrained, "_verified", set())
    return {"models": models, "files": files, "tmp": tmp_path}


def test_a_shipped_name_loads_wherever_a_path_does(fake_shipped, tmp_path):
    from gulm.configs import DataConfig
    from gulm.train.classifier import train_classifier

    assert pretrained.names() == ["tiny-test"]
    model, tok, cfg = gulm.load("tiny-test")
    assert cfg["kind"] == "lm" and (tok.k, tok.stride) == (3, 1)
    assert pretrained.card("tiny-test")["valid"]["loss"] == 4.0
    assert pretrained.table()[0]["size"] == "16/32/2"
    m = train_classifier(lm="tiny-test", data=DataConfig(csv=str(fake_shipped["files"]["promoters"])),
                         out=str(tmp_path / "clf"), stages=[[1, 1e-2, 1]], bs=8, progress=False)
    assert m["n"] > 0
    clf_cfg = json.loads((tmp_path / "clf" / "config.json").read_text())
    assert clf_cfg["lm"].endswith("tiny-test")


def test_a_damaged_shipped_file_is_a_clear_error(fake_shipped):
    from gulm.runtime.checkpoint import CheckpointError

    weights = fake_shipped["models"] / "tiny-test" / "model.safetensors"
    data = bytearray(weights.read_bytes())
    data[-1] ^= 0xFF
    weights.write_bytes(bytes(data))
    with pytest.raises(CheckpointError, match="does not match its checksum"):
        gulm.load("tiny-test")
    with pytest.raises(CheckpointError, match="no such checkpoint folder or shipped model name"):
        gulm.load("not-a-model")


def test_models_command_lists_them(fake_shipped, capsys):
    from gulm.cli import main

    assert main(["models"]) == 0
    out = capsys.readouterr().out
    assert "tiny-test" in out and "k=3 stride=1" in out and "16/32/2" in out
    assert main(["models", "tiny-test"]) == 0
    assert json.loads(capsys.readouterr().out)["name"] == "tiny-test"
    assert main(["models", "--presets"]) == 0
    assert "auto:" in capsys.readouterr().out


@pytest.mark.parametrize("name", SHIPPED)
def test_every_shipped_model_loads_and_gives_its_reported_loss(name):
    """Checksums match; the fp16 weights give the card's loss (within 0.02) on its fixed synthetic
    check, and on its fixed slice of held-out genome when GULM_DATA is set."""
    from gulm.data.genome import Genome

    card = pretrained.card(name)
    model, tok, cfg = gulm.load(name)
    assert (tok.k, tok.stride) == (card["tokenizer"]["k"], card["tokenizer"]["stride"])
    assert sum(p.numel() for p in model.parameters()) == card["model"]["parameters"]
    bptt = cfg["training"]["bptt"]
    synth = card["checks"]["synthetic"]
    seq = bytes(np.random.default_rng(synth["seed"]).choice(np.frombuffer(b"ACGT", np.uint8), synth["bases"]))
    assert _lm_loss(model, tok.encode(seq).numpy(), bptt) == pytest.approx(synth["loss"], abs=0.02)
    if DATA:
        sl = card["checks"]["slice"]
        genome = Genome(os.path.join(DATA, sl["file"]))
        tokens = tok.encode(genome.fetch(sl["record"], sl["start"], sl["end"])).numpy()
        assert _lm_loss(model, tokens, bptt) == pytest.approx(sl["loss"], abs=0.02)
    # the classifier builds on it
    from gulm.nn import CLASSIFIER_DROPOUTS, AWDConfig, classifier
    from gulm.runtime.checkpoint import load_encoder_from_lm

    clf = classifier(AWDConfig(vocab_size=tok.vocab_size, emb_size=card["model"]["emb_size"],
                               hidden_size=card["model"]["hidden_size"], n_layers=card["model"]["n_layers"],
                               **CLASSIFIER_DROPOUTS))
    load_encoder_from_lm(clf, name, tok)
    ids = tok.encode("ACGT" * 30).unsqueeze(0)
    assert clf.eval()(ids, torch.tensor([ids.shape[1]]))[0].shape == (1, 2)


def test_the_family_fits_the_size_budget():
    total = sum(f.stat().st_size for f in pretrained.MODELS_DIR.rglob("*") if f.is_file())
    assert total <= 40e6
