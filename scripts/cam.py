#!/usr/bin/env python
"""Class-activation maps of a checkpoint: python scripts/cam.py ckpt_path=CKPT [cam.method=scorecam] [...]."""

from pathlib import Path

import hydra
from omegaconf import DictConfig

from radscreen.utils.project_root import find_project_root

find_project_root(__file__)


@hydra.main(version_base="1.3", config_path="../conf", config_name="cam")
def main(cfg: DictConfig) -> None:
    from radscreen.interpret.commands import cam_command
    from radscreen.training.entry import job_guard

    with job_guard():
        print(cam_command(cfg))


if __name__ == "__main__":
    from radscreen.training.entry import run_hydra

    run_hydra(main, Path(__file__).resolve().parents[1] / "conf")
