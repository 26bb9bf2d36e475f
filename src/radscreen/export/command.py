"""What export.py runs: checkpoint → graph file (+ `<out>.json`), checked against torch before it is written."""

from __future__ import annotations

import json
import pickle
from dataclasses import dataclass
from pathlib import Path

from omegaconf import DictConfig, OmegaConf

from radscreen.errors import ConfigError, UserError
from radscreen.export import formats
from radscreen.export.graph import ExportGraph, random_inputs, torch_outputs
from radscreen.export.metadata import RunSource, build_metadata, image_shape, run_preprocess
from radscreen.models.module import RadscreenModule
from radscreen.runs import RESOLVED_CONFIG, find_run_dir, load_checkpoint
from radscreen.utils.tables import atomic_output, check_input_file, check_output_path, write_text

SUFFIXES = {"onnx": ".onnx", "torchscript": ".torchscript.pt"}
OTHER_SUFFIXES = {"onnx": (".pt", ".pth", ".ts", ".torchscript", ".jit"), "torchscript": (".onnx",)}


class ExportCheckError(UserError):
    """The exported graph does not reproduce the PyTorch model within the tolerance (nothing is written)."""


@dataclass(frozen=True)
class ExportResult:
    """What an export wrote and how closely the written graph reproduces torch."""

    path: Path
    metadata_path: Path
    parity: formats.Parity
    metadata: dict


def check_format(value: object) -> str:
    """The export format, or UserError listing the known ones."""
    if value not in formats.FORMATS:
        raise UserError(f"format={value} is not an export format: choose {' or '.join(formats.FORMATS)}")
    return str(value)


def checkpoint_path(cfg: DictConfig) -> Path:
    """ckpt_path as an existing file, or UserError."""
    if OmegaConf.is_missing(cfg, "ckpt_path") or not cfg.get("ckpt_path"):
        raise UserError("export.py needs ckpt_path=RUN/checkpoints/best.ckpt (a checkpoint written by train.py)")
    return check_input_file(cfg.ckpt_path, "ckpt_path")


def output_path(cfg: DictConfig, checkpoint: Path, export_format: str) -> Path:
    """out (default: beside the checkpoint, best.onnx / best.torchscript.pt), checked to be writable and to fit
    the format; never the checkpoint itself."""
    out = Path(cfg.out) if cfg.get("out") else checkpoint.with_name(checkpoint.stem + SUFFIXES[export_format])
    if out.name.lower().endswith(OTHER_SUFFIXES[export_format]):
        raise UserError(f"out={out} has the extension of another format than format={export_format}: name it "
                        f"*{SUFFIXES[export_format]} or set the format that you mean")
    out = check_output_path(out, "out")
    if out.resolve() == checkpoint.resolve() or out.suffix == ".json":
        raise UserError(f"out={out} would overwrite the checkpoint or its metadata: choose another file name")
    return out


def read_source(checkpoint: Path) -> RunSource:
    """The training run of the checkpoint: its folder, config (resolved when the run wrote one) and preprocessing."""
    try:
        run_dir = find_run_dir(checkpoint)
    except ConfigError:
        raise UserError(f"ckpt_path={checkpoint} is not inside a train.py run folder (no .hydra/config.yaml above "
                        "it): export.py takes its preprocessing from the run's config") from None
    resolved = run_dir / RESOLVED_CONFIG
    run_cfg = OmegaConf.load(resolved if resolved.is_file() else run_dir / ".hydra" / "config.yaml")
    if "data" not in run_cfg:
        raise UserError(f"the run config of {checkpoint} has no data section: is {run_dir} a train.py run?")
    return RunSource(checkpoint, run_dir, run_cfg, run_preprocess(run_cfg))


def read_module(checkpoint: Path) -> RadscreenModule:
    """The trained module, or UserError when the file is not a radscreen checkpoint."""
    try:
        return load_checkpoint(checkpoint)
    except (pickle.UnpicklingError, EOFError, KeyError, RuntimeError) as error:
        raise UserError(f"ckpt_path={checkpoint} is not a radscreen checkpoint ({type(error).__name__}: "
                        f"{str(error).splitlines()[0] if str(error) else 'unreadable'})") from None


def graph_image_shape(cfg: DictConfig, source: RunSource, module: RadscreenModule) -> tuple[int, ...]:
    """One image's shape: image_shape= when given, else from the run's preprocessing and the backbone's channels."""
    in_chans = int(module.hparams.backbone.get("in_chans", 1))
    data_chans = int(source.run_cfg.data.get("in_chans", in_chans))
    if data_chans != in_chans:
        raise UserError(f"the checkpoint's backbone takes in_chans={in_chans} but its run config has "
                        f"data.in_chans={data_chans}: is ckpt_path inside the right run folder?")
    if not cfg.get("image_shape"):
        return image_shape(source.preprocess, in_chans)
    shape = tuple(int(v) for v in cfg.image_shape)
    if len(shape) not in (3, 4) or min(shape) < 1 or shape[0] != in_chans:
        raise UserError(f"image_shape={list(shape)} must be [C, H, W] or [C, D, H, W] with C = the backbone's "
                        f"in_chans ({in_chans}) and positive sizes")
    return shape


@dataclass(frozen=True)
class ExportOptions:
    """How to export: format, example batch for tracing, parity-check batch and tolerances, ONNX opset."""

    format: str = "onnx"
    batch_size: int = 2
    check_batch_size: int = 5
    atol: float = formats.ATOL
    rtol: float = formats.RTOL
    opset: int = formats.MIN_OPSET

    @classmethod
    def from_config(cls, cfg: DictConfig) -> ExportOptions:
        """The options of export.yaml's keys."""
        options = cls(check_format(cfg.get("format")), int(cfg.batch_size), int(cfg.check_batch_size),
                      float(cfg.atol), float(cfg.rtol), int(cfg.opset))
        if options.batch_size < 1 or options.check_batch_size < 1:
            raise UserError("batch_size and check_batch_size must be at least 1")
        if not formats.MIN_OPSET <= options.opset <= formats.MAX_OPSET:
            raise UserError(f"opset={options.opset} is not one torch's ONNX exporter writes here: choose "
                            f"{formats.MIN_OPSET} to {formats.MAX_OPSET}")
        return options


def write_graph(graph: ExportGraph, shape: tuple[int, ...], out: Path, metadata: dict,
                options: ExportOptions) -> formats.Parity:
    """Export (traced on a batch of options.batch_size), compare with torch on a random batch of
    options.check_batch_size, and only then write `out` atomically with the metadata and the check's result
    inside; returns how closely the exported graph reproduces torch."""
    example = random_inputs(graph.input_names, shape, options.batch_size, seed=0)
    check = random_inputs(graph.input_names, shape, options.check_batch_size, seed=1)
    expected = torch_outputs(graph, check)
    if options.format == "onnx":
        model = formats.onnx_model(graph, example, options.opset)
        actual = formats.run_onnx(model, check)
    else:
        model = formats.trace(graph, example)
        actual = formats.run_torchscript(model, graph.input_names, graph.output_names, check)
    parity = formats.compare(actual, expected, options.atol, options.rtol)
    if not parity.ok:
        raise ExportCheckError(
            f"the {options.format} graph differs from the PyTorch model by up to {parity.max_abs_diff:.3g} "
            f"({parity.worst_ratio:.3g} times the allowed max(atol={options.atol:g}, rtol={options.rtol:g}·|value|)) "
            f"on a random batch of {options.check_batch_size}; nothing was written. Try the other format, or "
            "accept it with a larger atol=/rtol=")
    metadata["check"] = {"runtime": formats.runtime_name(options.format), "batch_size": options.check_batch_size,
                         "example_batch_size": options.batch_size, "max_abs_diff": parity.max_abs_diff,
                         "worst_ratio": parity.worst_ratio, "atol": options.atol, "rtol": options.rtol}
    if options.format == "onnx":
        metadata["opset"] = options.opset
    save = formats.save_onnx if options.format == "onnx" else formats.save_torchscript
    with atomic_output(out) as temporary:
        save(model, temporary, metadata)
    return parity


def export_command(cfg: DictConfig) -> ExportResult:
    """export.py: ckpt_path, format, out → the graph file and `<out>.json`, checked against torch."""
    options = ExportOptions.from_config(cfg)
    checkpoint = checkpoint_path(cfg)
    out = output_path(cfg, checkpoint, options.format)
    if options.format == "onnx":
        formats.require_onnx()
    source = read_source(checkpoint)
    module = read_module(checkpoint)
    graph = ExportGraph(module, named_outputs=options.format == "torchscript")
    shape = graph_image_shape(cfg, source, module)
    metadata = build_metadata(graph, source, shape, options.format)
    parity = write_graph(graph, shape, out, metadata, options)
    metadata_path = write_text(json.dumps(metadata, indent=2, sort_keys=True, ensure_ascii=False) + "\n",
                               Path(f"{out}.json"))
    return ExportResult(out, metadata_path, parity, metadata)


def summary(result: ExportResult) -> str:
    """The lines export.py prints: what was written, its inputs and outputs, and the parity check."""
    meta = result.metadata
    inputs = ", ".join(f"{i['name']} ({', '.join(map(str, i['shape']))})" for i in meta["inputs"])
    check = meta["check"]
    opset = f" (opset {meta['opset']})" if "opset" in meta else ""
    return "\n".join([
        f"{meta['format']}{opset}: {result.path}",
        f"metadata: {result.metadata_path}",
        f"inputs: {inputs}",
        f"outputs: {', '.join(o['name'] for o in meta['outputs'])}",
        f"max |{check['runtime']} - torch| = {check['max_abs_diff']:.3g} on a random batch of {check['batch_size']} "
        f"(allowed: max({check['atol']:g}, {check['rtol']:g}·|value|))",
    ])
