"""radscreen-eval (python eval.py in a checkout): evaluate a checkpoint, ckpt_path=RUN/checkpoints/best.ckpt
[data.manifest=...]."""

from __future__ import annotations

from omegaconf import DictConfig

from radscreen.cli.hydra_app import run_hydra_command


def job(cfg: DictConfig) -> None:
    """Evaluate the checkpoint on the manifest's splits and write the run folder."""
    from radscreen.jobs import evaluate

    evaluate(cfg)


def run() -> None:
    """Entry point of radscreen-eval."""
    run_hydra_command(job, "eval")
