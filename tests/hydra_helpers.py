"""Compose the real config tree (conf/) for in-process runs of train(), as lightning-hydra-template's tests do."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from hydra import compose, initialize_config_dir
from hydra.core.global_hydra import GlobalHydra
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig, open_dict

from radscreen.utils.project_root import find_project_root

ROOT = find_project_root(__file__)  # also sets $PROJECT_ROOT for configs composed in the tests
CONF = str(ROOT / "conf")
# the run seed of the training tests: `RADSCREEN_TEST_SEED=3 make test` checks that nothing passes by luck of seed 0
TEST_SEED = int(os.environ.get("RADSCREEN_TEST_SEED", "0"))


def tiny_overrides(manifest: Path, workdir: Path, cache: Path) -> list[str]:
    """Small, fast settings every training test shares: tiny backbone, 32 px, CPU, no loggers, a model card with 20
    bootstrap resamples."""
    return [f"seed={TEST_SEED}", f"data.manifest={manifest}", "data.image_size=32", "data.num_workers=0",
            "data.batch_size=16", "data.show_progress=false", "backbone=test_resnet", "trainer=cpu", "logger=none",
            "callbacks=none", "trainer.enable_progress_bar=false", "trainer.enable_model_summary=false",
            f"paths.root_dir={workdir}", f"paths.log_dir={workdir}/logs", f"paths.cache_dir={cache}",
            "report.n_boot=20", f"hydra.run.dir={workdir}/run"]


def compose_config(config_name: str, overrides: list[str], output_dir: Path) -> DictConfig:
    """A composed primary config (train.yaml, eval.yaml) with HydraConfig set, so ${hydra:...} and the command's
    overrides resolve outside @hydra.main, and paths.output_dir set to `output_dir`."""
    GlobalHydra.instance().clear()
    with initialize_config_dir(config_dir=CONF, version_base="1.3"):
        cfg = compose(config_name=config_name, overrides=overrides, return_hydra_config=True)
    HydraConfig.instance().set_config(cfg)
    with open_dict(cfg):
        cfg.paths.output_dir = str(output_dir)
        del cfg["hydra"]
    return cfg


def compose_train(overrides: list[str], output_dir: Path) -> DictConfig:
    """The composed train.yaml, for in-process train()."""
    return compose_config("train", overrides, output_dir)


def run_script(script: str, *args: str, cwd: Path = ROOT, timeout: int = 300) -> subprocess.CompletedProcess:
    """Run train.py / eval.py as a user would; returns the finished process (stdout+stderr captured). train.py and
    eval.py get `report.n_boot=20` unless the test sets it: the model card's bootstrap is not what is tested."""
    if script in ("train.py", "eval.py") and not any(a.startswith("report.n_boot=") for a in args):
        args = (*args, "report.n_boot=20")
    return subprocess.run([sys.executable, str(ROOT / script), *args], cwd=cwd, capture_output=True, text=True,
                          timeout=timeout)


def compose_eval(overrides: list[str], output_dir: Path) -> DictConfig:
    """The composed eval.yaml (its overrides reach load_run_config), for in-process evaluate()."""
    return compose_config("eval", overrides, output_dir)
