"""Transfer learning: initialise a backbone from another run's checkpoint or a weights file; freeze blocks."""

from __future__ import annotations

import logging
from pathlib import Path

import torch
import torch.nn as nn
from timm.models import load_state_dict
from timm.models._manipulate import adapt_input_conv

from radscreen.models.backbones import block_groups

log = logging.getLogger(__name__)
BACKBONE_PREFIX = "backbone."


def read_backbone_state(path: str | Path) -> dict[str, torch.Tensor]:
    """Backbone tensors of a radscreen/Lightning checkpoint (keys under 'backbone.') or of a plain
    timm-layout weights file (.safetensors, .pth, .bin), without prefixes."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"model.init_from: {path} does not exist (train the upstream model first, "
                                "or point to its checkpoints/best.ckpt)")
    if path.suffix == ".ckpt":
        checkpoint = torch.load(path, map_location="cpu", weights_only=False)
        state = checkpoint.get("state_dict", checkpoint)
        return {k[len(BACKBONE_PREFIX):]: v for k, v in state.items() if k.startswith(BACKBONE_PREFIX)}
    return dict(load_state_dict(str(path)))


def load_backbone_weights(backbone: nn.Module, path: str | Path) -> int:
    """Copy every matching tensor of `path` into `backbone`; returns how many. First convolutions with
    another number of input channels are adapted (timm's adapt_input_conv). Any other mismatch is an error."""
    source = read_backbone_state(path)
    own = backbone.state_dict()
    copied: dict[str, torch.Tensor] = {}
    mismatched = []
    for key, value in source.items():
        if key not in own:
            continue
        target = own[key]
        if value.shape == target.shape:
            copied[key] = value
        elif value.ndim == 4 and value.shape[0] == target.shape[0] and value.shape[2:] == target.shape[2:]:
            copied[key] = adapt_input_conv(target.shape[1], value)
        else:
            mismatched.append(key)
    if mismatched:
        raise ValueError(f"model.init_from: {len(mismatched)} tensor(s) of {path} do not fit this backbone "
                         f"(e.g. {mismatched[0]}): is it the same architecture?")
    if not copied:
        raise ValueError(f"model.init_from: no tensor of {path} matches this backbone's names")
    missing = len(own) - len(copied)
    backbone.load_state_dict(copied, strict=False)
    log.info("initialised %d backbone tensors from %s (%d left as they were)", len(copied), path, missing)
    return len(copied)


def freeze_all_but_last_blocks(backbone: nn.Module, n_blocks: int) -> list[str]:
    """Freeze every backbone parameter except those of the last n blocks (timm's coarse groups).

    Returns the names of the parameters that stay trainable. Batch-norm layers whose parameters are all
    frozen are kept in eval mode by the module (see RadscreenModule.train).
    """
    groups = block_groups(backbone)
    if not 0 <= n_blocks <= len(groups):
        raise ValueError(f"model.trainable_blocks must be in 0..{len(groups)} for this backbone, got {n_blocks}")
    trainable = {name for group in groups[len(groups) - n_blocks:] for name in group}
    for name, parameter in backbone.named_parameters():
        parameter.requires_grad = name in trainable
    return sorted(trainable)


def frozen_norm_layers(module: nn.Module) -> list[nn.Module]:
    """Batch-norm layers none of whose parameters train (their running statistics should not move)."""
    return [m for m in module.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)
            and all(not p.requires_grad for p in m.parameters(recurse=False))]
