#!/usr/bin/env python
"""Probe embeddings for attributes under patient-level stratified k-fold CV, with optional feature removal.

    python scripts/probe.py embeddings=E manifest=M targets=[age_years,sex,bmd_class] \
        [removal.audited=sex removal.reference=bmd_class] [+bins.age_years=[0,40,60,80,200]]
"""

from pathlib import Path

import hydra
from omegaconf import DictConfig

from radscreen.utils.project_root import find_project_root

find_project_root(__file__)


@hydra.main(version_base="1.3", config_path="../conf", config_name="probe")
def main(cfg: DictConfig) -> None:
    from radscreen.probes.commands import probe_command
    from radscreen.training.entry import job_guard

    with job_guard():
        probe_command(cfg)


if __name__ == "__main__":
    from radscreen.training.entry import run_hydra

    run_hydra(main, Path(__file__).resolve().parents[1] / "conf")
