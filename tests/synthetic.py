"""A small learnable cohort written as PNG files + manifest, for training tests.

Each image: noise background; a 'bone' block whose brightness rises with the lowest T-score; a bar whose
length grows with age; a bright square in the top-left corner for women.
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pandas as pd

from radscreen.manifests.clinical import add_bmd_labels


def make_cohort(root: Path, n: int = 160, size: int = 40, seed: int = 0) -> Path:
    """Write n subjects (one image each) under root/images and return root/manifest.csv."""
    rng = np.random.default_rng(seed)
    (root / "images").mkdir(parents=True, exist_ok=True)
    rows = []
    for i in range(n):
        sex = "F" if i % 2 else "M"
        age = float(rng.uniform(20, 90))
        t_min = float(np.clip(rng.normal(-1.5, 1.3), -4.5, 2.0))
        image = rng.normal(0.25, 0.03, size=(size, size))
        image[size // 3: 2 * size // 3, size // 3: 2 * size // 3] = 0.55 + 0.08 * t_min  # bone
        bar = int(2 + (size - 4) * (age - 20) / 70)
        image[size - 6: size - 3, 2: 2 + bar] = 0.9  # age bar
        if sex == "F":
            image[2:8, 2:8] = 1.0
        pixels = np.clip(image * 4000, 0, 4095).astype(np.uint16)
        path = f"images/s{i:04d}.png"
        cv2.imwrite(str(root / path), pixels)
        rows.append({"image_id": f"img{i:04d}", "patient_id": f"pat{i // 1:04d}", "path": path, "modality": "DX",
                     "view": "PA", "age_years": round(age, 2), "sex": sex, "t_score_ls": t_min,
                     "t_score_fn": t_min + 0.3, "t_score_th": t_min + 0.5, "cohort": "synthetic"})
    manifest = add_bmd_labels(pd.DataFrame(rows))
    out = root / "manifest.csv"
    manifest.to_csv(out, index=False)
    return out


def make_noise_cohort(root: Path, n: int = 300, size: int = 40, seed: int = 0, noisy_sd: float = 12.0,
                      clean_sd: float = 1.0) -> Path:
    """Age shown by a bar's length; half the subjects carry a corner marker and an age label with noisy_sd years of
    noise (the others clean_sd). A Gaussian-NLL model should predict larger SDs for the marked half."""
    rng = np.random.default_rng(seed)
    (root / "images").mkdir(parents=True, exist_ok=True)
    rows = []
    for i in range(n):
        noisy = i % 2 == 1
        age = float(rng.uniform(20, 90))
        image = rng.normal(0.25, 0.03, size=(size, size))
        image[size // 2 - 2: size // 2 + 2, 2: 2 + int(2 + (size - 4) * (age - 20) / 70)] = 0.9
        if noisy:
            image[2:8, 2:8] = 1.0
        path = f"images/n{i:04d}.png"
        cv2.imwrite(str(root / path), np.clip(image * 4000, 0, 4095).astype(np.uint16))
        label = age + rng.normal(0, noisy_sd if noisy else clean_sd)
        rows.append({"image_id": f"n{i:04d}", "patient_id": f"q{i:04d}", "path": path, "age_years": round(label, 3),
                     "sex": "F" if i % 4 < 2 else "M", "noisy": int(noisy)})
    out = root / "manifest.csv"
    pd.DataFrame(rows).to_csv(out, index=False)
    return out
