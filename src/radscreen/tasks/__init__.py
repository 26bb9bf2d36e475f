"""Task kinds as classes: conf/task/*.yaml pick one by `_target_` (radscreen.tasks.RegressionTask,
BinaryTask, MulticlassTask, MultilabelTask) and give its fields. Everything that differs between kinds (encoding,
head width, loss, decoding, metrics, scores, figures, prediction columns, CAM target, default monitor) is a method
of the class."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import fields as dataclass_fields

from hydra.errors import HydraException
from hydra.utils import get_class

from radscreen.tasks.base import Task, TaskConfigError
from radscreen.tasks.binary import BinaryTask
from radscreen.tasks.multiclass import IGNORE_INDEX, MulticlassTask
from radscreen.tasks.multilabel import MultilabelTask
from radscreen.tasks.regression import RegressionTask

# `kind:` of task entries written before tasks were classes (old checkpoints and run folders still load)
EARLIER_KINDS: dict[str, type[Task]] = {"regression": RegressionTask, "binary": BinaryTask,
                                        "multiclass": MulticlassTask}


def build_task(entry: Task | Mapping) -> Task:
    """A Task from a conf/task entry: `_target_` names the class, the other keys are its fields."""
    if isinstance(entry, Task):
        return entry
    fields = dict(entry)
    target, kind = fields.pop("_target_", None), fields.pop("kind", None)
    name = fields.get("name", "?")
    if target is None and kind is None:
        raise TaskConfigError(f"task '{name}' names no class: give _target_: radscreen.tasks.RegressionTask "
                              f"(or BinaryTask, MulticlassTask)")
    if target is None:
        if kind not in EARLIER_KINDS:
            raise TaskConfigError(f"task '{name}': kind must be one of {tuple(EARLIER_KINDS)}, got '{kind}'")
        cls = EARLIER_KINDS[kind]
        taken = {f.name for f in dataclass_fields(cls)}  # earlier records held every kind's fields, empty if unused
        fields = {k: v for k, v in fields.items() if k in taken or v not in ([], (), None, "")}
    else:
        try:
            cls = get_class(str(target))
        except (HydraException, ImportError, AttributeError, ValueError):
            raise TaskConfigError(f"task '{name}': _target_ {target} is not an importable class") from None
        if not (isinstance(cls, type) and issubclass(cls, Task)):
            raise TaskConfigError(f"task '{name}': _target_ {target} is not a radscreen.tasks.Task")
    try:
        return cls(**fields)
    except TypeError as exc:
        accepted = ", ".join(f.name for f in dataclass_fields(cls))
        raise TaskConfigError(f"task '{name}': {exc.args[0].split('()')[-1].strip()} for {cls.__name__} "
                              f"(it takes {accepted})") from None


def as_tasks(tasks: Mapping[str, Task | Mapping] | Sequence[Task | Mapping]) -> dict[str, Task]:
    """Tasks from config: a mapping name → Task/entry, or a list; returned as name → Task."""
    items = tasks.values() if isinstance(tasks, Mapping) else tasks
    out = {}
    for item in items:
        task = build_task(item)
        out[task.name] = task
    if not out:
        raise TaskConfigError("at least one task is needed (conf/task/)")
    return out


__all__ = ["IGNORE_INDEX", "BinaryTask", "MulticlassTask", "MultilabelTask", "RegressionTask", "Task",
           "TaskConfigError", "as_tasks", "build_task"]
