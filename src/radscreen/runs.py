"""The run folder, in one place: its layout, finding a run from a checkpoint, its config, its checkpoints, its
metrics and its FAILED marker. Training writes run folders; evaluation, CAMs, probes, prediction and export read
them through this module.

    <run folder>/
      .hydra/config.yaml, overrides.yaml   the composed config and the command line (Hydra)
      config_resolved.yaml                 every interpolation resolved (paths, upstream checkpoints)
      checkpoints/best.ckpt, last.ckpt     the monitored best and the newest epoch
      metrics.json                         logged and evaluated metrics, best checkpoint, data summary
      predictions_<split>.csv              one row per image and task outputs
      FAILED                               only when the run ended with an error (the error line)
"""

from __future__ import annotations

import json
import logging
import traceback
from pathlib import Path

from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig, OmegaConf

from radscreen.errors import ConfigError, UserError
from radscreen.models.module import RadscreenModule, load_module
from radscreen.utils.tables import write_text

METRICS_FILE = "metrics.json"
RESOLVED_CONFIG = "config_resolved.yaml"
HYDRA_CONFIG = Path(".hydra") / "config.yaml"
HYDRA_OVERRIDES = Path(".hydra") / "overrides.yaml"
FAILED_MARKER = "FAILED"
# Overrides that may differ between a run and its resumption: where to resume, and how long to train.
RESUME_FREE = ("ckpt_path=", "hydra.", "trainer.max_epochs=", "trainer.min_epochs=", "trainer.max_time=",
               "trainer.max_steps=")


# ---------------------------------------------------------------------- writing
def write_resolved_config(cfg: DictConfig, output_dir: Path) -> None:
    """The run's config with every interpolation resolved (paths, upstream checkpoints), beside .hydra/."""
    (output_dir / RESOLVED_CONFIG).write_text(OmegaConf.to_yaml(cfg, resolve=True))


def write_metrics(metrics: dict, output_dir: Path, extra: dict | None = None) -> Path:
    """metrics.json of a run (written atomically)."""
    return write_text(json.dumps({**(extra or {}), "metrics": metrics}, indent=2, sort_keys=True),
                      output_dir / METRICS_FILE)


def read_metrics(directory: Path) -> dict[str, float]:
    """The `metrics` of a run's metrics.json; {} when it has none."""
    path = Path(directory) / METRICS_FILE
    return json.loads(path.read_text()).get("metrics", {}) if path.exists() else {}


# ---------------------------------------------------------------------- failure marker
def is_failed(run_dir: str | Path) -> bool:
    """Whether a run folder belongs to a run that ended with an error."""
    return (Path(run_dir) / FAILED_MARKER).is_file()


def mark_failed(run_dir: str | Path, error: BaseException) -> Path | None:
    """Write FAILED into the run folder (the error line; the traceback too when it is not a user error) and
    send the error to the run's log files only (the console gets the error once, from the command)."""
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        return None
    line = f"{type(error).__name__}: {error}" if not isinstance(error, UserError) else f"error: {error}"
    detail = "" if isinstance(error, UserError) else "".join(traceback.format_exception(error))
    marker = write_text(f"{line}\n{detail}", run_dir / FAILED_MARKER)
    record = logging.LogRecord("radscreen", logging.ERROR, __file__, 0, "run failed: %s", (line,), None)
    for handler in logging.getLogger().handlers:
        if isinstance(handler, logging.FileHandler):
            handler.handle(record)
    return marker


def clear_failed(run_dir: str | Path) -> None:
    """Remove the FAILED marker (a run resumed in the same folder that has now finished)."""
    (Path(run_dir) / FAILED_MARKER).unlink(missing_ok=True)


def check_run_folder(directory: str | Path) -> Path:
    """`directory` as a Path when it is a run folder that did not fail; else UserError saying what it is."""
    directory = Path(directory)
    if not directory.exists():
        raise UserError(f"run folder {directory} does not exist")
    if not directory.is_dir():
        raise UserError(f"{directory} is a file, not a run folder; give the folder that holds predictions_*.csv")
    if is_failed(directory):
        raise UserError(f"run {directory} failed (see {directory / FAILED_MARKER}); its predictions are incomplete")
    return directory


# ---------------------------------------------------------------------- finding and reading
def find_run_dir(checkpoint: Path) -> Path:
    """The training run folder of a checkpoint: the nearest parent holding .hydra/config.yaml."""
    for parent in Path(checkpoint).resolve().parents:
        if (parent / HYDRA_CONFIG).is_file():
            return parent
    raise ConfigError(f"no .hydra/config.yaml above {checkpoint}: eval.py needs a checkpoint inside a train.py run")


def run_config(directory: Path) -> dict:
    """A run folder's config: config_resolved.yaml (written by train.py / eval.py), else Hydra's unresolved
    .hydra/config.yaml, following an eval run back to its training run."""
    resolved, raw = directory / RESOLVED_CONFIG, directory / HYDRA_CONFIG
    path = resolved if resolved.exists() else raw
    config = OmegaConf.to_container(OmegaConf.load(path), resolve=False) if path.exists() else {}
    if "task" not in config and config.get("ckpt_path"):
        return run_config(find_run_dir(Path(config["ckpt_path"])))
    return config


def hydra_overrides() -> list[str] | None:
    """The running Hydra job's command-line overrides; None outside a Hydra app."""
    return list(HydraConfig.get().overrides.task) if HydraConfig.initialized() else None


def saved_overrides(folder: Path) -> list[str]:
    """The command-line overrides a run folder was made with (.hydra/overrides.yaml); [] when it has none."""
    saved = folder / HYDRA_OVERRIDES
    return list(OmegaConf.load(saved)) if saved.is_file() else []


def load_run_config(cfg: DictConfig) -> tuple[DictConfig, list[str]]:
    """The training run's config of cfg.ckpt_path with this command's key=value overrides that name one of its
    keys (data.manifest=…), and those overrides. Paths come from the current command (its own output folder)."""
    checkpoint = Path(cfg.ckpt_path)
    if not checkpoint.is_file():
        raise ConfigError(f"ckpt_path={checkpoint} does not exist")
    run_cfg = OmegaConf.load(find_run_dir(checkpoint) / HYDRA_CONFIG)
    overrides = [o for o in (hydra_overrides() or []) if not o.startswith(("ckpt_path=", "hydra."))]
    applicable = [o for o in overrides if o.lstrip("+~").split("=")[0].split(".")[0] in run_cfg]
    run_cfg = OmegaConf.merge(run_cfg, OmegaConf.from_dotlist(applicable))
    run_cfg.paths = cfg.paths
    return run_cfg, applicable


# ---------------------------------------------------------------------- checkpoints
def load_checkpoint(checkpoint: str | Path, map_location: str = "cpu") -> RadscreenModule:
    """The trained module of a checkpoint, in eval mode (upstream files are not needed: see load_module)."""
    if not Path(checkpoint).is_file():
        raise ConfigError(f"ckpt_path={checkpoint} does not exist")
    return load_module(checkpoint, map_location)


def _comparable(overrides: list[str]) -> list[str]:
    return sorted(o for o in overrides if not o.lstrip("+~").startswith(RESUME_FREE))


def find_last_checkpoint(run_root: str | Path, overrides: list[str]) -> Path | None:
    """`ckpt_path=last`: newest `checkpoints/last.ckpt` under run_root/*/ (runs) or run_root/*/*/ (multirun jobs)
    whose saved command-line overrides equal `overrides` (ckpt_path, hydra.* and training length ignored)."""
    wanted = _comparable(overrides)
    candidates = []
    for last in list(Path(run_root).glob("runs/*/checkpoints/last.ckpt")) + \
            list(Path(run_root).glob("multiruns/*/*/checkpoints/last.ckpt")):
        folder = last.parent.parent
        if (folder / HYDRA_OVERRIDES).exists() and _comparable(saved_overrides(folder)) == wanted:
            candidates.append(last)
    return max(candidates, key=lambda p: p.stat().st_mtime) if candidates else None
