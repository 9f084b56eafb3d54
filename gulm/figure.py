"""One matplotlib set-up and one save for every figure gulm draws (a cross-cutting leaf: it imports
nothing of gulm): the headless backend, and a save that writes through a temporary name so that a
figure is never seen half written (the checkpoint swap skips ``*.tmp`` files)."""
from __future__ import annotations

import os

__all__ = ["pyplot", "save_figure"]


def pyplot():
    """``matplotlib.pyplot`` on the Agg backend (no display needed)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def save_figure(fig, path: str, dpi: int = 120) -> str:
    """Lay out, write ``path`` (its extension names the format: png, pdf, svg...) atomically, close."""
    import matplotlib.pyplot as plt

    fmt = os.path.splitext(path)[1].lstrip(".").lower() or "png"
    tmp = f"{path}.tmp"
    try:
        fig.tight_layout()
        fig.savefig(tmp, dpi=dpi, format=fmt)
        os.replace(tmp, path)
    finally:
        plt.close(fig)
        if os.path.exists(tmp):
            os.unlink(tmp)
    return path
