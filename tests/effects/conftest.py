"""Fixtures of the variant-effect, embedding and attribution tests: tiny random checkpoints, a
small genome, and a small classifier trained on planted sigma70-like boxes of the demo's
synthetic genome."""
import csv

import numpy as np
import pytest
import torch

pytest.importorskip("gulm._C", reason="compiled extension not built")

from gulm.data.tokenizer import KmerTokenizer  # noqa: E402
from gulm.nn import AWDConfig, classifier, language_model  # noqa: E402
from gulm.runtime.checkpoint import save_checkpoint  # noqa: E402


def save_tiny(folder, kind="classifier", classes=("other", "promoter"), window=40, rc_average=False, backward=False,
              **model):
    """A random checkpoint (k=3, stride 1) whose probabilities are spread out (the same weights
    whatever the options: the seed is fixed)."""
    torch.manual_seed(0)
    tok = KmerTokenizer(3, 1)
    cfg = AWDConfig(vocab_size=tok.vocab_size, emb_size=8, hidden_size=16, n_layers=2, n_classes=len(classes),
                    **model)
    net = (classifier if kind == "classifier" else language_model)(cfg).eval()
    extra = {}
    if kind == "classifier":
        with torch.no_grad():
            net.head.layers[-1].weight.mul_(30)
        extra = {"classes": list(classes), "window": window}
    save_checkpoint(folder, net, kind=kind, model_config=cfg.to_dict(), tokenizer=tok, extra=extra,
                    training={"rc_average": rc_average, "backward": backward})
    return str(folder)


@pytest.fixture(scope="session")
def tiny_clf(tmp_path_factory):
    return save_tiny(tmp_path_factory.mktemp("tiny") / "clf")


@pytest.fixture(scope="session")
def tiny_clf3(tmp_path_factory):
    return save_tiny(tmp_path_factory.mktemp("tiny3") / "clf", classes=("a", "b", "c"), window=30)


@pytest.fixture(scope="session")
def tiny_lm(tmp_path_factory):
    return save_tiny(tmp_path_factory.mktemp("tinylm") / "lm", kind="lm")


def random_seq(n, seed):
    return "".join(np.random.default_rng(seed).choice(list("ACGT"), n))


@pytest.fixture(scope="session")
def genome(tmp_path_factory):
    """Two chromosomes, '1' (300 bp) and '2' (120 bp); returns (path, {name: sequence})."""
    seqs = {"1": random_seq(300, 1), "2": random_seq(120, 2)}
    path = tmp_path_factory.mktemp("genome") / "genome.fa"
    with open(path, "w") as fh:
        for name, s in seqs.items():
            fh.write(f">{name} test\n" + "\n".join(s[i:i + 60] for i in range(0, len(s), 60)) + "\n")
    return str(path), seqs


def planted_box_set(length=1_500_000, seed=3, window=80, upstream=60, strength=2.0):
    """Promoter windows of the demo's synthetic genome (TSS at ``upstream``, read on the promoter's
    strand, like the Umarov E. coli set's -60/+20) and the same windows with both boxes replaced by
    random bases ("knockout"): only the -35/-10 boxes tell the classes apart. Rows are
    (id, sequence, label, split, start of the -35 box, start of the -10 box)."""
    from gulm.demo.synthetic import synthetic_genome

    g = synthetic_genome(length, seed, motif_strength=strength)
    rng = np.random.default_rng(seed)
    rows = []
    for i, p in enumerate(g.promoters):
        s, e = (p.tss - upstream, p.tss - upstream + window) if p.strand == "+" else \
            (p.tss + upstream - window + 1, p.tss + upstream + 1)
        if s < 0 or e > len(g):
            continue
        seq = g.fetch(g.name, s, e, p.strand)

        def offset(iv):
            return iv.start - s if p.strand == "+" else e - iv.end

        b35, b10 = offset(p.box35), offset(p.box10)
        knockout = list(seq)
        for b in (b35, b10):
            knockout[b:b + 6] = rng.choice(list("ACGT"), 6, p=[0.3, 0.2, 0.2, 0.3])
        split = "test" if i % 5 == 0 else "valid" if i % 10 == 1 else "train"
        rows.append((f"p{i}", seq, "promoter", split, b35, b10))
        rows.append((f"k{i}", "".join(knockout), "knockout", split, b35, b10))
    return rows


@pytest.fixture(scope="session")
def demo_model(tmp_path_factory):
    """(checkpoint, rows, test metrics): a small classifier (3-mers, emb 32, hidden 64, 2 layers, 12
    epochs from scratch; about 10 s on one core) on :func:`planted_box_set`."""
    from gulm.configs import ClassifierConfig, DataConfig
    from gulm.train.classifier import train_classifier

    out = tmp_path_factory.mktemp("demo_model")
    rows = planted_box_set()
    path = out / "set.csv"
    with open(path, "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["id", "sequence", "label", "set"])
        w.writerows(r[:4] for r in rows)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        metrics = train_classifier(ClassifierConfig(
            data=DataConfig(csv=str(path)), out=str(out / "clf"), k=3, stride=1, emb_size=32, hidden_size=64,
            n_layers=2, stages=[[12, 1e-2, 0]], bs=16, drop_mult=0.3, progress=False, seed=0,
            preset="short"))  # the network alone: auto's `aligned` adds a k-mer branch the gradients do not reach
    finally:
        torch.set_num_threads(threads)
    return str(out / "clf"), rows, metrics
