"""Folders of chest-radiograph DICOMs, their manifest and radscreen's own data module, for the benchmarks.

A folder holds N files made from a few distinct radiographs (benchmarks/radiographs.py, CR and DX in turn), each
copy with its own UIDs and patient ID (two images per patient), so the manifest builder keeps them all. Copies keep
the template's (possibly compressed) pixel data: writing N JPEG 2000 files costs a few encodes, not N.
"""

from __future__ import annotations

import os
import signal
import sys
from pathlib import Path

import pandas as pd
import pydicom
from hydra import compose, initialize_config_dir
from hydra.utils import instantiate
from pydicom.uid import ExplicitVRLittleEndian, generate_uid
from radiographs import KINDS, write_kind

from radscreen.data.datamodules import ImageDataModule
from radscreen.manifests.build import build_manifest
from radscreen.manifests.scan import ScanOptions

REPO = Path(__file__).resolve().parents[1]
CONF = REPO / "conf"
SALT = "bench-salt"
TEMPLATES = 8  # distinct radiographs per folder (CR and DX in turn)


def exit_on_sigterm() -> None:
    """SIGTERM (a timeout, kill) exits through Python, so temporary folders of many GB are removed."""
    signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(128 + signum))


def write_folder(root: Path, n: int, *, seed: int = 0, transfer_syntax: str = ExplicitVRLittleEndian,
                 size: tuple[int, int] | None = None) -> int:
    """Write n DICOMs under root (1,000 per subfolder); return their total size in bytes.

    `size` (rows, columns) overrides the kinds' real sizes; UIDs and patient IDs follow from (seed, index)."""
    root.mkdir(parents=True, exist_ok=True)
    templates = _templates(root, seed, transfer_syntax, size)
    total = 0
    for i in range(n):
        ds = templates[i % len(templates)]
        ds.PatientID = f"BENCH{seed:03d}{i // 2:06d}"
        ds.SOPInstanceUID = ds.file_meta.MediaStorageSOPInstanceUID = _uid(seed, i, "image")
        ds.StudyInstanceUID = _uid(seed, i, "study")
        ds.SeriesInstanceUID = _uid(seed, i, "series")
        folder = root / f"{i // 1000:03d}"
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / f"{i:06d}.dcm"
        ds.save_as(path, enforce_file_format=True)
        total += path.stat().st_size
    return total


def _templates(root: Path, seed: int, transfer_syntax: str, size: tuple[int, int] | None) -> list[pydicom.Dataset]:
    """TEMPLATES distinct radiographs (pixels seeded by seed + index), read back as datasets."""
    kinds = list(KINDS)
    datasets = []
    for t in range(TEMPLATES):
        path = write_kind(root / f"template{t}.dcm", kinds[t % len(kinds)], seed=seed + t,
                          transfer_syntax=transfer_syntax, size=size)
        datasets.append(pydicom.dcmread(path))
        path.unlink()
    return datasets


def _uid(seed: int, index: int, what: str) -> str:
    return generate_uid(entropy_srcs=[str(seed), str(index), what])


def read_all(root: Path) -> int:
    """Read every file once (into the page cache, where the timed runs read them); return the bytes read."""
    return sum(len(path.read_bytes()) for path in sorted(root.rglob("*.dcm")))


def available_memory() -> int:
    """MemAvailable in bytes (0 where /proc/meminfo is missing): what the page cache can hold at most."""
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0


def make_manifest(image_root: Path, out: Path) -> pd.DataFrame:
    """radscreen's manifest of the folder (build_manifest, as scripts/build_manifest.py writes it)."""
    frame, _ = build_manifest(ScanOptions(root=str(image_root), salt=SALT), out, workers=1, show_progress=False)
    return frame


def data_module(manifest: Path, image_root: Path, cache_root: Path, *overrides: str) -> ImageDataModule:
    """The data module train.py builds (conf/train.yaml composed: data=cxr, augment=thesis) for this manifest."""
    os.environ.setdefault("PROJECT_ROOT", str(REPO))
    with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
        cfg = compose(config_name="train", overrides=[
            f"data.manifest={manifest}", f"data.image_root={image_root}", f"paths.cache_dir={cache_root}",
            "data.show_progress=false", *overrides])
    return instantiate(cfg.data)
