"""Recipe presets: the selection rules, the fill-only-unset rule, and presets as phase defaults."""
import json

import pytest

from gulm import presets
from gulm.configs import ClassifierConfig, FinetuneConfig


@pytest.mark.parametrize("lengths,n_classes,stranded,name", [
    ([81] * 50, 2, True, "short"),            # sigma70 promoters
    ([150, 250, 200] * 30, 100, False, "many-classes"),  # 16S reads of 100 genera
    ([500] * 40, 2, False, "long"),           # enhancers, 500 bp
    ([251] * 40, 2, True, "short"),           # plant promoters
    ([1000, 3000, 800] * 20, 2, True, "long"),  # transcripts
    ([601, 700, 650], 3, True, "long"),
    ([90] * 12, 11, True, "many-classes"),
])
def test_auto_chooses_from_length_classes_and_strandedness(lengths, n_classes, stranded, name):
    p = presets.resolve("auto", lengths, n_classes, stranded)
    assert p.name == name and "auto" in p.reason
    clf = p.options("classifier")
    assert clf["rc_augment"] is (not stranded) and clf["rc_average"] is (not stranded)
    assert clf["stages"] and clf["drop_mult"] > 0 and clf["select"] in ("last", "best")
    if n_classes > presets.MANY_CLASSES:
        assert clf["head_hidden"] >= n_classes  # no 50-unit bottleneck for 100 classes


def test_large_sets_get_fewer_all_layer_epochs():
    small = presets.resolve("short", [81] * 2_000, 2)
    assert small.options("classifier")["stages"][-1][0] == 14  # 162 kbp: the full schedule
    big = presets.resolve("short", [250] * 20_000, 2)  # 5 Mbp: 24 Mbp allow 4 epochs in all
    stages = big.options("classifier")["stages"]
    assert stages[:3] == small.options("classifier")["stages"][:3] and stages[-1][0] == 2
    assert big.options("finetune")["epochs"] == 2 and "cut to" in big.reason


def test_every_preset_is_complete_over_the_seed_base():
    keys = set(presets.load("seed").options("classifier"))
    for name in presets.names():
        p = presets.load(name)
        assert p.description
        assert set(p.options("classifier")) >= keys
        assert set(p.options("finetune")) >= {"epochs", "lr", "drop_mult", "both_strands"}
        assert set(p.options("scratch")) >= {"k", "stride", "emb_size", "hidden_size", "n_layers"}
    with pytest.raises(ValueError, match="unknown preset"):
        presets.load("nope")
    with pytest.raises(ValueError, match="empty"):
        presets.choose([], 2)


def test_apply_fills_only_what_the_user_left_unset():
    p = presets.load("short")
    cfg = presets.apply(ClassifierConfig(drop_mult=0.9, select="last"), p, "classifier")
    assert cfg.drop_mult == 0.9 and cfg.select == "last"  # given: kept
    assert cfg.stages == [list(s) for s in p.options("classifier")["stages"]]
    assert cfg.head_hidden == p.options("classifier")["head_hidden"]
    ft = presets.apply(FinetuneConfig(epochs=1), p, "finetune")
    assert ft.epochs == 1 and ft.lr == p.options("finetune")["lr"] and ft.both_strands is True
    seed = presets.apply(ClassifierConfig(), presets.load("seed"), "classifier")
    assert seed.stages == [[1, 2e-2, 1], [1, 1e-2, 2], [1, 5e-3, 3], [2, 1e-3, 0]] and seed.head_hidden == 50


def test_presets_are_the_phase_defaults(tmp_path):
    pytest.importorskip("gulm._C", reason="compiled extension not built")
    from gulm.configs import DataConfig
    from gulm.demo.synthetic import write_demo_data
    from gulm.train.classifier import train_classifier

    files = write_demo_data(tmp_path / "data", length=40_000, seed=3, n_train=40)
    data = DataConfig(csv=str(files["promoters"]))
    tiny = dict(emb_size=16, hidden_size=32, n_layers=1, bs=16, progress=False)
    train_classifier(data=data, out=str(tmp_path / "seed"), preset="seed", **tiny)
    cfg = json.loads((tmp_path / "seed" / "config.json").read_text())
    assert cfg["preset"]["name"] == "seed"
    assert cfg["training"]["stages"] == [[1, 0.02, 1], [1, 0.01, 2], [1, 0.005, 3], [2, 0.001, 0]]
    assert cfg["tokenizer"]["k"] == 5 and cfg["tokenizer"]["stride"] == 2  # the seed's tokens from scratch
    # auto on these 150-bp promoters: the short preset, 3-mer stride-1 tokens; given options win
    train_classifier(data=data, out=str(tmp_path / "auto"), stages=[[1, 1e-2, 0]], drop_mult=0.7,
                     stranded=False, **tiny)
    cfg = json.loads((tmp_path / "auto" / "config.json").read_text())
    assert cfg["preset"]["name"] == "short" and "unstranded" in cfg["preset"]["reason"]
    assert cfg["tokenizer"]["k"] == 3 and cfg["tokenizer"]["stride"] == 1
    t = cfg["training"]
    assert t["drop_mult"] == 0.7 and t["stages"] == [[1, 0.01, 0]] and t["rc_augment"] and t["rc_average"]
    assert t["select"] == "best"
