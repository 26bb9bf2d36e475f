"""A checkpoint evaluated on one device: validation, test and external metrics and a predictions CSV per split."""

from __future__ import annotations

import logging
from pathlib import Path

import pytorch_lightning as pl
from omegaconf import DictConfig

from radscreen.data.datamodules import ImageDataModule
from radscreen.evaluation.predictions import prediction_frame
from radscreen.evaluation.screening import OperatingOptions, calibrate_predictions
from radscreen.runs import load_checkpoint
from radscreen.training.run import quiet_lightning
from radscreen.utils.tables import write_csv

log = logging.getLogger(__name__)


def evaluate_checkpoint(checkpoint: str | Path, datamodule: ImageDataModule, trainer_cfg: DictConfig,
                        output_dir: Path, predict_splits: list[str] | None = None,
                        operating: OperatingOptions | None = None, source: str = "") -> dict[str, float]:
    """Validation, test and external metrics of a checkpoint on one device, and a predictions CSV per split.

    With `operating`, every binary task is calibrated on the validation predictions (`<task>_pred_calibrated` in
    each CSV), its threshold chosen on them and operating_point.json saved in output_dir; ECE / Brier before and
    after and the metrics at that threshold join the returned metrics (radscreen.evaluation.screening)."""
    quiet_lightning()
    module = load_checkpoint(checkpoint)
    accelerator = trainer_cfg.get("accelerator", "auto")
    trainer = pl.Trainer(accelerator=accelerator, devices=1, precision=trainer_cfg.get("precision", "32-true"),
                         logger=False, enable_checkpointing=False, enable_model_summary=False,
                         enable_progress_bar=False, default_root_dir=str(output_dir))
    metrics: dict[str, float] = {}
    if "val" in datamodule.datasets:
        metrics.update(trainer.validate(module, dataloaders=datamodule.val_dataloader(), verbose=False)[0])
    if datamodule.test_splits:
        for results in trainer.test(module, datamodule=datamodule, verbose=False):
            metrics.update(results)
    frames = {}
    for split in predict_splits or list(datamodule.datasets):
        if split not in datamodule.datasets:
            continue
        batches = trainer.predict(module, dataloaders=datamodule.prediction_loader(split))
        frames[split] = frame = prediction_frame(batches, datamodule.frame, module.tasks)
        for name, task in module.tasks.items():
            scores = task.checkpoint_scores(task.labelled(frame)) if split != "train" else {}
            metrics.update({f"{split}/{name}_{key}": value for key, value in scores.items()})
    if operating is not None:
        point, calibrated = calibrate_predictions(frames, module.tasks, operating, source)
        metrics.update(calibrated)
        if point.tasks:
            log.info("operating point: %s", point.save(output_dir))
    for split, frame in frames.items():
        write_csv(frame, output_dir / f"predictions_{split}.csv")
    return {k: float(v) for k, v in metrics.items()}
