"""radscreen-cam (python scripts/cam.py in a checkout): class-activation maps of a checkpoint, ckpt_path=CKPT
[cam.method=scorecam] [...]."""

from __future__ import annotations

from omegaconf import DictConfig

from radscreen.cli.hydra_app import run_hydra_command


def job(cfg: DictConfig) -> None:
    """Write the maps (per image and averaged) and print where they are."""
    from radscreen.interpret.commands import cam_command

    print(cam_command(cfg))


def run() -> None:
    """Entry point of radscreen-cam."""
    run_hydra_command(job, "cam")
