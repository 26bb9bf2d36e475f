"""What a run tells its user: what was dropped and why (selection.csv), which split it used, a FAILED marker,
copyable paths, no advertisements, a model summary with real sizes and FLOPs."""

from __future__ import annotations

import logging
import shutil

import pandas as pd
import pytest
import pytorch_lightning as pl

from radscreen.data.datamodules import ImageDataModule
from radscreen.errors import UserError
from radscreen.manifests.schema import SOURCE_SUFFIX, beside, write_image_root
from radscreen.manifests.splits import SelectionLog, SplitConfig, make_splits
from radscreen.models.module import RadscreenModule
from radscreen.runs import FAILED_MARKER, clear_failed, is_failed, mark_failed
from radscreen.training.run import quiet_lightning
from radscreen.utils.console import print_metrics

from synthetic import synthetic_manifest

AGE = {"age": {"name": "age", "column": "age_years", "_target_": "radscreen.tasks.RegressionTask", "loss": "mse"}}


def test_balancing_and_subsets_are_counted_per_split():
    manifest = synthetic_manifest(300)
    selection = SelectionLog()
    config = SplitConfig(stratify=("bmd_class", "sex"), balance_by=("bmd_class", "sex"), n_train=60,
                         filters={"age_years": {"min": 30}})
    out = make_splits(manifest, config, selection)
    steps = selection.frame()
    filters = steps[steps["step"] == "filters"].iloc[0]
    assert (filters["before"], filters["after"]) == (len(manifest), int((manifest["age_years"] >= 30).sum()))
    unbalanced = make_splits(manifest, SplitConfig(stratify=("bmd_class", "sex"), filters=config.filters))
    for split in ("train", "val", "test"):
        balanced = steps[(steps["step"] == "balance_by") & (steps["split"] == split)].iloc[0]
        assert balanced["before"] == int((unbalanced["split"] == split).sum())
        last = steps[steps["split"] == split].iloc[-1]
        assert last["after"] == int((out["split"] == split).sum())
        assert balanced["dropped"] == balanced["before"] - balanced["after"] > 0
    assert steps[steps["step"] == "n_train"].iloc[0]["after"] == int((out["split"] == "train").sum())


def test_a_manifest_with_its_own_split_keeps_it_unless_told(caplog):
    manifest = synthetic_manifest(200)
    manifest["split"] = make_splits(manifest, SplitConfig(seed=7))["split"]
    with caplog.at_level(logging.INFO, logger="radscreen.manifests.splits"):
        kept = make_splits(manifest, SplitConfig(seed=0))
    assert kept["split"].equals(manifest["split"])
    assert "using the manifest's own split column" in caplog.text
    again = make_splits(manifest, SplitConfig(seed=0, use_existing=False))
    assert not again["split"].equals(manifest["split"])
    partial = manifest.assign(split=manifest["split"].where(manifest.index % 10 != 0))
    n, filled = len(manifest), int(partial["split"].notna().sum())
    with pytest.raises(UserError, match=rf"split column is filled for {filled} of {n} rows; .*use_existing=false"):
        make_splits(partial, SplitConfig())
    with pytest.raises(UserError, match=rf"use_existing=true but {n} of {n} manifest rows have no split"):
        make_splits(manifest.drop(columns="split"), SplitConfig(use_existing=True))


def test_missing_image_files_are_left_out_and_counted(cohort, tmp_path):
    images = tmp_path / "images"
    shutil.copytree(cohort.parent / "images", images)
    manifest = pd.read_csv(cohort).head(40)
    manifest.to_csv(tmp_path / "m.csv", index=False)
    gone = manifest["path"].iloc[[0, 1, 2]]
    for path in gone:
        (tmp_path / path).unlink()
    dm = ImageDataModule(str(tmp_path / "m.csv"), AGE, str(tmp_path / "cache"), image_size=32, show_progress=False)
    dm.prepare_data()
    dm.setup("fit")
    assert sum(len(d) for d in dm.datasets.values()) == 37
    cached = dm.selection.frame().query("step == 'cache'")
    assert int(cached["dropped"].sum()) == 3
    written = pd.read_csv(dm.write_selection(tmp_path))
    assert written.query("step == 'cache'")["dropped"].sum() == 3
    failures = pd.read_csv(next((tmp_path / "cache").glob("*/failures.csv")))
    assert set(failures["reason"]) == {"image file not found"} and sorted(failures["path"]) == sorted(gone)


def test_the_image_folder_recorded_beside_a_manifest_is_the_default_root(cohort, tmp_path):
    manifest = tmp_path / "elsewhere" / "m.csv"
    manifest.parent.mkdir()
    shutil.copy(cohort, manifest)
    assert ImageDataModule(str(manifest), AGE, str(tmp_path)).image_root == str(manifest.parent)
    write_image_root(manifest, cohort.parent)
    assert beside(manifest, SOURCE_SUFFIX).name == "m.source.json"
    dm = ImageDataModule(str(manifest), AGE, str(tmp_path / "cache"), image_size=32, show_progress=False)
    assert dm.image_root == str(cohort.parent.resolve())
    dm.check_inputs()  # the images are found through the record
    write_image_root(manifest, tmp_path / "moved")
    with pytest.raises(UserError, match=r"\(the image folder recorded in .*m.source.json\) is not a folder; set "
                                         r"data.image_root"):
        ImageDataModule(str(manifest), AGE, str(tmp_path / "cache")).check_inputs()


def test_failed_marker_holds_the_traceback_of_a_bug_and_only_the_line_of_a_mistake(tmp_path):
    try:
        raise RuntimeError("boom")
    except RuntimeError as error:
        mark_failed(tmp_path, error)
    text = (tmp_path / FAILED_MARKER).read_text()
    assert text.startswith("RuntimeError: boom\n") and "Traceback" in text and is_failed(tmp_path)
    mark_failed(tmp_path, UserError("data.manifest x does not exist"))
    assert (tmp_path / FAILED_MARKER).read_text() == "error: data.manifest x does not exist\n"
    clear_failed(tmp_path)
    assert not is_failed(tmp_path)


def test_end_of_run_paths_are_never_wrapped(capsys, monkeypatch, tmp_path):
    monkeypatch.setenv("COLUMNS", "40")
    folder = tmp_path / ("a_rather_long_folder_name_" * 4) / "runs" / "2026-12-01_10-00-00"
    print_metrics({"test/age_mae": 5.0}, "age", {"run folder": folder})
    assert f"run folder: {folder}\n" in capsys.readouterr().out


def test_lightning_advertisement_is_dropped(caplog):
    logger = logging.getLogger("pytorch_lightning.utilities.rank_zero")
    saved = list(logger.filters)
    try:
        logger.filters = []
        with caplog.at_level(logging.INFO):
            pl.Trainer(logger=False, enable_checkpointing=False, accelerator="cpu")
        assert "litlogger" in caplog.text  # Lightning still prints it: the filter below is needed
        caplog.clear()
        quiet_lightning()
        with caplog.at_level(logging.INFO):
            pl.Trainer(logger=False, enable_checkpointing=False, accelerator="cpu")
        assert "litlogger" not in caplog.text and "GPU available" in caplog.text
    finally:
        logger.filters = saved


def test_model_summary_reports_sizes_and_flops(cohort, tmp_path):
    from pytorch_lightning.utilities.model_summary import ModelSummary

    dm = ImageDataModule(str(cohort), AGE, str(tmp_path / "cache"), image_size=32, batch_size=16,
                         show_progress=False)
    module = RadscreenModule(tasks=AGE, backbone={"name": "test_resnet", "in_chans": 1})
    trainer = pl.Trainer(max_epochs=1, limit_train_batches=1, limit_val_batches=1, logger=False,
                         enable_checkpointing=False, enable_progress_bar=False, accelerator="cpu")
    trainer.fit(module, datamodule=dm)
    assert tuple(module.example_input_array.shape) == (1, 1, 32, 32)
    assert ModelSummary(module).total_flops > 0


def test_error_lines_keep_brackets(capsys):
    from radscreen.utils.console import print_error

    print_error("set cam.layers=[layer3,layer4] or task=[age]")
    assert capsys.readouterr().err == "error: set cam.layers=[layer3,layer4] or task=[age]\n"
