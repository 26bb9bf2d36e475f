"""The exported graph: a trained module that takes named tensors and returns its decoded outputs in user units."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import torch
import torch.nn as nn

from radscreen.models.module import RadscreenModule

DEMOGRAPHIC_INPUTS = ("age", "sex")  # in this order after the image; predicted age is computed inside the graph
BATCH_AXIS = "batch"


def input_names(module: RadscreenModule) -> tuple[str, ...]:
    """'image', then 'age' and/or 'sex' when the model's fusion reads them."""
    return ("image", *(name for name in DEMOGRAPHIC_INPUTS if name in module.fusion.inputs))


def output_keys(module: RadscreenModule) -> tuple[tuple[str, str], ...]:
    """(task, key) per output in order: each task's 'pred', then 'var' for a Gaussian-NLL regression."""
    keys: list[tuple[str, str]] = []
    for name, task in module.tasks.items():
        keys += [(name, key) for key in task.output_keys()]
    return tuple(keys)


class ExportGraph(nn.Module):
    """forward(image, [age], [sex]) → decoded outputs, named `<task>_pred` / `<task>_var`.

    image: (B, C, H, W) (or (B, C, D, H, W) for 3-D backbones) float32, each image z-scored after preprocessing;
    age: (B,) years; sex: (B,) 1 = female, 0 = male; NaN where unknown. Outputs are a tuple in `output_names`
    order, or a dict name → tensor when `named_outputs` (TorchScript callers then index by name).
    """

    def __init__(self, module: RadscreenModule, named_outputs: bool = False) -> None:
        super().__init__()
        self.module = module.eval()
        self.input_names = input_names(module)
        self.keys = output_keys(module)
        self.output_names = tuple(f"{task}_{key}" for task, key in self.keys)
        self.named_outputs = named_outputs
        self.eval()  # the legacy ONNX exporter restores the wrapper's own mode after exporting: keep it eval

    def forward(self, image: torch.Tensor, *demographics: torch.Tensor):
        given = dict(zip(self.input_names[1:], demographics))
        decoded = self.module.decode(self.module(image, given.get("age"), given.get("sex")))
        values = tuple(decoded[task][key] for task, key in self.keys)
        return dict(zip(self.output_names, values)) if self.named_outputs else values


def random_inputs(names: Sequence[str], image_shape: Sequence[int], batch: int, seed: int = 0) -> dict:
    """Inputs for tracing and parity checks: standard-normal images (z-scored-like), ages in 20–90 years, sex 0/1;
    from a batch of three on, the first age and the second sex are NaN (unknown), as the data module gives them."""
    generator = torch.Generator().manual_seed(seed)
    inputs = {"image": torch.randn(batch, *image_shape, generator=generator)}
    if "age" in names:
        inputs["age"] = 20 + 70 * torch.rand(batch, generator=generator)
        if batch >= 3:
            inputs["age"][0] = float("nan")
    if "sex" in names:
        inputs["sex"] = torch.randint(0, 2, (batch,), generator=generator).float()
        if batch >= 3:
            inputs["sex"][1] = float("nan")
    return inputs


def as_arguments(graph: ExportGraph, inputs: Mapping[str, torch.Tensor]) -> tuple[torch.Tensor, ...]:
    """The graph's positional arguments from named inputs."""
    return tuple(inputs[name] for name in graph.input_names)


@torch.no_grad()
def torch_outputs(graph: ExportGraph, inputs: Mapping[str, torch.Tensor]) -> list:
    """The reference: the PyTorch module's decoded outputs as NumPy arrays, in `output_names` order (in eval mode,
    so batch-norm statistics are used, never updated)."""
    outputs = graph.eval()(*as_arguments(graph, inputs))
    values = [outputs[name] for name in graph.output_names] if isinstance(outputs, dict) else outputs
    return [value.detach().cpu().numpy() for value in values]
