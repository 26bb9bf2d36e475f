"""How every Hydra command starts: the project root found, the config tree located (a checkout's conf/ or the copy
an installed wheel ships), the job run under `job_guard` so that a user's mistake is one line and exit code 2."""

from __future__ import annotations

import functools
from collections.abc import Callable

import hydra
from omegaconf import DictConfig

from radscreen.training.entry import job_guard, run_hydra
from radscreen.utils.project_root import config_dir, find_project_root


def run_hydra_command(job: Callable[[DictConfig], object], config_name: str) -> None:
    """Run `job(cfg)` as a Hydra app on `<config tree>/<config_name>.yaml`, with the command line's overrides.

    Hydra names the job (and its log file, e.g. train.log) after the module that defines `job`, so each command's
    job lives in radscreen/cli/<name>.py."""
    find_project_root()
    conf = config_dir()

    @functools.wraps(job)
    def guarded(cfg: DictConfig) -> object:
        with job_guard():
            return job(cfg)

    run_hydra(hydra.main(version_base="1.3", config_path=str(conf), config_name=config_name)(guarded), conf)
