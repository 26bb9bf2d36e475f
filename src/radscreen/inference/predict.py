"""predict.py: a checkpoint applied to new images with the preprocessing of its own training run.

Images are preprocessed as the cache would store them (same parameters, same uint16 quantisation), so predictions
on a manifest equal eval.py's predictions CSV of the same checkpoint. A file that cannot be read is a reject with
its reason; it never stops the run.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from torch.utils.data import DataLoader, default_collate

from radscreen.data import cache
from radscreen.data.datasets import CachedImageDataset
from radscreen.evaluation.calibration import apply_calibration
from radscreen.evaluation.operating_point import OperatingPoint
from radscreen.evaluation.predictions import prediction_frame
from radscreen.models.module import RadscreenModule
from radscreen.preprocess.ct import CTPreprocess
from radscreen.preprocess.cxr import CXRPreprocess

log = logging.getLogger(__name__)


class FileImageDataset(CachedImageDataset):
    """Rows (image_id, file, age_years, sex) read from their files instead of the cache; a row that fails gives
    {"image_id", "error"} instead of a sample."""

    def __init__(self, rows: pd.DataFrame, preprocess: CXRPreprocess | CTPreprocess, transform=None,
                 in_chans: int = 1) -> None:
        super().__init__(rows, Path("."), {}, transform, in_chans)
        self.files = self.frame["file"].astype(str).tolist()
        self.preprocess = preprocess

    def stored_image(self, index: int) -> np.ndarray:
        image, reason = cache.preprocess_file(self.preprocess, self.files[index])
        if image is None:
            raise ImageUnreadable(reason)
        return cache.decode(cache.encode(image))  # the cache's quantisation: the same numbers as eval.py

    def __getitem__(self, key) -> dict:
        try:
            return super().__getitem__(key)
        except ImageUnreadable as exc:
            return {"image_id": self.image_ids[key], "error": str(exc)}


class ImageUnreadable(Exception):
    """A file the preprocessing could not turn into an image; the message is the reject reason."""


def collate_with_errors(items: Sequence[dict]) -> dict:
    """A batch of the readable samples plus the (image_id, reason) of the others."""
    good = [item for item in items if "error" not in item]
    batch = default_collate(good) if good else {}
    batch["errors"] = [(item["image_id"], item["error"]) for item in items if "error" in item]
    return batch


@dataclass
class Predictions:
    """What predict() returns: one row per predicted image, and the files it could not use."""

    frame: pd.DataFrame
    rejects: pd.DataFrame


def missing_fusion_inputs(rows: pd.DataFrame, module: RadscreenModule) -> pd.Series:
    """Per row, the reason it cannot be predicted by a model that fuses age or sex ('' when it can)."""
    needs = set(module.fusion.inputs)
    reason = pd.Series("", index=rows.index)
    if "age" in needs:
        reason = reason.mask(rows["age_years"].isna() & reason.eq(""), "missing age (the model fuses age)")
    if "sex" in needs:
        known = rows["sex"].isin(["M", "F"])
        reason = reason.mask(~known & reason.eq(""), "missing sex (the model fuses sex)")
    return reason


def predict(module: RadscreenModule, rows: pd.DataFrame, preprocess, transform, in_chans: int,
            operating_point: OperatingPoint | None = None, batch_size: int = 32, num_workers: int = 0,
            device: str | None = None, show_progress: bool = True) -> Predictions:
    """Predictions of `module` for `rows` (see FileImageDataset); decisions at the saved operating point."""
    reason = missing_fusion_inputs(rows, module)
    rejects = [pd.DataFrame({"image_id": rows.loc[reason.ne(""), "image_id"], "reason": reason[reason.ne("")]})]
    rows = rows.loc[reason.eq("")].reset_index(drop=True)
    device = device or ("cuda" if torch.cuda.is_available() else "cpu")
    module = module.to(device).eval()
    loader = DataLoader(FileImageDataset(rows, preprocess, transform, in_chans), batch_size=batch_size,
                        num_workers=num_workers, collate_fn=collate_with_errors)
    batches, failed = [], []
    with torch.inference_mode():
        for batch in _progress(loader, show_progress):
            failed += batch.pop("errors")
            if "image" not in batch:
                continue
            inputs = {k: batch[k].to(device) for k in ("image", "age", "sex")}
            batches.append(module.predict_step({**inputs, "image_id": batch["image_id"]}, 0))
    rejects.append(pd.DataFrame(failed, columns=["image_id", "reason"]))
    frame = prediction_frame(batches, rows, module.tasks) if batches else pd.DataFrame(columns=["image_id"])
    frame = add_decisions(frame.drop(columns=[c for c in frame.columns if c.endswith("_target")]), module,
                          operating_point)
    paths = rows.set_index("image_id")["path"]
    frame.insert(0, "path", frame["image_id"].map(paths))
    rejected = pd.concat(rejects, ignore_index=True)
    rejected.insert(0, "path", rejected["image_id"].map(paths))
    return Predictions(frame, rejected)


def add_decisions(frame: pd.DataFrame, module: RadscreenModule, operating_point: OperatingPoint | None) -> pd.DataFrame:
    """`<task>_sd` for Gaussian-NLL heads; for binary tasks with an operating point, `<task>_pred_calibrated`
    (when a calibration was fitted) and `<task>_positive` at the threshold chosen on validation."""
    frame = frame.copy()
    for name, task in module.tasks.items():
        if f"{name}_var" in frame:
            frame[f"{name}_sd"] = np.sqrt(frame.pop(f"{name}_var"))
        point = operating_point.tasks.get(name) if operating_point else None
        if not task.thresholded or point is None or not len(frame):
            continue
        probability = frame[f"{name}_pred"].to_numpy(float)
        if point.calibration:
            probability = apply_calibration(point.calibration, probability)
            frame[f"{name}_pred_calibrated"] = probability
        frame[f"{name}_positive"] = (probability >= point.threshold).astype(int)
    return frame


def _progress(loader: DataLoader, show: bool):
    if not show:
        return loader
    from rich.progress import track

    return track(loader, description="predicting", total=len(loader), transient=True)
