"""Evaluate a checkpoint: python eval.py ckpt_path=RUN/checkpoints/best.ckpt [data.manifest=...]."""

from pathlib import Path

import hydra
from omegaconf import DictConfig

from radscreen.utils.project_root import find_project_root

find_project_root(__file__)


@hydra.main(version_base="1.3", config_path="conf", config_name="eval")
def main(cfg: DictConfig) -> None:
    from radscreen.jobs import evaluate
    from radscreen.training.entry import job_guard

    with job_guard():
        evaluate(cfg)


if __name__ == "__main__":
    from radscreen.training.entry import run_hydra

    run_hydra(main, Path(__file__).resolve().parent / "conf")
