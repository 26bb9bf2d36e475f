"""Public-dataset metadata → manifest, with CSVs in the datasets' exact column layouts."""

from __future__ import annotations

import subprocess
import sys
from datetime import date
from pathlib import Path

import pandas as pd
import pytest

from radscreen.manifests.importers import import_metadata
from radscreen.manifests.pseudonym import pseudonymise

from conftest import SALT

ROOT = Path(__file__).resolve().parents[1]

NIH_CSV = """Image Index,Finding Labels,Follow-up #,Patient ID,Patient Age,Patient Gender,View Position,OriginalImage[Width,Height],OriginalImagePixelSpacing[x,y],
00000001_000.png,Cardiomegaly,0,1,58,M,PA,2682,2749,0.143,0.143,
00000001_001.png,Cardiomegaly|Emphysema,1,1,58,M,PA,2894,2729,0.143,0.143,
00000002_000.png,No Finding,0,2,81,F,AP,2500,2048,0.171,0.171,
00000003_000.png,Hernia,0,3,414,F,PA,2582,2991,0.143,0.143,
00000004_000.png,Mass|Nodule,0,4,0,M,AP,2500,2048,0.168,0.168,
00000005_000.png,No Finding,0,5,60,M,PA,2048,2500,0.168,0.168,
"""

CHEXPERT_CSV = """Path,Sex,Age,Frontal/Lateral,AP/PA,No Finding,Enlarged Cardiomediastinum,Cardiomegaly,Lung Opacity,Lung Lesion,Edema,Consolidation,Pneumonia,Atelectasis,Pneumothorax,Pleural Effusion,Pleural Other,Fracture,Support Devices
CheXpert-v1.0-small/train/patient00001/study1/view1_frontal.jpg,Female,68,Frontal,AP,1.0,,,,,,,,,0.0,,,,1.0
CheXpert-v1.0-small/train/patient00002/study2/view1_frontal.jpg,Female,87,Frontal,AP,,,-1.0,1.0,,-1.0,-1.0,,-1.0,,-1.0,,1.0,
CheXpert-v1.0-small/train/patient00002/study1/view2_lateral.jpg,Female,83,Lateral,,,,,1.0,,,-1.0,,,,,,1.0,
CheXpert-v1.0-small/train/patient00003/study1/view1_frontal.jpg,Male,0,Frontal,PA,,,,,,1.0,,,,0.0,,,,
CheXpert-v1.0-small/train/patient00004/study1/view1_frontal.jpg,Unknown,20,Frontal,PA,1.0,0.0,,,,,,,,,0.0,,,
"""

PADCHEST_HEADER = (",ImageID,ImageDir,StudyDate_DICOM,StudyID,PatientID,PatientBirth,PatientSex_DICOM,"
                   "ViewPosition_DICOM,Projection,MethodProjection,Pediatric,Modality_DICOM,Manufacturer_DICOM,"
                   "PhotometricInterpretation_DICOM,PixelRepresentation_DICOM,PixelAspectRatio_DICOM,"
                   "SpatialResolution_DICOM,BitsStored_DICOM,WindowCenter_DICOM,WindowWidth_DICOM,Rows_DICOM,"
                   "Columns_DICOM,XRayTubeCurrent_DICOM,Exposure_DICOM,ExposureInuAs_DICOM,ExposureTime,"
                   "RelativeXRayExposure_DICOM,ReportID,Report,MethodLabel,Labels,Localizations,"
                   "LabelsLocalizationsBySentence,labelCUIS,LocalizationsCUIS")


def padchest_row(i, image, folder, date, pid, birth, sex, view, projection, modality="CR"):
    return (f"{i},{image},{folder},{date},st{i},{pid},{birth},{sex},{view},{projection},Manual review,No,"
            f"{modality},Philips,MONOCHROME2,0,,0.139,12,2048,4096,2000,2000,5,5000,10,16,4532,"
            f"\"normal .\",Physician,\"['normal']\",[],\"[['normal']]\",[],[]")


PADCHEST_CSV = "\n".join([
    PADCHEST_HEADER,
    padchest_row(0, "a_pa.png", 0, 20150101, "pidA", "1950.0", "M", "POSTEROANTERIOR", "PA"),
    padchest_row(1, "a_lat.png", 0, 20150101, "pidA", "1950.0", "M", "LATERAL", "L"),
    padchest_row(2, "b_pa.png", 1, 20120630, "pidB", "1930.0", "F", "PA", "PA", modality="DX"),
    padchest_row(3, "c_pa.png", 1, 20120630, "pidC", "", "F", "PA", "PA"),
    padchest_row(4, "d_pa.png", 1, 20120630, "pidD", "1960.0", "O", "PA", "PA"),
]) + "\n"


def make_images(root: Path, relatives: list[str]) -> None:
    for relative in relatives:
        (root / relative).parent.mkdir(parents=True, exist_ok=True)
        (root / relative).write_bytes(b"\x89PNG")


def test_nih(tmp_path):
    csv = tmp_path / "Data_Entry_2017.csv"
    csv.write_text(NIH_CSV)
    images = tmp_path / "nih"
    make_images(images, ["images_001/images/00000001_000.png", "images_001/images/00000001_001.png",
                         "images_001/images/00000002_000.png", "images_002/images/00000003_000.png",
                         "images_002/images/00000004_000.png"])  # 00000005 missing
    manifest, rejects = import_metadata("nih", csv, salt=SALT, images_root=images)
    assert list(manifest["path"]) == ["images_001/images/00000001_000.png", "images_001/images/00000001_001.png",
                                      "images_001/images/00000002_000.png"]
    assert list(manifest["age_years"]) == [58.0, 58.0, 81.0]
    assert list(manifest["sex"]) == ["M", "M", "F"] and list(manifest["view"]) == ["PA", "PA", "AP"]
    assert manifest.loc[0, "patient_id"] == manifest.loc[1, "patient_id"] == pseudonymise("1", SALT)
    assert manifest.loc[1, "findings"] == "Cardiomegaly|Emphysema" and set(manifest["cohort"]) == {"nih"}
    assert dict(zip(rejects["path"], rejects["reason"])) == {
        "images_002/images/00000003_000.png": "impossible age",
        "images_002/images/00000004_000.png": "impossible age",
        "00000005_000.png": "image file not found"}


def test_chexpert_patient_from_path_and_age_zero_rejected(tmp_path):
    csv = tmp_path / "train.csv"
    csv.write_text(CHEXPERT_CSV)
    manifest, rejects = import_metadata("chexpert", csv, salt=SALT, images_root=None)
    assert len(manifest) == 3
    assert manifest["patient_id"].tolist().count(pseudonymise("patient00002", SALT)) == 2
    assert manifest.set_index("path")["view"].tolist() == ["AP", "AP", "LAT"]
    assert manifest["pleural_effusion"].tolist()[1] == -1.0
    assert dict(zip(rejects["reason"], rejects["path"].str.extract(r"(patient\d+)", expand=False))) == {
        "impossible age": "patient00003", "unknown sex": "patient00004"}


def test_padchest_age_from_birth_year_and_view_filter(tmp_path):
    csv = tmp_path / "padchest.csv"
    csv.write_text(PADCHEST_CSV)
    manifest, rejects = import_metadata("padchest", csv, salt=SALT, images_root=None, views=("PA",))
    assert manifest["path"].tolist() == ["0/a_pa.png", "1/b_pa.png"]
    # 1950-07-01 → 2015-01-01 and 1930-07-01 → 2012-06-30
    days = [(date(2015, 1, 1) - date(1950, 7, 1)).days, (date(2012, 6, 30) - date(1930, 7, 1)).days]
    assert manifest["age_years"].tolist() == pytest.approx([d / 365.2425 for d in days])
    assert manifest["study_date"].tolist() == ["2015-01-01", "2012-06-30"]
    assert manifest["modality"].tolist() == ["CR", "DX"]
    assert dict(zip(rejects["path"], rejects["reason"])) == {
        "0/a_lat.png": "wrong view", "1/c_pa.png": "missing age", "1/d_pa.png": "unknown sex"}


def test_cli_writes_manifest_and_rejects_and_refuses_wrong_layout(tmp_path):
    csv = tmp_path / "train.csv"
    csv.write_text(CHEXPERT_CSV)
    out = tmp_path / "chexpert.csv"
    script = str(ROOT / "scripts" / "import_manifest.py")
    ok = subprocess.run([sys.executable, script, "chexpert", str(csv), "--out", str(out)],
                        capture_output=True, text=True)
    assert ok.returncode == 0, ok.stderr
    assert len(pd.read_csv(out)) == 3 and len(pd.read_csv(tmp_path / "chexpert.rejects.csv")) == 2
    wrong = subprocess.run([sys.executable, script, "nih", str(csv), "--out", str(out)],
                           capture_output=True, text=True)
    assert wrong.returncode == 2 and "not a NIH ChestX-ray14 metadata CSV" in wrong.stderr
