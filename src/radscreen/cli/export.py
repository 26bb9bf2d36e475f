"""radscreen-export (python export.py in a checkout): export a checkpoint, ckpt_path=RUN/checkpoints/best.ckpt
format=onnx|torchscript out=FILE."""

from __future__ import annotations

from omegaconf import DictConfig

from radscreen.cli.hydra_app import run_hydra_command


def job(cfg: DictConfig) -> None:
    """Export the checkpoint's model and print what was written."""
    from radscreen.export.command import export_command, summary

    print(summary(export_command(cfg)))


def run() -> None:
    """Entry point of radscreen-export."""
    run_hydra_command(job, "export")
