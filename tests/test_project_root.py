"""Where a command's files go: the project root from `.project-root` (else the current folder), and the config tree
of the checkout the package is imported from."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

from radscreen.training.entry import composition_message
from radscreen.utils.project_root import MARKER, config_dir, find_project_root

from hydra_helpers import ROOT


@pytest.fixture
def no_root(monkeypatch):
    """No $PROJECT_ROOT set (the tests' own is restored afterwards)."""
    monkeypatch.delenv("PROJECT_ROOT", raising=False)


def test_without_a_marker_the_current_folder_is_the_root_and_is_exported(no_root, monkeypatch, tmp_path):
    monkeypatch.chdir(tmp_path)
    assert find_project_root(tmp_path / "nowhere", tmp_path) == tmp_path
    assert os.environ["PROJECT_ROOT"] == str(tmp_path)


def test_the_marker_above_the_first_start_that_has_one_wins(no_root, monkeypatch, tmp_path):
    project, other = tmp_path / "project", tmp_path / "other"
    (project / "sub" / "deeper").mkdir(parents=True)
    (other / "x").mkdir(parents=True)
    (project / MARKER).write_text("")
    script, command = project / "sub" / "deeper" / "train.py", other / "x" / "radscreen-train"
    script.write_text("")
    command.write_text("")
    monkeypatch.chdir(other / "x")
    assert find_project_root(script, other) == project
    monkeypatch.delenv("PROJECT_ROOT")
    assert find_project_root(command, project / "sub") == project


def test_the_default_starts_are_the_command_file_then_the_current_folder(no_root, monkeypatch, tmp_path):
    project = tmp_path / "study"
    (project / "runs").mkdir(parents=True)
    (project / MARKER).write_text("")
    command = tmp_path / "venv" / "bin" / "radscreen-train"  # no marker above it
    command.parent.mkdir(parents=True)
    command.write_text("")
    monkeypatch.setattr(sys, "argv", [str(command)])
    monkeypatch.chdir(project / "runs")
    assert find_project_root() == project
    monkeypatch.delenv("PROJECT_ROOT")
    monkeypatch.setattr(sys, "argv", [str(ROOT / "train.py")])  # a checkout's shim: the checkout, wherever run
    assert find_project_root() == ROOT


def test_a_root_the_user_set_is_kept(monkeypatch, tmp_path):
    monkeypatch.setenv("PROJECT_ROOT", str(tmp_path / "mine"))
    assert find_project_root(ROOT) == tmp_path / "mine"


def test_a_checkout_uses_its_own_config_tree():
    assert config_dir() == ROOT / "conf"
    assert (config_dir() / "train.yaml").is_file()


@pytest.mark.parametrize(("argv0", "command"), [("/opt/venv/bin/radscreen-train", "radscreen-train"),
                                                 (str(ROOT / "train.py"), "python train.py"),
                                                 (str(ROOT / "scripts" / "probe.py"), "python scripts/probe.py")])
def test_an_unknown_key_names_the_command_as_it_was_typed(monkeypatch, argv0, command):
    from hydra.errors import ConfigCompositionException

    monkeypatch.setattr(sys, "argv", [argv0])
    error = ConfigCompositionException("Could not override 'data.manifestt'. Key 'manifestt' is not in struct")
    message = composition_message(error, Path(config_dir()))
    assert message.startswith(f"data.manifestt is not a config key: check the spelling ({command} --cfg job lists")
