"""radscreen-probe (python scripts/probe.py in a checkout): probe embeddings for attributes under patient-level
stratified k-fold CV, with optional feature removal.

    radscreen-probe embeddings=E manifest=M targets=[age_years,sex,bmd_class] \
        [removal.audited=sex removal.reference=bmd_class] [+bins.age_years=[0,40,60,80,200]]
"""

from __future__ import annotations

from omegaconf import DictConfig

from radscreen.cli.hydra_app import run_hydra_command


def job(cfg: DictConfig) -> None:
    """Run the probes and write their tables."""
    from radscreen.probes.commands import probe_command

    probe_command(cfg)


def run() -> None:
    """Entry point of radscreen-probe."""
    run_hydra_command(job, "probe")
