"""A user's mistakes with train.py and eval.py: one line naming the file or key and what to do, exit code 2, no
traceback, and the run folder marked FAILED with the error in its train.log.

The scripts run in this process (runpy, as `python train.py ...` would, with sys.argv set), which keeps each case
under a second; three cases also run as real subprocesses to check what the terminal shows."""

from __future__ import annotations

import logging
import runpy
import sys
from pathlib import Path

import pandas as pd
import pytest
from hydra.core.global_hydra import GlobalHydra

from radscreen.runs import FAILED_MARKER

from hydra_helpers import ROOT, run_script

TINY = ["backbone=test_resnet", "trainer=cpu", "logger=none", "callbacks=none", "data.image_size=32",
        "data.num_workers=0", "data.show_progress=false", "trainer.max_epochs=1"]


@pytest.fixture
def run_cli(monkeypatch, capsys, tmp_path):
    """Run ROOT/<script> in-process with argv; returns (exit code, stderr, run folder)."""
    root_logger = logging.getLogger()
    saved = (list(root_logger.handlers), root_logger.level)

    def run(script: str, *args: str) -> tuple[int, str, Path]:
        run_dir = tmp_path / f"run_{len(list(tmp_path.glob('run_*')))}"
        monkeypatch.setattr(sys, "argv", [str(ROOT / script), *args, f"hydra.run.dir={run_dir}",
                                          f"paths.log_dir={tmp_path}/logs", f"paths.cache_dir={tmp_path}/cache"])
        monkeypatch.delenv("HYDRA_FULL_ERROR", raising=False)  # run_hydra sets it; undone after the test
        GlobalHydra.instance().clear()
        capsys.readouterr()
        try:
            runpy.run_path(str(ROOT / script), run_name="__main__")
            code = 0
        except SystemExit as exit_:
            code = int(exit_.code or 0)
        finally:
            GlobalHydra.instance().clear()
            for handler in root_logger.handlers[:]:
                if handler not in saved[0]:
                    root_logger.removeHandler(handler)
                    handler.close()
            root_logger.setLevel(saved[1])
        return code, capsys.readouterr().err, run_dir

    return run


def one_error_line(stderr: str) -> str:
    """The single `error: ...` line of stderr (asserting there is exactly one and no traceback)."""
    lines = [line for line in stderr.splitlines() if line.startswith("error:")]
    assert len(lines) == 1, stderr
    assert "Traceback" not in stderr, stderr
    return lines[0]


@pytest.fixture
def small_manifest(cohort, tmp_path) -> pd.DataFrame:
    return pd.read_csv(cohort).head(40).assign(path=lambda d: str(cohort.parent) + "/" + d["path"])


def test_missing_manifest_is_one_line_and_the_run_folder_is_marked_failed(run_cli, tmp_path):
    code, err, run_dir = run_cli("train.py", *TINY, f"data.manifest={tmp_path}/nope.csv")
    assert code == 2
    assert one_error_line(err).startswith(f"error: data.manifest {tmp_path}/nope.csv does not exist")
    assert (run_dir / FAILED_MARKER).read_text().startswith(f"error: data.manifest {tmp_path}/nope.csv does not")
    assert f"run failed: error: data.manifest {tmp_path}/nope.csv does not exist" in (run_dir / "train.log").read_text()


@pytest.mark.parametrize(("content", "expected"), [
    ("", "is empty; it needs a header row"),
    ("image_id;patient_id;path\na;b;c\n", "is separated by ';', not by commas"),
    ("image_id\tpatient_id\tpath\na\tb\tc\n", "is separated by '\\t', not by commas"),
    ("image_id,patient_id,path\n", "has a header but no rows"),
    ("image_id,patient_id\na,b\n", "lacks column(s) path"),
    (b"\x89PNG\r\n\x1a\n\xff\xfe\x00\x00binary", "is not a text CSV file"),
])
def test_unusable_manifest_files(run_cli, tmp_path, content, expected):
    manifest = tmp_path / "m.csv"
    manifest.write_bytes(content if isinstance(content, bytes) else content.encode())
    code, err, _ = run_cli("train.py", *TINY, f"data.manifest={manifest}")
    assert code == 2
    assert f"error: data.manifest {manifest} {expected}" in one_error_line(err)


def test_manifest_that_is_a_folder(run_cli, tmp_path):
    code, err, _ = run_cli("train.py", *TINY, f"data.manifest={tmp_path}")
    assert code == 2
    assert f"data.manifest {tmp_path} is a folder; give the path of a file" in one_error_line(err)


def test_duplicate_image_ids_name_the_lines(run_cli, small_manifest, tmp_path):
    manifest = tmp_path / "dup.csv"
    pd.concat([small_manifest, small_manifest.iloc[[3]]]).to_csv(manifest, index=False)
    code, err, _ = run_cli("train.py", *TINY, f"data.manifest={manifest}")
    assert code == 2
    assert "lists 1 image_id(s) more than once (lines 42)" in one_error_line(err)


def test_missing_age_column_says_where_age_comes_from(run_cli, small_manifest, tmp_path):
    manifest = tmp_path / "noage.csv"
    small_manifest.drop(columns="age_years").to_csv(manifest, index=False)
    code, err, _ = run_cli("train.py", *TINY, f"data.manifest={manifest}")
    line = one_error_line(err)
    assert code == 2
    assert f"task age needs labels, but manifest {manifest} has no values in column age_years" in line
    assert "DICOM headers" in line and "--clinical" not in line


def test_missing_osteoporosis_labels_point_to_the_dxa_table(run_cli, small_manifest, tmp_path):
    manifest = tmp_path / "nobmd.csv"
    small_manifest.drop(columns="bmd_class").to_csv(manifest, index=False)
    code, err, _ = run_cli("train.py", *TINY, "task=[osteo_binary]", f"data.manifest={manifest}")
    assert code == 2
    assert "build_manifest.py --clinical DXA.csv" in one_error_line(err)


def test_paths_absolute_on_another_machine(run_cli, small_manifest, tmp_path):
    manifest = tmp_path / "abs.csv"
    small_manifest.assign(path="/mnt/elsewhere/" + small_manifest["image_id"] + ".png").to_csv(manifest, index=False)
    code, err, _ = run_cli("train.py", *TINY, f"data.manifest={manifest}")
    line = one_error_line(err)
    assert code == 2
    assert "none of the 40 image files listed in data.manifest exist" in line
    assert "its paths are absolute, so it was written on another machine" in line


def test_image_root_that_is_not_a_folder(run_cli, cohort, tmp_path):
    code, err, _ = run_cli("train.py", *TINY, f"data.manifest={cohort}", f"data.image_root={tmp_path}/none")
    assert code == 2
    assert f"data.image_root={tmp_path}/none is not a folder" in one_error_line(err)


def test_missing_external_manifest(run_cli, cohort, tmp_path):
    code, err, _ = run_cli("train.py", *TINY, f"data.manifest={cohort}", f"data.external_manifest={tmp_path}/b.csv")
    assert code == 2
    assert f"error: data.external_manifest {tmp_path}/b.csv does not exist" in one_error_line(err)


def test_monitor_typo_lists_the_logged_metrics(run_cli, cohort):
    code, err, _ = run_cli("train.py", *TINY, f"data.manifest={cohort}", "monitor=val/age_mea")
    line = one_error_line(err)
    assert code == 2
    assert "monitor 'val/age_mea' is never logged; choose one of: val/loss" in line and "val/age_mae" in line


def test_transfer_experiment_without_its_upstream_checkpoint(run_cli, cohort):
    code, err, _ = run_cli("train.py", *TINY, "experiment=osteo_transfer_age", f"data.manifest={cohort}")
    assert code == 2
    assert "osteo_transfer_age needs upstream.age=PATH" in one_error_line(err)


def test_unknown_task_lists_the_available_tasks(run_cli):
    code, err, _ = run_cli("train.py", "task=[agee]")
    assert code == 2
    assert one_error_line(err) == ("error: task=agee does not exist; conf/task/ has: "
                                   + ", ".join(sorted(p.stem for p in (ROOT / "conf" / "task").glob("*.yaml"))))


def test_misspelt_key_and_unknown_setting(run_cli, cohort):
    code, err, _ = run_cli("train.py", "data.manifestt=x")
    assert code == 2
    assert "data.manifestt is not a config key" in one_error_line(err) and "+data.manifestt=VALUE" in err
    code, err, _ = run_cli("train.py", *TINY, f"data.manifest={cohort}", "+trainer.max_epoch=3")
    assert code == 2
    assert "trainer.max_epoch is not a setting of trainer's _target_" in one_error_line(err)


def test_resume_from_a_checkpoint_that_does_not_exist(run_cli, cohort, tmp_path):
    code, err, _ = run_cli("train.py", *TINY, f"data.manifest={cohort}", f"ckpt_path={tmp_path}/x.ckpt")
    assert code == 2
    assert f"error: ckpt_path={tmp_path}/x.ckpt does not exist" in one_error_line(err)


def test_eval_without_or_with_a_wrong_checkpoint(run_cli, cohort, tmp_path):
    code, err, _ = run_cli("eval.py")
    assert code == 2
    assert "eval.py needs ckpt_path=RUN/checkpoints/best.ckpt" in one_error_line(err)
    code, err, _ = run_cli("eval.py", f"ckpt_path={tmp_path}/best.ckpt")
    assert code == 2
    assert f"error: ckpt_path={tmp_path}/best.ckpt does not exist" in one_error_line(err)
    code, err, _ = run_cli("eval.py", f"ckpt_path={cohort}")
    assert code == 2
    assert "eval.py needs a checkpoint inside a train.py run" in one_error_line(err)


def test_what_the_terminal_shows(cohort, tmp_path):
    """Real processes: stderr is exactly the one line, the exit code 2."""
    for script, args, expected in [
        ("train.py", [f"data.manifest={tmp_path}/nope.csv"], f"data.manifest {tmp_path}/nope.csv does not exist"),
        ("train.py", ["task=[agee]"], "task=agee does not exist; conf/task/ has: age, age_gnll"),
        ("eval.py", [], "eval.py needs ckpt_path="),
    ]:
        result = run_script(script, *args, f"paths.log_dir={tmp_path}/logs", f"hydra.run.dir={tmp_path}/{script}",
                            cwd=tmp_path)
        assert result.returncode == 2, result.stderr
        assert result.stderr.strip().splitlines() == [one_error_line(result.stderr)]
        assert expected in result.stderr
