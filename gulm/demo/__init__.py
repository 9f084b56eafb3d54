"""``gulm demo``: the three ULMFiT phases end to end on a deterministic synthetic genome
(:mod:`gulm.demo.synthetic`), driven by :func:`run_demo` (:mod:`gulm.demo.run`)."""
from gulm.demo.run import DEMO, run_demo  # noqa: F401

__all__ = ["run_demo", "DEMO"]
