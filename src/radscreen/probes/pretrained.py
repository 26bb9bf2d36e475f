"""Encoders that are not radscreen checkpoints: timm, open_clip and torchxrayvision models, each with its own input
preprocessing applied to radscreen's cached [0, 1] images.

    model=timm:NAME               timm.create_model(NAME, num_classes=0); timm's data config (size, mean, std)
    model=open_clip:NAME          open_clip's image tower (encode_image) and its own preprocess (resize, crop, mean/std)
    model=torchxrayvision:WEIGHTS torchxrayvision's model for WEIGHTS (densenet121-res224-all, ...): one channel in
                                  [-1024, 1024] at the model's resolution (224 px; 512 for its ResNet)

Weights: `weights_file` (offline; timm: a state dict in timm's layout, open_clip: a checkpoint file,
torchxrayvision: the library's own file, named as it names it), else the library's own hub download when
`pretrained` is true (open_clip: `pretrained` is the tag, e.g. laion2b_s34b_b79k), or a random initialisation when
it is false (architecture checks).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from torch import nn
from torch.utils.data import Dataset

from radscreen.data.datasets import CachedImageDataset
from radscreen.errors import UserError

log = logging.getLogger(__name__)
LIBRARIES = ("timm", "open_clip", "torchxrayvision")
XRV_RESOLUTION = 224


class PretrainedEncoder(nn.Module):
    """A library's model behind radscreen's embedding interface: `features(images)` → (B, d) pooled features, and
    `prepare(image)` turning one cached (H, W) [0, 1] image into the model's input tensor (C, S, S)."""

    def __init__(self, model: nn.Module, encode: Callable[[torch.Tensor], torch.Tensor],
                 prepare: Callable[[np.ndarray], torch.Tensor], image_size: int, label: str) -> None:
        super().__init__()
        self.model = model
        self._encode = encode
        self.prepare = prepare
        self.image_size = int(image_size)
        self.label = label

    def features(self, images: torch.Tensor) -> torch.Tensor:
        return self._encode(images)


def parse_model(spec: str) -> tuple[str, str]:
    """'library:NAME' → (library, NAME); UserError for an unknown library or no name."""
    library, _, name = str(spec).partition(":")
    if library not in LIBRARIES or not name:
        raise UserError(f"model={spec}: give library:NAME with a library among {', '.join(LIBRARIES)} "
                        "(e.g. model=timm:densenet121)")
    return library, name


def _require_library(module: str, extra: str):
    try:
        return __import__(module)
    except ImportError:
        raise UserError(f"model={extra}:… needs the {module} package: pip install -e '.[{extra}]'") from None


def _weights_file(weights_file: str | None) -> Path | None:
    if weights_file is None:
        return None
    path = Path(weights_file)
    if not path.is_file():
        raise UserError(f"weights_file {path} does not exist")
    return path


def _grey_to(channels: int, image: np.ndarray) -> torch.Tensor:
    tensor = torch.from_numpy(np.ascontiguousarray(image, dtype=np.float32)).unsqueeze(0)
    return tensor.expand(channels, *tensor.shape[1:]).contiguous() if channels == 3 else tensor


def timm_encoder(name: str, weights_file: str | None = None, pretrained: bool | str = True) -> PretrainedEncoder:
    """timm model without classifier; input: the grey image stacked to the model's channels, normalised with timm's
    data config (mean, std) at its input size."""
    import timm

    file = _weights_file(weights_file)
    try:
        model = timm.create_model(name, pretrained=bool(file) or bool(pretrained), num_classes=0,
                                  pretrained_cfg_overlay={"file": str(file)} if file else None)
    except (OSError, RuntimeError) as exc:
        raise UserError(f"timm could not load {name} ({type(exc).__name__}); offline, give weights_file=PATH "
                        "(or pretrained=false for random weights)") from None
    config = timm.data.resolve_data_config({}, model=model)
    channels, size = config["input_size"][0], config["input_size"][-1]
    mean = torch.tensor(config["mean"], dtype=torch.float32)[:, None, None]
    std = torch.tensor(config["std"], dtype=torch.float32)[:, None, None]

    def prepare(image: np.ndarray) -> torch.Tensor:
        return (_grey_to(channels, image) - mean) / std

    return PretrainedEncoder(model, model, prepare, size, f"timm:{name}")


def open_clip_encoder(name: str, weights_file: str | None = None,
                      pretrained: bool | str = True) -> PretrainedEncoder:
    """open_clip's image tower (encode_image) with open_clip's own evaluation preprocess, applied to the cached
    image as an 8-bit grey picture (open_clip converts it to RGB, resizes, crops and normalises)."""
    open_clip = _require_library("open_clip", "open_clip")
    from PIL import Image

    file = _weights_file(weights_file)
    if file is None and pretrained is True:
        tags = open_clip.list_pretrained_tags_by_model(name)
        raise UserError(f"open_clip:{name} needs pretrained=TAG (its tags: {', '.join(tags) or 'none listed'}), "
                        "weights_file=PATH, or pretrained=false for random weights")
    tag = str(file) if file else (pretrained or None)
    try:
        model, _, preprocess = open_clip.create_model_and_transforms(name, pretrained=tag)
    except (OSError, RuntimeError) as exc:
        raise UserError(f"open_clip could not load {name} with pretrained={tag} ({type(exc).__name__}); offline, "
                        "give weights_file=PATH") from None
    size = model.visual.image_size
    size = size[0] if isinstance(size, (tuple, list)) else size

    def prepare(image: np.ndarray) -> torch.Tensor:
        grey = Image.fromarray(np.round(np.clip(image, 0, 1) * 255).astype(np.uint8), mode="L")
        return preprocess(grey)

    return PretrainedEncoder(model, model.encode_image, prepare, size, f"open_clip:{name}")


def xrv_encoder(name: str, weights_file: str | None = None, pretrained: bool | str = True) -> PretrainedEncoder:
    """torchxrayvision's model for a weights name (or a random DenseNet-121 for `densenet…` with pretrained=false);
    input: one channel scaled to [-1024, 1024] by xrv.datasets.normalize, at the model's resolution."""
    xrv = _require_library("torchxrayvision", "torchxrayvision")
    file = _weights_file(weights_file)
    if file is None and not pretrained:
        if not name.startswith("densenet"):
            raise UserError(f"torchxrayvision:{name}: only its DenseNet has random weights (pretrained=false)")
        model = xrv.models.DenseNet(weights=None)
    else:
        if name not in xrv.models.model_urls:
            raise UserError(f"torchxrayvision:{name}: not one of its weights "
                            f"({', '.join(k for k in xrv.models.model_urls if '-' in k)})")
        expected = Path(xrv.models.model_urls[name]["weights_url"]).name
        if file is not None and file.name != expected:
            raise UserError(f"weights_file {file}: torchxrayvision reads {name} from a file named {expected}")
        cache = {"cache_dir": str(file.parent)} if file else {}
        try:
            model = xrv.models.get_model(name, **cache)
        except Exception as exc:  # the library raises bare Exceptions for download and load failures
            raise UserError(f"torchxrayvision could not load {name} ({type(exc).__name__}); offline, give "
                            f"weights_file=/path/to/{expected}") from None
    size = int(getattr(model, "input_resolution", XRV_RESOLUTION))
    encode = model.features2 if hasattr(model, "features2") else model.features

    def prepare(image: np.ndarray) -> torch.Tensor:
        return _grey_to(1, xrv.datasets.normalize(image, 1.0))

    return PretrainedEncoder(model, encode, prepare, size, f"torchxrayvision:{name}")


BUILDERS = {"timm": timm_encoder, "open_clip": open_clip_encoder, "torchxrayvision": xrv_encoder}


def model_argument(argv: list[str]) -> list[str]:
    """embed.py's `model=library:NAME` as the config key `encoder`: `model` is also a config group (conf/model/),
    which Hydra would try to select."""
    return [f"encoder={a.split('=', 1)[1]}" if a.startswith("model=") and ":" in a else a for a in argv]


def load_encoder(spec: str, weights_file: str | None = None, pretrained: bool | str = True) -> PretrainedEncoder:
    """The encoder for model=library:NAME (see the module docstring)."""
    library, name = parse_model(spec)
    encoder = BUILDERS[library](name, weights_file, pretrained)
    log.info("%s: inputs of %d px", encoder.label, encoder.image_size)
    return encoder.eval()


class PreparedImages(Dataset):
    """The cached [0, 1] images of a manifest's rows, each made into a model's input by `prepare` (no z-score)."""

    def __init__(self, frame: pd.DataFrame, cache_dir: Path, prepare: Callable[[np.ndarray], torch.Tensor]) -> None:
        self.images = CachedImageDataset(frame, cache_dir, {})
        self.prepare = prepare

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, index: int) -> dict:
        return {"image": self.prepare(self.images.stored_image(index)), "image_id": self.images.image_ids[index]}
