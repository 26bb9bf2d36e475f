"""Writing, running and reading the two export formats.

ONNX uses torch's TorchScript-based exporter (`dynamo=False`): on torch 2.14 it needs no package beyond onnx,
exports a timm model in about a second on a CPU, and gives a dynamic batch axis from `dynamic_axes`. The
torch.export-based exporter (the default since torch 2.9) also works on these models but needs onnxscript and
takes about ten times as long. Either way the command checks the result with onnxruntime against torch.
"""

from __future__ import annotations

import contextlib
import io
import json
import warnings
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytorch_lightning as pl
import torch

from radscreen.errors import UserError
from radscreen.export.graph import BATCH_AXIS, ExportGraph, as_arguments

FORMATS = ("onnx", "torchscript")
ATOL = 1e-4  # parity of exported outputs with torch: absolute …
RTOL = 1e-6  # … or relative (≈ 8 float32 ulps) where |value| > ATOL / RTOL = 100
MIN_OPSET = 17
MAX_OPSET = 20  # the newest opset of torch 2.14's TorchScript-based exporter
METADATA_KEY = "radscreen"  # ONNX metadata_props key
EXTRA_FILE = "radscreen.json"  # TorchScript _extra_files name


def require_onnx() -> None:
    """UserError naming the install command when onnx or onnxruntime is missing."""
    try:
        import onnx  # noqa: F401
        import onnxruntime  # noqa: F401
    except ImportError as error:
        raise UserError(f"format=onnx needs the onnx and onnxruntime packages ({error.name or 'one'} is not "
                        "installed): pip install -e '.[export]'") from None


def runtime_name(export_format: str) -> str:
    """What runs the exported file in the parity check, with its version."""
    if export_format == "onnx":
        import onnxruntime

        return f"onnxruntime {onnxruntime.__version__}"
    return f"torch.jit {torch.__version__}"


@contextlib.contextmanager
def tracing() -> Iterator[None]:
    """Around torch's tracer: Lightning's own workaround (LightningModule.to_torchscript, pytorch#67146) so that
    walking a module's attributes does not raise on `trainer` when no Trainer is attached. Hidden meanwhile: the
    tracer's notes on decode's unpacking of a fixed 2-vector, the deprecation notices of torch.jit and the legacy
    ONNX exporter, and torchmetrics' notices raised by that attribute walk."""
    previous = pl.LightningModule._jit_is_scripting
    pl.LightningModule._jit_is_scripting = True
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", torch.jit.TracerWarning)
            warnings.filterwarnings("ignore", message=".*legacy TorchScript-based ONNX export",
                                    category=DeprecationWarning)
            warnings.filterwarnings("ignore", message=r"`torch\.jit\.\w+` is deprecated", category=FutureWarning)
            warnings.filterwarnings("ignore", category=DeprecationWarning, module=r"torch\.onnx\.")
            warnings.filterwarnings("ignore", category=DeprecationWarning, module=r"torchmetrics\.")  # hasattr walk
            yield
    finally:
        pl.LightningModule._jit_is_scripting = previous


@dataclass(frozen=True)
class Parity:
    """How far exported outputs are from torch's: the largest absolute difference, and the largest ratio of a
    difference to its allowance max(atol, rtol·|torch|) (≤ 1 passes)."""

    max_abs_diff: float
    worst_ratio: float

    @property
    def ok(self) -> bool:
        return self.worst_ratio <= 1.0


def compare(actual: Sequence[np.ndarray], expected: Sequence[np.ndarray], atol: float = ATOL,
            rtol: float = RTOL) -> Parity:
    """Element-wise |actual − expected| ≤ max(atol, rtol·|expected|) over all outputs: atol absolute, relaxed to
    rtol relative only where atol is below float32 resolution (values above atol/rtol, e.g. variances in years²).
    NaN against NaN counts as equal; any other NaN or a shape mismatch is an infinite difference."""
    worst_abs = worst_ratio = 0.0
    for a, b in zip(actual, expected, strict=True):
        a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
        if a.shape != b.shape or not np.array_equal(np.isnan(a), np.isnan(b)):
            return Parity(float("inf"), float("inf"))
        difference = np.nan_to_num(np.abs(a - b), nan=0.0)
        allowance = np.maximum(atol, rtol * np.nan_to_num(np.abs(b), nan=0.0))
        worst_abs = max(worst_abs, float(difference.max(initial=0.0)))
        worst_ratio = max(worst_ratio, float((difference / allowance).max(initial=0.0)))
    return Parity(worst_abs, worst_ratio)


# ---------------------------------------------------------------------------------------------------------- ONNX
def onnx_model(graph: ExportGraph, example: Mapping[str, torch.Tensor], opset: int = MIN_OPSET):
    """The graph as an in-memory onnx.ModelProto with named inputs/outputs and a dynamic batch axis (opset
    MIN_OPSET to MAX_OPSET)."""
    import onnx

    names = [*graph.input_names, *graph.output_names]
    buffer = io.BytesIO()
    with tracing(), torch.no_grad():
        torch.onnx.export(graph.eval(), as_arguments(graph, example), buffer, input_names=list(graph.input_names),
                          output_names=list(graph.output_names), dynamic_axes={n: {0: BATCH_AXIS} for n in names},
                          opset_version=opset, do_constant_folding=True, dynamo=False)
    return onnx.load_from_string(buffer.getvalue())


def run_onnx(model, inputs: Mapping[str, torch.Tensor]) -> list[np.ndarray]:
    """Outputs of an ONNX model (ModelProto or file) under onnxruntime's CPU provider, in graph output order."""
    import onnxruntime

    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = torch.get_num_threads()
    source = str(model) if isinstance(model, (str, Path)) else model.SerializeToString()
    session = onnxruntime.InferenceSession(source, options, providers=["CPUExecutionProvider"])
    feed = {i.name: inputs[i.name].detach().cpu().numpy() for i in session.get_inputs()}
    return session.run(None, feed)


def save_onnx(model, path: Path, metadata: Mapping) -> None:
    """Write the model with the metadata as JSON under metadata_props['radscreen'], after onnx's full check."""
    import onnx

    onnx.helper.set_model_props(model, {METADATA_KEY: json.dumps(metadata, sort_keys=True)})
    model.doc_string = "radscreen export: z-scored image (+ age, sex) -> decoded outputs in user units"
    onnx.checker.check_model(model, full_check=True)
    onnx.save(model, str(path))


def read_onnx_metadata(path: str | Path) -> dict:
    """The radscreen metadata of an exported ONNX file."""
    import onnx

    props = {p.key: p.value for p in onnx.load(str(path), load_external_data=False).metadata_props}
    return json.loads(props[METADATA_KEY])


# ---------------------------------------------------------------------------------------------------- TorchScript
def trace(graph: ExportGraph, example: Mapping[str, torch.Tensor]) -> torch.jit.ScriptModule:
    """torch.jit.trace of the graph (strict=False: a graph with named outputs returns a dict)."""
    with tracing(), torch.no_grad():
        return torch.jit.trace(graph.eval(), as_arguments(graph, example), strict=False)


def run_torchscript(module: torch.jit.ScriptModule, names: Sequence[str], output_names: Sequence[str],
                    inputs: Mapping[str, torch.Tensor]) -> list[np.ndarray]:
    """Outputs of a TorchScript module called with `names` in order, as arrays in `output_names` order."""
    with torch.no_grad():
        outputs = module(*(inputs[n] for n in names))
    values = [outputs[n] for n in output_names] if isinstance(outputs, dict) else list(outputs)
    return [v.detach().cpu().numpy() for v in values]


def save_torchscript(module: torch.jit.ScriptModule, path: Path, metadata: Mapping) -> None:
    """torch.jit.save with the metadata as the extra file 'radscreen.json' (through memory, so the archive's root
    folder is torch's neutral 'archive', not the name of the temporary file it is written to)."""
    buffer = io.BytesIO()
    with tracing():
        torch.jit.save(module, buffer, _extra_files={EXTRA_FILE: json.dumps(metadata, sort_keys=True)})
    Path(path).write_bytes(buffer.getvalue())


def load_torchscript(path: str | Path) -> tuple[torch.jit.ScriptModule, dict]:
    """An exported TorchScript module (on the CPU) and its radscreen metadata."""
    extra = {EXTRA_FILE: ""}
    with tracing():
        module = torch.jit.load(str(path), map_location="cpu", _extra_files=extra)
    return module, json.loads(extra[EXTRA_FILE])
