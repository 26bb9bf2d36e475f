"""The operating point of a run, saved beside its checkpoints for predict.py: per binary task the threshold chosen
on the validation split and, when one was fitted, the calibration applied to probabilities before it."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path

from radscreen.errors import UserError
from radscreen.utils.tables import write_text

OPERATING_POINT_FILE = "operating_point.json"


@dataclass(frozen=True)
class TaskOperatingPoint:
    """How one binary task's probabilities become decisions."""

    threshold: float  # applied to the calibrated probability when `calibration` is set
    method: str  # how it was chosen: youden | sensitivity | fixed
    calibration: dict | None = None  # {"method": "temperature" | "platt" | "isotonic", ...fitted parameters}
    n_validation: int | None = None  # validation images it was chosen on


@dataclass(frozen=True)
class OperatingPoint:
    """Every binary task's operating point, and where it came from."""

    tasks: dict[str, TaskOperatingPoint] = field(default_factory=dict)
    source: str = ""  # e.g. "validation split of logs/osteo_baseline/runs/<time>"

    def save(self, folder: str | Path) -> Path:
        """operating_point.json in `folder` (written atomically)."""
        record = {"source": self.source, "tasks": {name: asdict(point) for name, point in self.tasks.items()}}
        return write_text(json.dumps(record, indent=2, sort_keys=True) + "\n", Path(folder) / OPERATING_POINT_FILE)


def load_operating_point(path: str | Path) -> OperatingPoint:
    """An operating_point.json (a file, or a folder holding one); UserError when it cannot be read."""
    path = Path(path)
    if path.is_dir():
        path = path / OPERATING_POINT_FILE
    try:
        record = json.loads(path.read_text())
        tasks = {name: TaskOperatingPoint(**point) for name, point in record["tasks"].items()}
    except FileNotFoundError:
        raise UserError(f"operating point {path} does not exist") from None
    except (ValueError, KeyError, TypeError) as exc:
        raise UserError(f"operating point {path} cannot be read ({type(exc).__name__}: {exc})") from None
    return OperatingPoint(tasks=tasks, source=record.get("source", ""))
