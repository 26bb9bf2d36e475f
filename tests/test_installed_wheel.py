"""The wheel built from this checkout, installed (not editable) into a fresh virtual environment: every command of
[project.scripts] runs from a folder outside the checkout, with the config tree the wheel ships.

Nothing is downloaded: the wheel is built with the setuptools already installed (--no-build-isolation, --no-index),
and the fresh environment reuses this one's installed dependencies (torch, Lightning, ...) through a .pth line,
which adds their folder to sys.path without running this environment's own .pth files, so the editable radscreen
of a development install is not importable there: only the wheel's is."""

from __future__ import annotations

import json
import os
import shutil
import site
import subprocess
import sys
import textwrap
import tomllib
import venv
from pathlib import Path

import pytest
import yaml

from hydra_helpers import ROOT

pytestmark = pytest.mark.slow

HYDRA_COMMANDS = {"train", "eval", "predict", "export", "cam", "embed", "probe"}

# Runs in the fresh environment: every radscreen console script's `--help`, in one process (torch is imported once).
HELP_ALL = textwrap.dedent("""
    import contextlib, io, json, sys
    from importlib.metadata import distribution
    from hydra.core.global_hydra import GlobalHydra

    import radscreen
    from radscreen.utils.project_root import config_dir

    results = {}
    for entry in distribution("radscreen").entry_points:
        if entry.group != "console_scripts":
            continue
        sys.argv, out = [entry.name, "--help"], io.StringIO()
        GlobalHydra.instance().clear()
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(out):
            try:
                entry.load()()
                code = 0
            except SystemExit as exit_:
                code = exit_.code or 0
        results[entry.name] = [code, out.getvalue()]
    print(json.dumps({"package": radscreen.__file__, "config_dir": str(config_dir()), "help": results}))
""")


def declared_commands() -> dict[str, str]:
    return tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["scripts"]


def clean_env() -> dict[str, str]:
    """The user's environment outside the checkout: no PYTHONPATH to src/, no $PROJECT_ROOT."""
    return {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PROJECT_ROOT", "VIRTUAL_ENV")}


@pytest.fixture(scope="module")
def installed(tmp_path_factory) -> Path:
    """A fresh venv holding the wheel built from a copy of the checkout (the build writes only under tmp)."""
    tmp = tmp_path_factory.mktemp("wheel")
    source = tmp / "source"
    source.mkdir()
    for name in ("pyproject.toml", "setup.py", "README.md"):
        shutil.copy2(ROOT / name, source / name)
    for folder in ("src", "conf"):
        shutil.copytree(ROOT / folder, source / folder, ignore=shutil.ignore_patterns("__pycache__", "*.egg-info"))
    (source / "conf" / "local").mkdir(exist_ok=True)  # a site's own settings (git-ignored): the wheel leaves them out
    (source / "conf" / "local" / "default.yaml").write_text("upstream:\n  age: /site/only/age.ckpt\n")
    pip = [sys.executable, "-m", "pip", "--disable-pip-version-check", "--no-input"]
    subprocess.run([*pip, "wheel", "--no-deps", "--no-build-isolation", "--no-index", "-q", str(source), "-w",
                    str(tmp / "dist")], check=True, capture_output=True, text=True, env=clean_env())
    wheel = next((tmp / "dist").glob("radscreen-*.whl"))
    env_dir = tmp / "venv"
    venv.create(env_dir, with_pip=False)
    python = env_dir / "bin" / "python"
    purelib = subprocess.run([str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                             check=True, capture_output=True, text=True).stdout.strip()
    Path(purelib, "radscreen-test-deps.pth").write_text("\n".join(site.getsitepackages()) + "\n")
    subprocess.run([*pip, "--python", str(python), "install", "--no-index", "--no-deps", "--ignore-installed", "-q",
                    str(wheel)], check=True, capture_output=True, text=True, env=clean_env())
    return env_dir


def test_every_command_is_installed_and_answers_help_from_outside_the_checkout(installed, tmp_path):
    commands = declared_commands()
    assert {name.removeprefix("radscreen-") for name in commands} >= HYDRA_COMMANDS | {
        "build-manifest", "build-ct-manifest", "import-manifest", "split-manifest", "report", "summarize", "agegap",
        "cam-compare", "make-phantoms"}
    assert all((installed / "bin" / name).is_file() for name in commands)
    done = subprocess.run([str(installed / "bin" / "python"), "-c", HELP_ALL], cwd=tmp_path, capture_output=True,
                          text=True, env=clean_env(), timeout=300)
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout.strip().splitlines()[-1])
    package = Path(result["package"]).parent
    assert package.is_relative_to(installed), result["package"]  # the wheel's radscreen, not the checkout's
    assert Path(result["config_dir"]) == package / "conf"
    shipped = sorted(p.relative_to(package / "conf") for p in (package / "conf").rglob("*.yaml"))
    assert shipped == sorted(p.relative_to(ROOT / "conf") for p in (ROOT / "conf").rglob("*.yaml")
                             if "local" not in p.relative_to(ROOT / "conf").parts)
    assert set(result["help"]) == set(commands)
    for name, (code, text) in result["help"].items():
        assert code == 0, (name, text)
        short = name.removeprefix("radscreen-")
        expected = f"{short} is powered by Hydra" if short in HYDRA_COMMANDS else f"usage: {name} "
        assert text.startswith(expected), (name, text[:200])
    assert list(tmp_path.iterdir()) == []  # --help writes nothing


def test_installed_train_composes_an_experiment_with_outputs_under_the_current_folder(installed, tmp_path):
    done = subprocess.run([str(installed / "bin" / "radscreen-train"), "experiment=age_densenet169", "--cfg", "job",
                           "--resolve"], cwd=tmp_path, capture_output=True, text=True, env=clean_env(), timeout=300)
    assert done.returncode == 0, done.stderr
    cfg = yaml.safe_load(done.stdout)
    assert cfg["run_name"] == "age_densenet169" and cfg["backbone"]["name"] == "densenet169"
    assert cfg["paths"]["root_dir"] == str(tmp_path)  # no .project-root above: the current folder
    assert cfg["paths"]["log_dir"] == str(tmp_path / "logs")
    assert cfg["data"]["manifest"] == str(tmp_path / "data_manifests" / "demo.csv")
    assert list(tmp_path.iterdir()) == []
