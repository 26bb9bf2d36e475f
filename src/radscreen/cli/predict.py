"""radscreen-predict (python predict.py in a checkout): predict new images, ckpt_path=RUN/checkpoints/best.ckpt
input=PATH out=predictions.csv."""

from __future__ import annotations

from omegaconf import DictConfig

from radscreen.cli.hydra_app import run_hydra_command


def job(cfg: DictConfig) -> None:
    """Predict every image of `input` and write the predictions and rejects CSVs."""
    from radscreen.inference.commands import predict_command

    predict_command(cfg)


def run() -> None:
    """Entry point of radscreen-predict."""
    run_hydra_command(job, "predict")
