"""import_manifest.py on wrong input: one line on stderr, exit code 2, no manifest (nor half a file) left behind.

The script's main() runs in-process through run_command (what `python scripts/import_manifest.py` does)."""

from __future__ import annotations

import os
from pathlib import Path

import pandas as pd
import pytest

from radscreen.manifests.importers import AMBIGUOUS, DUPLICATE, NOT_FOUND, resolve_images

from script_helpers import load_script, run_tool

ROOT = Path(__file__).resolve().parents[1]

NIH = ("Image Index,Finding Labels,Follow-up #,Patient ID,Patient Age,Patient Gender,View Position\n"
       "00000068_000.png,No Finding,0,68,50,M,PA\n"
       "00000069_000.png,Mass,0,69,61,F,AP\n"
       "00000070_000.png,No Finding,0,70,44,F,PA\n")
CHEXPERT = ("Path,Sex,Age,Frontal/Lateral,AP/PA\n"
            "CheXpert-v1.0-small/train/patient00001/study1/view1_frontal.jpg,Female,68,Frontal,AP\n"
            "CheXpert-v1.0-small/train/patient00002/study1/view1_frontal.jpg,Male,40,Frontal,PA\n")
PADCHEST = ("ImageID,ImageDir,StudyDate_DICOM,PatientID,PatientBirth,PatientSex_DICOM,ViewPosition_DICOM\n"
            "a_pa.png,0,20150101,pidA,1950.0,M,PA\n"
            "b_pa.png,1,20120630,pidB,1930.0,F,PA\n")
CSVS = {"nih": NIH, "chexpert": CHEXPERT, "padchest": PADCHEST}


def run_import(capsys, *argv: str) -> tuple[int, str]:
    """(exit code, stdout + stderr) of `import_manifest.py ARGV`, run in this process."""
    code, out, err = run_tool("import_manifest", list(argv), capsys)
    return code, out + err


def one_error_line(output: str) -> str:
    """The output must be exactly one line `error: ...`; returns it."""
    lines = output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), output
    return lines[0]


def leftovers(folder: Path) -> list[str]:
    """Temporary or partial files a failed command might have left in `folder`."""
    return sorted(p.name for p in folder.iterdir() if p.name.startswith(".") or p.suffix == ".partial")


@pytest.fixture
def nih_csv(tmp_path) -> Path:
    path = tmp_path / "Data_Entry_2017.csv"
    path.write_text(NIH)
    return path


def touch(root: Path, *relatives: str) -> None:
    for relative in relatives:
        (root / relative).parent.mkdir(parents=True, exist_ok=True)
        (root / relative).write_bytes(b"\x89PNG")


@pytest.mark.parametrize("dataset", sorted(CSVS))
def test_no_listed_image_under_the_root_exits_2_saying_so(dataset, tmp_path, capsys):
    meta = tmp_path / "meta.csv"
    meta.write_text(CSVS[dataset])
    images = tmp_path / "images"
    touch(images, "unrelated/other.png")
    out = tmp_path / "m.csv"
    code, output = run_import(capsys, dataset, meta, "--images-root", images, "--out", out)
    n = len(CSVS[dataset].splitlines()) - 1
    assert code == 2
    assert f"none of the {n} images listed in {meta} was found under {images} (image file not found)" in \
        one_error_line(output)
    assert not out.exists() and leftovers(tmp_path) == []
    rejects = pd.read_csv(tmp_path / "m.rejects.csv")  # the report is written: nothing checked is lost
    assert rejects["reason"].tolist() == [NOT_FOUND] * n and rejects["row"].tolist() == list(range(2, n + 2))


def test_found_images_are_taken_missing_ones_rejected_and_counted(nih_csv, tmp_path, capsys):
    images = tmp_path / "nih"
    touch(images, "images_001/images/00000068_000.png", "images_002/images/00000070_000.png")
    out = tmp_path / "nih.csv"
    code, output = run_import(capsys, "nih", nih_csv, "--images-root", images, "--out", out)
    assert code == 0, output
    manifest = pd.read_csv(out)
    assert manifest["path"].tolist() == ["images_001/images/00000068_000.png", "images_002/images/00000070_000.png"]
    rejects = pd.read_csv(tmp_path / "nih.rejects.csv")
    assert rejects.to_dict("records") == [{"path": "00000069_000.png", "reason": NOT_FOUND, "row": 3}]
    text = " ".join(output.split())
    assert "taken │ 2" in text and f"rejected: {NOT_FOUND} │ 1" in text


@pytest.mark.parametrize(("content", "expected"), [
    ("", "is empty; it needs a header row"),
    (NIH.replace(",", ";"), "is separated by ';', not by commas"),
    (NIH.splitlines()[0] + "\n", "has a header but no rows"),
    (CHEXPERT, "is not a NIH ChestX-ray14 metadata CSV: missing column(s) Image Index, Patient ID"),
])
def test_unusable_metadata_csv_is_one_line(content, expected, tmp_path, capsys):
    meta = tmp_path / "meta.csv"
    meta.write_text(content)
    out = tmp_path / "m.csv"
    code, output = run_import(capsys, "nih", meta, "--out", out)
    assert code == 2 and expected in one_error_line(output)
    assert not out.exists() and not (tmp_path / "m.rejects.csv").exists() and leftovers(tmp_path) == []


def test_metadata_that_is_not_text_is_one_line(tmp_path, capsys):
    meta = tmp_path / "meta.csv"
    meta.write_bytes(b"\x89PNG\r\n\x1a\n\xff\xfe\x00\x00binary")
    code, output = run_import(capsys, "nih", meta, "--out", tmp_path / "m.csv")
    assert code == 2 and "is not a text CSV file" in one_error_line(output)
    assert not (tmp_path / "m.csv").exists()


def test_unreadable_metadata_is_one_line(nih_csv, tmp_path, capsys, monkeypatch):
    real_access = os.access
    monkeypatch.setattr(os, "access", lambda path, mode: Path(path) != nih_csv and real_access(path, mode))
    code, output = run_import(capsys, "nih", nih_csv, "--out", tmp_path / "m.csv")  # (chmod 0 does not stop root)
    assert code == 2 and "cannot be read (permission denied)" in one_error_line(output)
    assert not (tmp_path / "m.csv").exists()


def test_folders_where_files_are_expected_and_the_reverse(nih_csv, tmp_path, capsys):
    code, output = run_import(capsys, "nih", tmp_path, "--out", tmp_path / "m.csv")
    assert code == 2 and f"NIH ChestX-ray14 metadata CSV {tmp_path} is a folder" in one_error_line(output)
    code, output = run_import(capsys, "nih", nih_csv, "--images-root", nih_csv, "--out", tmp_path / "m.csv")
    assert code == 2 and f"images root {nih_csv} is a file, not a folder" in one_error_line(output)
    code, output = run_import(capsys, "nih", nih_csv, "--images-root", tmp_path / "nope", "--out", tmp_path / "m.csv")
    assert code == 2 and f"images root {tmp_path / 'nope'} does not exist" in one_error_line(output)
    code, output = run_import(capsys, "nih", nih_csv, "--out", tmp_path)
    assert code == 2 and f"manifest {tmp_path} is a folder; give a file name" in one_error_line(output)
    assert not (tmp_path / "m.csv").exists()


def test_missing_metadata_is_one_line(tmp_path, capsys):
    code, output = run_import(capsys, "padchest", tmp_path / "nope.csv", "--out", tmp_path / "m.csv")
    assert code == 2 and f"PadChest metadata CSV {tmp_path / 'nope.csv'} does not exist" in one_error_line(output)


def test_outputs_in_a_missing_folder_are_refused_before_reading(nih_csv, tmp_path, capsys):
    out = tmp_path / "missing" / "m.csv"
    code, output = run_import(capsys, "nih", nih_csv, "--out", out)
    assert code == 2
    assert f"the folder of manifest {out} does not exist; create {out.parent} first" in one_error_line(output)
    code, output = run_import(capsys, "nih", nih_csv, "--out", tmp_path / "m.csv", "--rejects", out)
    assert code == 2 and f"the folder of rejects report {out} does not exist" in one_error_line(output)
    assert not (tmp_path / "missing").exists() and not (tmp_path / "m.csv").exists()


def test_an_output_that_would_overwrite_the_metadata_is_refused(nih_csv, tmp_path, capsys):
    code, output = run_import(capsys, "nih", nih_csv, "--out", nih_csv)
    assert code == 2 and "would overwrite the metadata CSV" in one_error_line(output)
    assert nih_csv.read_text() == NIH


def test_missing_salt_is_one_line(nih_csv, tmp_path, capsys, monkeypatch):
    monkeypatch.delenv("RADSCREEN_SALT")
    code, output = run_import(capsys, "nih", nih_csv, "--out", tmp_path / "m.csv")
    assert code == 2 and "RADSCREEN_SALT" in one_error_line(output)


def test_an_image_listed_twice_is_taken_once_and_the_repeat_rejected(tmp_path, capsys):
    meta = tmp_path / "meta.csv"
    lines = NIH.splitlines()
    meta.write_text("\n".join([*lines, lines[1].replace(",50,", ",51,")]) + "\n")  # row 5 repeats row 2's image
    out = tmp_path / "m.csv"
    code, output = run_import(capsys, "nih", meta, "--out", out)
    assert code == 0, output
    manifest = pd.read_csv(out)
    assert manifest["image_id"].is_unique and len(manifest) == 3
    assert manifest.set_index("path").loc["00000068_000.png", "age_years"] == 50  # the first row wins
    rejects = pd.read_csv(tmp_path / "m.rejects.csv")
    assert rejects.to_dict("records") == [{"path": "00000068_000.png", "reason": DUPLICATE, "row": 5}]


def test_absolute_paths_of_another_machine_resolve_under_the_images_root(tmp_path, capsys):
    meta = tmp_path / "train.csv"
    meta.write_text(CHEXPERT.replace("CheXpert-v1.0-small/", "/mnt/elsewhere/CheXpert-v1.0-small/"))
    root = tmp_path / "CheXpert-v1.0-small"  # the root is the dataset's own folder, not its parent
    touch(root, "train/patient00001/study1/view1_frontal.jpg", "train/patient00002/study1/view1_frontal.jpg")
    out = tmp_path / "m.csv"
    code, output = run_import(capsys, "chexpert", meta, "--images-root", root, "--out", out)
    assert code == 0, output
    assert pd.read_csv(out)["path"].tolist() == ["train/patient00001/study1/view1_frontal.jpg",
                                                 "train/patient00002/study1/view1_frontal.jpg"]


def test_a_file_name_several_files_end_with_is_never_guessed(tmp_path):
    root = tmp_path / "images"
    touch(root, "a/x.png", "b/x.png", "b/y.png", "c/d/z.png")
    listed = pd.Series(["x.png", "b/x.png", "y.png", "/other/c/d/z.png", "q.png", None])
    resolved, reason = resolve_images(listed, root)
    assert resolved.tolist() == [pd.NA, "b/x.png", "b/y.png", "c/d/z.png", pd.NA, pd.NA]
    assert reason.tolist() == [AMBIGUOUS, pd.NA, pd.NA, pd.NA, NOT_FOUND, NOT_FOUND]


def test_a_failed_write_leaves_no_manifest_and_no_partial_file(nih_csv, tmp_path, capsys, monkeypatch):
    out = tmp_path / "m.csv"
    real_to_csv = pd.DataFrame.to_csv

    def half_then_fail(frame, path, *args, **kwargs):
        if "image_id" in frame.columns:  # the manifest, not the rejects report
            Path(path).write_text("image_id,patient_id\ni1,")
            raise OSError("No space left on device")
        return real_to_csv(frame, path, *args, **kwargs)

    monkeypatch.setattr(pd.DataFrame, "to_csv", half_then_fail)
    with pytest.raises(OSError, match="No space left"):
        load_script("import_manifest").main(["nih", str(nih_csv), "--out", str(out)])
    assert not out.exists() and leftovers(tmp_path) == []


def test_one_listed_image_not_found_is_said_in_the_singular(tmp_path, capsys):
    meta = tmp_path / "meta.csv"
    meta.write_text("\n".join(NIH.splitlines()[:2]) + "\n")
    (tmp_path / "images").mkdir()
    code, output = run_import(capsys, "nih", meta, "--images-root", tmp_path / "images", "--out", tmp_path / "m.csv")
    assert code == 2
    assert f"the image listed in {meta} was not found under {tmp_path / 'images'} (image file not found)" in \
        one_error_line(output)


def test_rows_all_rejected_for_other_reasons_exit_2_with_the_counts(tmp_path, capsys):
    meta = tmp_path / "meta.csv"
    meta.write_text(NIH.replace(",50,", ",0,").replace(",61,", ",0,").replace(",44,", ",200,"))
    code, output = run_import(capsys, "nih", meta, "--out", tmp_path / "m.csv")
    assert code == 2
    assert f"no images taken from {meta}: 3 rows, all rejected (3 impossible age); see {tmp_path / 'm.rejects.csv'}" \
        in one_error_line(output)
    assert not (tmp_path / "m.csv").exists()
