"""Embeddings in and out: pooled penultimate features of a checkpoint, or an external file of vectors."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import torch
from torch.utils.data import DataLoader

from radscreen.errors import UserError
from radscreen.utils.parallel import progress_bar


@torch.inference_mode()
def embed(module: torch.nn.Module, loader: DataLoader, show_progress: bool = True) -> tuple[list[str], np.ndarray]:
    """(image ids, features (n, d) float32) from module.features over every batch of the loader."""
    module.eval()
    ids, chunks = [], []
    with progress_bar(disable=not show_progress) as progress:
        task = progress.add_task("embedding", total=len(loader))
        for batch in loader:
            chunks.append(module.features(batch["image"]).float().cpu().numpy())
            ids.extend(batch["image_id"])
            progress.advance(task)
    return ids, np.concatenate(chunks).astype(np.float32)


def save_embeddings(path: str | Path, ids: list[str], features: np.ndarray) -> Path:
    """Parquet (columns image_id, f0…f{d-1}) for .parquet; else NPY of the matrix + <stem>.ids.csv."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.suffix == ".parquet":
        frame = pd.DataFrame(features, columns=[f"f{i}" for i in range(features.shape[1])])
        frame.insert(0, "image_id", ids)
        frame.to_parquet(path, index=False)
    else:
        np.save(path.with_suffix(".npy"), features)
        pd.DataFrame({"image_id": ids}).to_csv(path.with_suffix(".ids.csv"), index=False)
        path = path.with_suffix(".npy")
    return path


def load_embeddings(path: str | Path) -> tuple[np.ndarray, np.ndarray]:
    """(image ids, matrix) from a radscreen file or any external one: Parquet/CSV with an image_id column and
    one column per dimension, NPZ with arrays 'image_id' and 'embeddings', or NPY + <stem>.ids.csv."""
    path = Path(path)
    if path.suffix in (".parquet", ".csv"):
        frame = pd.read_parquet(path) if path.suffix == ".parquet" else pd.read_csv(path)
        if "image_id" not in frame:
            raise UserError(f"embeddings {path} need an image_id column")
        return frame["image_id"].astype(str).to_numpy(), frame.drop(columns="image_id").to_numpy(np.float32)
    if path.suffix == ".npz":
        data = np.load(path, allow_pickle=False)
        return data["image_id"].astype(str), data["embeddings"].astype(np.float32)
    if path.suffix == ".npy":
        ids = pd.read_csv(path.with_suffix(".ids.csv"))["image_id"].astype(str).to_numpy()
        return ids, np.load(path).astype(np.float32)
    raise UserError(f"embeddings {path} must be .parquet, .csv, .npz or .npy (+ .ids.csv)")


def join_manifest(ids: np.ndarray, features: np.ndarray, manifest: pd.DataFrame) -> tuple[pd.DataFrame, np.ndarray]:
    """Manifest rows in the order of the embeddings they have (inner join on image_id) and the matching rows."""
    position = pd.Series(np.arange(len(ids)), index=pd.Index(ids, name="image_id"))
    if not position.index.is_unique:
        raise UserError("the embeddings list an image_id more than once")
    rows = manifest[manifest["image_id"].astype(str).isin(position.index)].reset_index(drop=True)
    if rows.empty:
        raise UserError("no image_id of the embeddings is in the manifest: were they computed from another manifest?")
    return rows, features[position.loc[rows["image_id"].astype(str)].to_numpy()]
