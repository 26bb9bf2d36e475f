"""train(cfg) and evaluate(cfg): what train.py and eval.py run."""

from __future__ import annotations

import json
import logging
import math
import shlex
import warnings
from collections.abc import Mapping
from pathlib import Path

import pytorch_lightning as pl
import torch
from hydra.core.hydra_config import HydraConfig
from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf
from pytorch_lightning.callbacks import LearningRateMonitor, ModelSummary, ProgressBar
from rich.console import Console
from rich.table import Table

from radscreen.data.datamodules import ImageDataModule
from radscreen.evaluation.analysis import ReportOptions, TaskTables, evaluation_tables, load_run
from radscreen.evaluation.scores import uncertainty_scores
from radscreen.evaluation.screening import OperatingOptions, calibrate_predictions
from radscreen.models.module import load_module
from radscreen.training.checks import ConfigError, check_required_files, resolve_monitor
from radscreen.training.failure import clear_failed
from radscreen.training.predictions import prediction_frame
from radscreen.training.resume import find_last_checkpoint
from radscreen.utils.tables import write_csv, write_text

log = logging.getLogger(__name__)
METRICS_FILE = "metrics.json"
RESOLVED_CONFIG = "config_resolved.yaml"


def write_resolved_config(cfg: DictConfig, output_dir: Path) -> None:
    """The run's config with every interpolation resolved (paths, upstream checkpoints), beside .hydra/."""
    (output_dir / RESOLVED_CONFIG).write_text(OmegaConf.to_yaml(cfg, resolve=True))


def _hydra_overrides() -> list[str] | None:
    return list(HydraConfig.get().overrides.task) if HydraConfig.initialized() else None


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
    overrides = _hydra_overrides()
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


def evaluate_checkpoint(checkpoint: str | Path, datamodule: ImageDataModule, trainer_cfg: DictConfig,
                        output_dir: Path, predict_splits: list[str] | None = None,
                        operating: OperatingOptions | None = None, source: str = "") -> dict[str, float]:
    """Validation, test and external metrics of a checkpoint on one device, and a predictions CSV per split.

    With `operating`, every binary task is calibrated on the validation predictions (`<task>_pred_calibrated` in
    each CSV), its threshold chosen on them and operating_point.json saved in output_dir; ECE / Brier before and
    after and the metrics at that threshold join the returned metrics (radscreen.evaluation.screening)."""
    quiet_lightning()
    module = load_module(checkpoint)
    accelerator = trainer_cfg.get("accelerator", "auto")
    trainer = pl.Trainer(accelerator=accelerator, devices=1, precision=trainer_cfg.get("precision", "32-true"),
                         logger=False, enable_checkpointing=False, enable_model_summary=False,
                         enable_progress_bar=False, default_root_dir=str(output_dir))
    metrics: dict[str, float] = {}
    if "val" in datamodule.datasets:
        metrics.update(trainer.validate(module, dataloaders=datamodule.val_dataloader(), verbose=False)[0])
    if datamodule.test_splits:
        for results in trainer.test(module, datamodule=datamodule, verbose=False):
            metrics.update(results)
    frames = {}
    for split in predict_splits or list(datamodule.datasets):
        if split not in datamodule.datasets:
            continue
        batches = trainer.predict(module, dataloaders=datamodule.prediction_loader(split))
        frames[split] = frame = prediction_frame(batches, datamodule.frame, module.tasks)
        for name, task in module.tasks.items():
            labelled = frame.dropna(subset=[f"{name}_target"])
            if task.loss == "gaussian_nll" and split != "train" and len(labelled):
                scores = uncertainty_scores(labelled[f"{name}_target"], labelled[f"{name}_pred"],
                                            labelled[f"{name}_var"])
                metrics.update({f"{split}/{name}_{key}": value for key, value in scores.items()})
    if operating is not None:
        point, calibrated = calibrate_predictions(frames, module.tasks, operating, source)
        metrics.update(calibrated)
        if point.tasks:
            log.info("operating point: %s", point.save(output_dir))
    for split, frame in frames.items():
        write_csv(frame, output_dir / f"predictions_{split}.csv")
    return {k: float(v) for k, v in metrics.items()}


def write_metrics(metrics: dict, output_dir: Path, extra: dict | None = None) -> Path:
    """metrics.json of a run (written atomically)."""
    return write_text(json.dumps({**(extra or {}), "metrics": metrics}, indent=2, sort_keys=True),
                      output_dir / METRICS_FILE)


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


def print_metrics(metrics: dict[str, float], title: str, paths: Mapping[str, str | Path]) -> None:
    """The end-of-run table, then each path on a line of its own that is never wrapped (copyable)."""
    table = Table(title=title)
    table.add_column("metric")
    table.add_column("value", justify="right")
    for key in sorted(metrics):
        if key.startswith(("val/", "test/", "external/")) and not key.endswith("_loss"):
            table.add_row(key, f"{metrics[key]:.4f}")
    Console().print(table)
    print_paths(paths)


def print_paths(paths: Mapping[str, str | Path]) -> None:
    """Each path on a line of its own that is never wrapped (copyable)."""
    console = Console()
    for label, path in paths.items():
        console.print(f"{label}: {path}", soft_wrap=True, highlight=False, markup=False)


def train(cfg: DictConfig) -> dict[str, float]:
    """Fit, then (rank zero) evaluate the best checkpoint: returns the metrics (also in metrics.json)."""
    quiet_lightning()
    check_required_files(cfg)
    resolve_monitor(cfg)
    operating = OperatingOptions.from_config(cfg)  # calibration / threshold mistakes stop here, before training
    card_options = report_options(cfg)
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
            return {}
        torch.distributed.destroy_process_group()
    evaluated = bool(cfg.get("evaluate", True) and best)
    if evaluated:
        metrics.update(evaluate_checkpoint(best, datamodule, cfg.trainer, output_dir, operating=operating,
                                           source=f"validation split of {output_dir}, checkpoint {best}"))
    datamodule.write_selection(output_dir)
    write_metrics(metrics, output_dir, {"best_checkpoint": _relative_to(best, output_dir), "monitor": cfg.monitor,
                                        "best_score": float(checkpoint_cb.best_model_score)
                                        if checkpoint_cb and checkpoint_cb.best_model_score is not None else None,
                                        "data": datamodule.describe()})
    clear_failed(output_dir)  # a run resumed in its own folder that now ends well is no longer failed
    print_metrics(metrics, cfg.run_name, {"run folder": output_dir})
    if evaluated:
        print_paths({"model card": write_card(output_dir, card_options, "train.py")})
    return metrics


def report_options(cfg: DictConfig) -> ReportOptions:
    """The report / model-card options of a train.py or eval.py config (`report.*`): the saved operating point's
    threshold, the subgroups and the bootstrap resamples."""
    report = cfg.get("report") or {}
    return ReportOptions(None, float(report.get("target_sensitivity", 0.9)), tuple(report.get("subgroups", ("sex",))),
                         int(report.get("n_boot", 1000)))


def reproduce_command(script: str, folder: Path) -> str:
    """`python <script> <overrides>` of this command (Hydra's overrides, else the folder's .hydra/overrides.yaml)."""
    overrides = _hydra_overrides()
    if overrides is None:
        saved = folder / ".hydra" / "overrides.yaml"
        overrides = list(OmegaConf.load(saved)) if saved.is_file() else []
    return " ".join(["python", script, *(shlex.quote(str(o)) for o in overrides)])


def write_card(output_dir: Path, options: ReportOptions, script: str,
               tables: Mapping[str, TaskTables] | None = None) -> Path:
    """model_card.md of the evaluation in output_dir (radscreen.evaluation.model_card)."""
    from radscreen.evaluation.model_card import write_model_card

    return write_model_card(output_dir, options, reproduce_command(script, output_dir), tables=tables)


def _relative_to(path: str, folder: Path) -> str:
    """`path` relative to the run folder when inside it (metrics.json then holds no machine-specific path)."""
    try:
        return str(Path(path).resolve().relative_to(folder.resolve()))
    except ValueError:
        return path


def objective(cfg: DictConfig, metrics: dict[str, float]) -> float | None:
    """The value a Hydra sweeper optimises; fails loudly when the named metric was not produced."""
    name = cfg.get("optimized_metric")
    if not name:
        return None
    if name not in metrics or math.isnan(metrics[name]):
        raise ConfigError(f"optimized_metric '{name}' was not produced by this run; it has: "
                          f"{', '.join(sorted(metrics))}")
    return metrics[name]


def find_run_dir(checkpoint: Path) -> Path:
    """The training run folder of a checkpoint: the nearest parent holding .hydra/config.yaml."""
    for parent in checkpoint.resolve().parents:
        if (parent / ".hydra" / "config.yaml").is_file():
            return parent
    raise ConfigError(f"no .hydra/config.yaml above {checkpoint}: eval.py needs a checkpoint inside a train.py run")


def load_run_config(cfg: DictConfig) -> tuple[DictConfig, list[str]]:
    """The training run's config of cfg.ckpt_path with this command's key=value overrides that name one of its
    keys (data.manifest=…), and those overrides. Paths come from the current command (its own output folder)."""
    checkpoint = Path(cfg.ckpt_path)
    if not checkpoint.is_file():
        raise ConfigError(f"ckpt_path={checkpoint} does not exist")
    run_cfg = OmegaConf.load(find_run_dir(checkpoint) / ".hydra" / "config.yaml")
    overrides = [o for o in (_hydra_overrides() or []) if not o.startswith(("ckpt_path=", "hydra."))]
    applicable = [o for o in overrides if o.lstrip("+~").split("=")[0].split(".")[0] in run_cfg]
    run_cfg = OmegaConf.merge(run_cfg, OmegaConf.from_dotlist(applicable))
    run_cfg.paths = cfg.paths
    return run_cfg, applicable


def evaluate(cfg: DictConfig) -> dict[str, float]:
    """eval.py: the run's own config + key=value overrides → metrics and predictions of the checkpoint."""
    if OmegaConf.is_missing(cfg, "ckpt_path") or not cfg.ckpt_path:
        raise ConfigError("eval.py needs ckpt_path=RUN/checkpoints/best.ckpt (a checkpoint written by train.py)")
    operating = OperatingOptions.from_config(cfg)  # a calibration / threshold mistake stops before any evaluation
    options = report_options(cfg)
    checkpoint = Path(cfg.ckpt_path)
    run_cfg, overrides = load_run_config(cfg)
    output_dir = Path(cfg.paths.output_dir)
    output_dir.mkdir(parents=True, exist_ok=True)
    write_resolved_config(OmegaConf.merge(run_cfg, {"ckpt_path": str(checkpoint), "calibration": operating.calibration,
                                                    "report": cfg.get("report") or {}}), output_dir)
    datamodule: ImageDataModule = instantiate(run_cfg.data)
    datamodule.prepare_data()
    datamodule.setup("test")
    metrics = evaluate_checkpoint(checkpoint, datamodule, run_cfg.trainer, output_dir, operating=operating,
                                  source=f"validation split evaluated in {output_dir}, checkpoint {checkpoint}")
    datamodule.write_selection(output_dir)
    write_metrics(metrics, output_dir, {"checkpoint": str(checkpoint), "overrides": overrides,
                                        "data": datamodule.describe()})
    print_metrics(metrics, "eval", {"checkpoint": checkpoint, "eval folder": output_dir})
    tables = evaluation_tables(load_run(output_dir), options)  # computed once: the report and the card show them
    if (cfg.get("report") or {}).get("enabled", False):
        from radscreen.evaluation.report import build_report

        print_paths({"report": build_report(output_dir, options=options, tables=tables)})
    print_paths({"model card": write_card(output_dir, options, "eval.py", tables)})
    return metrics
