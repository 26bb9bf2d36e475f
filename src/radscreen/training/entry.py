"""What train.py, eval.py and the other Hydra commands share: a user's mistake is one line and exit code 2.

Two places turn errors into that line:
- `job_guard()` inside the job (the run folder exists): UserError and unset mandatory keys are printed once,
  the folder is marked FAILED with the error also in its log, and the process exits 2. Other exceptions mark
  the folder too and propagate with their traceback (a bug to report, exit 1).
- `run_hydra(main)` around Hydra itself: composition mistakes (a config group option that does not exist, an
  override of an unknown key, an override that does not parse) become one line listing what exists.
"""

from __future__ import annotations

import contextlib
import os
import re
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

from hydra.core.hydra_config import HydraConfig
from hydra.errors import (
    ConfigCompositionException,
    InstantiationException,
    MissingConfigException,
    OverrideParseException,
)
from lightning_fabric.utilities.exceptions import MisconfigurationException
from omegaconf import OmegaConf
from omegaconf.errors import MissingMandatoryValue

from radscreen.errors import EXIT_USER_ERROR, UserError
from radscreen.runs import mark_failed
from radscreen.utils.console import print_error


def _output_dir() -> str | None:
    """The job's run folder, or None outside a Hydra job (or a composed config without one)."""
    if not HydraConfig.initialized():
        return None
    return OmegaConf.select(HydraConfig.get(), "runtime.output_dir", default=None, throw_on_missing=False)


def _as_user_error(error: BaseException) -> UserError | None:
    """The one-line form of an error that is the user's to fix, or None for anything else."""
    if isinstance(error, UserError):
        return error
    if isinstance(error, MissingMandatoryValue):
        key = getattr(error, "full_key", None) or "a key"
        return UserError(f"{key} must be set: add {key}=VALUE to the command")
    if isinstance(error, MisconfigurationException):  # Lightning refusing a combination of settings
        return UserError(f"Lightning refuses these settings: {error}")
    if isinstance(error, InstantiationException):
        cause = error.__cause__
        if isinstance(cause, UserError):  # raised by a constructor that Hydra instantiated
            return cause
        key = _full_key(str(error))
        if isinstance(cause, MisconfigurationException):
            return UserError(f"{key}: {cause}")
        if isinstance(cause, TypeError) and "unexpected keyword argument" in str(cause):
            argument = str(cause).rsplit("argument", 1)[-1].strip(" '\"")
            return UserError(f"{key}.{argument} is not a setting of {key}'s _target_: remove it or check its "
                             "spelling")
    return None


def _full_key(message: str) -> str:
    found = re.search(r"full_key: (\S+)", message)
    return found.group(1) if found else "config"


@contextlib.contextmanager
def job_guard() -> Iterator[None]:
    """Inside a Hydra job: mark the run folder FAILED on any error; print a user's mistake once and exit 2."""
    try:
        yield
    except Exception as error:
        folder = _output_dir()
        if folder:
            mark_failed(folder, _as_user_error(error) or error)
        user_error = _as_user_error(error)
        if user_error is None:
            raise
        print_error(f"{user_error}" + (f" (run folder marked FAILED: {folder})" if folder else ""))
        sys.exit(EXIT_USER_ERROR)


def group_options(conf_dir: Path, group: str) -> list[str]:
    """The options of a config group: the YAML files under conf/<group>/ (without the extension)."""
    folder = conf_dir / group
    return sorted(p.stem for p in folder.glob("*.yaml")) if folder.is_dir() else []


def composition_message(error: Exception, conf_dir: Path) -> str | None:
    """One line for Hydra's composition errors (a missing option lists the available ones), None otherwise."""
    if isinstance(error, MissingConfigException):
        group, _, name = (error.missing_cfg_file or "").rpartition("/")
        options = list(error.options or []) or group_options(conf_dir, group)
        if group and options:
            return f"{group}={name} does not exist; conf/{group}/ has: {', '.join(sorted(options))}"
        return _first_line(str(error))
    if isinstance(error, ConfigCompositionException):
        text = f"{error} {error.__cause__ or ''}"
        unknown = re.search(r"Could not override '([^']+)'", text)
        if unknown and "not in struct" in text:
            key = unknown.group(1)
            return (f"{key} is not a config key: check the spelling ({_script()} --cfg job lists the "
                    f"keys), or add a new key with +{key}=VALUE")
        cause = error.__cause__
        if isinstance(cause, MissingConfigException):
            return composition_message(cause, conf_dir)
        return _first_line(text)
    if isinstance(error, OverrideParseException):
        return _first_line(str(error))
    return None


def _first_line(text: str) -> str:
    """Hydra's message on one line: whole when short (its numbered advice included), else its first two lines."""
    lines = [line.strip() for line in text.strip().splitlines() if line.strip()]
    return " ".join(lines if len(" ".join(lines)) <= 400 else lines[:2]) if lines else text


def _script() -> str:
    """The command as the user typed it: radscreen-train when installed, train.py or scripts/probe.py in a
    checkout."""
    script = Path(sys.argv[0] or "train.py")
    if script.name.startswith("radscreen-"):
        return script.name
    return f"python scripts/{script.name}" if script.parent.name == "scripts" else f"python {script.name}"


def run_hydra(main: Callable[[], object], conf_dir: str | Path) -> None:
    """Call a @hydra.main function whose config tree is `conf_dir`; Hydra's composition errors become one line
    and exit code 2."""
    os.environ["HYDRA_FULL_ERROR"] = "1"  # exceptions reach us, not Hydra's report; bugs keep their traceback
    try:
        main()
    except (ConfigCompositionException, MissingConfigException, OverrideParseException) as error:
        message = composition_message(error, Path(conf_dir))
        if message is None:
            raise
        print_error(message)
        sys.exit(EXIT_USER_ERROR)
    except UserError as error:  # raised outside a job, e.g. by a sweeper
        print_error(str(error))
        sys.exit(EXIT_USER_ERROR)
