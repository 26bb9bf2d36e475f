#!/usr/bin/env python
"""Cache build: images/s with 1 process against N, on uncompressed and JPEG 2000 radiographs.

    python benchmarks/bench_cache_build.py [--n 2000] [--j2k-n 100] [--size 512] [--workers 2] [--repeats 2]

Writes --n uncompressed DICOMs (a MONOCHROME1 CR of 1955x1841 and a 12-bit DX of 2048x2048 in turn,
benchmarks/radiographs.py; --source-px S makes them SxS), builds their manifest with build_manifest and times the
data module's prepare_data (the cache build train.py runs: conf/data/cxr.yaml, data.image_size=--size) into an
empty cache with data.cache_workers=1, with 1 and OpenCV on one thread (the 1-process build as it runs uses
OpenCV's threads, up to a core per thread, in its histogram, lookup and resize; pool workers run OpenCV on one
thread) and with data.cache_workers=--workers; then the same for --j2k-n JPEG 2000 lossless files.

Printed per set: images/s, the speed-ups of N processes over the 1-process builds, the cores each build kept busy
(CPU time / wall time), CPU ms per image (1 process on 1 thread; N processes: the parent and its workers), the
decoder's share (CPU time of a single-process loop of pydicom.dcmread + pixel_array over the same files against the
CPU time of the single-threaded 1-process build: load from other processes moves it less than wall time) and whether
the caches are byte-identical. Each figure is the best of --repeats runs, the settings taking turns. Files are read
once before timing, so every run reads them from the page cache (a warning says when they do not fit in the memory
available). Defaults: about 16 GB of files and 11 minutes on 2 quiet cores, most of it the JPEG 2000 decodes (about
0.6 s per file). On a machine shared with other users' jobs, the kernel's autogroup scheduling gives each login
session a share of the cores, whatever the number of processes: the speed-up then says nothing.
"""

from __future__ import annotations

import argparse
import contextlib
import filecmp
import os
import resource
import shutil
import tempfile
import time
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import cv2
import pydicom
from cohorts import available_memory, data_module, exit_on_sigterm, make_manifest, read_all, write_folder
from pydicom.pixels import get_encoder
from pydicom.uid import UID, ExplicitVRLittleEndian, JPEG2000Lossless

MIN_FILES = 20  # ten patients: enough for the data module's 70/10/20 patient split
ONE, ONE_THREAD, MANY = "1 process", "1 process, OpenCV 1 thread", "N processes"


@dataclass(frozen=True)
class Build:
    """One timed cache build."""

    seconds: float
    parent_cpu: float  # CPU seconds of the process that called prepare_data
    worker_cpu: float  # CPU seconds of the pool workers it started (0 with one process)

    @property
    def cores(self) -> float:
        """Cores kept busy on average: CPU seconds over wall seconds."""
        return (self.parent_cpu + self.worker_cpu) / self.seconds


@dataclass(frozen=True)
class Setting:
    """How a build runs: data.cache_workers, and OpenCV's thread count in the calling process (None: its own)."""

    name: str
    workers: int
    opencv_threads: int | None = None


def cpu_seconds(who: int) -> float:
    usage = resource.getrusage(who)
    return usage.ru_utime + usage.ru_stime


@contextlib.contextmanager
def opencv_threads(threads: int | None) -> Iterator[None]:
    """OpenCV on `threads` threads in this process for a while (None: left as it is)."""
    before = cv2.getNumThreads()
    if threads is not None:
        cv2.setNumThreads(threads)
    try:
        yield
    finally:
        cv2.setNumThreads(before)


def time_build(manifest: Path, image_root: Path, cache_root: Path, size: int, setting: Setting) -> Build:
    """prepare_data of the data module with data.cache_workers=setting.workers into an empty cache_root."""
    module = data_module(manifest, image_root, cache_root, f"data.image_size={size}",
                         f"data.cache_workers={setting.workers}")
    with opencv_threads(setting.opencv_threads):
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
    """The fastest build of each setting on one folder, and what else was measured on it."""

    n: int
    builds: dict[str, Build]
    decoder_share: float  # decode CPU time / CPU time of the single-threaded 1-process build
    identical: bool  # every setting's cache equals the first one's, byte for byte


def compare(image_root: Path, work: Path, size: int, settings: list[Setting], repeats: int) -> Comparison:
    """Best-of-`repeats` builds of every setting (taking turns), the decode loop and the cache comparison."""
    manifest = work / "manifest.csv"
    n = len(make_manifest(image_root, manifest))
    read_all(image_root)
    runs: dict[str, list[Build]] = {setting.name: [] for setting in settings}
    caches = [work / f"cache{i}" for i in range(len(settings))]
    decode, identical = [], False
    for repeat in range(repeats):
        for setting, cache in zip(settings, caches):
            runs[setting.name].append(time_build(manifest, image_root, cache, size, setting))
        decode.append(decode_cpu_seconds(image_root))
        if repeat == 0:
            cached = sum(1 for _ in caches[0].rglob("*.npy"))
            if cached != n:
                raise SystemExit(f"the 1-process build cached {cached} of {n} images")
            identical = all(same_files(caches[0], other) for other in caches[1:])
        for cache in caches:
            shutil.rmtree(cache)
    builds = {name: min(done, key=lambda b: b.seconds) for name, done in runs.items()}
    share = min(decode) / min(b.parent_cpu for b in runs[ONE_THREAD])
    return Comparison(n, builds, share, identical)


def columns(workers: int) -> list[str]:
    return ["count", ONE, ONE_THREAD, f"{workers} processes", "speed-up vs 1 / 1 thread", "cores busy",
            "CPU ms/image: 1 thread", f"{workers}: parent + workers", "decoder share", "same cache"]


def print_header(workers: int) -> None:
    print(f"{'files':<13}", *(name.rjust(max(len(name), 11)) for name in columns(workers)), sep="  ")


def print_row(label: str, result: Comparison, workers: int) -> None:
    n, b = result.n, result.builds
    one, thread, many = b[ONE], b[ONE_THREAD], b[MANY]
    cells = [str(n), f"{n / one.seconds:.1f} img/s", f"{n / thread.seconds:.1f} img/s", f"{n / many.seconds:.1f} img/s",
             f"{one.seconds / many.seconds:.2f}x / {thread.seconds / many.seconds:.2f}x",
             f"{one.cores:.2f} / {thread.cores:.2f} / {many.cores:.2f}", f"{1e3 * thread.parent_cpu / n:.1f}",
             f"{1e3 * many.parent_cpu / n:.1f} + {1e3 * many.worker_cpu / n:.1f}",
             f"{100 * result.decoder_share:.0f} %", "yes" if result.identical else "NO"]
    widths = (max(len(name), 11) for name in columns(workers))
    print(f"{label:<13}", *(cell.rjust(width) for cell, width in zip(cells, widths)), sep="  ")


def run_set(label: str, n: int, args: argparse.Namespace, transfer_syntax: UID) -> None:
    """Write one folder, compare the builds on it, print its row, remove it."""
    with tempfile.TemporaryDirectory(prefix="bench_cache_", dir=args.tmp) as tmp:
        work = Path(tmp)
        size = (args.source_px, args.source_px) if args.source_px else None
        written = write_folder(work / "images", n, seed=args.seed, transfer_syntax=transfer_syntax, size=size)
        if written > available_memory():
            print(f"warning: {label}: {written / 2**30:.1f} GiB of files, {available_memory() / 2**30:.1f} GiB "
                  "of memory available: some reads will come from the disk, not the page cache")
        settings = [Setting(ONE, 1), Setting(ONE_THREAD, 1, opencv_threads=1), Setting(MANY, args.workers)]
        print_row(label, compare(work / "images", work, args.size, settings, args.repeats), args.workers)


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
    print_header(args.workers)
    run_set("uncompressed", args.n, args, ExplicitVRLittleEndian)
    if args.j2k_n and get_encoder(JPEG2000Lossless).is_available:
        run_set("JPEG 2000", args.j2k_n, args, JPEG2000Lossless)
    elif args.j2k_n:
        print("JPEG 2000: skipped (no JPEG 2000 encoder installed: pip install pylibjpeg pylibjpeg-openjpeg)")


if __name__ == "__main__":
    main()
