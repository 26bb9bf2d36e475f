"""What scripts/cam.py runs: select images, compute maps, save overlays, align and average."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import cv2
import numpy as np
import pandas as pd
import torch
from hydra.utils import instantiate
from omegaconf import DictConfig
from pytorch_grad_cam.utils.image import show_cam_on_image

from radscreen.data import cache
from radscreen.data.datamodules import ImageDataModule
from radscreen.errors import UserError
from radscreen.interpret.align import register, transform_parameters, warp
from radscreen.interpret.cam import TaskOutput, compute_maps, resolve_layers
from radscreen.preprocess.intensity import minmax
from radscreen.runs import find_run_dir, load_checkpoint, load_run_config
from radscreen.tasks import Task

log = logging.getLogger(__name__)
SELECTIONS = ("all", "true_positive", "false_negative", "false_positive", "true_negative")


def select_rows(frame: pd.DataFrame, pred: np.ndarray, target: np.ndarray, task: Task, select: str,
                threshold: float) -> np.ndarray:
    """Positions of the rows to explain: all, or a cell of the confusion matrix of a thresholded task."""
    if select not in SELECTIONS:
        raise UserError(f"cam.select must be one of {SELECTIONS}, got '{select}'")
    if select == "all":
        return np.arange(len(frame))
    if not task.thresholded:
        raise UserError(f"cam.select={select} needs a binary task; {task.name} is {task.kind}")
    positive, predicted = target == 1, pred >= threshold
    cell = {"true_positive": positive & predicted, "false_negative": positive & ~predicted,
            "false_positive": ~positive & predicted & (target == 0), "true_negative": (target == 0) & ~predicted}
    return np.flatnonzero(cell[select])


def overlay(image: np.ndarray, heatmap: np.ndarray) -> np.ndarray:
    """BGR uint8 overlay of a [0, 1] map on a [0, 1] grey image (grad-cam's show_cam_on_image)."""
    rgb = np.repeat(np.clip(image, 0, 1)[..., None], 3, axis=2).astype(np.float32)
    return cv2.cvtColor(show_cam_on_image(rgb, heatmap, use_rgb=True), cv2.COLOR_RGB2BGR)


def cam_command(cfg: DictConfig) -> Path:
    """Maps for the selected images of a split, saved per image, plus (aligned and unaligned) averages."""
    options = cfg.cam
    run_cfg, _ = load_run_config(cfg)
    datamodule: ImageDataModule = instantiate(run_cfg.data)
    datamodule.prepare_data()
    datamodule.setup("test")
    if options.split not in datamodule.datasets:
        raise UserError(f"cam.split={options.split} is empty; choose one of {', '.join(datamodule.datasets)}")
    module = load_checkpoint(cfg.ckpt_path)
    task = module.tasks[options.task] if options.task else next(iter(module.tasks.values()))
    dataset = datamodule.prediction_loader(options.split).dataset
    names = list(options.layers or options.layers_by_backbone.get(module.hparams.backbone["name"], []))
    if not names:
        raise UserError(f"no CAM layers for backbone {module.hparams.backbone['name']}: set cam.layers=[NAME,...]")
    layers = resolve_layers(module.backbone, names)
    wrapper = TaskOutput(module, task)

    loader = datamodule.prediction_loader(options.split)
    with torch.no_grad():  # predictions in batches, to choose which images to explain
        pred = np.concatenate([module.decode(module(b["image"], b["age"], b["sex"]))[task.name]["pred"].numpy()
                               for b in loader])
    target = dataset.targets[task.name]
    chosen = select_rows(dataset.frame, task.selection_scores(pred), target, task, options.select,
                         options.threshold)[: options.max_images]
    if not len(chosen):
        raise UserError(f"no image of split {options.split} is {options.select} at cam.threshold={options.threshold}; "
                        "choose another cam.select or cam.threshold")
    batches = {i: dataset[i] for i in chosen}  # only the selected images are loaded
    out = Path(options.out) if options.out else find_run_dir(Path(cfg.ckpt_path)) / "cam"
    (out / "maps").mkdir(parents=True, exist_ok=True)
    groups = {f"layer_{n}": [layer] for n, layer in zip(names, layers)} if options.per_layer else {"all": layers}
    maps = {name: [] for name in groups}
    for start in range(0, len(chosen), options.batch_size):
        index = chosen[start:start + options.batch_size]
        batch = [batches[i] for i in index]
        for name, group in groups.items():
            stacked = {key: torch.stack([b[key] for b in batch]) for key in ("image", "age", "sex")}
            maps[name].append(compute_maps(wrapper, group, stacked["image"], options.method, stacked["age"],
                                           stacked["sex"], options.class_name, options.batch_size))
    maps = {name: np.concatenate(parts) for name, parts in maps.items()}
    if options.per_layer:
        maps["mean_of_layers"] = np.mean([maps[n] for n in groups], axis=0)
    ids = [dataset.image_ids[i] for i in chosen]
    originals = np.stack([cache.load(dataset.cache_dir, i) for i in ids])
    reference = originals[0]
    transforms = [register(reference, image, options.align, on=options.align_on) for image in originals]
    aligned_images = np.stack([warp(image, t, reference) for image, t in zip(originals, transforms)])
    pd.DataFrame({"image_id": ids, "parameters": [json.dumps(transform_parameters(t)) for t in transforms]}).to_csv(
        out / "alignment.csv", index=False)
    np.save(out / "reference_image.npy", reference)
    for name, stack in maps.items():
        np.save(out / "maps" / f"{name}.npy", stack)
        aligned = np.stack([warp(m, t, reference) for m, t in zip(stack, transforms)])
        for label, average, background in (("average", aligned.mean(0), aligned_images.mean(0)),
                                           ("average_unaligned", stack.mean(0), originals.mean(0))):
            np.save(out / f"{name}_{label}.npy", average)
            cv2.imwrite(str(out / f"{name}_{label}.png"), overlay(background, minmax(average)))
    for image_id, image, heatmap in list(zip(ids, originals, maps[next(iter(maps))]))[: options.examples]:
        cv2.imwrite(str(out / "maps" / f"{image_id}.png"), overlay(image, heatmap))
    log.info("%d maps (%s, %s) written to %s", len(ids), options.method, ", ".join(maps), out)
    return out
