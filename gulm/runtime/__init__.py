"""Cross-cutting rooms that training and inference both use: checkpoint folders
(:mod:`~gulm.runtime.checkpoint`), torch.distributed helpers (:mod:`~gulm.runtime.distributed`)
and device, precision and thread set-up (:mod:`~gulm.runtime.device`). Nothing here knows
about phases or commands."""
