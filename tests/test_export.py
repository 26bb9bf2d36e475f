"""export.py and radscreen.export: ONNX / TorchScript graphs of a checkpoint, checked against torch.

Parity: onnxruntime and the saved TorchScript module against the module's own decode on the same inputs, within
1e-4 (years, years², probabilities), traced on a batch of 2 and run on batches of 5 and 1 (dynamic batch axis).
"""

from __future__ import annotations

import hashlib
import json
import shutil
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from hydra import compose, initialize_config_dir
from hydra.core.global_hydra import GlobalHydra
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig, OmegaConf, open_dict

import radscreen
from radscreen.errors import EXIT_USER_ERROR, UserError
from radscreen.export import formats
from radscreen.export.command import export_command
from radscreen.export.graph import ExportGraph, random_inputs
from radscreen.export.metadata import image_shape
from radscreen.jobs import train
from radscreen.models.module import RadscreenModule, load_module
from radscreen.preprocess.cxr import CXRPreprocess
from radscreen.training.entry import job_guard

from hydra_helpers import CONF, compose_train, run_script, tiny_overrides

TINY = {"name": "test_resnet", "in_chans": 1}
AGE_MSE = {"age": {"name": "age", "column": "age_years", "_target_": "radscreen.tasks.RegressionTask", "loss": "mse"}}
AGE_GNLL = {"age": {"_target_": "radscreen.tasks.RegressionTask",
                    "name": "age", "column": "age_years", "loss": "gaussian_nll"}}
OSTEO = {"osteo": {"_target_": "radscreen.tasks.BinaryTask",
                   "name": "osteo", "column": "bmd_class", "positive": ["osteoporosis"]}}
WHO = {"who": {"name": "who", "column": "bmd_class", "_target_": "radscreen.tasks.MulticlassTask",
               "classes": ["normal", "osteopenia", "osteoporosis"]}}
MLP = {"kind": "mlp", "hidden": [16, 8], "dropout": [0.5, 0.2]}
MODELS = {  # name → (constructor arguments, graph inputs, graph outputs)
    "regression_mse": ({"tasks": AGE_MSE}, ("image",), ("age_pred",)),
    "gaussian_nll": ({"tasks": AGE_GNLL}, ("image",), ("age_pred", "age_var")),
    "binary": ({"tasks": OSTEO, "head": MLP}, ("image",), ("osteo_pred",)),
    "multiclass": ({"tasks": WHO}, ("image",), ("who_pred",)),
    "fusion_age_sex": ({"tasks": {**OSTEO, **AGE_GNLL}, "head": MLP, "fusion": {"inputs": ["age", "sex"]}},
                       ("image", "age", "sex"), ("osteo_pred", "age_pred", "age_var")),
}
SHAPE = (1, 32, 32)
ATOL = 1e-4


def trained_like(module: RadscreenModule) -> RadscreenModule:
    """Non-trivial statistics, as after fitting: target (50 ± 12 years) and fusion age (55 ± 14 years) statistics,
    batch-norm running statistics from a few training-mode batches. Returned in eval mode."""
    for name, task in module.tasks.items():
        if task.normalised:
            getattr(module, f"target_stats_{name}").copy_(torch.tensor([50.0, 12.0]))
    module.fusion.age_stats.copy_(torch.tensor([55.0, 14.0]))
    module.train()
    with torch.no_grad():
        for seed in range(3):
            inputs = random_inputs(("image", "age", "sex"), SHAPE, 8, seed=100 + seed)
            module(inputs["image"] * 2 + 0.5, inputs["age"], inputs["sex"])
    return module.eval()


def build(name: str) -> RadscreenModule:
    torch.manual_seed(0)
    arguments, _, _ = MODELS[name]
    return trained_like(RadscreenModule(backbone=TINY, **arguments))


def reference(module: RadscreenModule, inputs: dict) -> dict[str, np.ndarray]:
    """The module's own forward + decode (not the export wrapper), by output name."""
    with torch.no_grad():
        decoded = module.decode(module(inputs["image"], inputs.get("age"), inputs.get("sex")))
    return {f"{task}_{key}": value.numpy() for task, values in decoded.items() for key, value in values.items()}


def max_abs(actual: dict, expected: dict) -> float:
    assert set(actual) == set(expected)
    return max(float(np.abs(actual[n] - expected[n]).max()) for n in expected)


def onnx_outputs(path: Path, inputs: dict) -> dict[str, np.ndarray]:
    import onnxruntime

    session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    feed = {i.name: inputs[i.name].numpy() for i in session.get_inputs()}
    return dict(zip([o.name for o in session.get_outputs()], session.run(None, feed)))


# ------------------------------------------------------------------------------------------------------ parity
@pytest.mark.parametrize("name", list(MODELS))
def test_onnx_matches_torch_with_a_dynamic_batch(name, tmp_path):
    import onnxruntime

    module = build(name)
    _, input_names, output_names = MODELS[name]
    graph = ExportGraph(module)
    assert graph.input_names == input_names and graph.output_names == output_names
    path = tmp_path / "model.onnx"
    formats.save_onnx(formats.onnx_model(graph, random_inputs(input_names, SHAPE, 2, seed=0)), path, {"k": 1})

    session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    assert [i.name for i in session.get_inputs()] == list(input_names)
    assert [o.name for o in session.get_outputs()] == list(output_names)
    assert all(i.shape[0] == "batch" for i in session.get_inputs()), [i.shape for i in session.get_inputs()]
    assert session.get_inputs()[0].shape[1:] == list(SHAPE)
    for batch in (5, 1):
        inputs = random_inputs(input_names, SHAPE, batch, seed=1)
        got, expected = onnx_outputs(path, inputs), reference(module, inputs)
        difference = max_abs(got, expected)
        print(f"parity onnx {name} batch {batch}: max abs diff {difference:.3g}")
        assert difference <= ATOL, (name, batch, difference)
        assert all(v.shape[0] == batch for v in got.values())
    assert all(not m.training for m in module.modules())  # exporting left the module (and its BN statistics) alone


@pytest.mark.parametrize("name", list(MODELS))
def test_torchscript_matches_torch_with_a_dynamic_batch(name, tmp_path):
    module = build(name)
    _, input_names, output_names = MODELS[name]
    graph = ExportGraph(module, named_outputs=True)
    path = tmp_path / "model.torchscript.pt"
    formats.save_torchscript(formats.trace(graph, random_inputs(input_names, SHAPE, 2, seed=0)), path, {"k": 1})

    loaded, metadata = formats.load_torchscript(path)
    assert metadata == {"k": 1}
    for batch in (5, 1):
        inputs = random_inputs(input_names, SHAPE, batch, seed=1)
        with torch.no_grad():
            outputs = loaded(*(inputs[n] for n in input_names))
        assert tuple(outputs) == output_names
        difference = max_abs({k: v.numpy() for k, v in outputs.items()}, reference(module, inputs))
        print(f"parity torchscript {name} batch {batch}: max abs diff {difference:.3g}")
        assert difference <= ATOL, (name, batch, difference)


def test_gaussian_nll_variance_is_in_years_squared(tmp_path):
    module = build("gaussian_nll")
    graph = ExportGraph(module)
    path = tmp_path / "model.onnx"
    formats.save_onnx(formats.onnx_model(graph, random_inputs(graph.input_names, SHAPE, 2)), path, {})
    inputs = random_inputs(graph.input_names, SHAPE, 5, seed=1)
    with torch.no_grad():
        raw = module(inputs["image"])["age"]
    got = onnx_outputs(path, inputs)
    np.testing.assert_allclose(got["age_var"], np.exp(raw[:, 1].numpy()) * 12.0**2, rtol=1e-5)
    np.testing.assert_allclose(got["age_pred"], raw[:, 0].numpy() * 12.0 + 50.0, rtol=1e-6, atol=1e-4)


def test_predicted_age_fusion_carries_its_age_model_inside_the_graph(tmp_path):
    torch.manual_seed(0)
    age_model = trained_like(RadscreenModule(tasks=AGE_MSE, backbone=TINY))
    age_checkpoint = tmp_path / "age.ckpt"
    torch.save({"state_dict": age_model.state_dict(), "hyper_parameters": dict(age_model.hparams)}, age_checkpoint)
    fused = trained_like(RadscreenModule(tasks=OSTEO, backbone=TINY,
                                         fusion={"inputs": ["predicted_age"], "age_model": str(age_checkpoint)}))
    saved = tmp_path / "fused.ckpt"
    torch.save({"state_dict": fused.state_dict(), "hyper_parameters": dict(fused.hparams)}, saved)
    age_checkpoint.unlink()
    module = load_module(saved)
    graph = ExportGraph(module)
    assert graph.input_names == ("image",)
    path = tmp_path / "fused.onnx"
    formats.save_onnx(formats.onnx_model(graph, random_inputs(graph.input_names, SHAPE, 2)), path, {})
    inputs = random_inputs(graph.input_names, SHAPE, 5, seed=1)
    difference = max_abs(onnx_outputs(path, inputs), reference(module, inputs))
    print(f"parity onnx predicted_age fusion batch 5: max abs diff {difference:.3g}")
    assert difference <= ATOL


def test_compare_allows_relative_error_only_where_float32_cannot_resolve_atol():
    assert formats.compare([np.array([50.00009])], [np.array([50.0])]).ok  # 1e-4 absolute
    assert not formats.compare([np.array([50.0003])], [np.array([50.0])]).ok
    assert formats.compare([np.array([3000.002])], [np.array([3000.0])]).ok  # years²: 1e-6 relative
    assert not formats.compare([np.array([3000.01])], [np.array([3000.0])]).ok
    assert formats.compare([np.array([np.nan, 1.0])], [np.array([np.nan, 1.0])]).ok
    assert not formats.compare([np.array([np.nan])], [np.array([1.0])]).ok
    assert not formats.compare([np.zeros(3)], [np.zeros(2)]).ok


def test_image_shape_follows_the_preprocessing():
    from radscreen.preprocess.ct import CTPreprocess

    assert image_shape(CXRPreprocess(image_size=64), 3) == (3, 64, 64)
    assert image_shape(CTPreprocess(image_size=48, projection="coronal+sagittal"), 1) == (1, 48, 48)
    assert image_shape(CTPreprocess(projection="volume", shape_zyx=(16, 8, 8)), 1) == (1, 16, 8, 8)
    with pytest.raises(UserError, match="image_shape=\\[C,D,H,W\\]"):
        image_shape(CTPreprocess(projection="volume", shape_zyx=None, spacing_zyx=(2.0, 2.0, 2.0)), 1)


# ----------------------------------------------------------------------------------------- export.py on a run
@pytest.fixture(scope="module")
def run_dir(cohort, cache_root, tmp_path_factory) -> Path:
    """A one-epoch train() run (test_resnet, 32 px, 3 channels, right-shoulder ROI, age with Gaussian NLL + sex)
    with .hydra/config.yaml as Hydra writes it (the composed config, interpolations kept)."""
    work = tmp_path_factory.mktemp("export_run")
    folder = work / "run"
    cfg = compose_train([*tiny_overrides(cohort, work, cache_root), "task=[age_gnll,sex]", "data.in_chans=3",
                         "roi=right_shoulder", "trainer.max_epochs=1", "evaluate=false", "augment=none"], folder)
    train(cfg)
    (folder / ".hydra").mkdir()
    OmegaConf.save(cfg, folder / ".hydra" / "config.yaml")
    HydraConfig.instance().cfg = None  # as after a job: nothing below runs inside the training run's folder
    return folder


def export_job(job_dir: Path, *overrides: str) -> DictConfig:
    """export.yaml composed as export.py's job sees it: HydraConfig set, the job's own folder `job_dir`."""
    GlobalHydra.instance().clear()
    with initialize_config_dir(config_dir=CONF, version_base="1.3"):
        cfg = compose(config_name="export", overrides=list(overrides), return_hydra_config=True)
    job_dir.mkdir(parents=True, exist_ok=True)
    with open_dict(cfg):
        cfg.hydra.runtime.output_dir = str(job_dir)
    HydraConfig.instance().set_config(cfg)
    with open_dict(cfg):
        del cfg["hydra"]
    return cfg


@pytest.fixture
def clean_hydra():
    yield
    HydraConfig.instance().cfg = None


def test_onnx_export_writes_the_run_preprocessing_into_metadata_and_json(run_dir, tmp_path, clean_hydra):
    checkpoint = run_dir / "checkpoints" / "best.ckpt"
    out = tmp_path / "model.onnx"
    result = export_command(export_job(tmp_path / "job", f"ckpt_path={checkpoint}", "format=onnx", f"out={out}"))
    beside = json.loads(Path(f"{out}.json").read_text())
    assert beside == formats.read_onnx_metadata(out) == result.metadata
    run_cfg = OmegaConf.load(run_dir / "config_resolved.yaml")
    pre = beside["preprocessing"]
    assert pre["image_size"] == run_cfg.data.image_size == 32 and pre["in_chans"] == run_cfg.data.in_chans == 3
    assert pre["roi"] == OmegaConf.to_container(run_cfg.roi.box) == pre["pipeline"]["roi"]
    assert pre["zscore"]["eps"] == 1e-6 and pre["zscore"]["per"] == "image"
    # the pipeline in the metadata rebuilds the training run's preprocessing: the same cache key
    rebuilt = CXRPreprocess(**{k: v for k, v in pre["pipeline"].items() if k not in ("kind", "version")})
    assert rebuilt.key() == json.loads((run_dir / "metrics.json").read_text())["data"]["cache"]
    assert beside["checkpoint"]["sha256"] == hashlib.sha256(checkpoint.read_bytes()).hexdigest()
    assert beside["radscreen_version"] == radscreen.__version__ and beside["format"] == "onnx"
    assert beside["opset"] >= 17 and beside["check"]["max_abs_diff"] <= ATOL
    assert [t["name"] for t in beside["tasks"]] == ["age", "sex"] and beside["tasks"][1]["positive"] == ["F"]
    assert [i["name"] for i in beside["inputs"]] == ["image"] and beside["inputs"][0]["shape"] == ["batch", 3, 32, 32]
    units = {o["name"]: o["unit"] for o in beside["outputs"]}
    assert units == {"age_pred": "years", "age_var": "years²", "sex_pred": "probability"}
    # the written file against the trained checkpoint, on a batch it was not traced with
    module = load_module(checkpoint)
    inputs = random_inputs(("image",), (3, 32, 32), 7, seed=3)
    difference = max_abs(onnx_outputs(out, inputs), reference(module, inputs))
    print(f"parity onnx trained run batch 7: max abs diff {difference:.3g}")
    assert difference <= ATOL


def test_torchscript_export_carries_the_same_metadata_as_an_extra_file(run_dir, tmp_path, clean_hydra):
    checkpoint = run_dir / "checkpoints" / "last.ckpt"
    out = tmp_path / "model.pt"
    export_command(export_job(tmp_path / "job", f"ckpt_path={checkpoint}", "format=torchscript", f"out={out}"))
    loaded, metadata = formats.load_torchscript(out)
    assert metadata == json.loads(Path(f"{out}.json").read_text())
    assert metadata["format"] == "torchscript" and metadata["preprocessing"]["in_chans"] == 3
    inputs = random_inputs(("image",), (3, 32, 32), 4, seed=3)
    with torch.no_grad():
        outputs = {k: v.numpy() for k, v in loaded(inputs["image"]).items()}
    difference = max_abs(outputs, reference(load_module(checkpoint), inputs))
    print(f"parity torchscript trained run batch 4: max abs diff {difference:.3g}")
    assert difference <= ATOL


def test_a_run_without_config_resolved_reads_hydra_config(run_dir, tmp_path, clean_hydra):
    copy = tmp_path / "run"
    shutil.copytree(run_dir, copy, ignore=shutil.ignore_patterns("last*.ckpt"))
    (copy / "config_resolved.yaml").unlink()
    result = export_command(export_job(tmp_path / "job", f"ckpt_path={copy / 'checkpoints' / 'best.ckpt'}",
                                       "format=torchscript"))
    assert result.path == copy / "checkpoints" / "best.torchscript.pt" and result.path.is_file()
    roi = OmegaConf.to_container(OmegaConf.load(run_dir / "config_resolved.yaml").roi.box)
    assert result.metadata["preprocessing"]["roi"] == roi and result.metadata["preprocessing"]["image_size"] == 32


def _broken_checkpoint(run_dir: Path, tmp_path: Path) -> Path:
    folder = tmp_path / "fake_run"
    (folder / ".hydra").mkdir(parents=True)
    shutil.copy(run_dir / ".hydra" / "config.yaml", folder / ".hydra" / "config.yaml")
    (folder / "best.ckpt").write_text("not a checkpoint")
    return folder / "best.ckpt"


def _outside_run(run_dir: Path, tmp_path: Path) -> Path:
    return Path(shutil.copy(run_dir / "checkpoints" / "best.ckpt", tmp_path / "loose.ckpt"))


MISTAKES = {  # name → (overrides from (run_dir, tmp_path), expected part of the one line)
    "no ckpt_path": (lambda r, t: [], "export.py needs ckpt_path=RUN/checkpoints/best.ckpt"),
    "missing checkpoint": (lambda r, t: [f"ckpt_path={t / 'nope.ckpt'}"], "nope.ckpt does not exist"),
    "unknown format": (lambda r, t: [f"ckpt_path={r / 'checkpoints' / 'best.ckpt'}", "format=tflite"],
                       "format=tflite is not an export format: choose onnx or torchscript"),
    "out folder missing": (lambda r, t: [f"ckpt_path={r / 'checkpoints' / 'best.ckpt'}", f"out={t / 'no' / 'm.onnx'}"],
                           "does not exist; create"),
    "out of another format": (lambda r, t: [f"ckpt_path={r / 'checkpoints' / 'best.ckpt'}", "format=torchscript",
                                            f"out={t / 'm.onnx'}"], "has the extension of another format"),
    "outside a run": (lambda r, t: [f"ckpt_path={_outside_run(r, t)}"], "is not inside a train.py run folder"),
    "not a checkpoint": (lambda r, t: [f"ckpt_path={_broken_checkpoint(r, t)}", f"out={t / 'm.onnx'}"],
                         "is not a radscreen checkpoint"),
    "image_shape of other channels": (lambda r, t: [f"ckpt_path={r / 'checkpoints' / 'best.ckpt'}",
                                                    f"out={t / 'm.onnx'}", "image_shape=[1,32,32]"],
                                      "image_shape=[1, 32, 32] must be [C, H, W] or [C, D, H, W] with C = the"),
    "opset too old": (lambda r, t: [f"ckpt_path={r / 'checkpoints' / 'best.ckpt'}", f"out={t / 'm.onnx'}", "opset=13"],
                      "opset=13 is not one torch's ONNX exporter writes here: choose 17 to 20"),
}


@pytest.mark.parametrize("mistake", list(MISTAKES))
def test_user_mistakes_are_one_line_and_exit_2(mistake, run_dir, tmp_path, capsys, clean_hydra):
    overrides, message = MISTAKES[mistake]
    cfg = export_job(tmp_path / "job", *overrides(run_dir, tmp_path))
    with pytest.raises(SystemExit) as exited, job_guard():
        export_command(cfg)
    assert exited.value.code == EXIT_USER_ERROR
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and message in lines[0], lines
    assert (tmp_path / "job" / "FAILED").is_file()
    assert not list(tmp_path.glob("m.onnx*")) and not list(tmp_path.glob("*.partial"))


def test_missing_onnxruntime_names_the_extra(run_dir, tmp_path, capsys, clean_hydra, monkeypatch):
    monkeypatch.setitem(sys.modules, "onnxruntime", None)  # `import onnxruntime` now raises ImportError
    cfg = export_job(tmp_path / "job", f"ckpt_path={run_dir / 'checkpoints' / 'best.ckpt'}",
                     f"out={tmp_path / 'm.onnx'}")
    with pytest.raises(SystemExit) as exited, job_guard():
        export_command(cfg)
    assert exited.value.code == EXIT_USER_ERROR
    err = capsys.readouterr().err
    assert "onnxruntime is not installed" in err and "pip install -e '.[export]'" in err, err


def test_a_graph_that_differs_from_torch_is_not_written(run_dir, tmp_path, capsys, clean_hydra, monkeypatch):
    monkeypatch.setattr(formats, "run_onnx", lambda model, inputs: [np.full((5,), 1e3, np.float32)] * 3)
    out = tmp_path / "m.onnx"
    cfg = export_job(tmp_path / "job", f"ckpt_path={run_dir / 'checkpoints' / 'best.ckpt'}", f"out={out}")
    with pytest.raises(SystemExit), job_guard():
        export_command(cfg)
    assert "differs from the PyTorch model" in capsys.readouterr().err
    assert not out.exists() and not Path(f"{out}.json").exists() and not list(tmp_path.glob(".m.onnx*"))


def test_export_script_end_to_end(run_dir, tmp_path):
    out = tmp_path / "age_sex.onnx"
    done = run_script("export.py", f"ckpt_path={run_dir / 'checkpoints' / 'best.ckpt'}", "format=onnx", f"out={out}",
                      f"paths.log_dir={tmp_path / 'logs'}")
    assert done.returncode == 0, done.stderr[-3000:]
    assert f"onnx (opset 17): {out}" in done.stdout and "max |onnxruntime" in done.stdout, done.stdout
    assert "TracerWarning" not in done.stderr and "is deprecated" not in done.stderr, done.stderr[-2000:]
    assert json.loads(Path(f"{out}.json").read_text()) == formats.read_onnx_metadata(out)
    assert list((tmp_path / "logs" / "export" / "runs").glob("*/export.log"))
