"""radscreen's training step and a plain PyTorch loop on the same module and batches, timed (benchmarks/bench_gpu.py).

The module is radscreen's own, composed from conf/ as a user's run is; the batches come from radscreen's data module
over synthetic radiograph DICOMs (benchmarks/radiographs.py), either through its loader or a few of them kept on the
device. Each measurement counts `steps` steps after `warmup` steps, timed between torch.cuda.synchronize() calls, and
the peak memory of those steps: torch.cuda.max_memory_allocated() after reset_peak_memory_stats(), or on the CPU the
process's peak resident memory.
"""

from __future__ import annotations

import argparse
import gc
import itertools
import logging
import tempfile
import time
import warnings
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pytorch_lightning as pl
import torch
from hydra import compose, initialize_config_dir
from hydra.core.global_hydra import GlobalHydra
from hydra.utils import instantiate
from omegaconf import DictConfig
from radiographs import KINDS, write_kind

from radscreen.data.datamodules import ImageDataModule
from radscreen.models.module import RadscreenModule
from radscreen.training.run import quiet_lightning
from radscreen.utils.project_root import config_dir

# model name → the overrides that compose it (test_resnet: timm's tiny test model, for the CPU smoke run)
MODELS: dict[str, list[str]] = {
    "densenet169": ["experiment=age_densenet169"],
    "inception_v3": ["experiment=age_inceptionv3"],
    "test_resnet": ["experiment=age_densenet169", "backbone=test_resnet"],
}
# Lightning precision → the dtype of the plain loop's torch.autocast (None: no autocast)
AUTOCAST: dict[str, torch.dtype | None] = {"bf16-mixed": torch.bfloat16, "16-mixed": torch.float16,
                                           "32-true": None}
INPUTS = ("loader", "memory")
LOOPS = ("plain", "radscreen")
MEMORY_BATCHES = 4  # distinct batches the `memory` input cycles through


@dataclass(frozen=True)
class Result:
    """One measured row."""

    model: str
    precision: str
    input: str
    loop: str
    images_per_s: float
    peak_mib: float


# ---------------------------------------------------------------------------------------------- data and configs
def write_cohort(folder: Path, n: int, size: int, seed: int = 0) -> Path:
    """`n` chest-like DICOMs of twice the image size (one patient each, both kinds of benchmarks/radiographs.py)
    and their manifest: 90 % train, 10 % val, ages 20–90 years."""
    rng = np.random.default_rng(seed)
    source = max(2 * size, 64)
    (folder / "dicom").mkdir(parents=True, exist_ok=True)
    rows = []
    for i, kind in zip(range(n), itertools.cycle(KINDS)):
        path = f"dicom/{i:05d}.dcm"
        write_kind(folder / path, kind, seed=i, patient_id=f"P{i:05d}", size=(source, source))
        rows.append({"image_id": f"I{i:05d}", "patient_id": f"P{i:05d}", "path": path, "modality": KINDS[kind][3],
                     "view": "PA", "age_years": round(float(rng.uniform(20, 90)), 1), "sex": "FM"[i % 2],
                     "split": "val" if i % 10 == 9 else "train"})
    manifest = folder / "manifest.csv"
    pd.DataFrame(rows).to_csv(manifest, index=False)
    return manifest


def compose_config(model: str, args: argparse.Namespace, manifest: Path, work: Path) -> DictConfig:
    """train.yaml composed for `model` as a user's run would be (trainer=gpu on CUDA), with the benchmark's sizes,
    no loggers, callbacks or learning-rate schedule."""
    overrides = [*MODELS[model], f"trainer={'gpu' if args.device == 'cuda' else 'cpu'}", "logger=none",
                 "callbacks=none", "model.scheduler=null", f"model.channels_last={str(args.channels_last).lower()}",
                 f"data.manifest={manifest}", f"data.image_size={args.size}", f"data.batch_size={args.batch_size}",
                 "data.show_progress=false", f"paths.root_dir={work}", f"paths.cache_dir={work}/cache",
                 f"paths.output_dir={work}/run"]
    if args.workers is not None:
        overrides.append(f"data.num_workers={args.workers}")
    GlobalHydra.instance().clear()
    with initialize_config_dir(config_dir=str(config_dir()), version_base="1.3"):
        return compose(config_name="train", overrides=overrides)


def prepared_datamodule(cfg: DictConfig) -> ImageDataModule:
    """radscreen's data module with its cache built and its datasets set up."""
    datamodule: ImageDataModule = instantiate(cfg.data)
    datamodule.prepare_data()
    datamodule.setup("fit")
    return datamodule


def to_device(value, device: torch.device):
    """Tensors of a (nested) batch moved to `device`; anything else as it is."""
    if isinstance(value, torch.Tensor):
        return value.to(device, non_blocking=True)
    if isinstance(value, Mapping):
        return {key: to_device(item, device) for key, item in value.items()}
    return value


class DeviceBatches:
    """`length` batches cycling through a few that already lie on the device (an iterable Lightning accepts)."""

    def __init__(self, batches: list[dict], length: int) -> None:
        self.batches = batches
        self.length = length

    def __iter__(self) -> Iterator[dict]:
        return (self.batches[i % len(self.batches)] for i in range(self.length))

    def __len__(self) -> int:
        return self.length


def memory_batches(datamodule: ImageDataModule, device: torch.device, length: int) -> DeviceBatches:
    """A few batches of the data module's training loader, moved to the device once."""
    loader = datamodule.train_dataloader()
    batches = [to_device(batch, device) for batch in itertools.islice(loader, MEMORY_BATCHES)]
    del loader  # its workers stop
    return DeviceBatches(batches, length)


def endless(loader: Iterable) -> Iterator:
    """The loader's batches, epoch after epoch."""
    while True:
        yield from loader


# ---------------------------------------------------------------------------------------------- measuring
class Meter:
    """Wall time and peak memory between start() and stop(): CUDA's allocator peak, or the process's peak resident
    memory (VmHWM, reset through /proc/self/clear_refs where Linux allows it) on the CPU."""

    def __init__(self, device: torch.device) -> None:
        self.device = device
        self.started = 0.0

    def _synchronize(self) -> None:
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)

    def start(self) -> None:
        self._synchronize()
        if self.device.type == "cuda":
            torch.cuda.reset_peak_memory_stats(self.device)
        else:
            _reset_peak_rss()
        self.started = time.perf_counter()

    def stop(self) -> tuple[float, float]:
        """(seconds, peak MiB) since start()."""
        self._synchronize()
        seconds = time.perf_counter() - self.started
        if self.device.type == "cuda":
            return seconds, torch.cuda.max_memory_allocated(self.device) / 2**20
        return seconds, _peak_rss_mib()


def _reset_peak_rss() -> None:
    try:
        Path("/proc/self/clear_refs").write_text("5")
    except OSError:
        pass  # not Linux, or not allowed: the peak since the process started


def _peak_rss_mib() -> float:
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


class StepTimer(pl.Callback):
    """Starts the meter after `warmup` training steps and stops it `steps` steps later."""

    def __init__(self, meter: Meter, warmup: int, steps: int) -> None:
        self.meter, self.warmup, self.steps = meter, warmup, steps
        self.done = 0
        self.measured: tuple[float, float] | None = None

    def on_train_batch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule, outputs, batch,
                           batch_idx: int) -> None:
        self.done += 1
        if self.done == self.warmup:
            self.meter.start()
        elif self.done == self.warmup + self.steps:
            self.measured = self.meter.stop()


def fresh_module(cfg: DictConfig, seed: int) -> RadscreenModule:
    """The configured module, initialised from `seed`, in training mode; regression targets scaled as the cohort's
    ages are (Lightning's run sets them again from the training split)."""
    torch.manual_seed(seed)
    module: RadscreenModule = instantiate(cfg.model)
    for name, task in module.tasks.items():
        if task.normalised:
            getattr(module, f"target_stats_{name}").copy_(torch.tensor([55.0, 20.0]))
    return module.train()


def plain_loss(module: RadscreenModule, batch: dict) -> torch.Tensor:
    """The weighted sum of the tasks' losses on the module's forward: what the step optimises, without metrics."""
    outputs = module(batch["image"], batch.get("age"), batch.get("sex"))
    total = torch.zeros((), device=batch["image"].device)
    for name, task in module.tasks.items():
        target = task.head_target(batch["targets"][name], getattr(module, f"target_stats_{name}"))
        loss = task.compute_loss(outputs[name], target)
        if loss is not None:
            total = total + task.weight * loss
    return total


def run_plain(cfg: DictConfig, batches: Iterable, args: argparse.Namespace, precision: str,
              device: torch.device) -> tuple[float, float]:
    """(seconds, peak MiB) of `args.steps` steps of a bare PyTorch loop after `args.warmup` steps."""
    module = fresh_module(cfg, cfg.seed).to(device)
    if args.channels_last and device.type == "cuda":
        module = module.to(memory_format=torch.channels_last)  # features() makes the images channels-last too
    optimizer = module.configure_optimizers()  # the configured optimiser (no schedule: model.scheduler=null)
    dtype = AUTOCAST[precision]
    scaler = torch.amp.GradScaler(device.type, enabled=precision == "16-mixed")
    meter = Meter(device)
    measured = (0.0, 0.0)
    for done, batch in enumerate(itertools.islice(batches, args.warmup + args.steps), start=1):
        batch = to_device(batch, device)
        with torch.autocast(device.type, dtype=dtype, enabled=dtype is not None):
            loss = plain_loss(module, batch)
        optimizer.zero_grad(set_to_none=True)
        scaler.scale(loss).backward()
        scaler.step(optimizer)
        scaler.update()
        if done == args.warmup:
            meter.start()
        elif done == args.warmup + args.steps:
            measured = meter.stop()
    return measured


def run_radscreen(cfg: DictConfig, source: ImageDataModule | DeviceBatches, args: argparse.Namespace,
                  precision: str) -> tuple[float, float]:
    """(seconds, peak MiB) of `args.steps` steps of Lightning's fit on the module after `args.warmup` steps."""
    module = fresh_module(cfg, cfg.seed)
    timer = StepTimer(Meter(torch.device(args.device)), args.warmup, args.steps)
    trainer: pl.Trainer = instantiate(
        cfg.trainer, precision=precision, callbacks=[timer], logger=False, enable_checkpointing=False,
        enable_progress_bar=False, enable_model_summary=False, max_steps=args.warmup + args.steps, max_epochs=-1,
        min_epochs=None, limit_val_batches=0, num_sanity_val_steps=0)
    if isinstance(source, ImageDataModule):
        trainer.fit(module, datamodule=source)
        source.trainer = None  # lets the trainer and its model go
    else:
        trainer.fit(module, train_dataloaders=source)
    if timer.measured is None:
        raise RuntimeError(f"Lightning ran {timer.done} steps, not {args.warmup + args.steps}")
    return timer.measured


def measure(model: str, precision: str, source: str, cfg: DictConfig, datamodule: ImageDataModule,
            args: argparse.Namespace) -> list[Result]:
    """The plain and the radscreen row of one model, precision and input."""
    device = torch.device(args.device)
    length = args.warmup + args.steps
    rows = []
    for loop in LOOPS:
        if loop == "plain":
            batches = memory_batches(datamodule, device, length) if source == "memory" else endless(
                datamodule.train_dataloader())
            seconds, peak = run_plain(cfg, batches, args, precision, device)
        else:
            batches = memory_batches(datamodule, device, length) if source == "memory" else datamodule
            seconds, peak = run_radscreen(cfg, batches, args, precision)
        del batches
        release(device)
        rows.append(Result(model, precision, source, loop, args.steps * args.batch_size / seconds, peak))
    return rows


def release(device: torch.device) -> None:
    """Free what the last run left, so the next one's peak is its own."""
    gc.collect()
    if device.type == "cuda":
        torch.cuda.empty_cache()


def quiet() -> None:
    """Lightning's and the libraries' notes stay out of the table."""
    quiet_lightning()
    warnings.filterwarnings("ignore")
    for name in ("pytorch_lightning", "lightning.pytorch", "lightning_fabric", "radscreen"):
        logging.getLogger(name).setLevel(logging.ERROR)


def describe(args: argparse.Namespace, cfg: DictConfig) -> str:
    """One line naming the device and the settings."""
    name = torch.cuda.get_device_name(args.device) if args.device == "cuda" else "CPU"
    return (f"{name}: {args.size} px, batch {args.batch_size}, {args.steps} timed steps after {args.warmup}, "
            f"{'channels-last' if args.channels_last else 'contiguous'}, {cfg.data.num_workers} loader workers, "
            f"torch {torch.__version__}, Lightning {pl.__version__}")


def run_all(args: argparse.Namespace) -> list[Result]:
    """Every model × precision × input, plain and radscreen, on a cohort written to a temporary folder."""
    quiet()
    if args.device == "cuda":
        torch.backends.cudnn.benchmark = True  # as trainer=gpu sets it, for the plain loop too
    rows: list[Result] = []
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        manifest = write_cohort(work / "cohort", args.images, args.size)
        for model in args.models:
            cfg = compose_config(model, args, manifest, work)
            datamodule = prepared_datamodule(cfg)  # the cache is built once, for the first model
            if model == args.models[0]:
                print(describe(args, cfg), flush=True)
            for precision in args.precisions:
                if args.device == "cuda" and AUTOCAST[precision] is torch.bfloat16 and \
                        not torch.cuda.is_bf16_supported():
                    print(f"{model} {precision}: this GPU has no bfloat16, skipped", flush=True)
                    continue
                for source in args.inputs:
                    rows += measure(model, precision, source, cfg, datamodule, args)
    return rows
