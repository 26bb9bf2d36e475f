"""Torch datasets over cached images."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from torch.utils.data import Dataset

from radscreen.data import cache
from radscreen.data.randomness import SampleKey, seed_transform, split_key
from radscreen.preprocess.intensity import zscore
from radscreen.tasks import Task


def age_sex_arrays(frame: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    """(age in years, sex as 1 = female / 0 = male) per row; NaN where unknown."""
    age = pd.to_numeric(frame.get("age_years", pd.Series(np.nan, index=frame.index)), errors="coerce")
    sex = frame.get("sex", pd.Series(pd.NA, index=frame.index)).map({"F": 1.0, "M": 0.0})
    return age.to_numpy(np.float32, na_value=np.nan), sex.to_numpy(np.float32, na_value=np.nan)


class CachedImageDataset(Dataset):
    """Rows of a manifest → {image, targets, age, sex, image_id}, reading the preprocessed cache.

    image: float32 tensor (in_chans, H, W) — or (in_chans, Z, Y, X) for CT volumes — z-scored per image after
    augmentation.
    targets: {task name: scalar tensor} encoded by each Task (NaN / ignore index when missing).
    Keys are row indices or `(index, epoch)` pairs (radscreen.data.randomness.EpochSeededSampler); the augmentation
    of a row draws from generators seeded by (seed, epoch, index), whichever process loads it.
    """

    def __init__(
        self,
        frame: pd.DataFrame,
        cache_dir: Path,
        tasks: Mapping[str, Task],
        transform: Callable | None = None,
        in_chans: int = 1,
        seed: int = 0,
    ) -> None:
        if in_chans not in (1, 3):
            raise ValueError(f"in_chans must be 1 or 3 (grey stacked), got {in_chans}")
        self.frame = frame.reset_index(drop=True)
        self.image_ids = self.frame["image_id"].astype(str).tolist()
        self.cache_dir = Path(cache_dir)
        self.transform = transform
        self.in_chans = in_chans
        self.seed = seed
        self.targets = {name: task.encode_frame(self.frame) for name, task in tasks.items()}
        self.age, self.sex = age_sex_arrays(self.frame)

    def __len__(self) -> int:
        return len(self.frame)

    def stored_image(self, index: int) -> np.ndarray:
        """The preprocessed [0, 1] image of row `index` as the cache holds it."""
        return cache.load(self.cache_dir, self.image_ids[index])

    def load_image(self, index: int, epoch: int = 0) -> np.ndarray:
        """The cached [0, 1] image of row `index`, augmented when a transform is set (H, W float32); the
        augmentation is the one of (seed, epoch, index)."""
        image = self.stored_image(index)
        if self.transform is not None:
            seed_transform(self.transform, self.seed, epoch, index)
            image = self.transform(image=np.ascontiguousarray(image))["image"]
        return image

    def __getitem__(self, key: int | SampleKey) -> dict:
        index, epoch = split_key(key)
        image = torch.from_numpy(zscore(self.load_image(index, epoch))).unsqueeze(0)
        if self.in_chans == 3:
            image = image.expand(3, *image.shape[1:]).contiguous()
        return {
            "image": image,
            "targets": {name: torch.as_tensor(values[index]) for name, values in self.targets.items()},
            "age": torch.as_tensor(self.age[index]),
            "sex": torch.as_tensor(self.sex[index]),
            "image_id": self.image_ids[index],
        }
