#!/usr/bin/env python
"""Manifest scan speed and memory against plain pydicom header reads.

    python benchmarks/bench_manifest_scan.py [--n 4000] [--size 512]

Writes N DICOM files (copies of one radiograph with new UIDs and patient IDs), then times
(1) a bare loop of pydicom.dcmread(stop_before_pixels=True), (2) radscreen's scan with 1 process and
(3) with every core, and reports files/s and peak resident memory of the scanning processes for N and 2N
files (flat memory means it does not grow with the folder).
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from datetime import date
from pathlib import Path

import numpy as np
import pydicom

from radscreen.io.dicom import HEADER_KEYWORDS
from radscreen.io.dicom_write import write_radiograph
from radscreen.manifests.scan import iter_files


def make_folder(root: Path, n: int, size: int) -> None:
    template = root / "template.dcm"
    pixels = (np.random.default_rng(0).uniform(0, 4095, size=(size, size))).astype(np.uint16)
    write_radiograph(template, pixels, patient_id="T", birth_date=date(1960, 1, 1), study_date=date(2020, 1, 1),
                     bits_stored=12)
    ds = pydicom.dcmread(template)
    for i in range(n):
        ds.PatientID = f"BENCH{i // 2:06d}"
        ds.SOPInstanceUID = ds.file_meta.MediaStorageSOPInstanceUID = pydicom.uid.generate_uid()
        folder = root / f"{i // 1000:03d}"
        folder.mkdir(exist_ok=True)
        ds.save_as(folder / f"{i:06d}.dcm")
    template.unlink()


def pydicom_loop(root: Path) -> float:
    """A bare single-process loop reading each header (stop_before_pixels) and the fields a manifest needs."""
    start = time.perf_counter()
    for path in iter_files(root):
        ds = pydicom.dcmread(path, stop_before_pixels=True)
        [ds.get(keyword) for keyword in HEADER_KEYWORDS if keyword != "PixelData"]
    return time.perf_counter() - start


def scan(root: Path, workers: int) -> tuple[float, float]:
    """Seconds and peak RSS (MiB, max over the scanning processes) of build_manifest.py in a subprocess."""
    out = Path(tempfile.mkdtemp()) / "m.csv"
    code = (
        "import resource, sys, time\n"
        "from radscreen.manifests.build import build_manifest\n"
        "from radscreen.manifests.scan import ScanOptions\n"
        "t = time.perf_counter()\n"
        f"build_manifest(ScanOptions(root={str(root)!r}, salt='bench'), {str(out)!r}, workers={workers}, "
        "show_progress=False)\n"
        "print(time.perf_counter() - t)\n"
        "print(max(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss, "
        "resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss) / 1024)\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    seconds, rss = result.stdout.split()
    return float(seconds), float(rss)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--n", type=int, default=4000)
    parser.add_argument("--size", type=int, default=512)
    args = parser.parse_args()
    cores = len(os.sched_getaffinity(0))
    print(f"{cores} cores; files are {args.size}x{args.size} uint16 DICOMs")
    for n in (args.n, 2 * args.n):
        with tempfile.TemporaryDirectory() as tmp:
            root = Path(tmp)
            make_folder(root, n, args.size)
            bare = pydicom_loop(root)
            one, rss_one = scan(root, 1)
            many, rss_many = scan(root, cores)
            print(f"N={n}: pydicom stop_before_pixels loop {n / bare:7.0f} files/s | radscreen scan 1 process "
                  f"{n / one:7.0f} files/s (peak {rss_one:.0f} MiB) | {cores} processes {n / many:7.0f} files/s "
                  f"(peak {rss_many:.0f} MiB)")


if __name__ == "__main__":
    main()
