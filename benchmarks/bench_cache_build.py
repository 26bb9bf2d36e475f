#!/usr/bin/env python
"""Cache build speed: images/s with 1 process against N, on uncompressed and JPEG 2000 radiographs.

    python benchmarks/bench_cache_build.py [--n 2000] [--j2k-n 100] [--size 512] [--workers 2] [--repeats 2]

Writes --n uncompressed DICOMs (a MONOCHROME1 CR of 1955x1841 and a 12-bit DX of 2048x2048 in turn,
benchmarks/radiographs.py; --source-px S makes them SxS), builds their manifest with build_manifest and times the
data module's prepare_data (the cache build train.py runs: conf/data/cxr.yaml, data.image_size=--size) with
data.cache_workers=1 and =--workers into an empty cache, then the same for --j2k-n JPEG 2000 lossless files.
Printed per set: images/s, the speed-up, CPU ms per image (1 process; N processes: the parent and its workers),
the decoder's share (CPU time of a single-process loop of pydicom.dcmread + pixel_array over the same files against
the CPU time of the 1-process build: load from other processes moves it less than wall time) and whether the
N-process cache is byte-identical to the 1-process one. Each figure is the best of --repeats runs, 1 and N processes
taking turns. Files are read once before timing, so every run reads them from the page cache (a warning says when
they do not fit in the memory available). Defaults: about 16 GB of files and 8 minutes on 2 quiet cores, most of it
the JPEG 2000 decodes (about 0.6 s per file).
"""

from __future__ import annotations

import argparse
import filecmp
import os
import resource
import shutil
import tempfile
import time
import warnings
from dataclasses import dataclass
from pathlib import Path

import pydicom
from cohorts import available_memory, data_module, exit_on_sigterm, make_manifest, read_all, write_folder
from pydicom.pixels import get_encoder
from pydicom.uid import UID, ExplicitVRLittleEndian, JPEG2000Lossless

MIN_FILES = 20  # ten patients: enough for the data module's 70/10/20 patient split


@dataclass(frozen=True)
class Build:
    """One timed cache build."""

    seconds: float
    parent_cpu: float  # CPU seconds of the process that called prepare_data
    worker_cpu: float  # CPU seconds of the pool workers it started (0 with one process)


def cpu_seconds(who: int) -> float:
    usage = resource.getrusage(who)
    return usage.ru_utime + usage.ru_stime


def time_build(manifest: Path, image_root: Path, cache_root: Path, size: int, workers: int) -> Build:
    """prepare_data of the data module with data.cache_workers=workers into an empty cache_root."""
    module = data_module(manifest, image_root, cache_root, f"data.image_size={size}",
                         f"data.cache_workers={workers}")
    parent, children = cpu_seconds(resource.RUSAGE_SELF), cpu_seconds(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    module.prepare_data()
    seconds = time.perf_counter() - start
    return Build(seconds, cpu_seconds(resource.RUSAGE_SELF) - parent,
                 cpu_seconds(resource.RUSAGE_CHILDREN) - children)


def decode_cpu_seconds(image_root: Path) -> float:
    """CPU seconds of a single-process loop of pydicom's decode (dcmread + pixel_array) over every file."""
    paths = sorted(image_root.rglob("*.dcm"))
    start = time.process_time()
    for path in paths:
        pydicom.dcmread(path).pixel_array  # noqa: B018 - the decode is the point
    return time.process_time() - start


def same_files(a: Path, b: Path) -> bool:
    """Whether two cache folders hold the same .npy files, byte for byte."""
    names = sorted(p.relative_to(a) for p in a.rglob("*.npy"))
    if names != sorted(p.relative_to(b) for p in b.rglob("*.npy")):
        return False
    return all(filecmp.cmp(a / name, b / name, shallow=False) for name in names)


@dataclass(frozen=True)
class Comparison:
    """The fastest build with 1 and with N processes of one folder, and what else was measured on it."""

    n: int
    one: Build
    many: Build
    decoder_share: float  # decode CPU time / 1-process build CPU time
    identical: bool  # the N-process cache equals the 1-process one, byte for byte


def compare(image_root: Path, work: Path, size: int, workers: int, repeats: int) -> Comparison:
    """Best-of-`repeats` builds with 1 and `workers` processes, the decode loop, and the cache comparison."""
    manifest = work / "manifest.csv"
    n = len(make_manifest(image_root, manifest))
    read_all(image_root)
    runs: dict[int, list[Build]] = {1: [], workers: []}
    decode, identical = [], False
    for repeat in range(repeats):
        for count in (1, workers):
            runs[count].append(time_build(manifest, image_root, work / f"cache{count}", size, count))
        decode.append(decode_cpu_seconds(image_root))
        if repeat == 0:
            cached = sum(1 for _ in (work / "cache1").rglob("*.npy"))
            if cached != n:
                raise SystemExit(f"the 1-process build cached {cached} of {n} images")
            identical = same_files(work / "cache1", work / f"cache{workers}")
        for count in (1, workers):
            shutil.rmtree(work / f"cache{count}")
    one, many = (min(runs[c], key=lambda b: b.seconds) for c in (1, workers))
    share = min(decode) / min(b.parent_cpu for b in runs[1])
    return Comparison(n, one, many, share, identical)


def print_row(label: str, result: Comparison) -> None:
    n, one, many = result.n, result.one, result.many
    print(f"{label:<14} {n:>6} {n / one.seconds:>9.1f} img/s {n / many.seconds:>9.1f} img/s "
          f"{one.seconds / many.seconds:>8.2f}x {1e3 * one.parent_cpu / n:>9.1f} ms "
          f"{1e3 * many.parent_cpu / n:>6.1f} + {1e3 * many.worker_cpu / n:<6.1f} ms "
          f"{100 * result.decoder_share:>9.0f} % {'yes' if result.identical else 'NO':>10}")


def run_set(label: str, n: int, args: argparse.Namespace, transfer_syntax: UID) -> None:
    """Write one folder, compare the builds on it, print its row, remove it."""
    with tempfile.TemporaryDirectory(prefix="bench_cache_", dir=args.tmp) as tmp:
        work = Path(tmp)
        size = (args.source_px, args.source_px) if args.source_px else None
        written = write_folder(work / "images", n, seed=args.seed, transfer_syntax=transfer_syntax, size=size)
        if written > available_memory():
            print(f"warning: {label}: {written / 2**30:.1f} GiB of files, {available_memory() / 2**30:.1f} GiB "
                  "of memory available: some reads will come from the disk, not the page cache")
        print_row(label, compare(work / "images", work, args.size, args.workers, args.repeats))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=2000, help="uncompressed files")
    parser.add_argument("--j2k-n", type=int, default=100, help="JPEG 2000 lossless files (0: skip them)")
    parser.add_argument("--size", type=int, default=512, help="cached image size (data.image_size)")
    parser.add_argument("--workers", type=int, default=2, help="processes compared with 1 (data.cache_workers)")
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--source-px", type=int, default=None,
                        help="square files of this size instead of the real CR / DX sizes")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--tmp", default=None, help="folder for the temporary files (default: the system's)")
    args = parser.parse_args()
    if args.n < MIN_FILES or 0 < args.j2k_n < MIN_FILES:
        parser.error(f"--n and --j2k-n need at least {MIN_FILES} files: the data module splits patients first")
    exit_on_sigterm()
    warnings.filterwarnings("ignore")
    source = f"{args.source_px}x{args.source_px}" if args.source_px else "CR 1955x1841 / DX 2048x2048 in turn"
    print(f"{len(os.sched_getaffinity(0))} cores; files: {source}, cached at {args.size} px; best of {args.repeats} "
          f"runs; files read from the page cache")
    print(f"{'files':<14} {'count':>6} {'1 process':>15} {f'{args.workers} processes':>15} {'speed-up':>9} "
          f"{'CPU/image: 1':>12} {f'{args.workers} (parent + workers)':>17} {'decoder share':>13} "
          f"{'same cache':>10}")
    run_set("uncompressed", args.n, args, ExplicitVRLittleEndian)
    if args.j2k_n and get_encoder(JPEG2000Lossless).is_available:
        run_set("JPEG 2000", args.j2k_n, args, JPEG2000Lossless)
    elif args.j2k_n:
        print("JPEG 2000: skipped (no JPEG 2000 encoder installed: pip install pylibjpeg pylibjpeg-openjpeg)")


if __name__ == "__main__":
    main()
