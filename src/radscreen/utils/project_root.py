"""Where a command's files are: the project root (found from a marker file the way lightning-hydra-template does it,
with rootutils), which holds logs/, cache/ and data_manifests/, and the Hydra config tree."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import rootutils

MARKER = ".project-root"
PACKAGE_DIR = Path(__file__).resolve().parents[1]  # the radscreen package
CHECKOUT_DIR = PACKAGE_DIR.parents[1]  # <checkout>/src/radscreen → <checkout>, when imported from a clone


def _root_above(start: str | Path) -> Path | None:
    """The folder holding MARKER at or above `start`, or None (also for a start that does not exist)."""
    try:
        return Path(rootutils.find_root(start, indicator=MARKER))
    except (FileNotFoundError, TypeError):
        return None


def find_project_root(*starts: str | Path) -> Path:
    """The project root, also set as $PROJECT_ROOT (which conf/paths/ reads), so that logs/, cache/ and the default
    manifest do not depend on the folder a command is started from.

    It is the first folder holding `.project-root` at or above one of `starts` (default: the command's own file —
    a checkout's train.py or scripts/x.py, or the radscreen-x executable — then the current folder); with none,
    the current folder. A $PROJECT_ROOT the user has set is kept."""
    if os.environ.get("PROJECT_ROOT"):
        return Path(os.environ["PROJECT_ROOT"])
    candidates = starts or (sys.argv[0], Path.cwd())
    root = next((found for found in map(_root_above, candidates) if found is not None), Path.cwd().resolve())
    os.environ["PROJECT_ROOT"] = str(root)
    return root


def config_dir() -> Path:
    """The Hydra config tree: conf/ of the checkout radscreen is imported from (a clone on PYTHONPATH or an editable
    install, so edits to conf/ apply at once), else the copy an installed wheel ships as radscreen/conf/."""
    checkout = CHECKOUT_DIR / "conf"
    if (CHECKOUT_DIR / MARKER).is_file() and (checkout / "train.yaml").is_file():
        return checkout
    return PACKAGE_DIR / "conf"
