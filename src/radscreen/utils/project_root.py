"""The project root, found from a marker file the way lightning-hydra-template does it (rootutils)."""

from __future__ import annotations

import os
from pathlib import Path

import rootutils

MARKER = ".project-root"


def find_project_root(start: str | Path) -> Path:
    """The folder holding `.project-root` at or above `start`; also sets $PROJECT_ROOT, which conf/paths/ reads, so
    logs/, cache/ and the default manifest do not depend on the folder a command is started from. A $PROJECT_ROOT
    the user has set is kept."""
    if os.environ.get("PROJECT_ROOT"):
        return Path(os.environ["PROJECT_ROOT"])
    return Path(rootutils.setup_root(start, indicator=MARKER, project_root_env_var=True, dotenv=False,
                                     pythonpath=False, cwd=False))
