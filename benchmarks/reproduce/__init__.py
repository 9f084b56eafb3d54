"""Reproduction harness for the Genomic-ULMFiT tables on real data (see README.md here).

Modules: ``homology`` (alignment-free near-duplicate graph and homology-aware splits),
``reads`` (16S amplicon / shotgun read simulator), ``datasets`` (one builder per task),
``baseline`` (k-mer logistic regression and length-only baselines), ``harness`` (LM cache,
fine-tuning, classifiers, result JSON) and ``run.py`` (the command line).
"""
