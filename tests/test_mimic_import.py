"""MIMIC-CXR + MIMIC-IV → manifest, on CSVs written in the exact layouts of MIMIC-CXR 2.0.0 and MIMIC-IV hosp."""

from __future__ import annotations

import subprocess
import sys
from datetime import date, timedelta
from pathlib import Path

import pandas as pd
import pytest

from radscreen.manifests.mimic import NOT_IN_PATIENTS, import_mimic, race_group
from radscreen.manifests.pseudonym import pseudonymise

from conftest import SALT

ROOT = Path(__file__).resolve().parents[1]

METADATA_HEADER = ("dicom_id,subject_id,study_id,PerformedProcedureStepDescription,ViewPosition,Rows,Columns,"
                   "StudyDate,StudyTime,ProcedureCodeSequence_CodeMeaning,ViewCodeSequence_CodeMeaning,"
                   "PatientOrientationCodeSequence_CodeMeaning")
PATIENTS_HEADER = "subject_id,gender,anchor_age,anchor_year,anchor_year_group,dod"
ADMISSIONS_HEADER = ("subject_id,hadm_id,admittime,dischtime,deathtime,admission_type,admit_provider_id,"
                     "admission_location,discharge_location,insurance,language,marital_status,race,edregtime,"
                     "edouttime,hospital_expire_flag")
CHEXPERT_HEADER = ("subject_id,study_id,Atelectasis,Cardiomegaly,Consolidation,Edema,Enlarged Cardiomediastinum,"
                   "Fracture,Lung Lesion,Lung Opacity,No Finding,Pleural Effusion,Pleural Other,Pneumonia,"
                   "Pneumothorax,Support Devices")

# subject C dies 365 days after its study, D 366 days after, E 10 days before (a data error), F on the study day
STUDY_C, STUDY_D, STUDY_E, STUDY_F = date(2153, 6, 1), date(2160, 1, 15), date(2170, 5, 5), date(2140, 2, 2)


def ymd(day: date) -> str:
    return day.strftime("%Y%m%d")


def image(dicom, subject, study, view, day, time, description="CHEST (PA AND LAT)"):
    return (f"{dicom},{subject},{study},{description},{view},3056,2544,{day},{time},{description},"
            f"{'postero-anterior' if view == 'PA' else 'lateral'},Erect")


METADATA = "\n".join([
    METADATA_HEADER,
    # subject A: four studies around three admissions
    image("02aa804e-bde0afdd-112c0b34-7bc16630-4e384014", 10000032, 50414267, "PA", 21800506, "213014.531"),
    image("174413ec-4ec4c1f7-34ea26b7-c5f994f8-79ef1962", 10000032, 50414267, "LATERAL", 21800506, "213014.531"),
    image("2a2277a9-b0ded155-c0de8eb9-c124d10e-82c5caab", 10000032, 53189527, "PA", 21800626, "165500.0"),
    image("68b5c4b1-227d0485-9cc38c3f-7b84ab51-4b472714", 10000032, 53911762, "AP", 21800724, "84623.0"),
    image("fffabebf-74fd3a1f-673b6b41-96ec0ac9-2ab69818", 10000032, 56699142, "AP", 21800801, "120000"),
    # subject B: a study inside a long stay that encloses a shorter one
    image("ea030e7a-2e3b1346-bc518786-7a8fd698-f673b44c", 10000764, 57375967, "PA", 21321020, "90000"),
    image("0c4eb1e1-b801903c-bcebe8a4-3da9cd3c-3b94a27c", 11000011, 51000001, "PA", ymd(STUDY_C), "101010"),
    image("1c4eb1e1-b801903c-bcebe8a4-3da9cd3c-3b94a27c", 12000022, 52000002, "PA", ymd(STUDY_D), ""),
    image("2c4eb1e1-b801903c-bcebe8a4-3da9cd3c-3b94a27c", 13000033, 53000003, "PA", ymd(STUDY_E), "235959"),
    image("3c4eb1e1-b801903c-bcebe8a4-3da9cd3c-3b94a27c", 14000044, 54000004, "PA", ymd(STUDY_F), "000001"),
    image("4c4eb1e1-b801903c-bcebe8a4-3da9cd3c-3b94a27c", 19999999, 59999999, "PA", 21000101, "120000"),
]) + "\n"

PATIENTS = "\n".join([
    PATIENTS_HEADER,
    "10000032,F,52,2180,2014 - 2016,2180-09-09",
    "10000764,M,86,2132,2011 - 2013,",
    f"11000011,F,60,2150,2011 - 2013,{STUDY_C + timedelta(days=365)}",
    f"12000022,M,40,2160,2017 - 2019,{STUDY_D + timedelta(days=366)}",
    f"13000033,M,70,2170,2008 - 2010,{STUDY_E - timedelta(days=10)}",
    f"14000044,F,30,2140,2008 - 2010,{STUDY_F}",
]) + "\n"


def admission(subject, hadm, admit, discharge, insurance, race):
    return (f"{subject},{hadm},{admit},{discharge},,EW EMER.,P874LG,EMERGENCY ROOM,HOME,{insurance},ENGLISH,"
            f"WIDOWED,{race},{admit},{admit},0")


ADMISSIONS = "\n".join([
    ADMISSIONS_HEADER,
    admission(10000032, 22595853, "2180-05-06 22:23:00", "2180-05-07 17:15:00", "Other", "WHITE"),
    admission(10000032, 22841357, "2180-06-26 18:27:00", "2180-06-27 18:49:00", "Medicaid", "BLACK/CAPE VERDEAN"),
    admission(10000032, 29079034, "2180-07-23 12:35:00", "2180-07-25 17:55:00", "Medicare", "UNKNOWN"),
    admission(10000764, 27897940, "2132-10-01 08:00:00", "2132-12-01 12:00:00", "Medicare", "ASIAN - CHINESE"),
    admission(10000764, 27897941, "2132-10-05 08:00:00", "2132-10-07 12:00:00", "Private",
              "HISPANIC/LATINO - PUERTO RICAN"),
    admission(12000022, 20000022, "2159-12-01 10:00:00", "2159-12-03 10:00:00", "Medicaid",
              "PATIENT DECLINED TO ANSWER"),
    admission(13000033, 20000033, "2170-05-01 10:00:00", "2170-05-03 10:00:00", "Medicare",
              "AMERICAN INDIAN/ALASKA NATIVE"),
    admission(14000044, 20000044, "2140-01-01 10:00:00", "2140-01-03 10:00:00", "", "HISPANIC OR LATINO"),
]) + "\n"

CHEXPERT = "\n".join([
    CHEXPERT_HEADER,
    "10000032,50414267,1.0,-1.0,,,,,,,,0.0,,,,",
    "10000032,53189527,,,,,,,,,1.0,,,,,",
    "10000764,57375967,,1.0,,-1.0,,,,,,1.0,,,,1.0",
]) + "\n"


@pytest.fixture
def tables(tmp_path) -> dict[str, Path]:
    files = {"metadata": ("mimic-cxr-2.0.0-metadata.csv", METADATA), "patients": ("patients.csv", PATIENTS),
             "admissions": ("admissions.csv", ADMISSIONS), "chexpert": ("mimic-cxr-2.0.0-chexpert.csv", CHEXPERT)}
    for name, text in files.values():
        (tmp_path / name).write_text(text)
    return {key: tmp_path / name for key, (name, _) in files.items()}


def run_import(tables, **options):
    return import_mimic(tables["metadata"], patients_csv=tables["patients"], admissions_csv=tables["admissions"],
                        chexpert_csv=tables["chexpert"], salt=SALT, images_root=None, **options)


def by_study(manifest: pd.DataFrame) -> pd.DataFrame:
    return manifest.set_index(manifest["path"].str.extract(r"/s(\d+)/", expand=False).astype(int))


def test_ages_sex_paths_and_pseudonyms(tables):
    manifest, _ = run_import(tables)
    rows = by_study(manifest)
    assert rows.loc[50414267, "path"].tolist() == [
        "files/p10/p10000032/s50414267/02aa804e-bde0afdd-112c0b34-7bc16630-4e384014.dcm",
        "files/p10/p10000032/s50414267/174413ec-4ec4c1f7-34ea26b7-c5f994f8-79ef1962.dcm"]
    # anchor_age + (study year - anchor_year)
    assert rows.loc[[53189527, 57375967, 51000001, 52000002, 53000003, 54000004], "age_years"].tolist() == [
        52.0, 86.0, 63.0, 40.0, 70.0, 30.0]
    assert rows.loc[[53189527, 57375967, 51000001], "sex"].tolist() == ["F", "M", "F"]
    assert rows.loc[53911762, "study_date"] == "2180-07-24" and rows.loc[53911762, "view"] == "AP"
    assert set(manifest.loc[manifest["path"].str.contains("p10000032"), "patient_id"]) == {
        pseudonymise("10000032", SALT)}
    assert set(manifest["cohort"]) == {"mimic"}
    assert not manifest.apply(lambda c: c.astype(str).str.fullmatch(r"1\d{7}")).any().any()  # no raw subject id
    jpg, _ = run_import(tables, extension=".jpg")
    assert jpg["path"].str.replace(".jpg", ".dcm").tolist() == manifest["path"].tolist()


def test_race_and_insurance_come_from_the_nearest_admission(tables):
    rows = by_study(run_import(tables)[0])
    # 53 min before the first stay; 1.5 h before the second (the first ended 50 days earlier); during the third;
    # a week after the third ended
    assert rows.loc[50414267, "insurance"].tolist() == ["Other", "Other"]
    assert rows.loc[53189527, ["race", "race_raw", "insurance"]].tolist() == ["Black", "BLACK/CAPE VERDEAN",
                                                                            "Medicaid"]
    for study in (53911762, 56699142):
        assert pd.isna(rows.loc[study, "race"]) and rows.loc[study, "race_raw"] == "UNKNOWN"
        assert rows.loc[study, "insurance"] == "Medicare"
    # inside a long stay that started before a short, nested one: the long stay is at distance 0
    assert rows.loc[57375967, ["race", "race_raw", "insurance"]].tolist() == ["Asian", "ASIAN - CHINESE",
                                                                            "Medicare"]
    assert pd.isna(rows.loc[51000001, "race"]) and pd.isna(rows.loc[51000001, "insurance"])  # no admission
    assert pd.isna(rows.loc[52000002, "race"]) and rows.loc[52000002, "race_raw"] == "PATIENT DECLINED TO ANSWER"
    assert rows.loc[53000003, "race"] == "Other"
    assert rows.loc[54000004, "race"] == "Hispanic/Latino" and pd.isna(rows.loc[54000004, "insurance"])


def test_race_groups():
    groups = {value: race_group(value) for value in (
        "WHITE", "WHITE - RUSSIAN", "PORTUGUESE", "BLACK/AFRICAN AMERICAN", "ASIAN - SOUTH EAST ASIAN",
        "HISPANIC/LATINO - DOMINICAN", "SOUTH AMERICAN", "MULTIPLE RACE/ETHNICITY", "OTHER", "UNKNOWN",
        "UNABLE TO OBTAIN", "PATIENT DECLINED TO ANSWER", " ")}
    assert groups == {"WHITE": "White", "WHITE - RUSSIAN": "White", "PORTUGUESE": "White",
                      "BLACK/AFRICAN AMERICAN": "Black", "ASIAN - SOUTH EAST ASIAN": "Asian",
                      "HISPANIC/LATINO - DOMINICAN": "Hispanic/Latino", "SOUTH AMERICAN": "Hispanic/Latino",
                      "MULTIPLE RACE/ETHNICITY": "Other", "OTHER": "Other", "UNKNOWN": None,
                      "UNABLE TO OBTAIN": None, "PATIENT DECLINED TO ANSWER": None, " ": None}


def test_one_year_mortality_window(tables):
    rows = by_study(run_import(tables)[0])
    # death 126 days after (A), none (B), day 365 (C), day 366 (D), 10 days before the study (E), the same day (F)
    assert rows.loc[[53189527, 57375967, 51000001, 52000002, 53000003, 54000004], "mortality_1y"].tolist() == [
        1, 0, 1, 0, 0, 1]


def test_chexpert_labels_joined_by_study(tables):
    rows = by_study(run_import(tables)[0])
    assert rows.loc[50414267, "atelectasis"].tolist() == [1.0, 1.0]
    assert rows.loc[50414267, "cardiomegaly"].tolist() == [-1.0, -1.0]
    assert rows.loc[50414267, "pleural_effusion"].tolist() == [0.0, 0.0]
    assert rows.loc[50414267, "edema"].isna().all()  # blank: not mentioned
    assert rows.loc[53189527, "no_finding"] == 1.0
    assert rows.loc[57375967, ["cardiomegaly", "edema", "support_devices"]].tolist() == [1.0, -1.0, 1.0]
    assert rows.loc[53911762, ["atelectasis", "no_finding"]].isna().all()  # a study without labels
    without, _ = import_mimic(tables["metadata"], patients_csv=tables["patients"],
                              admissions_csv=tables["admissions"], salt=SALT, images_root=None)
    assert "atelectasis" not in without


def test_rejects_name_the_reason_and_the_line(tables):
    manifest, rejects = run_import(tables, views=("PA", "AP"))
    assert len(manifest) == 9
    assert rejects[["reason", "row"]].values.tolist() == [["wrong view", 3], [NOT_IN_PATIENTS, 12]]
    assert rejects["path"].iloc[1].endswith("/s59999999/4c4eb1e1-b801903c-bcebe8a4-3da9cd3c-3b94a27c.dcm")


def test_cli_with_images_root_and_view_filter(tables, tmp_path):
    root = tmp_path / "mimic-cxr"
    taken = "files/p10/p10000032/s50414267/02aa804e-bde0afdd-112c0b34-7bc16630-4e384014.jpg"
    (root / taken).parent.mkdir(parents=True)
    (root / taken).write_bytes(b"\xff\xd8")
    out = tmp_path / "mimic.csv"
    args = [sys.executable, str(ROOT / "scripts" / "import_manifest.py"), "mimic", str(tables["metadata"]),
            "--patients", str(tables["patients"]), "--admissions", str(tables["admissions"]),
            "--chexpert", str(tables["chexpert"]), "--jpg", "--images-root", str(root), "--view", "PA",
            "--out", str(out)]
    done = subprocess.run(args, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    manifest = pd.read_csv(out)
    assert manifest["path"].tolist() == [taken] and manifest["cardiomegaly"].tolist() == [-1.0]
    reasons = pd.read_csv(tmp_path / "mimic.rejects.csv")["reason"].value_counts().to_dict()
    assert reasons == {"image file not found": 10}  # the file check comes first, as for every importer
    missing = subprocess.run(args[:4] + ["--out", str(out)], capture_output=True, text=True)
    assert missing.returncode == 2 and "mimic needs --patients and --admissions" in missing.stderr
    assert "Traceback" not in missing.stderr
    wrong = subprocess.run([*args[:2], "nih", *args[3:]], capture_output=True, text=True)
    assert wrong.returncode == 2 and "unrecognized arguments: --patients" in wrong.stderr  # nih takes no MIMIC-IV
    assert "Traceback" not in wrong.stderr


def test_wrong_layout_is_one_line(tables, tmp_path):
    bad = tmp_path / "patients.csv"
    bad.write_text("subject_id,sex,age\n1,F,50\n")
    from radscreen.errors import UserError

    with pytest.raises(UserError, match=r"MIMIC-IV patients CSV .* lacks column\(s\) gender, anchor_age"):
        import_mimic(tables["metadata"], patients_csv=bad, admissions_csv=tables["admissions"], salt=SALT,
                     images_root=None)
