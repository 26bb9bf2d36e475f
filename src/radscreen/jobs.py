"""train(cfg) and evaluate(cfg): what train.py and eval.py run, from fitting to the model card.

The top of the package: it joins training (radscreen.training) with the evaluation of what was trained
(radscreen.evaluation), which neither of them imports from the other.
"""

from __future__ import annotations

import logging
import shlex
from collections.abc import Mapping
from pathlib import Path

from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf

from radscreen.data.datamodules import ImageDataModule
from radscreen.errors import ConfigError
from radscreen.evaluation.analysis import ReportOptions, TaskTables, evaluation_tables, load_run
from radscreen.evaluation.checkpoint import evaluate_checkpoint
from radscreen.evaluation.model_card import write_model_card
from radscreen.evaluation.report import build_report
from radscreen.evaluation.screening import OperatingOptions
from radscreen.runs import (
    clear_failed,
    hydra_overrides,
    load_run_config,
    saved_overrides,
    write_metrics,
    write_resolved_config,
)
from radscreen.training.checks import check_required_files, resolve_monitor
from radscreen.training.run import fit, objective, quiet_lightning
from radscreen.utils.console import print_metrics, print_paths

log = logging.getLogger(__name__)

__all__ = ["evaluate", "objective", "report_options", "train"]


def train(cfg: DictConfig) -> dict[str, float]:
    """Fit, then (rank zero) evaluate the best checkpoint: returns the metrics (also in metrics.json)."""
    quiet_lightning()
    check_required_files(cfg)
    resolve_monitor(cfg)
    operating = OperatingOptions.from_config(cfg)  # calibration / threshold mistakes stop here, before training
    card_options = report_options(cfg)
    fitted = fit(cfg)
    if fitted is None:  # not rank zero
        return {}
    output_dir, datamodule, best, metrics = fitted.output_dir, fitted.datamodule, fitted.best, fitted.metrics
    evaluated = bool(cfg.get("evaluate", True) and best)
    if evaluated:
        metrics.update(evaluate_checkpoint(best, datamodule, cfg.trainer, output_dir, operating=operating,
                                           source=f"validation split of {output_dir}, checkpoint {best}"))
    datamodule.write_selection(output_dir)
    write_metrics(metrics, output_dir, {"best_checkpoint": _relative_to(best, output_dir), "monitor": cfg.monitor,
                                        "best_score": fitted.best_score, "data": datamodule.describe()})
    clear_failed(output_dir)  # a run resumed in its own folder that now ends well is no longer failed
    print_metrics(metrics, cfg.run_name, {"run folder": output_dir})
    if evaluated:
        print_paths({"model card": write_card(output_dir, card_options, "train.py")})
    return metrics


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
        print_paths({"report": build_report(output_dir, options=options, tables=tables)})
    print_paths({"model card": write_card(output_dir, options, "eval.py", tables)})
    return metrics


def report_options(cfg: DictConfig) -> ReportOptions:
    """The report / model-card options of a train.py or eval.py config (`report.*`): the saved operating point's
    threshold, the subgroups and the bootstrap resamples."""
    report = cfg.get("report") or {}
    return ReportOptions(None, float(report.get("target_sensitivity", 0.9)), tuple(report.get("subgroups", ("sex",))),
                         int(report.get("n_boot", 1000)))


def reproduce_command(script: str, folder: Path) -> str:
    """`python <script> <overrides>` of this command (Hydra's overrides, else the folder's .hydra/overrides.yaml)."""
    overrides = hydra_overrides()
    if overrides is None:
        overrides = saved_overrides(folder)
    return " ".join(["python", script, *(shlex.quote(str(o)) for o in overrides)])


def write_card(output_dir: Path, options: ReportOptions, script: str,
               tables: Mapping[str, TaskTables] | None = None) -> Path:
    """model_card.md of the evaluation in output_dir (radscreen.evaluation.model_card)."""
    return write_model_card(output_dir, options, reproduce_command(script, output_dir), tables=tables)


def _relative_to(path: str, folder: Path) -> str:
    """`path` relative to the run folder when inside it (metrics.json then holds no machine-specific path)."""
    try:
        return str(Path(path).resolve().relative_to(folder.resolve()))
    except ValueError:
        return path
