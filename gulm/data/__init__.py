from gulm.data.tokenizer import KmerTokenizer  # noqa: F401
