"""`ckpt_path=last`: find this run's own last checkpoint (same run name, same overrides)."""

from __future__ import annotations

from pathlib import Path

from omegaconf import OmegaConf

# Overrides that may differ between a run and its resumption: where to resume, and how long to train.
RESUME_FREE = ("ckpt_path=", "hydra.", "trainer.max_epochs=", "trainer.min_epochs=", "trainer.max_time=",
               "trainer.max_steps=")


def _comparable(overrides: list[str]) -> list[str]:
    return sorted(o for o in overrides if not o.lstrip("+~").startswith(RESUME_FREE))


def find_last_checkpoint(run_root: str | Path, overrides: list[str]) -> Path | None:
    """Newest `checkpoints/last.ckpt` under run_root/*/ (runs) or run_root/*/*/ (multirun jobs) whose saved
    command-line overrides equal `overrides` (ckpt_path and hydra.* ignored)."""
    wanted = _comparable(overrides)
    candidates = []
    for last in list(Path(run_root).glob("runs/*/checkpoints/last.ckpt")) + \
            list(Path(run_root).glob("multiruns/*/*/checkpoints/last.ckpt")):
        saved = last.parent.parent / ".hydra" / "overrides.yaml"
        if saved.exists() and _comparable(list(OmegaConf.load(saved))) == wanted:
            candidates.append(last)
    return max(candidates, key=lambda p: p.stat().st_mtime) if candidates else None
