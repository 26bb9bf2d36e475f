"""What predict.py reads: a DICOM or raster file, a folder of them (searched recursively) or a manifest CSV,
turned into rows (image_id, path, file, age_years, sex) and rejects (path, reason) with the manifest builder's
header checks. No raw identifier leaves this module: image ids are salted hashes, as in manifests."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from radscreen.errors import UserError
from radscreen.io.dicom import DicomReadError, read_header
from radscreen.manifests.labels import LabelError
from radscreen.manifests.pseudonym import pseudonymise
from radscreen.manifests.scan import DUPLICATE_REASON, ScanOptions, header_demographics, header_reason, iter_files
from radscreen.manifests.schema import read_manifest, recorded_image_root

RASTER_SUFFIXES = (".png", ".jpg", ".jpeg", ".tif", ".tiff")
MANIFEST_SUFFIXES = (".csv",)
ROW_COLUMNS = ("image_id", "path", "file", "age_years", "sex")


@dataclass(frozen=True)
class InputFilters:
    """The header checks of the training data (modalities, views, body parts); empty tuples accept all."""

    modalities: tuple[str, ...] = ()
    views: tuple[str, ...] = ()
    body_parts: tuple[str, ...] = ("CHEST",)


def collect_inputs(source: str | os.PathLike, salt: str, filters: InputFilters,
                   image_root: str | None = None) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(rows, rejects) of an input path: a manifest CSV, one image file, or a folder searched recursively."""
    source = Path(source)
    if not source.exists():
        raise UserError(f"input {source} does not exist")
    if source.is_file() and source.suffix.lower() in MANIFEST_SUFFIXES:
        return manifest_rows(source, image_root), pd.DataFrame(columns=["path", "reason"])
    root = source if source.is_dir() else source.parent
    files = iter_files(source) if source.is_dir() else [str(source)]
    rows, rejects = [], []
    for file in files:
        row, reason = file_row(file, root, salt, filters)
        if row is None:
            rejects.append({"path": Path(os.path.relpath(file, root)).as_posix(), "reason": reason})
        else:
            rows.append(row)
    frame = pd.DataFrame(rows, columns=list(ROW_COLUMNS))
    repeated = frame["image_id"].duplicated(keep="first")  # the same SOPInstanceUID in two files
    rejects += [{"path": path, "reason": DUPLICATE_REASON} for path in frame.loc[repeated, "path"]]
    return frame.loc[~repeated].reset_index(drop=True), pd.DataFrame(rejects, columns=["path", "reason"])


def file_row(file: str, root: Path, salt: str, filters: InputFilters) -> tuple[dict | None, str | None]:
    """One file → (row, None) or (None, reason). Raster files carry no header: no checks, no age or sex."""
    relative = Path(os.path.relpath(file, root)).as_posix()
    if Path(file).suffix.lower() in RASTER_SUFFIXES:
        return {"image_id": pseudonymise(relative, salt, prefix="i"), "path": relative, "file": file,
                "age_years": np.nan, "sex": None}, None
    try:
        header = read_header(file)
    except DicomReadError as exc:
        return None, str(exc)
    options = ScanOptions(root=str(root), salt=salt, modalities=filters.modalities, views=filters.views,
                          body_parts=filters.body_parts)
    reason = header_reason(header, options)
    if reason:
        return None, reason
    try:
        found = header_demographics(header.patient_id, header.birth_date, header.study_date, header.patient_age,
                                    header.patient_sex, None, None)
        age, sex = found.age_years, found.sex
    except LabelError:  # prediction needs no age or sex unless the model fuses them (checked later)
        age, sex = np.nan, None
    return {"image_id": pseudonymise(header.sop_instance_uid or relative, salt, prefix="i"), "path": relative,
            "file": file, "age_years": age, "sex": sex}, None


def manifest_rows(manifest: Path, image_root: str | None) -> pd.DataFrame:
    """A manifest's rows with their files under the image root (given, recorded beside it, or its folder)."""
    frame = read_manifest(str(manifest), "input manifest")
    root = Path(image_root or recorded_image_root(manifest) or manifest.parent)
    files = [str(root / p) for p in frame["path"].astype(str)]
    return pd.DataFrame({"image_id": frame["image_id"].astype(str), "path": frame["path"].astype(str),
                         "file": files, "age_years": frame["age_years"], "sex": frame["sex"]})
