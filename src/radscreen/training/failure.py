"""A run that fails leaves its folder marked: a FAILED file holding the error, and the error in its log."""

from __future__ import annotations

import logging
import traceback
from pathlib import Path

from radscreen.errors import UserError
from radscreen.utils.tables import write_text

FAILED_MARKER = "FAILED"


def is_failed(run_dir: str | Path) -> bool:
    """Whether a run folder belongs to a run that ended with an error."""
    return (Path(run_dir) / FAILED_MARKER).is_file()


def mark_failed(run_dir: str | Path, error: BaseException) -> Path | None:
    """Write FAILED into the run folder (the error line; the traceback too when it is not a user error) and
    send the error to the run's log files only (the console gets the error once, from the command)."""
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        return None
    line = f"{type(error).__name__}: {error}" if not isinstance(error, UserError) else f"error: {error}"
    detail = "" if isinstance(error, UserError) else "".join(traceback.format_exception(error))
    marker = write_text(f"{line}\n{detail}", run_dir / FAILED_MARKER)
    record = logging.LogRecord("radscreen", logging.ERROR, __file__, 0, "run failed: %s", (line,), None)
    for handler in logging.getLogger().handlers:
        if isinstance(handler, logging.FileHandler):
            handler.handle(record)
    return marker


def clear_failed(run_dir: str | Path) -> None:
    """Remove the FAILED marker (a run resumed in the same folder that has now finished)."""
    (Path(run_dir) / FAILED_MARKER).unlink(missing_ok=True)
