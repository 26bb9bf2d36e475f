"""What predict.py runs: the checkpoint's run config → inputs → predictions CSV, rejects CSV (and CAM overlays)."""

from __future__ import annotations

import logging
from pathlib import Path

import cv2
import numpy as np
import pandas as pd
from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf

from radscreen.data.datamodules import ImageDataModule
from radscreen.errors import UserError
from radscreen.evaluation.operating_point import OperatingPoint, load_operating_point
from radscreen.inference.inputs import InputFilters, collect_inputs
from radscreen.inference.predict import FileImageDataset, Predictions, predict
from radscreen.manifests.build import default_rejects_path
from radscreen.manifests.pseudonym import resolve_salt
from radscreen.manifests.schema import read_manifest
from radscreen.models.module import RadscreenModule
from radscreen.preprocess.intensity import minmax
from radscreen.runs import find_run_dir, load_checkpoint, load_run_config
from radscreen.utils.project_root import config_dir
from radscreen.utils.tables import check_output_path, write_csv

log = logging.getLogger(__name__)


def training_filters(run_cfg: DictConfig, cfg: DictConfig) -> InputFilters:
    """The header checks: as configured, else the modalities and views of the training run's manifest."""
    chosen = cfg.get("filters") or {}
    modalities, views = chosen.get("modalities"), chosen.get("views")
    if modalities is None or views is None:
        try:
            manifest = read_manifest(run_cfg.data.manifest)
            seen = {c: tuple(sorted(manifest[c].dropna().astype(str).unique())) for c in ("modality", "view")}
        except UserError:
            log.warning("the training manifest %s cannot be read: images of any modality and view are taken",
                        run_cfg.data.manifest)
            seen = {"modality": (), "view": ()}
        modalities = seen["modality"] if modalities is None else modalities
        views = seen["view"] if views is None else views
    filters = InputFilters(tuple(modalities), tuple(views), tuple(chosen.get("body_parts") or ()))
    log.info("header checks: modality %s, view %s, body part %s", filters.modalities or "any",
             filters.views or "any", filters.body_parts or "any")
    return filters


def saved_operating_point(cfg: DictConfig, run_dir: Path) -> OperatingPoint | None:
    """The operating point named in the config, else the one saved with the checkpoint's run (or None)."""
    if cfg.get("operating_point"):
        return load_operating_point(cfg.operating_point)
    if (run_dir / "operating_point.json").is_file():
        return load_operating_point(run_dir)
    log.warning("no operating_point.json in %s: no <task>_positive column (eval.py writes one)", run_dir)
    return None


def predict_command(cfg: DictConfig) -> Predictions:
    """predict.py: predictions of cfg.ckpt_path for cfg.input written to cfg.out (+ <out>.rejects.csv)."""
    out = check_output_path(cfg.out, "out")
    rejects_path = default_rejects_path(out)
    run_cfg, _ = load_run_config(cfg)
    run_dir = find_run_dir(Path(cfg.ckpt_path))
    data: ImageDataModule = instantiate(run_cfg.data)  # the run's preprocessing, never re-typed
    rows, rejects = collect_inputs(cfg.input, resolve_salt(), training_filters(run_cfg, cfg), cfg.get("image_root"))
    log.info("%d image(s) to predict, %d file(s) not taken", len(rows), len(rejects))
    module = load_checkpoint(cfg.ckpt_path)
    result = predict(module, rows, data.preprocess, data.eval_transform, data.in_chans,
                     saved_operating_point(cfg, run_dir), cfg.batch_size, cfg.num_workers,
                     show_progress=cfg.show_progress)
    result.rejects = pd.concat([rejects, result.rejects[["path", "reason"]]], ignore_index=True)
    write_csv(result.rejects, rejects_path)
    if result.frame.empty:
        raise UserError(f"no image of {cfg.input} could be predicted ({len(result.rejects)} not taken; see "
                        f"{rejects_path})")
    write_csv(result.frame, out)
    if cfg.get("cam"):
        cams = write_cam_overlays(module, rows[rows["image_id"].isin(result.frame["image_id"])], data, run_cfg,
                                  out.with_name(out.stem + "_cam"))
        log.info("Grad-CAM overlays in %s", cams)
    print(f"predictions: {out} ({len(result.frame)} images)\nrejects:     {rejects_path} ({len(result.rejects)} files)")
    return result


def write_cam_overlays(module: RadscreenModule, rows: pd.DataFrame, data: ImageDataModule, run_cfg: DictConfig,
                       folder: Path) -> Path:
    """One Grad-CAM overlay PNG per image (the first task; the layers scripts/cam.py uses for the backbone)."""
    from radscreen.interpret.cam import TaskOutput, compute_maps, resolve_layers
    from radscreen.interpret.commands import overlay

    layer_map = OmegaConf.load(config_dir() / "cam.yaml").cam.layers_by_backbone
    names = list(layer_map.get(module.hparams.backbone["name"], []))
    if not names:
        raise UserError(f"no CAM layers known for backbone {module.hparams.backbone['name']}: run scripts/cam.py "
                        "with cam.layers=[...] instead")
    module = module.cpu().eval()
    wrapper = TaskOutput(module, next(iter(module.tasks.values())))
    layers = resolve_layers(module.backbone, names)
    dataset = FileImageDataset(rows.reset_index(drop=True), data.preprocess, data.eval_transform, data.in_chans)
    folder.mkdir(exist_ok=True)
    for index in range(len(dataset)):
        item = dataset[index]
        image = item["image"].unsqueeze(0)
        heatmap = compute_maps(wrapper, layers, image, "gradcam", item["age"].reshape(1), item["sex"].reshape(1),
                               None, 1)[0]
        grey = image[0, 0].numpy()
        cv2.imwrite(str(folder / f"{item['image_id']}.png"), overlay(minmax(grey), heatmap.astype(np.float32)))
    return folder
