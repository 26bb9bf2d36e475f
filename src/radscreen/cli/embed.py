"""radscreen-embed (python scripts/embed.py in a checkout): embeddings of every image of a manifest, ckpt_path=CKPT
data.manifest=M [out=...]."""

from __future__ import annotations

from omegaconf import DictConfig

from radscreen.cli.hydra_app import run_hydra_command


def job(cfg: DictConfig) -> None:
    """Write the embeddings file and print its path."""
    from radscreen.probes.commands import embed_command

    print(embed_command(cfg))


def run() -> None:
    """Entry point of radscreen-embed."""
    run_hydra_command(job, "embed")
