#!/usr/bin/env python
"""Training overhead: radscreen's LightningModule under Lightning's Trainer against a plain PyTorch loop, on CPU.

    python benchmarks/bench_training_overhead.py [--rounds 7] [--steps 30] [--batch-size 16] [--size 64]
        [--backbone resnet18] [--tasks age osteo_binary] [--threads 1] [--seed 0]

Both train the same model (conf/train.yaml composed with the options: the backbone and tasks given, a linear head,
Adam, no scheduler) from the same initial weights on the same seeded in-memory batches. radscreen: `RadscreenModule`
as conf/model builds it, fitted by the Trainer conf/trainer/cpu.yaml builds, with the CSV logger of
conf/logger/csv.yaml; progress bar, model summary, checkpointing and validation are off, so what is timed is the
training path: training_step -> _shared_step with its metrics and self.log, and the epoch end's metrics and logging.
Plain: forward, the tasks' own losses, backward, Adam step. An epoch is timed from its start to its end (the Trainer's
set-up excluded), by process CPU time (less disturbed than the wall clock by other processes) and by the wall clock.
Each round trains radscreen, plain, plain, radscreen (each from the initial weights), so drifting load falls on both
alike: images/s are medians over the epochs, the ratio is the median over rounds of radscreen's time over plain's in
the round (lowest and highest beside it). `max |dw|`, the largest difference between the two models' weights after an
epoch, shows that both do the same arithmetic. On a shared machine the rounds spread by more than a 2 % overhead;
`--backbone test_resnet --size 32 --steps 100` measures the extra milliseconds per step with less noise, and
1 + (extra ms) / (plain ms per step of the model of interest) is then the ratio to expect for that model.

Then one more epoch of each under cProfile: Python function calls per step, and the milliseconds per step (under
the profiler, which inflates Python-heavy code) spent in Lightning's logging (self.log / log_dict, its result
collection and the loggers, epoch end included) and in the torchmetrics calls radscreen's own code makes (metric
updates).
"""

from __future__ import annotations

import argparse
import copy
import cProfile
import logging
import pstats
import tempfile
import time
import warnings
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
import pytorch_lightning as pl
import torch
from hydra import compose, initialize_config_dir
from hydra.utils import instantiate
from omegaconf import DictConfig
from training_steps import DeviceBatches, plain_loss

from radscreen.models.module import RadscreenModule
from radscreen.tasks import Task, as_tasks
from radscreen.training.run import quiet_lightning
from radscreen.utils.project_root import config_dir, find_project_root


def training_config(args: argparse.Namespace, output_dir: Path) -> DictConfig:
    """conf/train.yaml with the benchmark's model, trainer and logger settings."""
    find_project_root()
    overrides = [f"seed={args.seed}", f"backbone={args.backbone}", f"task=[{','.join(args.tasks)}]", "head=linear",
                 "model.scheduler=null", "trainer=cpu", "trainer.max_epochs=1", "trainer.limit_val_batches=0",
                 "trainer.num_sanity_val_steps=0", "trainer.enable_progress_bar=false",
                 "trainer.enable_model_summary=false", "+trainer.enable_checkpointing=false", "logger=csv",
                 f"paths.output_dir={output_dir}"]
    with initialize_config_dir(config_dir=str(config_dir()), version_base="1.3"):
        return compose(config_name="train", overrides=overrides)


def synthetic_batches(tasks: dict[str, Task], n_batches: int, batch_size: int, size: int, seed: int) -> DeviceBatches:
    """Seeded images and a synthetic manifest's targets, encoded by each task, in the data module's batch layout."""
    rng = np.random.default_rng(seed)
    n = n_batches * batch_size
    frame = pd.DataFrame({"age_years": rng.uniform(20, 90, n), "sex": rng.choice(["M", "F"], n),
                          "bmd_class": rng.choice(["normal", "osteopenia", "osteoporosis"], n)})
    targets = {name: torch.as_tensor(task.encode_frame(frame)) for name, task in tasks.items()}
    images = torch.from_numpy(rng.standard_normal((n, 1, size, size), dtype=np.float32))
    age = torch.as_tensor(frame["age_years"].to_numpy(np.float32))
    sex = torch.as_tensor(frame["sex"].eq("F").to_numpy(np.float32))
    batches = []
    for start in range(0, n, batch_size):
        rows = slice(start, start + batch_size)
        batches.append({"image": images[rows], "targets": {k: v[rows] for k, v in targets.items()}, "age": age[rows],
                        "sex": sex[rows], "image_id": [str(i) for i in range(start, start + batch_size)]})
    return DeviceBatches(batches, len(batches))


def initial_module(cfg: DictConfig, batches: DeviceBatches) -> RadscreenModule:
    """The module conf/model builds, with the regression target statistics setup() would take from the data."""
    module: RadscreenModule = instantiate(cfg.model)
    for name, task in module.tasks.items():
        if task.normalised:
            values = torch.cat([b["targets"][name] for b in batches])
            getattr(module, f"target_stats_{name}").copy_(torch.stack([values.nanmean(), values.std()]))
    return module


class Clock:
    """Wall-clock and process CPU seconds between start() and stop(), optionally under a profiler. CPU time is the
    steadier figure on a machine that other processes share: they slow the wall clock, not this process's CPU."""

    def __init__(self, profiler: cProfile.Profile | None = None) -> None:
        self.profiler, self.wall, self.cpu = profiler, 0.0, 0.0

    def start(self) -> None:
        if self.profiler is not None:
            self.profiler.enable()
        self._wall, self._cpu = time.perf_counter(), time.process_time()

    def stop(self) -> None:
        self.wall, self.cpu = time.perf_counter() - self._wall, time.process_time() - self._cpu
        if self.profiler is not None:
            self.profiler.disable()


class EpochClock(pl.Callback):
    """A Clock from the start to the end of training: the epoch, without the Trainer's set-up."""

    def __init__(self, clock: Clock) -> None:
        self.clock = clock

    def on_train_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self.clock.start()

    def on_train_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self.clock.stop()


def train_radscreen(cfg: DictConfig, module: RadscreenModule, batches: DeviceBatches, clock: Clock) -> None:
    """One epoch of the Lightning Trainer as conf/trainer builds it, timed by `clock`."""
    trainer: pl.Trainer = instantiate(cfg.trainer, callbacks=[EpochClock(clock)], logger=instantiate(cfg.logger.csv))
    trainer.fit(module, train_dataloaders=batches)


def train_plain(cfg: DictConfig, module: RadscreenModule, batches: DeviceBatches, clock: Clock) -> None:
    """One epoch of forward, the tasks' weighted losses, backward and the optimizer step, timed by `clock`."""
    optimizer = instantiate(dict(cfg.model.optimizer))(params=[p for p in module.parameters() if p.requires_grad])
    module.train()
    clock.start()
    for batch in batches:
        optimizer.zero_grad()
        plain_loss(module, batch).backward()
        optimizer.step()
    clock.stop()


TRAINERS: dict[str, Callable[[DictConfig, RadscreenModule, DeviceBatches, Clock], None]] = {
    "radscreen": train_radscreen, "plain": train_plain}


def max_weight_difference(a: torch.nn.Module, b: torch.nn.Module) -> float:
    return max(float((x - y).abs().max()) for x, y in zip(a.state_dict().values(), b.state_dict().values())
               if x.is_floating_point())


def region_seconds(stats: pstats.Stats, inside: Callable[[str, str], bool], entered_from: Callable[[str, str], bool]
                   ) -> float:
    """Cumulative seconds of the calls into a region of code (`inside(file, function)`) made from outside it by code
    that `entered_from` matches: nested calls within the region are counted once."""
    total = 0.0
    for (file, _, name), (*_, callers) in stats.stats.items():
        if not inside(file, name):
            continue
        for (caller_file, _, caller_name), (_, _, _, cumulative) in callers.items():
            if not inside(caller_file, caller_name) and entered_from(caller_file, caller_name):
                total += cumulative
    return total


def in_lightning_logging(file: str, name: str) -> bool:
    return ((file.endswith("pytorch_lightning/core/module.py") and name in ("log", "log_dict"))
            or "pytorch_lightning/trainer/connectors/logger_connector" in file or "pytorch_lightning/loggers" in file)


def in_torchmetrics(file: str, name: str) -> bool:
    return "/torchmetrics/" in file


def from_radscreen(file: str, name: str) -> bool:
    return "/radscreen/" in file and "/benchmarks/" not in file


def anywhere(file: str, name: str) -> bool:
    return True


def profile_row(label: str, profiler: cProfile.Profile, steps: int) -> str:
    stats = pstats.Stats(profiler)
    logged = region_seconds(stats, in_lightning_logging, anywhere)
    metrics = region_seconds(stats, in_torchmetrics, from_radscreen)
    return (f"{label:<12} {stats.total_calls / steps:>13,.0f} {stats.total_tt / steps * 1e3:>10.1f} "
            f"{logged / steps * 1e3:>23.2f} {metrics / steps * 1e3:>33.2f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--steps", type=int, default=30, help="training steps (batches) per epoch")
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--size", type=int, default=64, help="image size (px)")
    parser.add_argument("--backbone", default="resnet18", help="a conf/backbone/ entry")
    parser.add_argument("--tasks", nargs="+", default=["age", "osteo_binary"], help="conf/task/ entries")
    parser.add_argument("--threads", type=int, default=1, help="torch threads")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    warnings.filterwarnings("ignore")
    quiet_lightning()
    logging.getLogger("pytorch_lightning").setLevel(logging.WARNING)  # the Trainer's start-up lines, every round
    pl.seed_everything(args.seed, verbose=False)
    with tempfile.TemporaryDirectory() as tmp:
        cfg = training_config(args, Path(tmp))
        batches = synthetic_batches(as_tasks(cfg.task), args.steps, args.batch_size, args.size, args.seed)
        start = initial_module(cfg, batches)
        images = args.steps * args.batch_size
        print(f"{args.backbone}, tasks {' + '.join(args.tasks)}, {args.size} px, batch {args.batch_size}, "
              f"{args.steps} steps per epoch, {args.threads} thread(s); median of {args.rounds} rounds")
        seconds = {clock: {name: [] for name in TRAINERS} for clock in ("cpu", "wall")}
        ratios: dict[str, list[float]] = {"cpu": [], "wall": []}
        difference, trained = 0.0, {}
        for round_ in range(args.rounds + 1):  # round 0 warms up (first-touch allocations, lazy imports)
            spent = {clock: dict.fromkeys(TRAINERS, 0.0) for clock in ratios}
            for name in ("radscreen", "plain", "plain", "radscreen"):  # ABBA: drifting load falls on both alike
                model, clock = copy.deepcopy(start), Clock()
                TRAINERS[name](cfg, model, batches, clock)
                trained[name] = model
                for kind, value in (("cpu", clock.cpu), ("wall", clock.wall)):
                    spent[kind][name] += value
                    if round_:
                        seconds[kind][name].append(value)
            difference = max(difference, max_weight_difference(*trained.values()))
            if round_:
                for kind in ratios:
                    ratios[kind].append(spent[kind]["radscreen"] / spent[kind]["plain"])
        print(f"{'':<17} {'radscreen (images/s)':>21} {'plain (images/s)':>17} {'time radscreen/plain':>21} "
              f"{'(lowest-highest)':>17} {'extra ms/step':>14}")
        for kind, label in (("cpu", "process CPU time"), ("wall", "wall clock")):
            median = {name: float(np.median(s)) for name, s in seconds[kind].items()}
            extra = (median["radscreen"] - median["plain"]) / args.steps * 1e3
            print(f"{label:<17} {images / median['radscreen']:>21.1f} {images / median['plain']:>17.1f} "
                  f"{float(np.median(ratios[kind])):>20.4f}x {min(ratios[kind]):>8.3f}-{max(ratios[kind]):.3f} "
                  f"{extra:>14.2f}")
        print(f"max |dw| between the two models after an epoch: {difference:.1e}")
        print("\none epoch under cProfile (per step)")
        print(f"{'':<12} {'Python calls':>13} {'time (ms)':>10} {'Lightning logging (ms)':>23} "
              f"{'torchmetrics from radscreen (ms)':>33}")
        for name, train in TRAINERS.items():
            profiler = cProfile.Profile()
            train(cfg, copy.deepcopy(start), batches, Clock(profiler))
            print(profile_row(name, profiler, args.steps))


if __name__ == "__main__":
    main()
