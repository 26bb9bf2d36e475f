"""Compare average maps of several models on the same images (Pearson r, SSIM) and draw them side by side.

    radscreen-cam-compare NAME=RUN_A/cam/all_average.npy NAME=RUN_B/cam/all_average.npy [--out DIR]

The comparison goes beside the first map (FIRST_MAP's folder/comparison/) unless --out is given.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from radscreen.errors import UserError
from radscreen.evaluation.sweeps import to_markdown
from radscreen.interpret.compare import side_by_side, similarity_table
from radscreen.utils.cli import run_command
from radscreen.utils.tables import check_input_file, check_output_folder, write_csv


def load_map(path: str, what: str) -> np.ndarray:
    """An average map saved by radscreen-cam (.npy), or UserError."""
    try:
        return np.load(check_input_file(path, what))
    except (ValueError, OSError) as exc:
        raise UserError(f"{what} {path} is not a NumPy .npy map ({str(exc).splitlines()[0]})") from None


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("maps", nargs="+", help="NAME=path/to/average.npy (two or more)")
    parser.add_argument("--background", type=Path, help="reference_image.npy to draw the maps on")
    parser.add_argument("--out", type=Path, help="output folder (default: comparison/ beside the first map)")
    args = parser.parse_args(argv)
    if len(args.maps) < 2 or any("=" not in m for m in args.maps):
        raise UserError("give two or more maps as NAME=path.npy, e.g. age=RUN_A/cam/all_average.npy")
    maps = {name: load_map(path, f"map {name}") for name, path in (m.split("=", 1) for m in args.maps)}
    shapes = {name: m.shape for name, m in maps.items()}
    if len(set(shapes.values())) > 1:
        raise UserError(f"the maps have different shapes ({shapes}); compare maps of the same image size")
    background = load_map(str(args.background), "--background") if args.background else None
    first = Path(args.maps[0].split("=", 1)[1])
    out = check_output_folder(args.out or first.parent / "comparison", "--out")
    table = similarity_table(maps)
    out.mkdir(exist_ok=True)
    write_csv(table, out / "similarity.csv")
    side_by_side(maps, out / "maps.png", background)
    print(to_markdown(table))
    print(f"comparison: {out}")
    return 0


def run() -> None:
    """Entry point of radscreen-cam-compare."""
    run_command(main)
