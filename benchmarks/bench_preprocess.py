#!/usr/bin/env python
"""CXR preprocessing speed: radscreen against MONAI's chain and against pydicom's decode alone.

    python benchmarks/bench_preprocess.py [--rounds 7] [--images 10] [--size 512] [--threads 1]

For a MONOCHROME1 CR of 1955x1841 and a 12-bit DX of 2048x2048 (benchmarks/radiographs.py), one process:
pydicom's decode (dcmread + pixel_array), radscreen's per-pixel chain (read_pixels, then the pipeline on the
decoded image: what radscreen did before the lookup-table path), radscreen (CXRPreprocess.from_file), and
MONAI's LoadImage(PydicomReader) -> ScaleIntensityRangePercentiles(0.5, 99.5, 0, 1, clip=True) ->
Resize(bicubic). Methods take turns in each round so that load from other processes falls on all of them;
the figure is the median over rounds. Files are read from the page cache. Needs the `bench` extra (MONAI).
"""

from __future__ import annotations

import argparse
import tempfile
import time
import warnings
from collections.abc import Callable
from pathlib import Path

import cv2
import numpy as np
import pydicom
import torch
from radiographs import KINDS, write_kind

from radscreen.io.dicom import read_pixels
from radscreen.preprocess.cxr import CXRPreprocess


def monai_chain(size: int) -> Callable[[str], object]:
    from monai.data import PydicomReader
    from monai.transforms import Compose, LoadImage, Resize, ScaleIntensityRangePercentiles

    return Compose([LoadImage(reader=PydicomReader(), image_only=True, ensure_channel_first=True),
                    ScaleIntensityRangePercentiles(0.5, 99.5, 0.0, 1.0, clip=True),
                    Resize((size, size), mode="bicubic")])


def images_per_second(methods: dict[str, Callable[[str], object]], path: str, rounds: int,
                      images: int) -> dict[str, float]:
    """Median images/s of each method on `path` over `rounds`, the methods taking turns."""
    for method in methods.values():
        method(path)  # warm-up: imports, first-touch allocations
    seconds = {name: [] for name in methods}
    for _ in range(rounds):
        for name, method in methods.items():
            start = time.perf_counter()
            for _ in range(images):
                method(path)
            seconds[name].append((time.perf_counter() - start) / images)
    return {name: 1.0 / float(np.median(s)) for name, s in seconds.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--images", type=int, default=10, help="images per method and round")
    parser.add_argument("--size", type=int, default=512)
    parser.add_argument("--threads", type=int, default=1, help="OpenCV and torch threads")
    args = parser.parse_args()
    cv2.setNumThreads(args.threads)
    torch.set_num_threads(args.threads)
    warnings.filterwarnings("ignore")
    config = CXRPreprocess(image_size=args.size)
    methods = {
        "decode": lambda path: pydicom.dcmread(path).pixel_array,
        "per-pixel": lambda path: config(read_pixels(path)),
        "radscreen": config.from_file,
        "monai": monai_chain(args.size),
    }
    print(f"one process, {args.threads} thread(s), {args.size} px output; median of {args.rounds} rounds of "
          f"{args.images} images (images/s)")
    print(f"{'file':<26} {'pydicom decode':>15} {'per-pixel chain':>16} {'radscreen':>10} {'MONAI':>8} "
          f"{'radscreen/MONAI':>16} {'max |new-old|':>14}")
    with tempfile.TemporaryDirectory() as tmp:
        for kind in KINDS:
            path = str(write_kind(Path(tmp) / "image.dcm", kind))
            difference = float(np.abs(config.from_file(path) - config(read_pixels(path))).max())
            rates = images_per_second(methods, path, args.rounds, args.images)
            print(f"{kind:<26} {rates['decode']:>15.0f} {rates['per-pixel']:>16.1f} {rates['radscreen']:>10.1f} "
                  f"{rates['monai']:>8.1f} {rates['radscreen'] / rates['monai']:>15.1f}x {difference:>14.1e}")


if __name__ == "__main__":
    main()
