"""Recipe presets: the selection rules, the fill-only-unset rule, and presets as phase defaults."""
import json

import numpy as np
import pytest

from gulm import presets
from gulm.configs import ClassifierConfig, FinetuneConfig


@pytest.mark.parametrize("lengths,n_classes,stranded,name", [
    ([81] * 50, 2, True, "aligned"),          # sigma70 promoters: windows of one length on their strand
    ([81] * 49, 2, True, "short"),            # too few to fit the positional regression beside the network
    ([81] * 60, 2, False, "short"),           # one length, but no strand: places mean nothing
    ([81, 80] * 30, 2, True, "short"),        # lengths differ: not windows cut around a site
    ([150, 250, 200] * 30, 100, False, "many-classes-wide"),  # 16S reads of 100 genera
    ([500] * 60, 2, False, "long-wide"),           # enhancers, 500 bp
    ([251] * 400, 2, True, "aligned"),        # plant promoters, -200/+50 around the TSS
    ([251] * 40, 2, True, "short"),
    ([1000, 3000, 800] * 20, 2, True, "long-wide"),  # transcripts
    ([601, 700, 650], 3, True, "long"),      # too few for a k-mer model beside the network
    ([601, 700, 650] * 17, 3, True, "long-wide"),
    ([90] * 12, 11, True, "many-classes"),
    ([90] * 50, 11, True, "many-classes-wide"),
    ([1400] * 100, 100, False, "many-classes-wide"),  # 16S amplicons: many classes wins over length
])
def test_auto_chooses_from_length_classes_and_strandedness(lengths, n_classes, stranded, name):
    p = presets.resolve("auto", lengths, n_classes, stranded)
    assert p.name == name and "auto" in p.reason
    clf = p.options("classifier")
    assert clf["rc_augment"] is (not stranded) and clf["rc_average"] is (not stranded)
    assert clf["stages"] and clf["drop_mult"] > 0 and clf["select"] in ("last", "best")
    if n_classes > presets.MANY_CLASSES:
        assert clf["head_hidden"] >= n_classes  # no 50-unit bottleneck for 100 classes
    if name == "aligned":  # short's recipe plus the fixed positional k-mer LR branch
        short = presets.load("short").options("classifier")
        assert {k: v for k, v in clf.items() if k not in presets.WIDE_FIELDS} == short
        assert clf["kmer_positional"] == [3, 3] and clf["kmer_features"] == [1, 2, 3, 4, 5, 6] and clf["kmer_logreg"]
        assert "on their given strand" in p.reason
    elif name.endswith("-wide"):  # the pure preset's recipe plus the k-mer branch that won on valid
        pure = presets.load(name[:-len("-wide")]).options("classifier")
        pure.update(rc_augment=not stranded, rc_average=not stranded)
        assert {k: v for k, v in clf.items() if k not in presets.WIDE_FIELDS} == pure
        assert not any(pure.get(k) for k in presets.WIDE_FIELDS)
        assert clf["kmer_features"] == [1, 2, 3, 4, 5, 6] and not clf.get("kmer_positional")
        assert bool(clf.get("kmer_logreg")) is (name == "long-wide")  # fixed LR for long sequences; trained for taxa
    else:
        assert not any(clf.get(k) for k in presets.WIDE_FIELDS)
    assert ("no k-mer branch" in p.reason) is (name in ("long", "many-classes"))


def test_a_preset_extends_its_base_and_refuses_what_it_cannot_read():
    aligned, short = presets.load("aligned"), presets.load("short")
    assert aligned.options("finetune") == short.options("finetune")
    assert aligned.options("scratch") == short.options("scratch")
    assert aligned.description != short.description
    with pytest.raises(ValueError, match="given strand"):  # asked for by name on unstranded data
        presets.resolve("aligned", [81] * 100, 2, stranded=False)


def test_the_pure_presets_stay_pure_and_help_says_what_auto_picks():
    for name in ("short", "long", "many-classes", "seed"):
        p = presets.resolve(name, [500] * 200, 20)
        assert not any(p.options("classifier").get(k) for k in presets.WIDE_FIELDS), name
    assert set(presets.AUTO_CHOICES) <= set(presets.names())
    text = presets.describe()
    auto = text.splitlines()[0]
    assert all(n in auto for n in presets.AUTO_CHOICES) and "seed" not in auto and str(presets.WIDE_MIN) in auto
    assert "long-wide: " in text and "many-classes-wide: " in text


def test_auto_choices_is_exactly_what_choose_returns():
    """AUTO_CHOICES (what --help says auto can pick) is written beside choose(): walk choose()
    over both sides of each of its thresholds, so that a new preset it returns at them, or a stale
    entry, fails here (a branch behind a new threshold needs its values added to the walk)."""
    seen = set()
    for n_classes in (2, presets.MANY_CLASSES, presets.MANY_CLASSES + 1):
        for base in (81, presets.LONG_BASES, presets.LONG_BASES + 1):
            for n in (presets.WIDE_MIN - 1, presets.WIDE_MIN):
                for varied in (False, True):
                    lengths = [base + (i % 2 if varied else 0) for i in range(n)]
                    for stranded in (True, False):
                        seen.add(presets.choose(lengths, n_classes, stranded).name)
    assert seen == set(presets.AUTO_CHOICES)


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


def test_the_wide_branch_options_are_filled_as_one_group():
    aligned = presets.load("aligned")
    cfg = presets.apply(ClassifierConfig(), aligned, "classifier")
    assert cfg.kmer_features == [1, 2, 3, 4, 5, 6] and cfg.kmer_positional == [3, 3] and cfg.kmer_logreg
    assert presets.wide_given(cfg) and not presets.wide_given(ClassifierConfig())
    for given in ({"kmer_gapped": [10, 5]}, {"kmer_features": [1, 2]}, {"kmer_logreg": True}):
        cfg = presets.apply(ClassifierConfig(**given), aligned, "classifier")  # the user's branch, alone
        for key in presets.WIDE_FIELDS:
            assert getattr(cfg, key) == given.get(key, getattr(ClassifierConfig(), key)), key
    cleared = presets.clear_wide(presets.apply(ClassifierConfig(), aligned, "classifier"))
    assert not presets.wide_given(cleared) and cleared.stages == aligned.options("classifier")["stages"]


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


def test_auto_gives_aligned_windows_the_positional_branch(tmp_path, capsys):
    pytest.importorskip("gulm._C", reason="compiled extension not built")
    pytest.importorskip("sklearn")
    from gulm.configs import DataConfig
    from gulm.demo.synthetic import write_demo_data
    from gulm.train.classifier import train_classifier

    files = write_demo_data(tmp_path / "data", length=40_000, seed=3, n_train=54)  # 54 windows of 150 bp
    data = DataConfig(csv=str(files["promoters"]))
    tiny = dict(emb_size=16, hidden_size=32, n_layers=1, bs=16, stages=[[1, 1e-2, 0]])
    metrics = train_classifier(data=data, out=str(tmp_path / "auto"), **tiny)
    cfg = json.loads((tmp_path / "auto" / "config.json").read_text())
    assert cfg["preset"]["name"] == "aligned" and "150 bases on their given strand" in cfg["preset"]["reason"]
    t = cfg["training"]
    assert t["kmer_positional"] == [3, 3] and t["kmer_logreg"] and t["kmer_features"] == [1, 2, 3, 4, 5, 6]
    assert cfg["model"]["wide_positional"][:2] == [3, 3] and metrics["wide_logreg"]["folds"] == 5
    said = capsys.readouterr()
    assert "--kmer-positional 3 3" not in said.err  # no hint: the model reads place
    assert "fixed k-mer LR branch fitted in" in said.out and "cross-fitted over 5 folds" in said.out
    # a branch of the user's own is kept alone; `--preset short` is the pure model
    train_classifier(data=data, out=str(tmp_path / "own"), kmer_features=[1, 2], progress=False, **tiny)
    t = json.loads((tmp_path / "own" / "config.json").read_text())["training"]
    assert t["kmer_features"] == [1, 2] and t["kmer_positional"] == [] and not t["kmer_logreg"]
    train_classifier(data=data, out=str(tmp_path / "pure"), preset="short", progress=False, **tiny)
    t = json.loads((tmp_path / "pure" / "config.json").read_text())["training"]
    assert t["kmer_features"] == [] and t["kmer_positional"] == [] and not t["kmer_logreg"]
    # tokens the branch cannot count (stride > k): the preset's branch is dropped, with a note
    capsys.readouterr()
    train_classifier(data=data, out=str(tmp_path / "skip"), k=2, stride=3, **tiny)
    cfg = json.loads((tmp_path / "skip" / "config.json").read_text())
    assert cfg["preset"]["name"] == "aligned" and cfg["training"]["kmer_features"] == []
    assert "training without the branch" in capsys.readouterr().err


def test_auto_gives_long_sequences_and_many_classes_a_kmer_branch(tmp_path, capsys):
    """Sequences over 300 bases: `long-wide`, the k-mer LR as a fixed branch; more than 10 classes:
    `many-classes-wide`, a k-mer branch trained with the network; the pure presets stay pure."""
    pytest.importorskip("gulm._C", reason="compiled extension not built")
    pytest.importorskip("sklearn")
    from gulm.configs import DataConfig
    from gulm.train.classifier import train_classifier

    rng = np.random.default_rng(0)

    def write(name, n_classes, per_class, length):
        rows = []
        for c in range(n_classes):
            for i in range(per_class):
                seq = "".join(rng.choice(list("ACGT"), size=int(length + rng.integers(0, 20))))
                rows.append(f"{seq},class{c},{('train', 'train', 'train', 'valid', 'test')[i % 5]}")
        path = tmp_path / f"{name}.csv"
        path.write_text("sequence,label,set\n" + "\n".join(rows) + "\n")
        return DataConfig(csv=str(path))

    tiny = dict(emb_size=16, hidden_size=32, n_layers=1, bs=16, stages=[[1, 1e-2, 0]])
    long = write("long", 2, 45, 320)  # 54 training sequences of 320-339 bases
    metrics = train_classifier(data=long, out=str(tmp_path / "long"), stranded=False, **tiny)
    cfg = json.loads((tmp_path / "long" / "config.json").read_text())
    assert cfg["preset"]["name"] == "long-wide" and "unstranded" in cfg["preset"]["reason"]
    t = cfg["training"]
    assert t["kmer_features"] == [1, 2, 3, 4, 5, 6] and t["kmer_logreg"] and t["kmer_positional"] == []
    assert cfg["model"]["kmer_features"] == [1, 2, 3, 4, 5, 6] and cfg["model"]["wide_fixed"]
    assert metrics["wide_logreg"]["folds"] == 5 and "fixed k-mer LR branch fitted in" in capsys.readouterr().out
    train_classifier(data=write("taxa", 11, 10, 90), out=str(tmp_path / "taxa"), progress=False, **tiny)
    cfg = json.loads((tmp_path / "taxa" / "config.json").read_text())
    assert cfg["preset"]["name"] == "many-classes-wide" and cfg["training"]["head_hidden"] == 400
    assert cfg["training"]["kmer_features"] == [1, 2, 3, 4, 5, 6] and not cfg["training"]["kmer_logreg"]
    assert cfg["model"]["kmer_features"] == [1, 2, 3, 4, 5, 6] and not cfg["model"]["wide_fixed"]
    # a branch of the user's own replaces the preset's, and the checkpoint says so
    train_classifier(data=long, out=str(tmp_path / "own"), kmer_features=[2, 3], progress=False, **tiny)
    cfg = json.loads((tmp_path / "own" / "config.json").read_text())
    assert cfg["training"]["kmer_features"] == [2, 3] and not cfg["training"]["kmer_logreg"]
    assert cfg["preset"]["name"] == "long-wide" and "replaced by the --kmer-* options given" in cfg["preset"]["reason"]
    # `--preset long` is the pure network
    train_classifier(data=long, out=str(tmp_path / "pure"), preset="long", progress=False, **tiny)
    cfg = json.loads((tmp_path / "pure" / "config.json").read_text())
    assert cfg["preset"]["name"] == "long" and cfg["training"]["kmer_features"] == [] and not cfg["training"]["kmer_logreg"]
    assert cfg["model"]["kmer_features"] == []
