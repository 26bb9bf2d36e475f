#!/usr/bin/env python
"""Import speed for a public-dataset metadata CSV of 200,000 rows (NIH ChestX-ray14 layout).

    python benchmarks/bench_import.py [--rows 200000]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

from radscreen.manifests.importers import import_metadata


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=200_000)
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    n = args.rows
    patients = rng.integers(1, n // 4, size=n)
    frame = pd.DataFrame({
        "Image Index": [f"{p:08d}_{i:03d}.png" for i, p in enumerate(patients)],
        "Finding Labels": rng.choice(["No Finding", "Cardiomegaly", "Effusion|Mass"], size=n),
        "Follow-up #": rng.integers(0, 20, size=n),
        "Patient ID": patients,
        "Patient Age": rng.integers(1, 95, size=n),
        "Patient Gender": rng.choice(["M", "F"], size=n),
        "View Position": rng.choice(["PA", "AP"], size=n),
        "OriginalImage[Width": 2500, "Height]": 2048, "OriginalImagePixelSpacing[x": 0.143, "y]": 0.143,
    })
    with tempfile.TemporaryDirectory() as tmp:
        csv = Path(tmp) / "Data_Entry_2017.csv"
        frame.to_csv(csv, index=False)
        start = time.perf_counter()
        manifest, rejects = import_metadata("nih", csv, salt="bench", images_root=None)
        seconds = time.perf_counter() - start
    print(f"NIH layout, {n} rows: {seconds:.2f} s ({n / seconds:,.0f} rows/s), kept {len(manifest)}, "
          f"rejected {len(rejects)}")


if __name__ == "__main__":
    main()
