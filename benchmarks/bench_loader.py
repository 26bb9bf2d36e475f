#!/usr/bin/env python
"""Training loader: images/s per worker at 512 px with the thesis augmentation, and the workers a GPU needs.

    python benchmarks/bench_loader.py [--n 1700] [--size 512] [--workers 0 1 2] [--batches 50] [--warmup 5]
                                      [--repeats 3] [--gpu-images-per-s 250]

Writes --n chest-radiograph DICOMs (--source-px square, CR and DX in turn: benchmarks/radiographs.py), builds their
manifest and the cache at --size px, then times the training loader of the data module train.py builds for
`experiment=age_densenet169 size=512_b20` (conf/data/cxr.yaml: batch 20, EpochSeededSampler, per-image z-score)
with data.num_workers=W: --warmup batches (worker start-up, first reads) and then --batches batches are drawn, and
the figure is images/s over the timed batches, best of --repeats, the worker counts taking turns. Side by side:
the thesis augmentation (conf/augment/thesis.yaml: sharpen or blur, rotation, shift, zoom) and none
(conf/augment/none.yaml), and the augmentation's cost per image in one loading process. Nothing is sent to a GPU;
the cache files are read from the page cache.

Workers a GPU needs = ceil(GPU training rate / images/s of one worker), with the rate of --gpu-images-per-s for
DenseNet-169 at 512 px. Its default (250 images/s) is an estimate, not a measurement: one training image of
DenseNet-169 (1 channel, 512 px, forward + backward) is 102 GFLOP (counted with torch.utils.flop_counter.FlopCounterMode
on timm's densenet169), so 250 images/s is 26 TFLOP/s sustained in mixed precision, an assumption for a current
data-centre GPU. Pass the figure measured on the GPU at hand: the `memory` rows of benchmarks/bench_gpu.py (the step
without a loader), or images/s from one epoch of `trainer=gpu` at 512 px.
"""

from __future__ import annotations

import argparse
import math
import os
import tempfile
import time
import warnings
from pathlib import Path

from cohorts import data_module, exit_on_sigterm, make_manifest, write_folder

from radscreen.data.datamodules import ImageDataModule

ASSUMED_GPU_RATE = 250.0  # images/s, an estimate (see the docstring), not a measurement
EXPERIMENT = ("experiment=age_densenet169", "size=512_b20")
AUGMENTATIONS = ("thesis", "none")
TRAIN_FRACTION = 0.7  # conf/data/cxr.yaml's split


def prepared(manifest: Path, image_root: Path, cache_root: Path, size: int, augment: str, workers: int,
             seed: int = 0) -> ImageDataModule:
    """The data module of the thesis's age experiment at `size` px, cache built, training split set up."""
    module = data_module(manifest, image_root, cache_root, *EXPERIMENT, f"augment={augment}",
                         f"data.image_size={size}", f"data.num_workers={workers}", f"seed={seed}")
    module.prepare_data()
    module.setup("fit")
    return module


def images_per_second(module: ImageDataModule, warmup: int, batches: int) -> float:
    """Images/s of the training loader over `batches` batches drawn after `warmup` batches."""
    loader = module.train_dataloader()
    if len(loader) < warmup + batches:
        raise SystemExit(f"the training split has {len(loader)} batches, fewer than --warmup + --batches = "
                         f"{warmup + batches}: raise --n")
    batch_iter = iter(loader)
    for _ in range(warmup):
        next(batch_iter)
    start = time.perf_counter()
    images = sum(len(next(batch_iter)["image"]) for _ in range(batches))
    seconds = time.perf_counter() - start
    del batch_iter, loader  # stops the loader's worker processes
    return images / seconds


def measure(work: Path, args: argparse.Namespace) -> dict[tuple[str, int], float]:
    """Best-of-repeats images/s for every (augmentation, worker count), the counts taking turns."""
    manifest = work / "manifest.csv"
    make_manifest(work / "images", manifest)
    best: dict[tuple[str, int], float] = {}
    for _ in range(args.repeats):
        for augment in AUGMENTATIONS:
            for workers in args.workers:
                module = prepared(manifest, work / "images", work / "cache", args.size, augment, workers, args.seed)
                rate = images_per_second(module, args.warmup, args.batches)
                best[augment, workers] = max(rate, best.get((augment, workers), 0.0))
    return best


def per_worker(rate: float, workers: int) -> float:
    """Images/s per loading process (workers = 0: the main process loads)."""
    return rate / max(workers, 1)


def print_table(best: dict[tuple[str, int], float], args: argparse.Namespace) -> None:
    print(f"{'loader workers':>14} {'thesis augmentation':>20} {'per worker':>11} {'no augmentation':>16} "
          f"{'per worker':>11} {'augmentation, per image in a worker':>36}")
    for workers in args.workers:
        thesis, none = best["thesis", workers], best["none", workers]
        label = "0 (main)" if workers == 0 else str(workers)
        cost = 1e3 / per_worker(thesis, workers) - 1e3 / per_worker(none, workers)  # per image, in one process
        print(f"{label:>14} {thesis:>14.0f} img/s {per_worker(thesis, workers):>7.0f} img/s {none:>10.0f} img/s "
              f"{per_worker(none, workers):>7.0f} img/s {cost:>30.2f} ms/img")


def print_gpu_need(best: dict[tuple[str, int], float], args: argparse.Namespace) -> None:
    """ceil(GPU rate / per-worker rate), from the 1-worker figure when it was measured."""
    workers = 1 if 1 in args.workers else max(args.workers)
    rate = per_worker(best["thesis", workers], workers)
    source = ("an estimate, NOT measured: pass --gpu-images-per-s from the GPU at hand"
              if args.gpu_images_per_s == ASSUMED_GPU_RATE else "given")
    needed = math.ceil(args.gpu_images_per_s / rate)
    print(f"DenseNet-169 at {args.size} px training at {args.gpu_images_per_s:.0f} images/s ({source}) needs "
          f"ceil({args.gpu_images_per_s:.0f} / {rate:.0f}) = {needed} loader worker{'s' if needed != 1 else ''} "
          f"with the thesis augmentation (the per-worker rate of the {workers}-worker run), each on a core of its "
          "own beside the training process")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=1700, help="images written and cached (70 %% train)")
    parser.add_argument("--size", type=int, default=512, help="cached image size (data.image_size)")
    parser.add_argument("--source-px", type=int, default=1024, help="size of the square DICOM files written")
    parser.add_argument("--workers", type=int, nargs="+", default=[0, 1, 2], help="data.num_workers values")
    parser.add_argument("--batches", type=int, default=50, help="timed batches of 20")
    parser.add_argument("--warmup", type=int, default=5, help="batches drawn before timing")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--gpu-images-per-s", type=float, default=ASSUMED_GPU_RATE,
                        help="training images/s of DenseNet-169 at --size px on the GPU (default: an estimate, "
                             "not a measurement; see the module docstring)")
    parser.add_argument("--seed", type=int, default=0, help="files, split, order and augmentation")
    args = parser.parse_args()
    if int(args.n * TRAIN_FRACTION) // 20 < args.warmup + args.batches:
        parser.error(f"--n {args.n} gives about {int(args.n * TRAIN_FRACTION) // 20} training batches of 20, fewer "
                     f"than --warmup + --batches = {args.warmup + args.batches}")
    exit_on_sigterm()
    warnings.filterwarnings("ignore")
    print(f"{len(os.sched_getaffinity(0))} cores; {args.n} images cached at {args.size} px from "
          f"{args.source_px}x{args.source_px} DICOMs; batches of 20, {args.warmup} warm-up + {args.batches} timed, "
          f"best of {args.repeats}")
    with tempfile.TemporaryDirectory(prefix="bench_loader_") as tmp:
        work = Path(tmp)
        write_folder(work / "images", args.n, seed=args.seed, size=(args.source_px, args.source_px))
        best = measure(work, args)
    print_table(best, args)
    print_gpu_need(best, args)


if __name__ == "__main__":
    main()
