"""gulm: Genomic-ULMFiT with fused C++/CUDA kernels.

Pretrain AWD-LSTM language models on k-mer tokens of genomes, fine-tune them and train
sequence classifiers; scan genomes and interpret models.
"""
__version__ = "0.1.0"

from gulm._ext import HAS_CUDA_KERNELS, HAS_EXTENSION, ExtensionMissingError  # noqa: E402,F401
