"""What travels with an exported graph: preprocessing, the input z-scoring rule, tasks, inputs and outputs.

One JSON document, written into the ONNX metadata (key `radscreen`), the TorchScript extra file `radscreen.json`
and `<out>.json` beside either file.
"""

from __future__ import annotations

import hashlib
import inspect
from dataclasses import dataclass
from pathlib import Path

import torch
from hydra.errors import InstantiationException
from omegaconf import DictConfig, OmegaConf

import radscreen
from radscreen.errors import UserError
from radscreen.export.graph import BATCH_AXIS, ExportGraph
from radscreen.preprocess.ct import CTPreprocess
from radscreen.preprocess.cxr import CXRPreprocess
from radscreen.preprocess.intensity import zscore
from radscreen.preprocess.pipelines import build_preprocess
from radscreen.tasks import Task

SCHEMA_VERSION = 1
INPUT_DESCRIPTIONS = {
    "age": "age in years, float32 (B,); NaN = unknown (enters as the training mean)",
    "sex": "sex, float32 (B,): 1 = female, 0 = male; NaN = unknown (enters halfway between)",
}


def file_sha256(path: str | Path) -> str:
    """SHA-256 of a file, read in 1 MiB chunks."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def zscore_rule() -> dict:
    """How each preprocessed image is normalised before it enters the graph (radscreen.data.datasets)."""
    eps = inspect.signature(zscore).parameters["eps"].default
    return {"function": "radscreen.preprocess.intensity.zscore", "per": "image", "eps": eps,
            "formula": "x = (x - mean(x)) / max(std(x), eps) over all pixels (voxels) of the float32 preprocessed "
                       "image (population std, ddof=0); a constant image becomes zeros",
            "channels": "z-scored once as a grey image, then repeated on every input channel (in_chans)"}


def run_preprocess(run_cfg: DictConfig) -> CXRPreprocess | CTPreprocess:
    """The preprocessing object the run's data module used (data.preprocess with data.image_size)."""
    data = run_cfg.data
    try:
        return build_preprocess(OmegaConf.to_container(data.get("preprocess") or {}, resolve=True),
                                data.get("image_size"))
    except (TypeError, ValueError, InstantiationException) as error:
        raise UserError(f"the run config's data.preprocess cannot be read: {error}") from None


def image_shape(preprocess: CXRPreprocess | CTPreprocess, in_chans: int) -> tuple[int, ...]:
    """One input image's shape: (C, size, size), or (C, D, H, W) for CT volumes on a fixed grid."""
    if getattr(preprocess, "projection", None) != "volume":
        return (in_chans, preprocess.image_size, preprocess.image_size)
    if preprocess.shape_zyx is None:
        raise UserError("this CT run resamples to a voxel spacing, so its volumes have no fixed shape: give "
                        "image_shape=[C,D,H,W] (the shape the model should take)")
    return (in_chans, *preprocess.shape_zyx)


def describe_task(task: Task) -> dict:
    """A task's definition as the manifest column and encoding the model was trained on: its conf/task entry
    (`_target_` and fields) and its kind in a word."""
    return {**task.to_config(), "kind": task.kind}


def describe_output(task: Task, key: str, name: str) -> dict:
    """One output's name, shape and unit."""
    description = task.output_description(key)
    return {"name": name, "task": task.name, "shape": [BATCH_AXIS, *description["shape"]],
            "unit": description["unit"], "description": description["description"]}


def describe_inputs(graph: ExportGraph, shape: tuple[int, ...]) -> list[dict]:
    """Each graph input's name, shape, dtype and meaning."""
    image = {"name": "image", "shape": [BATCH_AXIS, *shape], "dtype": "float32",
             "description": "preprocessed image, z-scored per image (see preprocessing.zscore)"}
    return [image, *({"name": n, "shape": [BATCH_AXIS], "dtype": "float32", "description": INPUT_DESCRIPTIONS[n]}
                     for n in graph.input_names[1:])]


def preprocessing(run_cfg: DictConfig, preprocess: CXRPreprocess | CTPreprocess) -> dict:
    """The preprocessing of the training run: pipeline parameters, image size, channels, ROI, z-scoring."""
    roi = OmegaConf.select(run_cfg, "roi.box", default=None)
    return {"pipeline": preprocess.describe(), "image_size": preprocess.image_size,
            "in_chans": int(run_cfg.data.get("in_chans", 1)),
            "roi": OmegaConf.to_container(roi, resolve=True) if isinstance(roi, DictConfig) else roi,
            "zscore": zscore_rule()}


@dataclass(frozen=True)
class RunSource:
    """A checkpoint and what its training run recorded: run folder, config and preprocessing."""

    checkpoint: Path
    run_dir: Path
    run_cfg: DictConfig
    preprocess: CXRPreprocess | CTPreprocess


def build_metadata(graph: ExportGraph, source: RunSource, shape: tuple[int, ...], export_format: str) -> dict:
    """The whole document (the command adds the parity check's result under 'check')."""
    module, checkpoint = graph.module, source.checkpoint
    outputs = [describe_output(module.tasks[task], key, name) for (task, key), name in
               zip(graph.keys, graph.output_names)]
    return {
        "schema_version": SCHEMA_VERSION, "producer": "radscreen", "radscreen_version": radscreen.__version__,
        "torch_version": torch.__version__, "format": export_format,
        "checkpoint": {"path": str(checkpoint.resolve()), "sha256": file_sha256(checkpoint)},
        "run_dir": str(source.run_dir), "backbone": module.hparams.backbone.get("name"),
        "inputs": describe_inputs(graph, shape), "outputs": outputs,
        "tasks": [describe_task(task) for task in module.tasks.values()],
        "fusion": {"inputs": list(module.fusion.inputs),
                   "age_stats_years": [float(v) for v in module.fusion.age_stats]},
        "preprocessing": preprocessing(source.run_cfg, source.preprocess),
    }
