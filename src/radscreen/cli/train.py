"""radscreen-train (python train.py in a checkout): train a model, experiment=NAME [key=value ...] (-m for sweeps)."""

from __future__ import annotations

from omegaconf import DictConfig

from radscreen.cli.hydra_app import run_hydra_command


def job(cfg: DictConfig) -> float | None:
    """Train, test and write the run folder; the sweep objective (cfg.optimized_metric) for Hydra's sweepers."""
    from radscreen.jobs import objective, train

    return objective(cfg, train(cfg))


def run() -> None:
    """Entry point of radscreen-train."""
    run_hydra_command(job, "train")
