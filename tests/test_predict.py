"""predict.py: a checkpoint applied to new files with its run's own preprocessing; bad files are rejects."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from pydicom.uid import JPEG2000Lossless

from radscreen.evaluation.operating_point import OperatingPoint, TaskOperatingPoint
from radscreen.inference.predict import missing_fusion_inputs
from radscreen.io.dicom_write import write_radiograph
from radscreen.jobs import train
from radscreen.models.module import RadscreenModule

from conftest import gradient_image
from hydra_helpers import compose_train, run_script, tiny_overrides

AGE = {"age": {"_target_": "radscreen.tasks.RegressionTask",
               "name": "age", "column": "age_years", "loss": "gaussian_nll"}}


@pytest.fixture(scope="module")
def trained_run(cohort, tmp_path_factory) -> Path:
    """A tiny run (Gaussian-NLL age + osteoporosis) with its predictions CSVs and an operating point."""
    run = tmp_path_factory.mktemp("predict_run")
    cfg = compose_train([*tiny_overrides(cohort, run, run / "cache"), "task=[age_gnll,osteo_binary]",
                         "trainer.max_epochs=2", "callbacks=default", "~callbacks.progress_bar",
                         "~callbacks.model_summary", "~callbacks.early_stopping"], run)
    train(cfg)
    (run / ".hydra").mkdir(exist_ok=True)
    from omegaconf import OmegaConf

    OmegaConf.save(cfg, run / ".hydra" / "config.yaml")
    OperatingPoint({"osteo": TaskOperatingPoint(0.4, "fixed", {"method": "temperature", "temperature": 2.0})},
                   "test").save(run)
    return run


def predict_args(run: Path, source: Path, out: Path, *extra: str) -> list[str]:
    return [f"ckpt_path={run / 'checkpoints' / 'best.ckpt'}", f"input={source}", f"out={out}",
            f"hydra.run.dir={out.parent / 'hydra'}", "show_progress=false", *extra]


def test_predictions_on_a_manifest_equal_eval(trained_run, cohort, tmp_path):
    out = tmp_path / "pred.csv"
    done = run_script("predict.py", *predict_args(trained_run, cohort, out))
    assert done.returncode == 0, done.stderr[-3000:]
    predicted = pd.read_csv(out)
    evaluated = pd.read_csv(trained_run / "predictions_test.csv")
    joined = evaluated.merge(predicted, on="image_id", suffixes=("", "_new"))
    assert len(joined) == len(evaluated)
    np.testing.assert_allclose(joined["age_pred_new"], joined["age_pred"], atol=1e-5)
    np.testing.assert_allclose(joined["age_sd"], np.sqrt(joined["age_var"]), atol=1e-5)
    np.testing.assert_allclose(joined["osteo_pred_new"], joined["osteo_pred"], atol=1e-5)
    # the saved operating point: temperature 2 on the logit, then the threshold 0.4
    p = np.clip(joined["osteo_pred"], 1e-7, 1 - 1e-7)
    calibrated = 1 / (1 + np.exp(-np.log(p / (1 - p)) / 2.0))
    # (predictions_test.csv has train's own calibrated column too: predict's is the one with the suffix)
    np.testing.assert_allclose(joined["osteo_pred_calibrated_new"], calibrated, atol=1e-5)
    assert (joined["osteo_positive"] == (joined["osteo_pred_calibrated_new"] >= 0.4).astype(int)).all()
    assert not any(c.endswith("_target") for c in predicted.columns)


def test_a_folder_of_good_and_bad_files(trained_run, dicom_folder, tmp_path):
    out = tmp_path / "pred.csv"
    done = run_script("predict.py", *predict_args(trained_run, dicom_folder, out, "filters.modalities=[CR,DX]",
                                                  "filters.views=[PA]", "cam=true"))
    assert done.returncode == 0, done.stderr[-3000:]
    predicted = pd.read_csv(out)
    rejects = pd.read_csv(tmp_path / "pred.rejects.csv").set_index("path")["reason"].to_dict()
    assert rejects == {
        "notes.txt": "not DICOM", "lateral.dcm": "wrong view (LAT)", "ct.dcm": "wrong modality (CT)",
        "trunc.dcm": "truncated file (pixel data incomplete)", "nopix.dcm": "no pixel data",
        "site/zz_copy_of_p2.dcm": "duplicate image (same SOPInstanceUID as another file)"}
    # no birth date, a future birth date or another sex: no age / sex, still predicted (the model fuses neither)
    assert sorted(predicted["path"]) == sorted(["site/a/p1_1.dcm", "site/a/p1_2.dcm", "site/p2.dcm", "site/p3.dcm",
                                                 "site/p4.dcm", "site/p5_age_tag.dcm", "no_birth.dcm",
                                                 "future_birth.dcm", "sex_other.dcm"])
    assert predicted["age_pred"].notna().all() and (predicted["age_sd"] > 0).all()
    assert len(list((tmp_path / "pred_cam").glob("*.png"))) == len(predicted)
    everything = out.read_text() + (tmp_path / "pred.rejects.csv").read_text() + done.stdout + done.stderr
    for raw in ("PAT0", "Doe", "Jane", "Roe"):
        assert raw not in everything


def test_compression_does_not_change_the_prediction(trained_run, tmp_path):
    folder = tmp_path / "films"
    folder.mkdir()
    pixels = gradient_image(rows=64, cols=60, bits=12, seed=3)
    common = {"patient_id": "PAT100", "birth_date": date(1960, 1, 1), "study_date": date(2020, 1, 1), "sex": "F",
              "view": "PA", "modality": "DX", "bits_stored": 12}
    write_radiograph(folder / "plain.dcm", pixels, **common)
    write_radiograph(folder / "j2k.dcm", pixels, transfer_syntax=JPEG2000Lossless, **common)
    done = run_script("predict.py", *predict_args(trained_run, folder, tmp_path / "p.csv"))
    assert done.returncode == 0, done.stderr[-3000:]
    predicted = pd.read_csv(tmp_path / "p.csv").set_index("path")
    assert predicted.loc["plain.dcm", "age_pred"] == predicted.loc["j2k.dcm", "age_pred"]
    assert predicted.loc["plain.dcm", "osteo_pred"] == predicted.loc["j2k.dcm", "osteo_pred"]


def test_mistakes_are_one_line(trained_run, tmp_path):
    done = run_script("predict.py", *predict_args(trained_run, tmp_path / "none", tmp_path / "p.csv"))
    assert done.returncode == 2
    assert done.stderr.strip().splitlines() == [f"error: input {tmp_path / 'none'} does not exist (run folder marked "
                                                f"FAILED: {tmp_path / 'hydra'})"]
    empty = tmp_path / "empty"
    empty.mkdir()
    (empty / "readme.txt").write_text("no images here")
    done = run_script("predict.py", *predict_args(trained_run, empty, tmp_path / "p.csv"))
    assert done.returncode == 2 and "no image of" in done.stderr and "1 not taken" in done.stderr
    assert pd.read_csv(tmp_path / "p.rejects.csv")["reason"].tolist() == ["not DICOM"]


def test_fusion_models_reject_images_without_the_inputs_they_fuse():
    module = RadscreenModule(tasks=AGE, backbone={"name": "test_resnet", "in_chans": 1},
                             fusion={"inputs": ["age", "sex"]})
    rows = pd.DataFrame({"image_id": ["a", "b", "c"], "age_years": [50.0, np.nan, 60.0], "sex": ["F", "M", None]})
    assert missing_fusion_inputs(rows, module).tolist() == ["", "missing age (the model fuses age)",
                                                            "missing sex (the model fuses sex)"]
    plain = RadscreenModule(tasks=AGE, backbone={"name": "test_resnet", "in_chans": 1})
    assert missing_fusion_inputs(rows, plain).tolist() == ["", "", ""]
