"""Evaluate a checkpoint: python eval.py ckpt_path=RUN/checkpoints/best.ckpt [data.manifest=...]."""

import hydra
from omegaconf import DictConfig

from radscreen.utils.project_root import find_project_root

find_project_root(__file__)


@hydra.main(version_base="1.3", config_path="conf", config_name="eval")
def main(cfg: DictConfig) -> None:
    from radscreen.training.run import evaluate

    evaluate(cfg)


if __name__ == "__main__":
    main()
