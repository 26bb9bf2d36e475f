"""Start-up checks that turn silent misconfiguration into one clear error before any training."""

from __future__ import annotations

from pathlib import Path

from omegaconf import DictConfig, OmegaConf, open_dict

from radscreen.errors import ConfigError
from radscreen.tasks import Task, as_tasks

__all__ = ["ConfigError", "check_required_files", "logged_metric_names", "resolve_monitor"]


def metric_names(task: Task, stage: str) -> list[str]:
    """The metric keys a task logs at a stage, e.g. ['val/age_mae', ...]."""
    return [f"{stage}/{task.name}_{name}" for name in task.metrics().keys()]


def logged_metric_names(cfg: DictConfig, stages: tuple[str, ...] = ("train", "val", "test")) -> list[str]:
    """Every metric key the module will log for the configured tasks."""
    tasks = as_tasks(OmegaConf.to_container(cfg.task, resolve=True))
    names = []
    for stage in stages:
        names.append(f"{stage}/loss")
        for task in tasks.values():
            names += [f"{stage}/{task.name}_loss", *metric_names(task, stage)]
    return names


def resolve_monitor(cfg: DictConfig) -> None:
    """Fill monitor / monitor_mode from the first task when unset, then check the metric is really logged."""
    tasks = as_tasks(OmegaConf.to_container(cfg.task, resolve=True))
    first = next(iter(tasks.values()))
    metric, mode = first.monitor
    with open_dict(cfg):
        if cfg.get("monitor") is None:
            cfg.monitor = f"val/{first.name}_{metric}"
            cfg.monitor_mode = mode
        elif cfg.get("monitor_mode") is None:
            cfg.monitor_mode = "min" if cfg.monitor.endswith(("loss", "mae", "rmse")) else "max"
    known = logged_metric_names(cfg, ("val",))
    if cfg.monitor not in known:
        raise ConfigError(f"monitor '{cfg.monitor}' is never logged; choose one of: {', '.join(known)}")
    objective = cfg.get("optimized_metric")
    if objective and objective not in logged_metric_names(cfg, ("train", "val", "test", "external")):
        raise ConfigError(f"optimized_metric '{objective}' is never logged; e.g. {', '.join(known[:4])}")


def check_required_files(cfg: DictConfig) -> None:
    """Every key listed in cfg.requires must name an existing file (upstream checkpoints)."""
    for key in cfg.get("requires") or []:
        value = OmegaConf.select(cfg, key)
        experiment = cfg.get("run_name", "this experiment")
        if not value:
            raise ConfigError(f"{experiment} needs {key}=PATH (the checkpoint of the upstream run, e.g. "
                              f"logs/<run>/runs/<time>/checkpoints/best.ckpt); set it on the command line or in "
                              f"conf/local/default.yaml")
        if not Path(str(value)).is_file():
            raise ConfigError(f"{experiment}: {key}={value} does not exist")
