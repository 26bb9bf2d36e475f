"""Register images (and their maps) to a reference with SimpleITK before averaging."""

from __future__ import annotations

import numpy as np
import SimpleITK as sitk

from radscreen.preprocess.masks import body_mask

TRANSFORMS = ("rigid", "affine", "none")
TARGETS = ("image", "mask")


def register(fixed: np.ndarray, moving: np.ndarray, kind: str = "rigid", iterations: int = 200,
             on: str = "image") -> sitk.Transform:
    """Transform mapping `fixed` coordinates into `moving` (SimpleITK convention); rigid = rotation + translation
    (Euler2D), affine = 2-D affine. on='image': Mattes mutual information of the images; on='mask': mean squares
    of their Otsu foreground masks (robust to contrast differences between images)."""
    if kind not in TRANSFORMS:
        raise ValueError(f"alignment must be one of {TRANSFORMS}, got '{kind}'")
    if on not in TARGETS:
        raise ValueError(f"alignment target must be one of {TARGETS}, got '{on}'")
    if kind == "none":
        return sitk.Transform(2, sitk.sitkIdentity)
    if on == "mask":
        fixed, moving = (body_mask(image, "otsu").astype(np.float32) for image in (fixed, moving))
    fixed_image, moving_image = sitk.GetImageFromArray(fixed.astype(np.float32)), sitk.GetImageFromArray(
        moving.astype(np.float32))
    base = sitk.Euler2DTransform() if kind == "rigid" else sitk.AffineTransform(2)
    initial = sitk.CenteredTransformInitializer(fixed_image, moving_image, base,
                                                sitk.CenteredTransformInitializerFilter.GEOMETRY)
    method = sitk.ImageRegistrationMethod()
    if on == "mask":
        method.SetMetricAsMeanSquares()
    else:
        method.SetMetricAsMattesMutualInformation(numberOfHistogramBins=32)
    method.SetInterpolator(sitk.sitkLinear)
    method.SetOptimizerAsRegularStepGradientDescent(learningRate=1.0, minStep=1e-4, numberOfIterations=iterations)
    method.SetOptimizerScalesFromPhysicalShift()
    method.SetShrinkFactorsPerLevel([4, 2, 1])
    method.SetSmoothingSigmasPerLevel([2, 1, 0])
    method.SetInitialTransform(initial, inPlace=False)
    return method.Execute(fixed_image, moving_image)


def warp(array: np.ndarray, transform: sitk.Transform, reference: np.ndarray) -> np.ndarray:
    """Resample `array` (an image or its map) onto the reference grid with the registration transform."""
    image = sitk.GetImageFromArray(array.astype(np.float32))
    grid = sitk.GetImageFromArray(reference.astype(np.float32))
    return sitk.GetArrayFromImage(sitk.Resample(image, grid, transform, sitk.sitkLinear, 0.0))


def transform_parameters(transform: sitk.Transform) -> list[float]:
    """Flat parameters of a (possibly composite) registration transform, for saving."""
    if isinstance(transform, sitk.CompositeTransform):
        return [p for i in range(transform.GetNumberOfTransforms())
                for p in transform.GetNthTransform(i).GetParameters()]
    return list(transform.GetParameters())
