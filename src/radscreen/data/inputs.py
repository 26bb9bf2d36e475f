"""Checks of a run's inputs before anything is cached or trained: each failure is one line naming the key."""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

import pandas as pd

from radscreen.errors import UserError
from radscreen.tasks import Task

# where each standard label comes from, for the message when a manifest lacks it
LABEL_SOURCES = {
    "age_years": "age comes from the DICOM headers (PatientBirthDate and StudyDate, else PatientAge): build the "
                 "manifest with scripts/build_manifest.py or fill the age_years column",
    "sex": "sex comes from PatientSex in the DICOM headers: build the manifest with scripts/build_manifest.py "
           "or fill the sex column (M / F)",
    "bmd_class": "osteoporosis labels come from the DXA table: build the manifest with "
                 "scripts/build_manifest.py --clinical DXA.csv",
}
for _column in ("t_score_ls", "t_score_fn", "t_score_th", "t_score_min"):
    LABEL_SOURCES[_column] = LABEL_SOURCES["bmd_class"]


def check_image_root(root: str | os.PathLike, origin: str) -> None:
    """The folder the manifest's relative paths start from must exist (`origin` says where it was set)."""
    if not Path(root).is_dir():
        key = "data.external_image_root" if "external" in origin else "data.image_root"
        shown = f"{origin}={root}" if origin.startswith("data.") else f"{root} ({origin})"
        raise UserError(f"{shown} is not a folder; set {key} to the folder the manifest's paths are relative to")


def check_task_columns(manifest: pd.DataFrame, tasks: Mapping[str, Task], manifest_path: str) -> None:
    """Every task's columns must exist in the manifest and hold at least one label."""
    for name, task in tasks.items():
        missing = [c for c in task.source_columns if c not in manifest.columns]
        if not missing and task.has_label(manifest).any():
            continue
        state = "lacks the column" if missing else "has no values in column"
        shown = ", ".join(missing or task.source_columns)
        source = LABEL_SOURCES.get(task.column, f"add the column to the manifest, or choose a task whose column "
                                                f"it has (conf/task/{name}.yaml names the column)")
        raise UserError(f"task {name} needs labels, but manifest {manifest_path} {state} {shown}; {source}")


def check_some_images_exist(rows: pd.DataFrame, root: str | os.PathLike, key: str) -> None:
    """At least one listed image file must exist (else every path is wrong: another machine, another root).

    Single missing files are not an error here: they are left out by the cache with reason 'image file not
    found' and counted in the run's selection.csv."""
    paths = rows["path"].astype(str)
    if any(os.path.exists(os.path.join(root, p)) for p in paths):  # a file or a CT series folder; stops at the first
        return
    absolute = paths.map(os.path.isabs)
    if absolute.all():
        hint = ("its paths are absolute, so it was written on another machine or for another mount: rebuild it "
                "here, or make its paths relative to the image folder and set the image root")
    else:
        hint = "set the image root to the folder the manifest's paths are relative to"
    raise UserError(f"none of the {len(rows)} image files listed in {key} exist (looked under {root}); {hint}")
