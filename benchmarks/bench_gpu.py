#!/usr/bin/env python
"""Training-step speed on a CUDA device: radscreen's step (RadscreenModule + Lightning Trainer) against a plain loop.

    python benchmarks/bench_gpu.py [--models densenet169 inception_v3] [--precisions bf16-mixed 16-mixed]
        [--batch-size 20] [--steps 50] [--warmup 10] [--size 512] [--workers N] [--images 400]
    python benchmarks/bench_gpu.py --device cpu    # a smoke run: timm's test model at 32 px, a few steps

Each model is radscreen's own module composed from conf/ (experiment=age_densenet169, age_inceptionv3 with
trainer=gpu), channels-last (model.channels_last). Per model, precision and input, two loops train the same module
(built from the same seed) on the same batches:
  radscreen  Lightning's Trainer(precision=...) running RadscreenModule.training_step (losses, the metric inputs kept
             for the epoch end, logging; the `memory` rows time steps within one epoch, without its end)
  plain      a bare PyTorch loop: torch.autocast, torch.amp.GradScaler for 16-mixed, the module's forward, the
             task's loss, the same optimiser
Inputs: `loader` is radscreen's data module (cache, thesis augmentation, the loader workers trainer=gpu sets) over
synthetic radiograph DICOMs (benchmarks/radiographs.py); `memory` is a few of its batches already on the device, so
the step alone is timed. Images/s counts `--steps` steps after `--warmup` steps (cuDNN autotuning, allocations),
timed between torch.cuda.synchronize() calls; peak memory is torch.cuda.max_memory_allocated() over those steps
(on the CPU: the process's peak resident memory). Without a CUDA device it says so and exits 0.
"""

from __future__ import annotations

import argparse
import sys

import torch

MODELS = ("densenet169", "inception_v3", "test_resnet")  # training_steps.MODELS composes each
PRECISIONS = ("bf16-mixed", "16-mixed", "32-true")  # Lightning's precision strings
INPUTS = ("loader", "memory")  # as training_steps.INPUTS
DEFAULTS = {  # per device: models, precisions, batch size, steps, warm-up steps, image size, DICOMs
    "cuda": {"models": ["densenet169", "inception_v3"], "precisions": ["bf16-mixed", "16-mixed"], "batch_size": 20,
             "steps": 50, "warmup": 10, "size": 512, "images": 400},
    "cpu": {"models": ["test_resnet"], "precisions": ["bf16-mixed"], "batch_size": 4, "steps": 3, "warmup": 1,
            "size": 32, "images": 24},
}
NO_GPU = ("bench_gpu.py: no CUDA device (torch.cuda.is_available() is False), nothing measured; run it on a GPU "
          "machine, or with --device cpu for a smoke run")
COLUMNS = ("model", "precision", "input", "loop", "images/s", "peak MiB", "vs plain")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Options, with the device's defaults for those not given."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", choices=sorted(DEFAULTS), default="cuda")
    parser.add_argument("--models", nargs="+", choices=MODELS)
    parser.add_argument("--precisions", nargs="+", choices=PRECISIONS)
    parser.add_argument("--inputs", nargs="+", choices=INPUTS, default=list(INPUTS))
    parser.add_argument("--batch-size", type=int)
    parser.add_argument("--steps", type=int, help="timed steps per row")
    parser.add_argument("--warmup", type=int, help="untimed steps before them (at least 1)")
    parser.add_argument("--size", type=int, help="image size in px")
    parser.add_argument("--workers", type=int, help="loader workers (default: the config's; trainer=gpu: one per "
                                                    "usable core)")
    parser.add_argument("--images", type=int, help="synthetic DICOMs in the cache")
    parser.add_argument("--no-channels-last", dest="channels_last", action="store_false")
    args = parser.parse_args(argv)
    for key, value in DEFAULTS[args.device].items():
        if getattr(args, key) is None:
            setattr(args, key, value)
    if args.warmup < 1 or args.steps < 1:
        parser.error("--warmup and --steps must be at least 1 (the first step autotunes cuDNN and allocates)")
    if args.device == "cpu" and "16-mixed" in args.precisions:
        parser.error("16-mixed needs CUDA (Lightning would run bf16-mixed instead on the CPU)")
    return args


def table(rows: list) -> str:
    """Results (training_steps.Result) as an aligned table; `vs plain` is images/s over the plain loop's on the same
    model, precision and input."""
    plain = {(r.model, r.precision, r.input): r.images_per_s for r in rows if r.loop == "plain"}
    cells = [COLUMNS]
    for r in rows:
        ratio = r.images_per_s / plain[(r.model, r.precision, r.input)]
        cells.append((r.model, r.precision, r.input, r.loop, f"{r.images_per_s:.1f}", f"{r.peak_mib:.0f}",
                      f"{ratio:.2f}"))
    widths = [max(len(row[i]) for row in cells) for i in range(len(COLUMNS))]
    return "\n".join("  ".join(cell.ljust(w) if i < 4 else cell.rjust(w) for i, (cell, w) in
                               enumerate(zip(row, widths))) for row in cells)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.device == "cuda" and not torch.cuda.is_available():
        print(NO_GPU)
        return 0
    from training_steps import run_all  # Lightning, timm, Hydra and radscreen: only when there is something to run

    print(table(run_all(args)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
