"""Altered 3-D volumes of the synthetic subjects (for the CT age study): NIfTI files or DICOM series + a CSV.

Realistic effect sizes (no CXR bone gain): bone HU above soft tissue × (1 + 0.11·T), lung density × the
subject's lung factor, a share of aortic voxels calcified (1000 HU), body size by resampling about the centre.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import SimpleITK as sitk

from radscreen.io.volume_write import write_series
from radscreen.phantoms.drr import BONE_HU, BONE_STRUCTURES, LUNG_STRUCTURES, SOFT_TISSUE_HU, structure_ids
from radscreen.preprocess.ct import AIR_HU, resample

BONE_PER_T = 0.11


def load_base(ct_dir: str | Path, shape_zyx: tuple[int, int, int]) -> tuple[sitk.Image, np.ndarray, dict]:
    """The real CT resampled to shape_zyx, its labels on the same grid (nearest), and the label id sets."""
    ct_dir = Path(ct_dir)
    image = resample(sitk.ReadImage(str(ct_dir / "cxr.nii.gz")), shape_zyx)
    labels = sitk.Resample(sitk.ReadImage(str(ct_dir / "mask.nii.gz")), image, sitk.Transform(),
                           sitk.sitkNearestNeighbor, 0)
    structures = ct_dir / "structures.csv"
    ids = {"bone": structure_ids(structures, BONE_STRUCTURES), "lung": structure_ids(structures, LUNG_STRUCTURES),
           "aorta": structure_ids(structures, ("aorta",))}
    return image, sitk.GetArrayFromImage(labels), ids


def alter(image: sitk.Image, labels: np.ndarray, ids: dict, subject: pd.Series, rng: np.random.Generator) -> sitk.Image:
    """One subject's volume (HU) from the base CT."""
    hu = sitk.GetArrayFromImage(image).astype(np.float32)
    hu = np.maximum(hu, AIR_HU)  # scanner padding outside the field of view → air
    bone = np.isin(labels, ids["bone"]) | (hu > BONE_HU)
    factor = np.clip(1 + BONE_PER_T * subject["skeletal_t"], 0.35, 1.4)
    hu[bone] = SOFT_TISSUE_HU + factor * (hu[bone] - SOFT_TISSUE_HU)
    lung = np.isin(labels, ids["lung"])
    hu[lung] = 1000.0 * (subject["lung_density"] * (1 + hu[lung] / 1000.0) - 1)
    aorta = np.flatnonzero(np.isin(labels, ids["aorta"]))
    n_calcified = int(len(aorta) * subject["aortic_calcification"])
    calcified = rng.choice(aorta, n_calcified, replace=False) if len(aorta) else []
    hu.flat[calcified] = 1000.0
    altered = sitk.GetImageFromArray(hu)
    altered.CopyInformation(image)
    scale = sitk.ScaleTransform(3, [1 / subject["body_scale"]] * 3)
    centre = altered.TransformContinuousIndexToPhysicalPoint([(s - 1) / 2 for s in altered.GetSize()])
    scale.SetCenter(centre)
    return sitk.Resample(altered, altered, scale, sitk.sitkLinear, AIR_HU)


def write_volumes(subjects: pd.DataFrame, out: str | Path, ct_dir: str | Path, shape_zyx=(96, 96, 96),
                  fmt: str = "nifti", seed: int = 0) -> pd.DataFrame:
    """Write every usable subject's volume under out/volumes/ and out/volumes.csv (path, patient_id, age_years,
    sex, study_date) for scripts/build_ct_manifest.py (--volumes-csv for NIfTI; series folders for DICOM)."""
    if fmt not in ("nifti", "dicom"):
        raise ValueError(f"volume format must be nifti or dicom, got {fmt}")
    out = Path(out)
    image, labels, ids = load_base(ct_dir, tuple(shape_zyx))
    rng = np.random.default_rng([seed, 2])
    rows = []
    for i, subject in subjects.iterrows():
        volume = alter(image, labels, ids, subject, rng)
        if fmt == "nifti":
            relative = Path(f"img{i:06d}.nii.gz")
            (out / "volumes").mkdir(parents=True, exist_ok=True)
            sitk.WriteImage(sitk.Cast(sitk.Round(volume), sitk.sitkInt16), str(out / "volumes" / relative))
        else:
            relative = Path(f"study{i:06d}")
            write_series(out / "volumes" / relative, sitk.GetArrayFromImage(volume), volume.GetSpacing()[::-1],
                         patient_id=subject["patient_id"], birth_date=subject["birth_date"],
                         study_date=subject["study_date"], sex=subject["sex"])
        rows.append({"path": relative.as_posix(), "patient_id": subject["patient_id"],
                     "age_years": round(float(subject["age_years"]), 4), "sex": subject["sex"],
                     "study_date": str(subject["study_date"])})
    table = pd.DataFrame(rows)
    table.to_csv(out / "volumes.csv", index=False)
    return table
