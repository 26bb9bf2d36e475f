"""Run the argparse tools of scripts/ in this process, as their command lines run them (run_command(main))."""

from __future__ import annotations

import functools
import importlib.util
from pathlib import Path
from types import ModuleType

import pytest

from radscreen.utils.cli import run_command

ROOT = Path(__file__).resolve().parents[1]


@functools.cache
def load_script(name: str) -> ModuleType:
    """scripts/<name>.py as a module (the scripts are not a package), to call its main(argv)."""
    spec = importlib.util.spec_from_file_location(f"script_{name}", ROOT / "scripts" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def run_tool(name: str, argv: list, capsys) -> tuple[int, str, str]:
    """Exit code, stdout and stderr of `scripts/<name>.py ARGV`."""
    capsys.readouterr()
    main = load_script(name).main
    with pytest.raises(SystemExit) as exit_info:
        run_command(lambda: main([str(a) for a in argv]))
    out, err = capsys.readouterr()
    return exit_info.value.code, out, err


def user_error(name: str, argv: list, capsys) -> str:
    """The one-line message of a command that must stop on a user's mistake (exit 2, no traceback)."""
    code, _, err = run_tool(name, argv, capsys)
    assert code == 2, err
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1, err
    assert err.startswith("error: "), err
    return err.strip()
