"""Write an HU volume as an axial CT DICOM series (test fixtures and synthetic phantoms)."""

from __future__ import annotations

import os
from datetime import date
from pathlib import Path

import numpy as np
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import CTImageStorage, ExplicitVRLittleEndian, generate_uid

INTERCEPT = -1024.0


def write_series(folder: str | os.PathLike, hu: np.ndarray, spacing_zyx: tuple[float, float, float], *,
                 patient_id: str, birth_date: date | None, study_date: date, sex: str | None,
                 origin_xyz: tuple[float, float, float] = (0.0, 0.0, 0.0), file_names: list[str] | None = None) -> str:
    """One file per axial slice (z ascending = superior), int16 stored with intercept −1024; returns the series UID.

    `file_names` lets tests scramble the on-disk order relative to the slice positions.
    """
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    series_uid, study_uid, frame_uid = generate_uid(), generate_uid(), generate_uid()
    dz, dy, dx = spacing_zyx
    stored = np.clip(np.round(hu - INTERCEPT), 0, 4095).astype(np.uint16)
    names = file_names or [f"slice{k:04d}.dcm" for k in range(hu.shape[0])]
    for k, name in enumerate(names):
        ds = Dataset()
        ds.file_meta = FileMetaDataset()
        ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
        ds.file_meta.MediaStorageSOPClassUID = CTImageStorage
        ds.SOPInstanceUID = ds.file_meta.MediaStorageSOPInstanceUID = generate_uid()
        ds.SOPClassUID = CTImageStorage
        ds.StudyInstanceUID, ds.SeriesInstanceUID, ds.FrameOfReferenceUID = study_uid, series_uid, frame_uid
        ds.PatientID, ds.PatientName, ds.Modality = patient_id, "", "CT"
        ds.StudyDate = study_date.strftime("%Y%m%d")
        if birth_date is not None:
            ds.PatientBirthDate = birth_date.strftime("%Y%m%d")
        if sex is not None:
            ds.PatientSex = sex
        ds.InstanceNumber = k + 1
        ds.ImageOrientationPatient = [1, 0, 0, 0, 1, 0]
        ds.ImagePositionPatient = [origin_xyz[0], origin_xyz[1], origin_xyz[2] + k * dz]
        ds.PixelSpacing = [dy, dx]
        ds.SliceThickness = dz
        ds.Rows, ds.Columns = hu.shape[1:]
        ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, "MONOCHROME2"
        ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 12, 11, 0
        ds.RescaleIntercept, ds.RescaleSlope = INTERCEPT, 1.0
        ds.PixelData = stored[k].tobytes()
        ds.save_as(folder / name, enforce_file_format=True)
    return series_uid
