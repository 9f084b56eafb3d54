"""Modules: the AWD-LSTM encoder, its dropouts, heads and the two model factories."""
from gulm.nn.awd_lstm import AWDLSTM, WeightDropLSTM
from gulm.nn.dropout import EmbeddingDropout, RNNDropout
from gulm.nn.heads import LinearDecoder, PoolingClassifier, binned_mean_pool, masked_concat_pool, pool_outputs
from gulm.nn.models import (
    CLASSIFIER_DROPOUTS,
    LM_DROPOUTS,
    AWDConfig,
    LanguageModel,
    SequenceClassifier,
    classifier,
    language_model,
)

__all__ = [
    "AWDLSTM", "WeightDropLSTM", "EmbeddingDropout", "RNNDropout", "LinearDecoder",
    "PoolingClassifier", "masked_concat_pool", "binned_mean_pool", "pool_outputs", "AWDConfig", "LanguageModel",
    "SequenceClassifier", "language_model", "classifier", "LM_DROPOUTS", "CLASSIFIER_DROPOUTS",
]
