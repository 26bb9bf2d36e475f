#!/usr/bin/env python
"""Manifest scan speed and memory against plain pydicom header reads.

    python benchmarks/bench_manifest_scan.py [--n 20000] [--size 128] [--workers 2] [--repeats 2] [--double]

Writes N DICOM files (copies of one radiograph with new UIDs and patient IDs), then times
(1) a bare single-process loop of pydicom.dcmread(stop_before_pixels=True) reading the manifest's fields,
(2) radscreen's build_manifest with 1 process and (3) with --workers processes, and reports files/s, the
ratio to the bare loop and peak resident memory of the scanning processes; with --double, again for 2N files
(flat memory means it does not grow with the folder). Each figure is the best of --repeats runs (the files
are in the page cache for all of them). Headers do not depend on the image size; --size only sets the disk used.
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


def best_of(repeats: int, run, *args) -> tuple[float, float]:
    """(fewest seconds, peak MiB) over `repeats` calls of run(*args) -> (seconds, MiB)."""
    results = [run(*args) for _ in range(repeats)]
    return min(r[0] for r in results), max(r[1] for r in results)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--n", type=int, default=20000)
    parser.add_argument("--size", type=int, default=128)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--double", action="store_true", help="also scan 2N files (memory check)")
    args = parser.parse_args()
    cores = len(os.sched_getaffinity(0))
    print(f"{cores} cores; files are {args.size}x{args.size} uint16 DICOMs; best of {args.repeats} runs")
    print(f"{'files':>7} {'pydicom loop':>13} {'radscreen 1 process':>20} {f'{args.workers} processes':>12} "
          f"{f'{args.workers} processes / loop':>20} {'peak RSS 1 / N':>15}")
    for n in (args.n, 2 * args.n) if args.double else (args.n,):
        with tempfile.TemporaryDirectory() as tmp:
            root = Path(tmp)
            make_folder(root, n, args.size)
            bare = min(pydicom_loop(root) for _ in range(args.repeats))
            one, rss_one = best_of(args.repeats, scan, root, 1)
            many, rss_many = best_of(args.repeats, scan, root, args.workers)
            print(f"{n:>7} {n / bare:>9.0f} f/s {n / one:>16.0f} f/s {n / many:>8.0f} f/s {bare / many:>19.2f}x "
                  f"{rss_one:>6.0f} / {rss_many:.0f} MiB")


if __name__ == "__main__":
    main()
