"""build_manifest.py, build_ct_manifest.py and split_manifest.py on wrong input: one line on stderr, exit code 2,
no manifest (nor half a file) left behind. Each script's main() runs in-process through run_command."""

from __future__ import annotations

import warnings
from datetime import date
from pathlib import Path

import numpy as np
import pandas as pd
import pydicom
import pytest

from radscreen.io.dicom_write import write_radiograph
from radscreen.io.volume_write import write_series
from radscreen.manifests import scan
from radscreen.manifests.pseudonym import pseudonymise

from conftest import SALT, gradient_image
from script_helpers import load_script, run_tool

ROOT = Path(__file__).resolve().parents[1]
CLINICAL = "patient_id,date,t_score_ls,t_score_fn,t_score_th\nP1,2020-01-10,-2.6,-1.0,-0.5\n"


def run(capsys, name: str, *argv: object) -> tuple[int, str]:
    """(exit code, stdout + stderr) of `scripts/<name>.py ARGV`, run in this process."""
    code, out, err = run_tool(name, list(argv), capsys)
    return code, out + err


def build(capsys, *argv: object) -> tuple[int, str]:
    return run(capsys, "build_manifest", *argv, "--quiet", "--workers", "1")


def one_error_line(output: str) -> str:
    """The output must be exactly one line `error: ...`; returns it."""
    lines = output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), output
    return lines[0]


def leftovers(folder: Path) -> list[str]:
    """Temporary or partial files and folders a failed command might have left in `folder`."""
    return sorted(p.name for p in folder.iterdir()
                  if p.name.startswith((".", "tmp")) or p.suffix == ".partial")


def radiograph(path: Path, patient: str = "P1", body_part: str | None = "CHEST", **header) -> Path:
    """A small chest film (PA, DX, birth 1960, study 2020); body_part None deletes BodyPartExamined."""
    path.parent.mkdir(parents=True, exist_ok=True)
    header = {"birth_date": date(1960, 1, 1), "study_date": date(2020, 1, 1), **header}
    write_radiograph(path, gradient_image(16, 16), patient_id=patient, **header)
    if body_part != "CHEST":  # write_radiograph always writes CHEST
        ds = pydicom.dcmread(path)
        if body_part is None:
            del ds.BodyPartExamined
        else:
            with warnings.catch_warnings():  # free text and lower case are invalid CS values, as real files have
                warnings.simplefilter("ignore", UserWarning)
                ds.BodyPartExamined = body_part
        ds.save_as(path)
    return path


@pytest.fixture
def films(tmp_path) -> Path:
    """Two chest films of two patients."""
    root = tmp_path / "films"
    radiograph(root / "a.dcm", "P1")
    radiograph(root / "b.dcm", "P2", sex="M")
    return root


# --- build_manifest.py: folders without usable DICOM ---------------------------------------------------------

def test_empty_folder_exits_2_with_the_counts_and_no_manifest(tmp_path, capsys):
    (tmp_path / "empty").mkdir()
    out = tmp_path / "m.csv"
    code, output = build(capsys, tmp_path / "empty", "--out", out)
    assert code == 2
    assert one_error_line(output) == f"error: no DICOM images taken from {tmp_path / 'empty'}: 0 files"
    assert not out.exists() and leftovers(tmp_path) == []
    assert pd.read_csv(tmp_path / "m.rejects.csv").empty  # the (empty) report is written


def test_folder_of_non_dicom_files_exits_2_and_keeps_the_rejects(tmp_path, capsys):
    root = tmp_path / "notes"
    root.mkdir()
    for i in range(3):
        (root / f"n{i}.txt").write_text("not a dicom")
    out = tmp_path / "m.csv"
    code, output = build(capsys, root, "--out", out)
    assert code == 2
    assert f"no DICOM images taken from {root}: 3 files, none DICOM; see {tmp_path / 'm.rejects.csv'}" in \
        one_error_line(output)
    assert not out.exists() and leftovers(tmp_path) == []
    assert pd.read_csv(tmp_path / "m.rejects.csv")["reason"].tolist() == ["not DICOM"] * 3


def test_dicoms_all_rejected_exit_2_with_the_reasons_counted(tmp_path, capsys):
    root = tmp_path / "lat"
    radiograph(root / "a.dcm", view="LL")
    radiograph(root / "b.dcm", view="LATERAL")
    (root / "c.txt").write_text("x")
    out = tmp_path / "m.csv"
    code, output = build(capsys, root, "--out", out)
    assert code == 2
    assert f"3 files, all rejected (2 wrong view (LAT), 1 not DICOM); see {tmp_path / 'm.rejects.csv'}" in \
        one_error_line(output)
    assert not out.exists()


def test_missing_folder_file_instead_of_folder_and_outputs_in_missing_folders(films, tmp_path, capsys):
    code, output = build(capsys, tmp_path / "nope", "--out", tmp_path / "m.csv")
    assert code == 2 and f"DICOM folder {tmp_path / 'nope'} does not exist" in one_error_line(output)
    code, output = build(capsys, films / "a.dcm", "--out", tmp_path / "m.csv")
    assert code == 2 and f"DICOM folder {films / 'a.dcm'} is a file, not a folder" in one_error_line(output)
    out = tmp_path / "missing" / "m.csv"
    code, output = build(capsys, films, "--out", out)
    assert code == 2 and f"the folder of manifest {out} does not exist" in one_error_line(output)
    code, output = build(capsys, films, "--out", tmp_path / "m.csv", "--rejects", out)
    assert code == 2 and f"the folder of rejects report {out} does not exist" in one_error_line(output)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["films"]


def test_a_crash_during_the_scan_leaves_no_manifest_no_rejects_and_no_partial_file(films, tmp_path, monkeypatch):
    real_scan_file = scan.scan_file
    calls = []

    def crash_on_second(path, options):
        calls.append(path)
        if len(calls) == 2:
            raise KeyboardInterrupt
        return real_scan_file(path, options)

    monkeypatch.setattr(scan, "scan_file", crash_on_second)
    out = tmp_path / "m.csv"
    with pytest.raises(KeyboardInterrupt):
        load_script("build_manifest").main([str(films), "--out", str(out), "--quiet", "--workers", "1"])
    assert sorted(p.name for p in tmp_path.iterdir()) == ["films"]


def test_an_earlier_config_without_the_body_part_keys_keeps_their_defaults(films, tmp_path, capsys):
    config = tmp_path / "old.yaml"
    config.write_text("salt_env: RADSCREEN_SALT\nmodalities: [DX]\nviews: [PA]\n")
    radiograph(films / "hand.dcm", "P3", body_part="HAND")
    code, output = build(capsys, films, "--out", tmp_path / "m.csv", "--config", config)
    assert code == 0, output
    reasons = pd.read_csv(tmp_path / "m.rejects.csv").set_index("path")["reason"]
    assert reasons.to_dict() == {"hand.dcm": "wrong body part (HAND)"}
    code, output = build(capsys, films, "--out", tmp_path / "m.csv", "--config", tmp_path / "nope.yaml")
    assert code == 2 and f"scan config {tmp_path / 'nope.yaml'} does not exist" in one_error_line(output)


# --- build_manifest.py --clinical ----------------------------------------------------------------------------

@pytest.mark.parametrize(("content", "expected"), [
    ("", "is empty; it needs a header row"),
    (CLINICAL.replace(",", ";"), "is separated by ';', not by commas"),
    (CLINICAL.replace(",", "\t"), "is separated by '\\t', not by commas"),
    (CLINICAL.splitlines()[0] + "\n", "has a header but no rows"),
    (b"\xff\xfe\x00binary", "is not a text CSV file"),
])
def test_unusable_clinical_table_is_one_line_before_the_scan(content, expected, films, tmp_path, capsys):
    clinical = tmp_path / "dxa.csv"
    clinical.write_bytes(content if isinstance(content, bytes) else content.encode())
    out = tmp_path / "m.csv"
    code, output = build(capsys, films, "--out", out, "--clinical", clinical)
    assert code == 2 and f"clinical table {clinical} {expected}" in one_error_line(output)
    assert not out.exists() and not (tmp_path / "m.rejects.csv").exists() and leftovers(tmp_path) == []


def test_clinical_folder_or_missing_file_is_one_line(films, tmp_path, capsys):
    code, output = build(capsys, films, "--out", tmp_path / "m.csv", "--clinical", tmp_path)
    assert code == 2 and f"clinical table {tmp_path} is a folder; give the path of a file" in one_error_line(output)
    code, output = build(capsys, films, "--out", tmp_path / "m.csv", "--clinical", tmp_path / "nope.csv")
    assert code == 2 and f"clinical table {tmp_path / 'nope.csv'} does not exist" in one_error_line(output)
    assert not (tmp_path / "m.csv").exists()


def test_clinical_patient_ids_keep_their_leading_zeros(tmp_path, capsys):
    root = tmp_path / "films"
    radiograph(root / "a.dcm", "000123")
    clinical = tmp_path / "dxa.csv"
    clinical.write_text(CLINICAL.replace("P1,", "000123,"))
    code, output = build(capsys, root, "--out", tmp_path / "m.csv", "--clinical", clinical)
    assert code == 0, output
    manifest = pd.read_csv(tmp_path / "m.csv")
    assert manifest["patient_id"].tolist() == [pseudonymise("000123", SALT)]
    assert manifest["bmd_class"].tolist() == ["osteoporosis"]


# --- build_manifest.py: body part ----------------------------------------------------------------------------

def test_a_film_of_another_body_part_is_rejected_with_the_reason(films, tmp_path, capsys):
    radiograph(films / "knee.dcm", "P3", body_part="EXTREMITY", view="AP")
    radiograph(films / "free_text.dcm", "P4", body_part="left hand, 2 views")
    radiograph(films / "unknown.dcm", "P5", body_part=None)
    code, output = build(capsys, films, "--out", tmp_path / "m.csv", "--view", "PA", "AP")
    assert code == 0, output
    reasons = pd.read_csv(tmp_path / "m.rejects.csv").set_index("path")["reason"].to_dict()
    assert reasons == {"knee.dcm": "wrong body part (EXTREMITY)", "free_text.dcm": "wrong body part (other)"}
    manifest = pd.read_csv(tmp_path / "m.csv", keep_default_na=False).set_index("path")
    assert manifest["body_part"].to_dict() == {"a.dcm": "CHEST", "b.dcm": "CHEST", "unknown.dcm": ""}
    assert "rejected: wrong body part (EXTREMITY)" in " ".join(output.split())


def test_body_part_options_override_the_config(films, tmp_path, capsys):
    radiograph(films / "knee.dcm", "P3", body_part="extremity")  # lower case is normalised
    radiograph(films / "unknown.dcm", "P5", body_part=None)
    code, output = build(capsys, films, "--out", tmp_path / "m.csv", "--body-part", "EXTREMITY",
                         "--require-body-part")
    assert code == 0, output
    reasons = pd.read_csv(tmp_path / "m.rejects.csv").set_index("path")["reason"].to_dict()
    assert reasons == {"a.dcm": "wrong body part (CHEST)", "b.dcm": "wrong body part (CHEST)",
                       "unknown.dcm": "missing body part"}
    assert pd.read_csv(tmp_path / "m.csv")["body_part"].tolist() == ["EXTREMITY"]
    code, output = build(capsys, films, "--out", tmp_path / "all.csv", "--body-part")  # none: any
    assert code == 0, output
    assert len(pd.read_csv(tmp_path / "all.csv")) == 4


def test_all_films_of_the_wrong_body_part_exit_2(tmp_path, capsys):
    root = tmp_path / "hands"
    radiograph(root / "h1.dcm", body_part="HAND")
    radiograph(root / "h2.dcm", "P2", body_part="HAND")
    code, output = build(capsys, root, "--out", tmp_path / "m.csv")
    assert code == 2 and "2 files, all rejected (2 wrong body part (HAND))" in one_error_line(output)
    assert not (tmp_path / "m.csv").exists()


# --- build_ct_manifest.py ------------------------------------------------------------------------------------

def ct_series(folder: Path, patient: str, body_part: str | None = None) -> Path:
    hu = np.full((4, 8, 8), -1000.0)
    write_series(folder, hu, (2.0, 1.0, 1.0), patient_id=patient, birth_date=date(1960, 1, 1),
                 study_date=date(2020, 1, 1), sex="F")
    if body_part is not None:
        for f in folder.iterdir():
            ds = pydicom.dcmread(f)
            ds.BodyPartExamined = body_part
            ds.save_as(f)
    return folder


def build_ct(capsys, *argv: object) -> tuple[int, str]:
    return run(capsys, "build_ct_manifest", *argv, "--quiet", "--workers", "1")


def test_ct_root_without_series_exits_2(tmp_path, capsys):
    (tmp_path / "ct").mkdir()
    out = tmp_path / "ct.csv"
    code, output = build_ct(capsys, tmp_path / "ct", "--out", out)
    assert code == 2 and one_error_line(output) == f"error: no CT series taken from {tmp_path / 'ct'}: 0 folders " \
                                                   "holding files"
    (tmp_path / "ct" / "notes.txt").write_text("x")
    code, output = build_ct(capsys, tmp_path / "ct", "--out", out)
    assert code == 2 and "1 folder holding files, all rejected (1 no DICOM series)" in one_error_line(output)
    assert not out.exists() and pd.read_csv(tmp_path / "ct.rejects.csv")["reason"].tolist() == ["no DICOM series"]


def test_ct_root_and_outputs_are_checked(tmp_path, capsys):
    code, output = build_ct(capsys, tmp_path / "nope", "--out", tmp_path / "ct.csv")
    assert code == 2 and f"CT root {tmp_path / 'nope'} does not exist" in one_error_line(output)
    out = tmp_path / "missing" / "ct.csv"
    code, output = build_ct(capsys, tmp_path, "--out", out)
    assert code == 2 and f"the folder of manifest {out} does not exist" in one_error_line(output)


def test_ct_body_part_is_kept_and_filters_only_when_asked(tmp_path, capsys):
    root = tmp_path / "ct"
    ct_series(root / "chest", "C1", "CHEST")
    ct_series(root / "abdomen", "C2", "ABDOMEN")
    ct_series(root / "copy_of_chest", "C1")
    for f in (root / "copy_of_chest").iterdir():  # the chest series again under another folder
        f.write_bytes((root / "chest" / f.name).read_bytes())
    code, output = build_ct(capsys, root, "--out", tmp_path / "all.csv")
    assert code == 0, output
    assert pd.read_csv(tmp_path / "all.csv").set_index("path")["body_part"].to_dict() == {"abdomen": "ABDOMEN",
                                                                                          "chest": "CHEST"}
    assert pd.read_csv(tmp_path / "all.rejects.csv").to_dict("records") == [
        {"path": "copy_of_chest", "reason": "duplicate series (same SeriesInstanceUID as another folder)"}]
    code, output = build_ct(capsys, root, "--out", tmp_path / "chest.csv", "--body-part", "CHEST")
    assert code == 0, output
    assert pd.read_csv(tmp_path / "chest.csv")["path"].tolist() == ["chest"]
    assert "wrong body part (ABDOMEN)" in pd.read_csv(tmp_path / "chest.rejects.csv")["reason"].tolist()


@pytest.mark.parametrize(("content", "expected"), [
    ("", "is empty"),
    ("path;patient_id;age_years;sex\na.nii.gz;P1;50;F\n", "is separated by ';'"),
    ("path,patient_id,age\na.nii.gz,P1,50\n", "lacks column(s) age_years, sex"),
    ("path,patient_id,age_years,sex\n", "has a header but no rows"),
])
def test_unusable_volumes_csv_is_one_line(content, expected, tmp_path, capsys):
    table = tmp_path / "volumes.csv"
    table.write_text(content)
    out = tmp_path / "ct.csv"
    code, output = build_ct(capsys, tmp_path, "--volumes-csv", table, "--out", out)
    assert code == 2 and f"volumes CSV {table} {expected}" in one_error_line(output)
    assert not out.exists() and not (tmp_path / "ct.rejects.csv").exists()


def test_volumes_none_found_exit_2_and_a_volume_listed_twice_is_taken_once(tmp_path, capsys, synthetic_ct_dir):
    table = tmp_path / "volumes.csv"
    table.write_text("path,patient_id,age_years,sex\n/elsewhere/a.nii.gz,P1,50,F\nb.nii.gz,P2,60,M\n")
    out = tmp_path / "ct.csv"
    code, output = build_ct(capsys, tmp_path, "--volumes-csv", table, "--out", out)
    assert code == 2
    assert f"no CT volumes taken from {table}: 2 rows, all rejected (2 volume file not found)" in \
        one_error_line(output)
    assert not out.exists()
    (tmp_path / "b.nii.gz").write_bytes((synthetic_ct_dir / "cxr.nii.gz").read_bytes())
    table.write_text("path,patient_id,age_years,sex\nb.nii.gz,P2,60,M\nb.nii.gz,P2,61,M\n")
    code, output = build_ct(capsys, tmp_path, "--volumes-csv", table, "--out", out)
    assert code == 0, output
    assert pd.read_csv(out)["age_years"].tolist() == [60.0]
    assert pd.read_csv(tmp_path / "ct.rejects.csv")["reason"].tolist() == ["duplicate volume (same file as an "
                                                                            "earlier row)"]


# --- split_manifest.py ---------------------------------------------------------------------------------------

def manifest_text(n: int = 20, root: str = "") -> str:
    rows = [f"i{k},p{k // 2},{root}img{k}.png,{'MF'[k % 2]}" for k in range(n)]
    return "image_id,patient_id,path,sex\n" + "\n".join(rows) + "\n"


@pytest.mark.parametrize(("content", "expected"), [
    ("", "is empty"),
    (manifest_text().replace(",", ";"), "is separated by ';'"),
    ("image_id,patient_id,path\n", "has a header but no rows"),
    (manifest_text() + "i3,p1,again.png,F\n", "lists 1 image_id(s) more than once (lines 22)"),
    ("image_id,path\ni1,a.png\n", "lacks column(s) patient_id"),
])
def test_unusable_manifest_to_split_is_one_line(content, expected, tmp_path, capsys):
    manifest = tmp_path / "m.csv"
    manifest.write_text(content)
    out = tmp_path / "split.csv"
    code, output = run(capsys, "split_manifest", manifest, "--out", out)
    assert code == 2 and f"manifest {manifest} {expected}" in one_error_line(output)
    assert not out.exists() and leftovers(tmp_path) == []


def test_split_input_folder_output_folder_and_settings_are_one_line(tmp_path, capsys):
    manifest = tmp_path / "m.csv"
    manifest.write_text(manifest_text())
    code, output = run(capsys, "split_manifest", tmp_path, "--out", tmp_path / "s.csv")
    assert code == 2 and f"manifest {tmp_path} is a folder" in one_error_line(output)
    out = tmp_path / "missing" / "s.csv"
    code, output = run(capsys, "split_manifest", manifest, "--out", out)
    assert code == 2 and f"the folder of output manifest {out} does not exist" in one_error_line(output)
    code, output = run(capsys, "split_manifest", manifest, "--out", tmp_path / "s.csv", "--fractions", "0.5", "0.5",
                       "0.5")
    assert code == 2 and "split fractions must be three non-negative numbers summing to 1" in one_error_line(output)
    code, output = run(capsys, "split_manifest", manifest, "--out", tmp_path / "s.csv", "--stratify", "sex", "site")
    assert code == 2 and f"--stratify names site, which manifest {manifest} lacks" in one_error_line(output)
    code, output = run(capsys, "split_manifest", manifest, "--out", tmp_path / "s.csv", "--balance", "bmd")
    assert code == 2 and f"--balance names bmd, which manifest {manifest} lacks" in one_error_line(output)
    assert not (tmp_path / "s.csv").exists()


def test_split_keeps_paths_that_are_absolute_on_another_machine(tmp_path, capsys):
    manifest = tmp_path / "m.csv"
    manifest.write_text(manifest_text(root="/mnt/other_machine/images/"))
    code, output = run(capsys, "split_manifest", manifest, "--out", manifest)  # in place, atomically
    assert code == 0, output
    split = pd.read_csv(manifest)
    assert split["path"].str.startswith("/mnt/other_machine/").all() and split["split"].notna().all()


def test_messages_count_in_the_singular_and_the_plural():
    from collections import Counter

    from radscreen.manifests.build import no_dicom_message

    assert no_dicom_message("D", 1, Counter({"not DICOM": 1}), "r.csv") == \
        "no DICOM images taken from D: 1 file, none DICOM; see r.csv"
    assert no_dicom_message("D", 12, Counter({"not DICOM": 12}), "r.csv") == \
        "no DICOM images taken from D: 12 files, none DICOM; see r.csv"
    assert no_dicom_message("D", 3, Counter({"wrong view (LAT)": 2, "no pixel data": 1}), "r.csv") == \
        "no DICOM images taken from D: 3 files, all rejected (2 wrong view (LAT), 1 no pixel data); see r.csv"
