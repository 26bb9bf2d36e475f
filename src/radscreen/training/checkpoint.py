"""ModelCheckpoint whose best-checkpoint tracking survives a resume into a new run folder."""

from __future__ import annotations

import logging
import shutil
from pathlib import Path
from typing import Any

from pytorch_lightning.callbacks import ModelCheckpoint
from pytorch_lightning.utilities import rank_zero_only

log = logging.getLogger(__name__)

PATH_KEYS = ("best_model_path", "kth_best_model_path", "last_model_path")


class RunCheckpoint(ModelCheckpoint):
    """Lightning's ModelCheckpoint, except on resume from another run's folder (`ckpt_path=last` writes a new run
    folder): the earlier run's best and last checkpoints are copied into this run's checkpoint folder and the whole
    tracking state (best score, top-k, last) is restored, where ModelCheckpoint would keep only the best path and
    treat the next epoch as the best so far. A resumed run thus keeps the best checkpoint of the uninterrupted run,
    and its folder is complete on its own.
    """

    def _generate_state_key(self, **kwargs: Any) -> str:
        """ModelCheckpoint's key, so checkpoints written by either class restore into the other."""
        return f"{ModelCheckpoint.__qualname__}{kwargs!r}"

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        saved_dir = state_dict.get("dirpath")
        if saved_dir and self.dirpath and Path(saved_dir).resolve() != Path(self.dirpath).resolve():
            state_dict = moved_state(state_dict, Path(saved_dir), Path(self.dirpath))
        super().load_state_dict(state_dict)


def moved_state(state_dict: dict[str, Any], old_dir: Path, new_dir: Path) -> dict[str, Any]:
    """The state with its checkpoint files copied from old_dir to new_dir (rank zero copies) and paths rewritten.
    Files that no longer exist are dropped from the tracking, as if never saved."""
    def moved(path: str) -> str:
        if not path:
            return path
        source = Path(path)
        target = new_dir / source.name if source.parent.resolve() == old_dir.resolve() else source
        if target != source:
            _copy(source, target)
        return str(target) if source.is_file() else ""

    state = dict(state_dict)
    for key in PATH_KEYS:
        state[key] = moved(state.get(key) or "")
    state["best_k_models"] = {moved(path): score for path, score in (state.get("best_k_models") or {}).items()
                              if Path(path).is_file()}
    state["dirpath"] = str(new_dir)
    return state


@rank_zero_only
def _copy(source: Path, target: Path) -> None:
    if source.is_file() and not target.exists():
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(source, target)
        log.info("resume: copied %s into this run's checkpoints", source.name)
