"""Adapters from public CXR datasets' metadata CSVs to the manifest schema (vectorised, 200k rows in seconds).

Each adapter only renames and parses its dataset's columns into a canonical frame; `finish_import`
then resolves image files under the images root, validates age and sex (rejecting with reasons, never
keeping sentinel ages such as 0), normalises views, rejects a file listed twice and pseudonymises identifiers.
Rejects carry the metadata CSV's line (`row`; the header is line 1) beside the path and the reason.
"""

from __future__ import annotations

import os
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import pandas as pd

from radscreen.errors import UserError
from radscreen.manifests import labels
from radscreen.manifests.build import nothing_taken_message
from radscreen.manifests.pseudonym import pseudonymise
from radscreen.manifests.scan import iter_files
from radscreen.manifests.schema import conform
from radscreen.utils.tables import read_table

CANONICAL = ("raw_patient", "path", "age_years", "sex", "view", "study_date", "modality")
MISSING_PATH = "missing image path"
NOT_FOUND = "image file not found"
AMBIGUOUS = "ambiguous image path (several files match)"
DUPLICATE = "duplicate image (same file as an earlier row)"
ADAPTER_REASON = "reject_reason"  # optional canonical column: why the adapter already rejects a row (linked tables)
DATASET_NAMES = {"nih": "NIH ChestX-ray14", "chexpert": "CheXpert", "padchest": "PadChest"}


class MetadataError(UserError, ValueError):
    """A metadata CSV that is not in the dataset's layout: one line for the user."""


def _require(df: pd.DataFrame, columns: list[str], dataset: str) -> None:
    missing = [c for c in columns if c not in df.columns]
    if missing:
        raise MetadataError(f"not a {dataset} metadata CSV: missing column(s) {', '.join(missing)}; it has: "
                            f"{', '.join(map(str, df.columns[:8]))}")


def _age_column(values: pd.Series) -> pd.Series:
    """Ages given as numbers or DICOM age strings ('058Y') → float years (NaN when unreadable)."""
    numeric = pd.to_numeric(values, errors="coerce")
    text = values.astype("string")
    as_tag = text[numeric.isna() & text.notna()].map(labels.parse_dicom_age, na_action="ignore")
    return numeric.fillna(pd.to_numeric(as_tag, errors="coerce")).astype("float64")


def adapt_nih(raw: pd.DataFrame) -> pd.DataFrame:
    """NIH ChestX-ray14 Data_Entry_2017.csv: Image Index, Patient ID, Patient Age, Patient Gender, View Position."""
    _require(raw, ["Image Index", "Patient ID", "Patient Age", "Patient Gender", "View Position"], "NIH ChestX-ray14")
    out = pd.DataFrame({
        "raw_patient": raw["Patient ID"].astype("string"),
        "path": raw["Image Index"].astype("string"),
        "age_years": _age_column(raw["Patient Age"]),
        "sex": raw["Patient Gender"],
        "view": raw["View Position"],
        "study_date": pd.NA,
        "modality": pd.NA,
    })
    out["findings"] = raw["Finding Labels"] if "Finding Labels" in raw else pd.NA
    if "Follow-up #" in raw:
        out["follow_up"] = raw["Follow-up #"]
    return out


CHEXPERT_FINDINGS = (
    "No Finding", "Enlarged Cardiomediastinum", "Cardiomegaly", "Lung Opacity", "Lung Lesion", "Edema",
    "Consolidation", "Pneumonia", "Atelectasis", "Pneumothorax", "Pleural Effusion", "Pleural Other",
    "Fracture", "Support Devices",
)


def adapt_chexpert(raw: pd.DataFrame) -> pd.DataFrame:
    """CheXpert train.csv / valid.csv: Path, Sex, Age, Frontal/Lateral, AP/PA; patient from the path."""
    _require(raw, ["Path", "Sex", "Age", "Frontal/Lateral"], "CheXpert")
    paths = raw["Path"].astype("string")
    view = raw["AP/PA"] if "AP/PA" in raw else pd.Series(pd.NA, index=raw.index)
    view = view.where(raw["Frontal/Lateral"].eq("Frontal"), "LAT")
    out = pd.DataFrame({
        "raw_patient": paths.str.extract(r"(patient\d+)", expand=False),
        "path": paths,
        "age_years": _age_column(raw["Age"]),
        "sex": raw["Sex"],
        "view": view,
        "study_date": pd.NA,
        "modality": pd.NA,
    })
    for finding in CHEXPERT_FINDINGS:
        if finding in raw:
            out[finding.lower().replace(" ", "_")] = raw[finding]
    return out


def adapt_padchest(raw: pd.DataFrame) -> pd.DataFrame:
    """PadChest CSV: ImageID, ImageDir, PatientID, PatientBirth (year), StudyDate_DICOM, sex and view tags.

    PadChest gives the year of birth only: age is taken from 1 July of that year (error within ±0.5 y).
    """
    _require(raw, ["ImageID", "PatientID", "PatientBirth", "StudyDate_DICOM", "PatientSex_DICOM",
                   "ViewPosition_DICOM"], "PadChest")
    study = pd.to_datetime(raw["StudyDate_DICOM"].astype("string").str[:8], format="%Y%m%d", errors="coerce")
    birth_year = pd.to_numeric(raw["PatientBirth"], errors="coerce")
    birth = pd.to_datetime(birth_year.astype("Int64").astype("string") + "-07-01", errors="coerce")
    age = (study - birth).dt.days / labels.DAYS_PER_YEAR
    folder = (pd.to_numeric(raw["ImageDir"], errors="coerce").astype("Int64").astype("string") + "/"
              if "ImageDir" in raw else "")
    out = pd.DataFrame({
        "raw_patient": raw["PatientID"].astype("string"),
        "path": folder + raw["ImageID"].astype("string"),
        "age_years": age.astype("float64"),
        "sex": raw["PatientSex_DICOM"],
        "view": raw["ViewPosition_DICOM"],
        "study_date": study.dt.strftime("%Y-%m-%d"),
        "modality": raw["Modality_DICOM"] if "Modality_DICOM" in raw else pd.NA,
    })
    if "Labels" in raw:
        out["findings"] = raw["Labels"]
    return out


ADAPTERS: dict[str, Callable[[pd.DataFrame], pd.DataFrame]] = {
    "nih": adapt_nih,
    "chexpert": adapt_chexpert,
    "padchest": adapt_padchest,
}


_SEVERAL = "\x00several"  # in the tails index: more than one file ends with this tail


def _index_images(images_root: Path, depth: int) -> tuple[set[str], dict[str, str]]:
    """One walk of images_root: (every file's relative path, each path's trailing 1..depth components → that
    relative path, or _SEVERAL when several files end with it)."""
    files: set[str] = set()
    tails: dict[str, str] = {}
    for full in iter_files(images_root):
        relative = Path(os.path.relpath(full, images_root)).as_posix()
        files.add(relative)
        parts = relative.split("/")
        for start in range(max(0, len(parts) - depth), len(parts)):
            tail = "/".join(parts[start:])
            tails[tail] = relative if tails.get(tail, relative) == relative else _SEVERAL
    return files, tails


def _clean_paths(paths: pd.Series) -> pd.Series:
    """Listed paths in POSIX form without a leading './' or '/' (Windows separators too); NA stays NA."""
    text = paths.astype("string").str.strip().str.replace("\\", "/", regex=False)
    return text.str.replace(r"^(\./|/)+", "", regex=True).replace("", pd.NA)


def _under_root(listed: str, files: set[str]) -> str | None:
    """The file whose whole relative path ends `listed` (longest first): the images root lies inside the dataset's
    folder, or the path is absolute on another machine ('/mnt/x/nih/images_001/a.png' → 'images_001/a.png')."""
    parts = listed.split("/")
    tails = ("/".join(parts[i:]) for i in range(1, len(parts)))
    return next((tail for tail in tails if tail in files), None)


def resolve_images(paths: pd.Series, images_root: str | os.PathLike) -> tuple[pd.Series, pd.Series]:
    """Each listed path → (the relative path of its file under images_root, or NA; the reason when NA).

    A listed path matches a file whose relative path ends with it ('00000001_000.png' →
    'images_001/images/00000001_000.png'); one that several files end with is ambiguous, never guessed. A path
    with no such file matches the file whose relative path ends the listed one (see _under_root)."""
    listed = _clean_paths(paths)
    depth = int(listed.str.count("/").max()) + 1 if listed.notna().any() else 1
    files, tails = _index_images(Path(images_root), depth)
    resolved = listed.map(tails).astype("string")
    ambiguous = resolved.eq(_SEVERAL).fillna(False)
    resolved = resolved.mask(ambiguous)
    unmatched = listed.notna() & resolved.isna() & ~ambiguous
    resolved[unmatched] = listed[unmatched].map(lambda p: _under_root(p, files)).astype("string")
    reason = pd.Series(pd.NA, index=paths.index, dtype="string")
    reason[resolved.isna()] = NOT_FOUND
    reason[ambiguous] = AMBIGUOUS
    return resolved, reason


def _map_unique(values: pd.Series, fn: Callable[[object], object]) -> pd.Series:
    """Apply a scalar function once per distinct value (fast on 200k rows with few distinct values)."""
    uniques = values.dropna().unique()
    return values.map(dict(zip(uniques, (fn(v) for v in uniques))), na_action="ignore")


def finish_import(
    canonical: pd.DataFrame,
    *,
    salt: str,
    images_root: str | os.PathLike | None,
    cohort: str,
    views: tuple[str, ...] = (),
    age_min: float | None = None,
    age_max: float | None = None,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Validate and pseudonymise a canonical frame (rows in CSV order); return (manifest, rejects with path, reason
    and the CSV line). The first reason that applies wins, the file check first; of rows that pass every check
    and name the same file, the first is kept and the others are rejected as duplicates. An adapter's own reasons
    (column ADAPTER_REASON, e.g. a subject missing from a linked table) come right after the file check."""
    df = canonical.reset_index(drop=True)
    df["path"] = df["path"].astype("string").str.strip().replace("", pd.NA)
    df["sex"] = _map_unique(df["sex"].astype("string"), labels.normalise_sex)
    df["view"] = _map_unique(df["view"].astype("string"), labels.normalise_view)
    age = df["age_years"]
    reason = pd.Series(pd.NA, index=df.index, dtype="string")

    def reject(mask: pd.Series, text: str) -> None:
        reason[mask.fillna(False) & reason.isna()] = text

    reject(df["path"].isna(), MISSING_PATH)
    if images_root is not None:
        resolved, not_found = resolve_images(df["path"], images_root)
        for text in (AMBIGUOUS, NOT_FOUND):
            reject(not_found.eq(text), text)
        df["path"] = resolved.fillna(df["path"])
    if ADAPTER_REASON in df:
        found = df.pop(ADAPTER_REASON).astype("string")
        first = found.notna() & reason.isna()
        reason[first] = found[first]
    reject(df["raw_patient"].isna() | df["raw_patient"].str.strip().eq(""), "missing patient id")
    age_sex = labels.age_sex_rejects(age, df["sex"], age_min, age_max)
    out_of_range = age_sex.pop(labels.AGE_OUT_OF_RANGE)
    for text, where in age_sex.items():
        reject(where, text)
    if views:
        reject(~df["view"].isin(views), "wrong view")
    reject(out_of_range, labels.AGE_OUT_OF_RANGE)
    kept_paths = df["path"].where(reason.isna())
    reject(kept_paths.notna() & kept_paths.duplicated(), DUPLICATE)
    rejected = reason.notna()
    rejects = pd.DataFrame({"path": df.loc[rejected, "path"], "reason": reason[rejected],
                            "row": df.index[rejected] + 2})  # +2: the header is line 1
    kept = df.loc[~rejected].copy()
    kept["patient_id"] = _map_unique(kept.pop("raw_patient"), lambda v: pseudonymise(v, salt))
    kept["image_id"] = [pseudonymise(p, salt, prefix="i") for p in kept["path"]]
    kept["cohort"] = cohort
    return conform(kept.reset_index(drop=True)), rejects.reset_index(drop=True)


def import_metadata(
    dataset: str, metadata_csv: str | os.PathLike, **options
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Read a public dataset's metadata CSV and convert it: (manifest, rejects).

    UserError (one line) for an unknown dataset and for a CSV that is missing, a folder, empty, not comma-separated,
    not text, without rows or not in the dataset's layout."""
    if dataset not in ADAPTERS:
        raise UserError(f"unknown dataset '{dataset}': choose one of {', '.join(ADAPTERS)}")
    what = f"{DATASET_NAMES.get(dataset, dataset)} metadata CSV"
    raw = read_table(metadata_csv, what, low_memory=False)
    if raw.empty:
        raise MetadataError(f"{what} {metadata_csv} has a header but no rows")
    try:
        canonical = ADAPTERS[dataset](raw)
    except MetadataError as exc:
        raise MetadataError(f"{metadata_csv} is {exc}") from None
    options.setdefault("cohort", dataset)
    return finish_import(canonical, **options)


def nothing_imported_message(source: str | os.PathLike, images_root: str | os.PathLike | None,
                             rejects: pd.DataFrame, rejects_path: str | os.PathLike) -> str:
    """Why an import took no image, with the counts (the rejects report names every row)."""
    counts = Counter(rejects["reason"].tolist())
    if images_root is not None and NOT_FOUND in counts and set(counts) <= {NOT_FOUND, MISSING_PATH}:
        listed = "the image" if counts[NOT_FOUND] == 1 else f"none of the {counts[NOT_FOUND]} images"
        return (f"{listed} listed in {source} was{' not' * (counts[NOT_FOUND] == 1)} found under {images_root} "
                f"({NOT_FOUND}); check --images-root; see {rejects_path}")
    return nothing_taken_message("images", source, len(rejects), ("row", "rows"), counts, rejects_path)
