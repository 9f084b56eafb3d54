"""gulm: Genomic-ULMFiT with fused C++/CUDA kernels.

Pretrain AWD-LSTM language models on k-mer tokens of genomes, fine-tune them and train
sequence classifiers; scan genomes and interpret models.

    import gulm
    gulm.pretrain_lm(fasta=["genome.fna.gz"], out="runs/lm")
    gulm.finetune_lm(lm="runs/lm", data=gulm.DataConfig(csv="set.csv"), out="runs/lm_ft")
    gulm.train_classifier(lm="runs/lm_ft", data=gulm.DataConfig(csv="set.csv"), out="runs/clf")
    model, tokenizer, config = gulm.load("runs/clf")
"""
__version__ = "0.1.0"

from gulm._ext import HAS_CUDA_KERNELS, HAS_EXTENSION, ExtensionMissingError  # noqa: E402,F401

_LAZY = {
    # training (gulm.train) and its configs (gulm.configs)
    "pretrain_lm": "gulm.train.phases", "finetune_lm": "gulm.train.phases",
    "train_classifier": "gulm.train.classifier", "PretrainConfig": "gulm.configs",
    "FinetuneConfig": "gulm.configs", "ClassifierConfig": "gulm.configs", "DataConfig": "gulm.configs",
    # inference
    "evaluate": "gulm.classify", "predict": "gulm.classify", "Classifier": "gulm.infer", "Ensemble": "gulm.infer",
    "Encoder": "gulm.infer",
    # data
    "KmerTokenizer": "gulm.data.tokenizer", "Genome": "gulm.data.genome",
    # scan / interpret / demo
    "scan_genome": "gulm.scan", "call_scan": "gulm.scan_output", "interpret": "gulm.interpretation",
    "run_demo": "gulm.demo",
    # baselines
    "kmer_baseline": "gulm.baseline", "probe_lms": "gulm.probe", "ProbeConfig": "gulm.configs",
    # variant effects, embeddings, gradient attributions
    "variant_effect": "gulm.variants", "VariantEffectConfig": "gulm.configs", "embed": "gulm.embed",
    "EmbedConfig": "gulm.configs", "integrated_gradients": "gulm.interpretation",
    "gradient_x_input": "gulm.interpretation",
}
# subpackages reachable as attributes: gulm.pretrained.names(), gulm.presets.choose(...)
_SUBPACKAGES = ("pretrained", "presets")


def load(path, device="cpu"):
    """Load a checkpoint folder, or a pretrained model shipped with gulm by name
    (``gulm.pretrained.names()``): returns (model in eval mode, KmerTokenizer, config dict)."""
    from gulm.runtime.checkpoint import load_checkpoint

    return load_checkpoint(path, device)


def __getattr__(name):
    import importlib

    if name in _SUBPACKAGES:
        return importlib.import_module(f"gulm.{name}")
    mod = _LAZY.get(name)
    if mod is None:
        raise AttributeError(f"module 'gulm' has no attribute {name!r}")
    value = getattr(importlib.import_module(mod), name)
    globals()[name] = value
    return value


def __dir__():
    return sorted(list(globals()) + list(_LAZY) + list(_SUBPACKAGES))
