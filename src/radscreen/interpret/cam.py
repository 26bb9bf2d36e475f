"""Grad-CAM / Grad-CAM++ / Score-CAM maps of any task head through the maintained `grad-cam` package."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from pytorch_grad_cam import GradCAM, GradCAMPlusPlus, ScoreCAM
from pytorch_grad_cam.utils.model_targets import ClassifierOutputTarget

from radscreen.tasks import Task

METHODS = {"gradcam": GradCAM, "gradcam++": GradCAMPlusPlus, "scorecam": ScoreCAM}


class TaskOutput(torch.nn.Module):
    """One-input view of a RadscreenModule for grad-cam: images → one task's scores (B, k).

    Fusion inputs (age, sex) are bound per batch with `bind` since grad-cam calls model(x) with one tensor.
    Regression heads give the predicted mean; binary heads the positive logit; multiclass heads all logits.
    """

    def __init__(self, module: torch.nn.Module, task: Task) -> None:
        super().__init__()
        self.module, self.task = module.float().eval(), task
        self.age: torch.Tensor | None = None
        self.sex: torch.Tensor | None = None

    def bind(self, age: torch.Tensor | None, sex: torch.Tensor | None) -> None:
        self.age, self.sex = age, sex

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        age, sex = (_broadcast(v, len(images)) for v in (self.age, self.sex))
        output = self.module(images, age, sex)[self.task.name]
        return self.task.cam_output(output)


def _broadcast(values: torch.Tensor | None, n: int) -> torch.Tensor | None:
    """Bound demographics for a batch of n: as they are, or one row repeated (Score-CAM's masked copies)."""
    if values is None or len(values) == n:
        return values
    if len(values) == 1:
        return values.expand(n)
    raise ValueError(f"{len(values)} bound demographic rows for a batch of {n} images")


def resolve_layers(model: torch.nn.Module, names: Sequence[str]) -> list[torch.nn.Module]:
    """Modules of the backbone by dotted name (e.g. 'Mixed_7c.branch1x1.conv'), with a clear error."""
    modules = dict(model.named_modules())
    missing = [n for n in names if n not in modules]
    if missing:
        sample = [n for n in modules if n][-8:]
        raise ValueError(f"layer(s) {missing} not in this backbone; its last modules are: {sample}")
    return [modules[n] for n in names]


def cam_targets(task: Task, n: int, class_name: str | None = None) -> list:
    """grad-cam targets: the single output of regression/binary heads, or a named class of a multiclass head."""
    return [ClassifierOutputTarget(task.cam_class_index(class_name))] * n


def compute_maps(wrapper: TaskOutput, layers: list[torch.nn.Module], images: torch.Tensor, method: str = "gradcam",
                 age: torch.Tensor | None = None, sex: torch.Tensor | None = None, class_name: str | None = None,
                 batch_size: int = 16) -> np.ndarray:
    """Maps (B, H, W) in [0, 1] at image resolution, averaged over `layers` when several are given.

    Runs in float32 (half precision breaks grad-cam's resize) and inside the CAM's context manager, so hooks are
    always removed.
    """
    if method not in METHODS:
        raise ValueError(f"cam.method must be one of {sorted(METHODS)}, got '{method}'")
    age = age.float() if age is not None else None
    sex = sex.float() if sex is not None else None
    if method != "scorecam":
        return _run(METHODS[method], wrapper, layers, images, age, sex, class_name, batch_size)
    # Score-CAM runs batches of masked copies of one image, so each image is explained with its own demographics
    return np.concatenate([
        _run(ScoreCAM, wrapper, layers, images[i:i + 1], None if age is None else age[i:i + 1],
             None if sex is None else sex[i:i + 1], class_name, batch_size) for i in range(len(images))])


def _run(cam_class, wrapper: TaskOutput, layers, images, age, sex, class_name, batch_size: int) -> np.ndarray:
    wrapper.bind(age, sex)
    with cam_class(model=wrapper, target_layers=layers) as cam:
        cam.batch_size = batch_size  # Score-CAM's masked-copy batch (grad-cam reads this attribute)
        maps = cam(input_tensor=images.float(), targets=cam_targets(wrapper.task, len(images), class_name))
    return np.asarray(maps, dtype=np.float32)
