#!/usr/bin/env python
"""Import speed for public-dataset metadata: 200,000 rows in the NIH ChestX-ray14 layout, and MIMIC-CXR's 377,110
images joined with MIMIC-IV patients / admissions and the CheXpert labels (synthetic tables in the real layouts).

    python benchmarks/bench_import.py [--rows 200000] [--mimic-images 377110]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

from radscreen.manifests.importers import CHEXPERT_FINDINGS, import_metadata
from radscreen.manifests.mimic import import_mimic


def mimic_tables(folder: Path, images: int, rng: np.random.Generator) -> dict[str, Path]:
    """MIMIC-sized synthetic tables: ~5.8 images per subject, ~1.65 per study, ~3 admissions per subject (the
    proportions of MIMIC-CXR 2.0.0 and MIMIC-IV hosp); 1 % of subjects missing from patients.csv."""
    n_subjects, n_studies = max(1, images * 65_379 // 377_110), max(1, images * 227_835 // 377_110)
    subjects = 10_000_000 + rng.choice(9_000_000, n_subjects, replace=False)
    anchor_year = rng.integers(2110, 2200, n_subjects)  # studies fall in the ten years after it
    of_study = rng.integers(0, n_subjects, n_studies)
    study_subject = subjects[of_study]
    study_ids = 50_000_000 + rng.choice(9_000_000, n_studies, replace=False)
    study_day = (pd.to_datetime(pd.Series(anchor_year[of_study]).astype(str) + "-01-01")
                 + pd.to_timedelta(rng.integers(0, 3650, n_studies), unit="D"))
    of_image = rng.integers(0, n_studies, images)
    metadata = pd.DataFrame({
        "dicom_id": [f"{i:08x}-bde0afdd-112c0b34-7bc16630-4e384014" for i in range(images)],
        "subject_id": study_subject[of_image], "study_id": study_ids[of_image],
        "PerformedProcedureStepDescription": "CHEST (PA AND LAT)",
        "ViewPosition": rng.choice(["PA", "AP", "LATERAL", "LL", ""], images),
        "Rows": 3056, "Columns": 2544, "StudyDate": study_day.iloc[of_image].dt.strftime("%Y%m%d").to_numpy(),
        "StudyTime": rng.uniform(0, 235959, images).round(3),
        "ProcedureCodeSequence_CodeMeaning": "CHEST (PA AND LAT)",
        "ViewCodeSequence_CodeMeaning": "postero-anterior", "PatientOrientationCodeSequence_CodeMeaning": "Erect",
    })
    listed = rng.random(n_subjects) > 0.01
    kept = subjects[listed]
    dod = pd.Timestamp("2110-01-01") + pd.to_timedelta(rng.integers(0, 365 * 101, len(kept)), unit="D")
    patients = pd.DataFrame({"subject_id": kept, "gender": rng.choice(["M", "F"], len(kept)),
                             "anchor_age": rng.integers(18, 91, len(kept)),
                             "anchor_year": anchor_year[listed], "anchor_year_group": "2014 - 2016",
                             "dod": pd.Series(dod.strftime("%Y-%m-%d")).where(rng.random(len(kept)) < 0.3)})
    n_adm = 3 * n_subjects
    admit = pd.Timestamp("2110-01-01") + pd.to_timedelta(rng.integers(0, 365 * 100 * 24, n_adm), unit="h")
    admissions = pd.DataFrame({
        "subject_id": subjects[rng.integers(0, n_subjects, n_adm)], "hadm_id": 20_000_000 + np.arange(n_adm),
        "admittime": admit.strftime("%Y-%m-%d %H:%M:%S"),
        "dischtime": (admit + pd.to_timedelta(rng.integers(2, 500, n_adm), unit="h")).strftime("%Y-%m-%d %H:%M:%S"),
        "deathtime": "", "admission_type": "EW EMER.", "admit_provider_id": "P874LG",
        "admission_location": "EMERGENCY ROOM", "discharge_location": "HOME",
        "insurance": rng.choice(["Medicare", "Medicaid", "Private", "Other", ""], n_adm), "language": "ENGLISH",
        "marital_status": "MARRIED",
        "race": rng.choice(["WHITE", "BLACK/AFRICAN AMERICAN", "ASIAN - CHINESE", "HISPANIC OR LATINO", "OTHER",
                            "UNKNOWN", "WHITE - RUSSIAN"], n_adm),
        "edregtime": "", "edouttime": "", "hospital_expire_flag": 0,
    })
    labels = pd.DataFrame({"subject_id": study_subject, "study_id": study_ids})
    for finding in sorted(CHEXPERT_FINDINGS):
        labels[finding] = rng.choice([1.0, 0.0, -1.0, np.nan], n_studies)
    paths = {name: folder / f"{name}.csv" for name in ("metadata", "patients", "admissions", "chexpert")}
    for name, table in zip(paths, (metadata, patients, admissions, labels)):
        table.to_csv(paths[name], index=False)
    return paths


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=200_000)
    parser.add_argument("--mimic-images", type=int, default=377_110)
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    n = args.rows
    patients = rng.integers(1, n // 4, size=n)
    frame = pd.DataFrame({
        "Image Index": [f"{p:08d}_{i:03d}.png" for i, p in enumerate(patients)],
        "Finding Labels": rng.choice(["No Finding", "Cardiomegaly", "Effusion|Mass"], size=n),
        "Follow-up #": rng.integers(0, 20, size=n),
        "Patient ID": patients,
        "Patient Age": rng.integers(1, 95, size=n),
        "Patient Gender": rng.choice(["M", "F"], size=n),
        "View Position": rng.choice(["PA", "AP"], size=n),
        "OriginalImage[Width": 2500, "Height]": 2048, "OriginalImagePixelSpacing[x": 0.143, "y]": 0.143,
    })
    with tempfile.TemporaryDirectory() as tmp:
        csv = Path(tmp) / "Data_Entry_2017.csv"
        frame.to_csv(csv, index=False)
        start = time.perf_counter()
        manifest, rejects = import_metadata("nih", csv, salt="bench", images_root=None)
        seconds = time.perf_counter() - start
    print(f"NIH layout, {n} rows: {seconds:.2f} s ({n / seconds:,.0f} rows/s), kept {len(manifest)}, "
          f"rejected {len(rejects)}")
    with tempfile.TemporaryDirectory() as tmp:
        tables = mimic_tables(Path(tmp), args.mimic_images, rng)
        start = time.perf_counter()
        manifest, rejects = import_mimic(tables["metadata"], patients_csv=tables["patients"],
                                         admissions_csv=tables["admissions"], chexpert_csv=tables["chexpert"],
                                         salt="bench", images_root=None, views=("PA", "AP"))
        seconds = time.perf_counter() - start
    print(f"MIMIC-CXR + MIMIC-IV, {args.mimic_images} images (reading the four CSVs included): {seconds:.2f} s "
          f"({args.mimic_images / seconds:,.0f} images/s), kept {len(manifest)}, rejected {len(rejects)}")


if __name__ == "__main__":
    main()
