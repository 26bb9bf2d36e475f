#!/usr/bin/env python
"""Figure of phantoms of different age, sex and bone density side by side (docs/phantoms.png).

    python scripts/phantom_figure.py --out docs/phantoms.png
"""

from __future__ import annotations

import argparse
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from radscreen.phantoms.drr import load_ct_projections, render  # noqa: E402
from radscreen.phantoms.fetch import fetch_ct  # noqa: E402
from radscreen.phantoms.subjects import sample_subjects  # noqa: E402

PANELS = [("F", 30, 60, "normal"), ("F", 80, 100, "osteoporosis"), ("M", 30, 60, "normal"),
          ("M", 75, 100, "osteoporosis")]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--out", type=Path, default=Path("docs/phantoms.png"))
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    subjects = sample_subjects(3000, args.seed)
    projections = load_ct_projections(fetch_ct(), 256)
    rng = np.random.default_rng(args.seed)
    fig, axes = plt.subplots(1, len(PANELS), figsize=(4 * len(PANELS), 4.6))
    for ax, (sex, low, high, cls) in zip(axes, PANELS):
        pick = subjects[(subjects.sex == sex) & subjects.age_years.between(low, high) & (subjects.bmd_class == cls)]
        subject = pick.iloc[0]
        ax.imshow(render(projections, subject, rng), cmap="gray", vmin=0, vmax=2600)
        ax.set_title(f"{'woman' if sex == 'F' else 'man'}, {subject.age_years:.0f} y\n"
                     f"lowest T {subject.t_score_min:+.1f} ({cls})", fontsize=11)
        ax.axis("off")
    fig.tight_layout()
    args.out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(args.out, dpi=80, bbox_inches="tight")
    print(args.out)


if __name__ == "__main__":
    main()
