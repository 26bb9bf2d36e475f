"""The patient's body in a CT volume or a 2-D image: one function, the method chosen by each caller."""

from __future__ import annotations

import numpy as np
import SimpleITK as sitk
from scipy import ndimage

BODY_MASK_METHODS = ("watershed", "threshold", "otsu")


def _largest_object(mask: np.ndarray) -> np.ndarray:
    """The largest connected object of a boolean mask (the mask itself when it holds none)."""
    components, count = ndimage.label(mask)
    if count == 0:
        return mask
    return components == np.argmax(np.bincount(components.ravel())[1:]) + 1


def body_mask(image: np.ndarray, method: str = "watershed", *, threshold: float = -600.0,
              margin: float = 200.0) -> np.ndarray:
    """The patient's body as a boolean mask, without table, stretcher or outside air.

    - 'watershed' (a CT volume in HU; the CT age study's method): markers air below threshold − margin, tissue
      above threshold + margin; the band between is assigned by a watershed on the Sobel elevation map; holes
      (lungs, bowel gas) are filled slice by slice; the largest connected object is kept.
    - 'threshold' (a CT volume in HU; the phantoms' DRRs): voxels above threshold, opened twice (cuts the thin
      supports of the table), the largest connected object, holes filled in 3-D. `margin` is not used.
    - 'otsu' (any radiograph or projection, whatever its units): the Otsu threshold of the image smoothed with a
      Gaussian of σ = 1 pixel. `threshold` and `margin` are not used.
    """
    if method == "watershed":
        volume = sitk.GetImageFromArray(image.astype(np.float32))
        markers = np.zeros(image.shape, np.uint8)
        markers[image < threshold - margin] = 1
        markers[image > threshold + margin] = 2
        elevation = sitk.SobelEdgeDetection(volume)
        labels = sitk.MorphologicalWatershedFromMarkers(elevation, sitk.GetImageFromArray(markers),
                                                        markWatershedLine=False, fullyConnected=False)
        tissue = sitk.GetArrayFromImage(labels) == 2
        return _largest_object(np.stack([ndimage.binary_fill_holes(axial) for axial in tissue]))
    if method == "threshold":
        body = _largest_object(ndimage.binary_opening(image > threshold, iterations=2))
        return ndimage.binary_fill_holes(body)
    if method == "otsu":
        smoothed = sitk.SmoothingRecursiveGaussian(sitk.GetImageFromArray(image.astype(np.float32)), 1.0)
        return sitk.GetArrayFromImage(sitk.OtsuThreshold(smoothed, 0, 1)).astype(bool)
    raise ValueError(f"method must be one of {', '.join(BODY_MASK_METHODS)}, got '{method}'")
