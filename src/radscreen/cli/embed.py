"""radscreen-embed (python scripts/embed.py in a checkout): embeddings of every image of a manifest, ckpt_path=CKPT
or model=timm:NAME | open_clip:NAME | torchxrayvision:WEIGHTS, data.manifest=M [out=...]."""

from __future__ import annotations

import sys

from omegaconf import DictConfig

from radscreen.cli.hydra_app import run_hydra_command


def job(cfg: DictConfig) -> None:
    """Write the embeddings file and print its path."""
    from radscreen.probes.commands import embed_command

    print(embed_command(cfg))


def run() -> None:
    """Entry point of radscreen-embed. `model=lib:NAME` is read as the config key `encoder` (Hydra would take
    `model=` for the conf/model/ group)."""
    from radscreen.probes.pretrained import model_argument

    sys.argv = model_argument(sys.argv)
    run_hydra_command(job, "embed")
