"""timm backbones; ImageNet weights from a local file (offline) or timm's hub download."""

from __future__ import annotations

from pathlib import Path

import timm
import torch.nn as nn
from timm.models import group_parameters

import radscreen.models.video  # noqa: F401  (registers the 3-D backbones with timm)
from radscreen.errors import UserError

WEIGHTS = ("none", "imagenet")


class WeightsNotFoundError(UserError, FileNotFoundError):
    """Pretrained weights that cannot be had: a local file that does not exist, or a hub download that failed."""


def create_backbone(
    name: str,
    in_chans: int = 1,
    weights: str = "none",
    weights_file: str | None = None,
    drop_rate: float = 0.0,
    **kwargs,
) -> nn.Module:
    """A timm model without classifier (num_classes=0): forward_features + forward_head(pre_logits=True).
    Any model timm knows, including the 3-D ResNets for volumes that radscreen.models.video registers with it
    (video_r3d_18, video_mc3_18, video_r2plus1d_18: no ImageNet weights).

    weights='imagenet' loads timm's pretrained weights: from `weights_file` when given (safetensors / .pth / .bin
    state dict in timm's layout; works offline), else through timm's own hub download (a connected workstation;
    cached by huggingface_hub). timm adapts the first convolution to in_chans=1 by summing RGB kernels.
    """
    if weights not in WEIGHTS:
        raise UserError(f"backbone.weights must be one of {', '.join(WEIGHTS)}, got '{weights}'")
    overlay = None
    if weights == "imagenet" and weights_file:
        if not Path(weights_file).is_file():
            raise WeightsNotFoundError(f"backbone.weights_file {weights_file} does not exist")
        overlay = {"file": str(weights_file)}
    try:
        return timm.create_model(name, pretrained=weights == "imagenet", pretrained_cfg_overlay=overlay,
                                 in_chans=in_chans, num_classes=0, drop_rate=drop_rate, **kwargs)
    except (OSError, RuntimeError) as exc:
        if weights != "imagenet" or weights_file:
            raise
        raise WeightsNotFoundError(
            f"timm could not fetch the ImageNet weights of {name} ({type(exc).__name__}); without internet, set "
            f"backbone.weights_file=/path/to/{name}.safetensors to a local copy") from None


def pooled_features(backbone: nn.Module, images):
    """The pooled penultimate features (B, num_features): timm's forward_features → forward_head(pre_logits)."""
    return backbone.forward_head(backbone.forward_features(images), pre_logits=True)


def block_groups(backbone: nn.Module) -> list[list[str]]:
    """Parameter names of the backbone grouped into blocks, input to output (timm's coarse group_matcher)."""
    groups = group_parameters(backbone, backbone.group_matcher(coarse=True))
    return [names for _, names in sorted(groups.items())]
