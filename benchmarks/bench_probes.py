#!/usr/bin/env python
"""Probe speed on foundation-model-sized embeddings: 100,000 × 1,376 (CXR Foundation's width) by default.

    python benchmarks/bench_probes.py [--n 100000] [--dims 1376] [--folds 10] [--probes linear logistic mlp]

Synthetic embeddings (two images per patient) with a continuous and a binary attribute; prints the wall time
of stratified k-fold, patient-isolated cross-validation per probe and its scores.
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import pandas as pd

from radscreen.probes.probes import cross_validate, infer_target


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=int, default=100_000)
    parser.add_argument("--dims", type=int, default=1376)
    parser.add_argument("--folds", type=int, default=10)
    parser.add_argument("--probes", nargs="*", default=["linear", "logistic", "mlp"])
    parser.add_argument("--mlp-epochs", type=int, default=10)
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    patients = np.repeat(np.arange(args.n // 2), 2)
    latent = rng.normal(size=(args.n // 2, 2))[patients]
    features = (rng.normal(size=(args.n, args.dims)) + 0.05 * latent[:, :1] + 0.05 * latent[:, 1:]).astype(np.float32)
    frame = pd.DataFrame({"image_id": np.arange(args.n).astype(str), "patient_id": patients.astype(str),
                          "age_years": 55 + 12 * latent[:, 0], "sex": np.where(latent[:, 1] > 0, "F", "M")})
    print(f"{args.n:,} × {args.dims} embeddings, {args.folds}-fold patient-level CV")
    for probe in args.probes:
        column = "age_years" if probe == "linear" else "sex"
        target = infer_target(frame, column)
        start = time.perf_counter()
        folds = cross_validate(target, frame, features, probe, args.folds, mlp={"epochs": args.mlp_epochs})
        seconds = time.perf_counter() - start
        metric = "r2" if target.kind == "continuous" else "roc_auc"
        print(f"{probe:8s} on {column:9s}: {seconds:7.1f} s ({seconds / args.folds:.1f} s per fold), "
              f"{metric} {folds[metric].mean():.3f} ± {folds[metric].std():.3f}")


if __name__ == "__main__":
    main()
