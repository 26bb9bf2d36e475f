#!/usr/bin/env python
"""Embeddings of every image of a manifest: python scripts/embed.py ckpt_path=CKPT | model=timm:NAME data.manifest=M."""

from pathlib import Path

import hydra
from omegaconf import DictConfig

from radscreen.utils.project_root import find_project_root

find_project_root(__file__)


@hydra.main(version_base="1.3", config_path="../conf", config_name="embed")
def main(cfg: DictConfig) -> None:
    from radscreen.probes.commands import embed_command
    from radscreen.training.entry import job_guard

    with job_guard():
        print(embed_command(cfg))


if __name__ == "__main__":
    import sys

    from radscreen.probes.pretrained import model_argument
    from radscreen.training.entry import run_hydra

    sys.argv = model_argument(sys.argv)
    run_hydra(main, Path(__file__).resolve().parents[1] / "conf")
