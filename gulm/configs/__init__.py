"""Every config of gulm, with each default and each option's help stated once.

The command line is generated from these dataclasses (:mod:`gulm.config`); the Python API takes
them (or their fields as keyword arguments)."""
from gulm.configs.base import DTYPES, TRAIN_DTYPES, DataConfig, ModelSize, RunOptions, TokenizerConfig
from gulm.configs.commands import (TRACK_MODES, BaselineConfig, DemoConfig, EvaluateConfig, InferOptions,
                                   InterpretConfig, ModelsConfig, PredictConfig, ProbeConfig,
                                   ScanConfig)
from gulm.configs.commands import BACKGROUNDS, CallConfig, CallOptions
from gulm.configs.fields import opt, option_name
from gulm.configs.train import ClassifierConfig, FinetuneConfig, PresetOptions, PretrainConfig, TrainOptions

__all__ = [
    "DTYPES", "TRAIN_DTYPES", "TokenizerConfig", "ModelSize", "DataConfig", "RunOptions", "TrainOptions",
    "PretrainConfig", "FinetuneConfig", "ClassifierConfig", "PresetOptions", "InferOptions",
    "EvaluateConfig", "PredictConfig", "ScanConfig", "InterpretConfig", "DemoConfig", "TRACK_MODES",
    "BaselineConfig", "ProbeConfig", "ModelsConfig",
    "opt", "option_name", "CallOptions", "CallConfig", "BACKGROUNDS",
]
from gulm.configs.commands import POOLS, EmbedConfig, VariantEffectConfig  # noqa: E402

__all__ += ["VariantEffectConfig", "EmbedConfig", "POOLS"]
