"""DICOM folder → manifest + rejects, through the command-line script."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from radscreen.io.dicom import DicomReadError, read_header
from radscreen.manifests.pseudonym import pseudonymise

from conftest import EXPECTED_REJECTS, SALT

ROOT = Path(__file__).resolve().parents[1]


def run_build(*args: str, env_salt: bool = True) -> subprocess.CompletedProcess:
    cmd = [sys.executable, str(ROOT / "scripts" / "build_manifest.py"), *args, "--quiet"]
    return subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT)


@pytest.fixture
def built(dicom_folder, tmp_path):
    out = tmp_path / "site.csv"
    result = run_build(str(dicom_folder), "--out", str(out), "--workers", "2")
    assert result.returncode == 0, result.stderr
    return out, pd.read_csv(out), pd.read_csv(tmp_path / "site.rejects.csv"), result


def test_manifest_rows_have_the_known_labels(built):
    _, manifest, _, _ = built
    by_path = manifest.set_index("path")
    assert set(by_path.index) == {"site/a/p1_1.dcm", "site/a/p1_2.dcm", "site/p2.dcm", "site/p3.dcm",
                                  "site/p4.dcm", "site/p5_age_tag.dcm"}
    assert by_path.loc["site/a/p1_1.dcm", "age_years"] == pytest.approx(21914 / 365.2425, abs=1e-4)
    assert by_path.loc["site/p5_age_tag.dcm", "age_years"] == 58.0  # PatientAge fallback
    assert by_path.loc["site/a/p1_2.dcm", "view"] == "PA"  # POSTEROANTERIOR normalised
    assert by_path.loc["site/a/p1_2.dcm", "photometric"] == "MONOCHROME1"
    assert by_path.loc["site/p2.dcm", "modality"] == "CR"
    assert list(by_path["sex"]) == ["F", "F", "M", "M", "F", "M"]
    assert by_path.loc["site/p3.dcm", "transfer_syntax"] == "1.2.840.10008.1.2.4.90"
    assert by_path.loc["site/p2.dcm", "rows"] == 48 and by_path.loc["site/p2.dcm", "columns"] == 40
    assert set(by_path["body_part"]) == {"CHEST"}  # BodyPartExamined kept
    # both images of patient 1 share one pseudonym, equal to the salted hash
    assert by_path.loc["site/a/p1_1.dcm", "patient_id"] == pseudonymise("PAT001", SALT)
    assert by_path.loc["site/a/p1_2.dcm", "patient_id"] == pseudonymise("PAT001", SALT)
    assert manifest["image_id"].is_unique


def test_every_reject_has_its_reason(built):
    _, _, rejects, _ = built
    assert dict(zip(rejects["path"], rejects["reason"])) == EXPECTED_REJECTS


def test_no_identifier_reaches_any_output(built):
    out, _, _, result = built
    written = out.read_text() + out.with_name("site.rejects.csv").read_text() + result.stdout + result.stderr
    for secret in ["PAT00", "Doe", "Jane", "Roe", "Richard", "19600315"]:
        assert secret not in written


def test_filters_from_options(dicom_folder, tmp_path):
    out = tmp_path / "filtered.csv"
    result = run_build(str(dicom_folder), "--out", str(out), "--age-min", "50", "--age-max", "70",
                       "--modality", "DX", "--workers", "1")
    assert result.returncode == 0, result.stderr
    manifest = pd.read_csv(out)
    assert manifest["age_years"].between(50, 70).all()
    assert set(manifest["modality"]) == {"DX"}
    rejects = pd.read_csv(tmp_path / "filtered.rejects.csv").set_index("path")["reason"]
    assert rejects["site/p2.dcm"] == "wrong modality (CR)"
    assert rejects["site/p3.dcm"] == "age out of range"  # 40 y


def test_missing_salt_fails_with_one_line(dicom_folder, tmp_path, monkeypatch):
    monkeypatch.delenv("RADSCREEN_SALT")
    result = run_build(str(dicom_folder), "--out", str(tmp_path / "x.csv"))
    assert result.returncode == 2
    assert "RADSCREEN_SALT" in result.stderr and "Traceback" not in result.stderr


def test_clinical_join_nearest_within_window(dicom_folder, tmp_path):
    clinical = tmp_path / "dxa.csv"
    pd.DataFrame({
        "patient_id": ["PAT001", "PAT001", "PAT002", "PAT003", "PAT004"],
        "date": ["2020-02-01", "2021-05-20", "2019-12-01", "2018-01-01", "2020-03-10"],
        "t_score_ls": [-2.6, -1.5, -0.2, -3.0, None],
        "t_score_fn": [-1.0, -1.2, 0.1, -3.0, -1.8],
        "t_score_th": [-0.5, None, 0.0, -3.0, -2.0],
        "weight_kg": [60, 61, 80, 70, 55],
    }).to_csv(clinical, index=False)
    out = tmp_path / "joined.csv"
    result = run_build(str(dicom_folder), "--out", str(out), "--clinical", str(clinical))
    assert result.returncode == 0, result.stderr
    m = pd.read_csv(out).set_index("path")
    assert m.loc["site/a/p1_1.dcm", "t_score_min"] == -2.6
    assert m.loc["site/a/p1_1.dcm", "bmd_class"] == "osteoporosis"
    assert m.loc["site/a/p1_1.dcm", "dxa_days_from_study"] == -42
    assert m.loc["site/a/p1_2.dcm", "bmd_class"] == "osteopenia"  # the nearer 2021 DXA: min -1.5
    assert m.loc["site/p2.dcm", "bmd_class"] == "normal"
    assert m.loc["site/p2.dcm", "weight_kg"] == 80  # extra clinical columns kept
    assert pd.isna(m.loc["site/p3.dcm", "bmd_class"])  # DXA 2.5 years away: outside the window
    assert m.loc["site/p4.dcm", "t_score_min"] == -2.0 and m.loc["site/p4.dcm", "bmd_class"] == "osteopenia"
    required = run_build(str(dicom_folder), "--out", str(tmp_path / "req.csv"), "--clinical", str(clinical),
                         "--require-clinical")
    assert required.returncode == 0
    req = pd.read_csv(tmp_path / "req.csv")
    assert req["bmd_class"].notna().all() and len(req) == 4
    reasons = pd.read_csv(tmp_path / "req.rejects.csv").set_index("path")["reason"]
    assert reasons["site/p3.dcm"] == "no clinical record within the date window"


def test_misspelled_clinical_column_stops_before_the_scan_with_the_close_name(dicom_folder, tmp_path):
    clinical = tmp_path / "dxa.csv"
    pd.DataFrame({"patient_id": ["PAT001"], "date": ["2020-02-01"], "t_score_ls": [-2.6], "tscore_fn": [-1.0],
                  "t_score_th": [-0.5]}).to_csv(clinical, index=False)
    out = tmp_path / "m.csv"
    result = run_build(str(dicom_folder), "--out", str(out), "--clinical", str(clinical))
    assert result.returncode == 2
    message = (result.stdout + result.stderr).strip()
    assert len(message.splitlines()) == 1 and message.startswith("error: clinical table ")
    assert "lacks column(s) 't_score_fn' (did you mean 'tscore_fn'?)" in message
    assert not out.exists()


def test_unusable_clinical_rows_are_reported_and_classes_counted(dicom_folder, tmp_path):
    clinical = tmp_path / "dxa.csv"
    pd.DataFrame({
        "patient_id": ["PAT001", "PAT002", "PAT003", "PAT004", ""],
        "date": ["2020-02-01", "not a date", "2020-07-01", "2020-03-10", "2020-01-01"],
        "t_score_ls": [-2.6, -0.2, -25.0, -1.5, -1.0],  # -25: an entry error
        "t_score_fn": [-1.0, 0.1, -3.0, -1.8, -1.0],
        "t_score_th": [-0.5, 0.0, -3.0, -2.0, -1.0],
    }).to_csv(clinical, index=False)
    out = tmp_path / "m.csv"
    result = run_build(str(dicom_folder), "--out", str(out), "--clinical", str(clinical))
    assert result.returncode == 0, result.stderr
    rows = pd.read_csv(tmp_path / "m.clinical_rejects.csv")
    assert dict(zip(rows["row"], rows["reason"])) == {3: "date does not parse", 4: "t_score_ls outside -6…+6",
                                                      6: "missing patient id"}
    assert "PAT00" not in (tmp_path / "m.clinical_rejects.csv").read_text()
    manifest = pd.read_csv(out).set_index("path")
    assert pd.isna(manifest.loc["site/p2.dcm", "bmd_class"]) and pd.isna(manifest.loc["site/p3.dcm", "bmd_class"])
    text = " ".join(result.stderr.split())
    assert "WHO classes: 0 normal, 1 osteopenia, 1 osteoporosis, 4 without" in text
    assert "3 clinical row(s) not used" in text


def test_clinical_rows_are_counted_by_position_whatever_the_index():
    from radscreen.manifests.clinical import prepare_clinical

    table = pd.DataFrame({"patient_id": ["A", "B", "C"], "date": ["2020-01-01", "bad", "2020-02-02"],
                          "t_score_ls": [-1.0, -2.0, -30.0], "t_score_fn": [0.0, 0.0, 0.0],
                          "t_score_th": [0.0, 0.0, 0.0]}, index=[10, 10, 7])  # duplicated, unordered labels
    usable, rejects = prepare_clinical(table, "s")
    assert rejects.to_dict("records") == [{"row": 3, "reason": "date does not parse"},
                                          {"row": 4, "reason": "t_score_ls outside -6…+6"}]
    assert len(usable) == 1 and usable["t_score_ls"].tolist() == [-1.0]


def test_header_reading_does_not_decode_pixels(dicom_folder, monkeypatch):
    import pydicom.dataset

    def forbidden(*_args, **_kwargs):
        raise AssertionError("pixel data decoded")

    monkeypatch.setattr(pydicom.dataset.Dataset, "pixel_array", property(forbidden))
    header = read_header(dicom_folder / "site" / "p3.dcm")
    assert header.rows == 48 and header.transfer_syntax_name.startswith("JPEG 2000")
    with pytest.raises(DicomReadError, match="truncated"):
        read_header(dicom_folder / "trunc.dcm")
