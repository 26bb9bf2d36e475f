"""Write a synthetic CXR cohort: DICOM radiographs (with a few broken files), a DXA table and the truth."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pydicom
from pydicom.uid import ExplicitVRLittleEndian, JPEG2000Lossless

from radscreen.io.dicom_write import write_radiograph
from radscreen.phantoms.drr import TissueProjections, load_ct_projections, render
from radscreen.phantoms.fetch import fetch_ct
from radscreen.phantoms.subjects import CohortModel, describe, sample_subjects
from radscreen.utils.parallel import progress_bar

BROKEN_KINDS = ("truncated", "no_pixel_data", "lateral", "missing_birth_date")
BROKEN_REASONS = {  # what the manifest builder must say about each
    "truncated": "truncated file (pixel data incomplete)",
    "no_pixel_data": "no pixel data",
    "lateral": "wrong view (LAT)",
    "missing_birth_date": "missing birth date",
}


@dataclass(frozen=True)
class Encoding:
    modality: str
    photometric: str
    transfer_syntax: str


def choose_encoding(rng: np.random.Generator) -> Encoding:
    """Half CR / half DX; a third MONOCHROME1; a third JPEG 2000 lossless."""
    return Encoding(modality=str(rng.choice(["CR", "DX"])),
                    photometric="MONOCHROME1" if rng.random() < 1 / 3 else "MONOCHROME2",
                    transfer_syntax=JPEG2000Lossless if rng.random() < 1 / 3 else ExplicitVRLittleEndian)


def write_subject(path: Path, pixels: np.ndarray, subject: pd.Series, encoding: Encoding, broken: str | None) -> None:
    """One radiograph; `broken` makes it one of the kinds the manifest builder must reject."""
    stored = (4095 - pixels).astype(np.uint16) if encoding.photometric == "MONOCHROME1" else pixels
    write_radiograph(
        path, stored, patient_id=subject["patient_id"], patient_name=subject["patient_name"],
        birth_date=None if broken == "missing_birth_date" else subject["birth_date"],
        study_date=subject["study_date"], sex=subject["sex"], view="LL" if broken == "lateral" else "PA",
        modality=encoding.modality, photometric=encoding.photometric, bits_stored=12,
        transfer_syntax=encoding.transfer_syntax)
    if broken == "truncated":
        data = path.read_bytes()
        path.write_bytes(data[: len(data) // 2])
    elif broken == "no_pixel_data":
        ds = pydicom.dcmread(path)
        del ds.PixelData
        ds.save_as(path)


def make_cohort(out: str | Path, n: int = 600, seed: int = 0, size: int = 256, n_broken_each: int | None = None,
                model: CohortModel = CohortModel(), ct_dir: str | Path | None = None,
                projections: TissueProjections | None = None, show_progress: bool = True) -> pd.DataFrame:
    """Generate n subjects (+ broken files) under out/: dicom/, dxa.csv, subjects.csv, cohort.json.

    Deterministic by seed. subjects.csv is the ground truth (it holds the synthetic PatientIDs and names:
    it is never an input to radscreen's pipeline).
    """
    out = Path(out)
    (out / "dicom").mkdir(parents=True, exist_ok=True)
    n_broken_each = max(1, n // 150) if n_broken_each is None else n_broken_each
    total = n + n_broken_each * len(BROKEN_KINDS)
    subjects = sample_subjects(total, seed, model)
    subjects["broken"] = [None] * n + [kind for kind in BROKEN_KINDS for _ in range(n_broken_each)]
    projections = projections or load_ct_projections(ct_dir or fetch_ct(), size)
    rng = np.random.default_rng([seed, 1])
    files, encodings = [], []
    with progress_bar(disable=not show_progress) as progress:
        task = progress.add_task("rendering phantoms", total=total)
        for i, subject in subjects.iterrows():
            pixels = render(projections, subject, rng, model.photons_per_pixel, model.electronic_noise)
            encoding = choose_encoding(rng)
            relative = Path("dicom") / f"batch{i // 100:03d}" / f"img{i:06d}.dcm"
            (out / relative.parent).mkdir(parents=True, exist_ok=True)
            write_subject(out / relative, pixels, subject, encoding, subject["broken"])
            files.append(relative.as_posix())
            encodings.append(encoding)
            progress.advance(task)
    subjects["file"] = files
    subjects["modality"] = [e.modality for e in encodings]
    subjects["photometric"] = [e.photometric for e in encodings]
    subjects["transfer_syntax"] = [str(e.transfer_syntax) for e in encodings]
    dxa = subjects[["patient_id", "dxa_date", "t_score_ls", "t_score_fn", "t_score_th", "height_cm", "weight_kg"]]
    dxa.rename(columns={"dxa_date": "date"}).round(2).to_csv(out / "dxa.csv", index=False)
    subjects.to_csv(out / "subjects.csv", index=False)
    (out / "cohort.json").write_text(json.dumps({"n": n, "seed": seed, "size": size, "broken_each": n_broken_each,
                                                 "model": describe(model)}, indent=2, default=str))
    return subjects
