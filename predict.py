"""Predict new images: python predict.py ckpt_path=RUN/checkpoints/best.ckpt input=PATH out=predictions.csv."""

from pathlib import Path

import hydra
from omegaconf import DictConfig

from radscreen.utils.project_root import find_project_root

find_project_root(__file__)


@hydra.main(version_base="1.3", config_path="conf", config_name="predict")
def main(cfg: DictConfig) -> None:
    from radscreen.inference.commands import predict_command
    from radscreen.training.entry import job_guard

    with job_guard():
        predict_command(cfg)


if __name__ == "__main__":
    from radscreen.training.entry import run_hydra

    run_hydra(main, Path(__file__).resolve().parent / "conf")
