"""One-cycle learning-rate and momentum schedules (Smith 2018, as in fastai's fit_one_cycle)."""
from __future__ import annotations

import math
from dataclasses import dataclass

__all__ = ["OneCycle", "discriminative_lrs"]


def _cos(start: float, end: float, pct: float) -> float:
    return end + (start - end) / 2 * (math.cos(math.pi * pct) + 1)


@dataclass
class OneCycle:
    """Learning-rate multiplier and momentum at step ``i`` of ``total`` steps.

    The learning rate warms up from ``lr_max/div`` to ``lr_max`` over the first ``pct_start``
    of the steps (cosine), then anneals to ``lr_max/(div*final_div)``; momentum (Adam's
    beta1) goes from ``moms[0]`` down to ``moms[1]`` and back.
    """

    total: int
    pct_start: float = 0.3
    div: float = 25.0
    final_div: float = 1e4
    moms: tuple[float, float] = (0.8, 0.7)

    def __post_init__(self):
        if self.total < 1:
            raise ValueError(f"a one-cycle schedule needs at least one step, got {self.total}")
        self.warm = max(1, int(round(self.total * self.pct_start)))

    def lr_scale(self, i: int) -> float:
        """Multiplier of lr_max at step i (0-based)."""
        if i < self.warm:
            return _cos(1.0 / self.div, 1.0, i / self.warm)
        rest = max(1, self.total - self.warm)
        return _cos(1.0, 1.0 / (self.div * self.final_div), min(1.0, (i - self.warm) / rest))

    def momentum(self, i: int) -> float:
        if i < self.warm:
            return _cos(self.moms[0], self.moms[1], i / self.warm)
        rest = max(1, self.total - self.warm)
        return _cos(self.moms[1], self.moms[0], min(1.0, (i - self.warm) / rest))


def discriminative_lrs(lr: float, n_groups: int, factor: float = 2.6) -> list[float]:
    """ULMFiT's per-group learning rates: the last group gets lr, each earlier one lr/factor^n."""
    return [lr / factor ** (n_groups - 1 - i) for i in range(n_groups)]
