"""fit(cfg): seed, build the data module, model, loggers, callbacks and Trainer from the config, and fit.

What happens after fitting (evaluating the best checkpoint, calibration, the model card) is radscreen.jobs'."""

from __future__ import annotations

import logging
import math
import warnings
from dataclasses import dataclass
from pathlib import Path

import pytorch_lightning as pl
import torch
from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf
from pytorch_lightning.callbacks import LearningRateMonitor, ModelSummary, ProgressBar

from radscreen.data.datamodules import ImageDataModule
from radscreen.errors import ConfigError
from radscreen.runs import find_last_checkpoint, hydra_overrides, write_resolved_config

log = logging.getLogger(__name__)


def resolve_ckpt_path(cfg: DictConfig) -> str | None:
    """ckpt_path as given, or for 'last' this run's own newest last.ckpt (None: start fresh, with a note)."""
    value = cfg.get("ckpt_path")
    if value != "last":
        if value and not Path(value).is_file():
            raise ConfigError(f"ckpt_path={value} does not exist")
        return value
    own = Path(cfg.paths.output_dir) / "checkpoints" / "last.ckpt"
    if own.is_file():  # a fixed hydra.run.dir (e.g. a requeued cluster job): the folder's own last checkpoint
        log.info("resuming from %s", own)
        return str(own)
    overrides = hydra_overrides()
    if overrides is None:
        raise ConfigError("ckpt_path=last works from train.py (it matches the command-line overrides)")
    found = find_last_checkpoint(Path(cfg.paths.log_dir) / cfg.run_name, overrides)
    if found is None:
        log.warning("ckpt_path=last: no earlier run of %s with these overrides; starting from scratch", cfg.run_name)
        return None
    log.info("resuming from %s", found)
    return str(found)


def keep_earlier_logs(logger_cfg: DictConfig | None) -> None:
    """Loggers whose folder already holds logs (a run resumed in the same run folder) write a new version beside
    them, `resumed_<n>`, instead of deleting them as Lightning's CSVLogger does with version ''."""
    for cfg in (logger_cfg or {}).values():
        if not isinstance(cfg, DictConfig) or cfg.get("version", None) != "" or "save_dir" not in cfg:
            continue
        folder = Path(cfg.save_dir) / str(cfg.get("name") or "")
        if folder.is_dir() and any(folder.iterdir()):
            n = 1
            while (folder / f"resumed_{n}").exists():
                n += 1
            cfg.version = f"resumed_{n}"
            log.info("%s already holds logs: this run logs to %s", folder, folder / cfg.version)


def wanted_callbacks(callbacks: list, trainer_cfg: DictConfig, has_loggers: bool) -> list:
    """The configured callbacks that fit the trainer settings: `trainer.enable_progress_bar=false` drops the
    progress bar, `enable_model_summary=false` the summary and no logger the learning-rate monitor (Lightning
    would refuse the first two, and the last has nothing to log to)."""
    unwanted: list[type] = [] if has_loggers else [LearningRateMonitor]
    if not trainer_cfg.get("enable_progress_bar", True):
        unwanted.append(ProgressBar)
    if not trainer_cfg.get("enable_model_summary", True):
        unwanted.append(ModelSummary)
    return [c for c in callbacks if not isinstance(c, tuple(unwanted))]


def _instantiate_all(group: DictConfig | None) -> list:
    return [instantiate(c) for c in (group or {}).values() if isinstance(c, DictConfig) and "_target_" in c]


class _DropAdvertisements(logging.Filter):
    """Lightning's tip to install a cloud logger, printed by every Trainer: not information about the run."""

    def filter(self, record: logging.LogRecord) -> bool:
        return "litlogger" not in str(record.msg)


def quiet_lightning() -> None:
    """Keep Lightning's advertisements and its deprecation notice about its own code (torch's pytree LeafSpec,
    printed at every loader) out of the console and train.log (idempotent)."""
    warnings.filterwarnings("ignore", message=r".*isinstance\(treespec, LeafSpec\)")
    rank_zero = logging.getLogger("pytorch_lightning.utilities.rank_zero")
    if not any(isinstance(f, _DropAdvertisements) for f in rank_zero.filters):
        rank_zero.addFilter(_DropAdvertisements())


@dataclass
class Fitted:
    """What fitting leaves for the evaluation: the Trainer, the data module, the run folder and the best
    checkpoint (the last one when nothing was monitored), with the train / val metrics logged at the end."""

    trainer: pl.Trainer
    datamodule: ImageDataModule
    output_dir: Path
    best: str
    metrics: dict[str, float]

    @property
    def best_score(self) -> float | None:
        callback = self.trainer.checkpoint_callback
        return float(callback.best_model_score) if callback and callback.best_model_score is not None else None


def fit(cfg: DictConfig) -> Fitted | None:
    """Seed everything from cfg.seed, build and fit; None on the ranks other than zero of a multi-GPU run (their
    process group is closed once fitting ends)."""
    quiet_lightning()
    pl.seed_everything(cfg.seed, workers=True, verbose=False)
    log.info("seed %d", cfg.seed)
    output_dir = Path(cfg.paths.output_dir)
    ckpt_path = resolve_ckpt_path(cfg)

    datamodule: ImageDataModule = instantiate(cfg.data)
    datamodule.check_inputs()  # a wrong manifest, image folder or task column stops here, before any training
    model = instantiate(cfg.model)
    keep_earlier_logs(cfg.get("logger"))
    loggers = _instantiate_all(cfg.get("logger"))
    callbacks = wanted_callbacks(_instantiate_all(cfg.get("callbacks")), cfg.trainer, has_loggers=bool(loggers))
    trainer: pl.Trainer = instantiate(cfg.trainer, callbacks=callbacks, logger=loggers or False)
    if trainer.is_global_zero:
        output_dir.mkdir(parents=True, exist_ok=True)
        write_resolved_config(cfg, output_dir)
        for logger in loggers:
            logger.log_hyperparams(OmegaConf.to_container(cfg, resolve=True))
    trainer.fit(model, datamodule=datamodule, ckpt_path=ckpt_path)

    checkpoint_cb = trainer.checkpoint_callback
    best = (checkpoint_cb.best_model_path or checkpoint_cb.last_model_path) if checkpoint_cb else ""
    metrics = {k: float(v) for k, v in trainer.callback_metrics.items() if k.startswith(("train/", "val/"))}
    if trainer.world_size > 1:
        torch.distributed.barrier()
        if not trainer.is_global_zero:
            return None
        torch.distributed.destroy_process_group()
    return Fitted(trainer, datamodule, output_dir, best, metrics)


def objective(cfg: DictConfig, metrics: dict[str, float]) -> float | None:
    """The value a Hydra sweeper optimises; fails loudly when the named metric was not produced."""
    name = cfg.get("optimized_metric")
    if not name:
        return None
    if name not in metrics or math.isnan(metrics[name]):
        raise ConfigError(f"optimized_metric '{name}' was not produced by this run; it has: "
                          f"{', '.join(sorted(metrics))}")
    return metrics[name]
