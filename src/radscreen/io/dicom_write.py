"""Write a greyscale radiograph as a CR/DX DICOM file (test fixtures and synthetic phantoms)."""

from __future__ import annotations

import os
from datetime import date

import numpy as np
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import UID, ExplicitVRLittleEndian, generate_uid

SOP_CLASS = {
    "CR": UID("1.2.840.10008.5.1.4.1.1.1"),  # Computed Radiography Image Storage
    "DX": UID("1.2.840.10008.5.1.4.1.1.1.1"),  # Digital X-Ray Image Storage - For Presentation
}


def write_radiograph(
    path: str | os.PathLike,
    pixels: np.ndarray,
    *,
    patient_id: str,
    patient_name: str = "",
    birth_date: date | str | None = None,
    study_date: date | str | None = None,
    patient_age: str | None = None,
    sex: str | None = "F",
    view: str | None = "PA",
    modality: str = "DX",
    photometric: str = "MONOCHROME2",
    bits_stored: int | None = None,
    transfer_syntax: UID | str = ExplicitVRLittleEndian,
    rescale: tuple[float, float] | None = None,
    window: tuple[float, float] | None = None,
    sop_instance_uid: str | None = None,
) -> str:
    """Write `pixels` (2-D integer array, stored as is; signed arrays get PixelRepresentation 1) with the given
    header; return the SOP UID.

    `photometric` only sets the tag: pass pixels already inverted for MONOCHROME1. `transfer_syntax`
    other than Explicit VR Little Endian compresses through pydicom's encoders (RLE, JPEG 2000).
    """
    if pixels.ndim != 2 or not np.issubdtype(pixels.dtype, np.integer):
        raise ValueError("pixels must be a 2-D integer array")
    bits_allocated = 8 if pixels.dtype.itemsize == 1 else 16
    signed = np.issubdtype(pixels.dtype, np.signedinteger)
    pixels = pixels.astype(f"{'int' if signed else 'uint'}{bits_allocated}")
    bits_stored = bits_stored or bits_allocated
    sop_uid = sop_instance_uid or generate_uid()

    ds = Dataset()
    ds.file_meta = FileMetaDataset()
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds.file_meta.MediaStorageSOPClassUID = SOP_CLASS.get(modality, SOP_CLASS["DX"])
    ds.file_meta.MediaStorageSOPInstanceUID = sop_uid
    ds.SOPClassUID = ds.file_meta.MediaStorageSOPClassUID
    ds.SOPInstanceUID = sop_uid
    ds.StudyInstanceUID = generate_uid()
    ds.SeriesInstanceUID = generate_uid()
    ds.PatientName = patient_name
    ds.PatientID = patient_id
    ds.Modality = modality
    for keyword, value in (("PatientBirthDate", birth_date), ("StudyDate", study_date)):
        if value is not None:
            setattr(ds, keyword, value.strftime("%Y%m%d") if isinstance(value, date) else value)
    if patient_age is not None:
        ds.PatientAge = patient_age
    if sex is not None:
        ds.PatientSex = sex
    if view is not None:
        ds.ViewPosition = view
    ds.BodyPartExamined = "CHEST"
    ds.Rows, ds.Columns = pixels.shape
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = photometric
    ds.BitsAllocated = bits_allocated
    ds.BitsStored = bits_stored
    ds.HighBit = bits_stored - 1
    ds.PixelRepresentation = int(signed)
    if rescale is not None:
        ds.RescaleSlope, ds.RescaleIntercept = rescale
    if window is not None:
        ds.WindowCenter, ds.WindowWidth = window
    ds.PixelData = pixels.tobytes()
    if UID(transfer_syntax) != ExplicitVRLittleEndian:
        ds.compress(UID(transfer_syntax))
    ds.save_as(path, enforce_file_format=True)
    return sop_uid
