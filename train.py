"""Train a radscreen model: python train.py experiment=NAME [key=value ...] (-m for sweeps)."""

from pathlib import Path

import hydra
from omegaconf import DictConfig

from radscreen.utils.project_root import find_project_root

find_project_root(__file__)


@hydra.main(version_base="1.3", config_path="conf", config_name="train")
def main(cfg: DictConfig) -> float | None:
    from radscreen.jobs import objective, train
    from radscreen.training.entry import job_guard

    with job_guard():
        return objective(cfg, train(cfg))


if __name__ == "__main__":
    from radscreen.training.entry import run_hydra

    run_hydra(main, Path(__file__).resolve().parent / "conf")
