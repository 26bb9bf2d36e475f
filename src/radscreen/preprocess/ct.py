"""CT preprocessing: HU volume → resampled → body mask → maximum-intensity projection → [0, 1] image.

Arrays are (z, y, x) = (inferior→superior, anterior→posterior, right→left) as SimpleITK returns them.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass

import numpy as np
import SimpleITK as sitk

from radscreen.preprocess.geometry import resize
from radscreen.preprocess.intensity import clip_percentiles, minmax
from radscreen.preprocess.masks import body_mask

AIR_HU = -1024.0
AXES = {"axial": 0, "coronal": 1, "sagittal": 2}
PIPELINE_VERSION = 1


def resample(image: sitk.Image, shape_zyx: tuple[int, int, int] | None = None,
             spacing_zyx: tuple[float, float, float] | None = None, default: float = AIR_HU) -> sitk.Image:
    """Resample a volume to a voxel grid (shape) or a voxel size (spacing), linear, filling with air."""
    if (shape_zyx is None) == (spacing_zyx is None):
        raise ValueError("give exactly one of shape_zyx and spacing_zyx")
    size_xyz, spacing_xyz = np.array(image.GetSize(), float), np.array(image.GetSpacing(), float)
    extent = size_xyz * spacing_xyz
    if shape_zyx is not None:
        new_size = np.array(shape_zyx[::-1], float)
        new_spacing = extent / new_size
    else:
        new_spacing = np.array(spacing_zyx[::-1], float)
        new_size = np.maximum(np.round(extent / new_spacing), 1)
    return sitk.Resample(image, [int(s) for s in new_size], sitk.Transform(), sitk.sitkLinear, image.GetOrigin(),
                         [float(s) for s in new_spacing], image.GetDirection(), float(default), sitk.sitkFloat32)


def mip(hu: np.ndarray, mask: np.ndarray | None = None, axis: str = "coronal", slab: int | None = None) -> np.ndarray:
    """Maximum-intensity projection along an anatomical axis, of the body only (outside set to air), over the
    whole volume or a centred slab of `slab` voxels. Rows run superior→inferior for coronal/sagittal views."""
    if axis not in AXES:
        raise ValueError(f"axis must be one of {sorted(AXES)}, got '{axis}'")
    volume = np.where(mask, hu, AIR_HU) if mask is not None else hu
    dim = AXES[axis]
    if slab:
        centre, half = volume.shape[dim] // 2, slab // 2
        volume = np.take(volume, range(max(centre - half, 0), min(centre - half + slab, volume.shape[dim])), axis=dim)
    projection = volume.max(axis=dim)
    return projection[::-1] if axis != "axial" else projection  # head up


@dataclass(frozen=True)
class CTPreprocess:
    """Parameters of the cached CT projection (everything that changes the stored image)."""

    image_size: int = 224
    shape_zyx: tuple[int, int, int] | None = (224, 112, 112)  # the study: 112×112×224 voxels
    spacing_zyx: tuple[float, float, float] | None = None
    body_threshold: float = -600.0
    use_body_mask: bool = True
    projection: str = "coronal"  # coronal | sagittal | axial | coronal+sagittal (side by side) | volume (3-D)
    slab: int | None = None  # voxels of a centred slab (the study: 10); None = whole volume
    lower_hu: float = AIR_HU  # min-max with this lower bound …
    upper_percentile: float | None = None  # … and the max, or clip at this percentile
    interpolation: str = "area"

    def __post_init__(self) -> None:
        for name in ("shape_zyx", "spacing_zyx"):
            value = getattr(self, name)
            object.__setattr__(self, name, tuple(value) if value is not None else None)
        if (self.shape_zyx is None) == (self.spacing_zyx is None):
            raise ValueError("CT preprocessing needs exactly one of shape_zyx and spacing_zyx")
        if self.projection not in (*AXES, "coronal+sagittal", "volume"):
            raise ValueError(f"projection must be coronal, sagittal, axial, coronal+sagittal or volume, "
                             f"got {self.projection}")

    def key(self) -> str:
        payload = json.dumps(self.describe(), sort_keys=True)
        return hashlib.sha256(payload.encode()).hexdigest()[:12]

    def describe(self) -> dict:
        return {"kind": "ct", "version": PIPELINE_VERSION, **asdict(self)}

    def project(self, image: sitk.Image) -> np.ndarray:
        """HU volume → resampled → masked → projected (HU, 2-D)."""
        hu = sitk.GetArrayFromImage(resample(image, self.shape_zyx, self.spacing_zyx))
        mask = body_mask(hu, threshold=self.body_threshold) if self.use_body_mask else None
        if self.projection == "volume":
            return np.where(mask, hu, AIR_HU) if mask is not None else hu
        views = ("coronal", "sagittal") if self.projection == "coronal+sagittal" else (self.projection,)
        return np.concatenate([mip(hu, mask, view, self.slab) for view in views], axis=1)

    def __call__(self, image: sitk.Image) -> np.ndarray:
        """A CT volume (SimpleITK, HU) → float32 [0, 1] square image of image_size (or, for projection='volume',
        the masked volume on the resampled grid)."""
        projection = self.project(image)
        if self.upper_percentile is not None:
            projection = clip_percentiles(projection, 0.0, self.upper_percentile)
        projection = np.clip(projection, self.lower_hu, None)
        low, high = self.lower_hu, float(projection.max())
        scaled = (projection - low) / (high - low) if high > low else minmax(projection)
        if self.projection == "volume":
            return scaled.astype(np.float32)
        return resize(scaled.astype(np.float32), self.image_size, self.interpolation)

    def from_file(self, path: str) -> np.ndarray:
        from radscreen.io.volume import read_volume

        return self(read_volume(path))
