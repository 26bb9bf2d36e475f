"""Matplotlib without a display: the pyplot every figure module uses, and one way to save a figure."""

from __future__ import annotations

from pathlib import Path

import matplotlib

from radscreen.utils.tables import atomic_output

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402


def save_figure(fig: plt.Figure, path: str | Path, dpi: int = 110) -> Path:
    """Tight layout, write PNG atomically (creating the folder; a failed save leaves no half file), close the
    figure; returns the path."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        fig.tight_layout()
        with atomic_output(path) as temporary:
            fig.savefig(temporary, dpi=dpi, format="png")
    finally:
        plt.close(fig)
    return path


__all__ = ["plt", "save_figure"]
