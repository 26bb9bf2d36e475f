"""OmegaConf resolvers that conf/ uses, registered when radscreen is imported (before any config resolves)."""

from __future__ import annotations

from omegaconf import OmegaConf

USABLE_CORES = "radscreen.usable_cores"


def usable_cores() -> int:
    """The CPU cores this process may run on: its affinity mask (what SLURM, taskset or a container grants), not
    the machine's count."""
    from radscreen.utils.parallel import default_workers  # imported when a config asks: rich is not needed before

    return default_workers()


def register_resolvers() -> None:
    """`${radscreen.usable_cores:}` in any config (conf/trainer/gpu.yaml sets data.num_workers with it)."""
    if not OmegaConf.has_resolver(USABLE_CORES):
        OmegaConf.register_new_resolver(USABLE_CORES, usable_cores)
