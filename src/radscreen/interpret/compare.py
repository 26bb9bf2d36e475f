"""Similarity of average maps from different models on the same images: Pearson r and SSIM."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import torch
from torchmetrics.functional.image import structural_similarity_index_measure

from radscreen.preprocess.intensity import minmax


def similarity(a: np.ndarray, b: np.ndarray) -> dict[str, float]:
    """Pearson correlation of the pixels and SSIM (torchmetrics, data range 1 after min-max scaling)."""
    if a.shape != b.shape:
        raise ValueError(f"maps differ in shape: {a.shape} vs {b.shape}")
    ta, tb = (torch.from_numpy(minmax(m))[None, None] for m in (a, b))
    return {"pearson": float(np.corrcoef(a.ravel(), b.ravel())[0, 1]),
            "ssim": float(structural_similarity_index_measure(ta, tb, data_range=1.0))}


def similarity_table(maps: dict[str, np.ndarray]) -> pd.DataFrame:
    """Every pair of named maps with their Pearson r and SSIM."""
    names = list(maps)
    rows = [{"map_a": a, "map_b": b, **similarity(maps[a], maps[b])}
            for i, a in enumerate(names) for b in names[i + 1:]]
    return pd.DataFrame(rows)


def side_by_side(maps: dict[str, np.ndarray], path: str | Path, background: np.ndarray | None = None) -> Path:
    from radscreen.utils.figures import plt, save_figure

    fig, axes = plt.subplots(1, len(maps), figsize=(4 * len(maps), 4), squeeze=False)
    for ax, (name, heatmap) in zip(axes[0], maps.items()):
        if background is not None:
            ax.imshow(background, cmap="gray")
        ax.imshow(heatmap, cmap="jet", alpha=0.5 if background is not None else 1.0)
        ax.set_title(name)
        ax.axis("off")
    return save_figure(fig, path, dpi=100)
