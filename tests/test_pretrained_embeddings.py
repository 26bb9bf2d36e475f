"""Embeddings from models that are not radscreen checkpoints (timm, open_clip, torchxrayvision), with small randomly
initialised models and local weights files: nothing is downloaded."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
import timm
import torch

from radscreen.data import cache
from radscreen.errors import UserError
from radscreen.preprocess.cxr import CXRPreprocess
from radscreen.probes.commands import embed_command
from radscreen.probes.embeddings import load_embeddings
from radscreen.probes.pretrained import load_encoder, parse_model

from hydra_helpers import compose_config, run_script

IMAGE = np.linspace(0, 1, 40 * 40, dtype=np.float32).reshape(40, 40)
TINY_CLIP = {"embed_dim": 16, "vision_cfg": {"image_size": 32, "layers": 1, "width": 32, "head_width": 16,
                                             "patch_size": 8},
             "text_cfg": {"context_length": 8, "vocab_size": 64, "width": 16, "heads": 2, "layers": 1}}


@pytest.fixture(scope="module")
def tiny_clip(tmp_path_factory) -> str:
    """A 16-d open_clip model config registered under the name radscreen-test-tiny (no weights exist for it)."""
    open_clip = pytest.importorskip("open_clip")
    folder = tmp_path_factory.mktemp("open_clip_configs")
    (folder / "radscreen-test-tiny.json").write_text(json.dumps(TINY_CLIP))
    open_clip.add_model_config(folder)
    return "radscreen-test-tiny"


def images_of(encoder, *arrays):
    return torch.stack([encoder.prepare(a) for a in arrays])


def test_timm_uses_its_data_config_and_the_weights_file(tmp_path):
    encoder = load_encoder("timm:test_resnet", pretrained=False)
    config = timm.data.resolve_data_config({}, model=encoder.model)
    assert encoder.image_size == config["input_size"][-1] == 160
    prepared = encoder.prepare(IMAGE)
    mean, std = np.array(config["mean"])[:, None, None], np.array(config["std"])[:, None, None]
    np.testing.assert_allclose(prepared.numpy(), (np.stack([IMAGE] * 3) - mean) / std, rtol=1e-6)
    torch.manual_seed(3)
    source = timm.create_model("test_resnet", num_classes=0).eval()
    weights = tmp_path / "test_resnet.pth"
    torch.save(source.state_dict(), weights)
    loaded = load_encoder("timm:test_resnet", weights_file=str(weights))
    batch = images_of(loaded, IMAGE, IMAGE[::-1].copy())
    with torch.no_grad():
        torch.testing.assert_close(loaded.features(batch), source(batch))
    assert loaded.features(batch).shape == (2, source.num_features)


def test_open_clip_uses_its_own_preprocess_and_image_tower(tiny_clip, tmp_path):
    import open_clip
    from PIL import Image

    encoder = load_encoder(f"open_clip:{tiny_clip}", pretrained=False)
    assert encoder.image_size == 32
    _, _, preprocess = open_clip.create_model_and_transforms(tiny_clip)
    grey = Image.fromarray(np.round(IMAGE * 255).astype(np.uint8), mode="L")
    torch.testing.assert_close(encoder.prepare(IMAGE), preprocess(grey))
    assert encoder.prepare(IMAGE).shape == (3, 32, 32)  # open_clip made the grey picture RGB
    weights = tmp_path / "tiny.pt"
    torch.save(encoder.model.state_dict(), weights)
    reloaded = load_encoder(f"open_clip:{tiny_clip}", weights_file=str(weights))
    batch = images_of(encoder, IMAGE)
    with torch.no_grad():
        features = reloaded.features(batch)
        torch.testing.assert_close(features, encoder.model.encode_image(batch))
    assert features.shape == (1, 16)
    with pytest.raises(UserError, match="needs pretrained=TAG"):
        load_encoder(f"open_clip:{tiny_clip}")


def test_torchxrayvision_range_resolution_and_weights_file(tmp_path):
    xrv = pytest.importorskip("torchxrayvision")
    encoder = load_encoder("torchxrayvision:densenet121", pretrained=False)
    assert encoder.image_size == 224
    prepared = encoder.prepare(IMAGE)
    assert prepared.shape == (1, 40, 40)
    assert prepared.min().item() == -1024 and prepared.max().item() == 1024
    np.testing.assert_allclose(prepared[0].numpy(), IMAGE * 2048 - 1024, atol=1e-3)
    images = torch.stack([encoder.prepare(np.full((224, 224), v, np.float32)) for v in (0.2, 0.7)])
    with torch.no_grad():
        assert encoder.features(images).shape == (2, 1024)
    with pytest.raises(UserError, match="reads densenet121-res224-all from a file named"):
        load_encoder("torchxrayvision:densenet121-res224-all", weights_file=__file__)
    with pytest.raises(UserError, match="not one of its weights"):
        load_encoder("torchxrayvision:densenet999")
    assert "densenet121-res224-all" in xrv.models.model_urls


def test_model_spec_is_checked():
    assert parse_model("open_clip:hf-hub:microsoft/BiomedCLIP-PubMedBERT_256-vit_base_patch16_224") == (
        "open_clip", "hf-hub:microsoft/BiomedCLIP-PubMedBERT_256-vit_base_patch16_224")
    with pytest.raises(UserError, match="library among timm, open_clip, torchxrayvision"):
        parse_model("keras:resnet")
    with pytest.raises(UserError, match="weights_file /nowhere.pth does not exist"):
        load_encoder("timm:test_resnet", weights_file="/nowhere.pth")


def test_embed_command_writes_the_checkpoint_format_at_the_model_size(cohort, cache_root, tmp_path):
    out = tmp_path / "emb.parquet"
    cfg = compose_config("embed", ["encoder=timm:test_resnet", "pretrained=false", f"data.manifest={cohort}",
                                   f"paths.cache_dir={cache_root}", "data.num_workers=0", "data.show_progress=false",
                                   f"out={out}", "batch_size=32", f"hydra.run.dir={tmp_path}/run"], tmp_path)
    torch.manual_seed(0)
    assert embed_command(cfg) == out
    ids, features = load_embeddings(out)
    manifest = pd.read_csv(cohort)
    assert list(ids) == manifest["image_id"].tolist() and features.shape == (len(manifest), 96)
    # the first image by hand: its 160 px cache (timm's size for test_resnet), timm's normalisation, the model
    directory = cache.cache_directory(cache_root, CXRPreprocess(image_size=160))
    torch.manual_seed(0)
    encoder = load_encoder("timm:test_resnet", pretrained=False)
    with torch.no_grad():
        expected = encoder.features(images_of(encoder, cache.load(directory, manifest["image_id"][0])))
    np.testing.assert_allclose(features[0], expected[0].numpy(), rtol=1e-4, atol=1e-5)


@pytest.mark.slow
def test_embed_script_with_a_library_model_feeds_probe_py(cohort, tmp_path):
    out, manifest = tmp_path / "xrv.parquet", tmp_path / "first30.csv"
    pd.read_csv(cohort).head(30).to_csv(manifest, index=False)  # DenseNet-121 at 224 px is slow on CPUs
    embedded = run_script("scripts/embed.py", "model=torchxrayvision:densenet121", "pretrained=false",
                          f"data.manifest={manifest}", f"data.image_root={cohort.parent}", f"out={out}",
                          "data.num_workers=0", "data.show_progress=false", f"paths.log_dir={tmp_path}/logs",
                          f"paths.cache_dir={tmp_path}/cache")
    assert embedded.returncode == 0, embedded.stderr[-2000:]
    assert load_embeddings(out)[1].shape == (30, 1024)  # the model= spelling reached the encoder
    probed = run_script("scripts/probe.py", f"embeddings={out}", f"manifest={manifest}", "targets=[sex]",
                        "probes=[linear]", "folds=3", f"paths.log_dir={tmp_path}/logs")
    assert probed.returncode == 0, probed.stderr[-2000:]
    missing = run_script("scripts/embed.py", f"data.manifest={cohort}", f"paths.log_dir={tmp_path}/logs")
    assert missing.returncode == 2 and "needs ckpt_path=" in missing.stderr
