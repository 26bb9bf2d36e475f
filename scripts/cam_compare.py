#!/usr/bin/env python
"""Compare average maps of several models on the same images (Pearson r, SSIM) and draw them side by side.

    python scripts/cam_compare.py NAME=RUN_A/cam/all_average.npy NAME=RUN_B/cam/all_average.npy --out DIR
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

from radscreen.evaluation.sweeps import to_markdown
from radscreen.interpret.compare import side_by_side, similarity_table


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("maps", nargs="+", help="NAME=path/to/average.npy (two or more)")
    parser.add_argument("--background", type=Path, help="reference_image.npy to draw the maps on")
    parser.add_argument("--out", type=Path, default=Path("cam_comparison"))
    args = parser.parse_args(argv)
    if len(args.maps) < 2 or any("=" not in m for m in args.maps):
        parser.error("give two or more NAME=path.npy maps")
    maps = {name: np.load(path) for name, path in (m.split("=", 1) for m in args.maps)}
    table = similarity_table(maps)
    args.out.mkdir(parents=True, exist_ok=True)
    table.to_csv(args.out / "similarity.csv", index=False)
    side_by_side(maps, args.out / "maps.png", np.load(args.background) if args.background else None)
    print(to_markdown(table))
    return 0


if __name__ == "__main__":
    sys.exit(main())
