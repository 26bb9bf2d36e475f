"""3-D backbones from torchvision's video ResNets, registered with timm (`timm.create_model("video_r3d_18")`), with
the timm seam the module uses (num_features, forward_features, forward_head(pre_logits=True), group_matcher).

Importing this module registers them; radscreen.models.backbones does. The names and parameter names are those of
earlier checkpoints (stem.*, layer1-4.*), so those load unchanged."""

from __future__ import annotations

import torch
import torch.nn as nn
from timm.models import register_model
from torchvision.models import video

from radscreen.errors import UserError

TORCHVISION_MODELS = {"video_r3d_18": video.r3d_18, "video_mc3_18": video.mc3_18,
                      "video_r2plus1d_18": video.r2plus1d_18}


class VideoResNet3D(nn.Module):
    """A torchvision video ResNet on volumes (B, in_chans, z, y, x), stem adapted to in_chans; a linear classifier
    of num_classes outputs, or none (num_classes=0: forward gives the pooled features)."""

    def __init__(self, name: str, in_chans: int = 1, num_classes: int = 0, drop_rate: float = 0.0) -> None:
        super().__init__()
        model = TORCHVISION_MODELS[name](weights=None)  # never downloads
        stem = model.stem[0]
        if in_chans != stem.in_channels:
            model.stem[0] = nn.Conv3d(in_chans, stem.out_channels, stem.kernel_size, stem.stride, stem.padding,
                                      bias=False)
        self.stem, self.layer1, self.layer2, self.layer3, self.layer4 = (
            model.stem, model.layer1, model.layer2, model.layer3, model.layer4)
        self.num_features = model.fc.in_features
        self.num_classes = num_classes
        self.drop = nn.Dropout(drop_rate)
        self.fc = nn.Linear(self.num_features, num_classes) if num_classes else nn.Identity()

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        return self.layer4(self.layer3(self.layer2(self.layer1(self.stem(x)))))

    def forward_head(self, x: torch.Tensor, pre_logits: bool = False) -> torch.Tensor:
        pooled = self.drop(torch.flatten(nn.functional.adaptive_avg_pool3d(x, 1), 1))
        return pooled if pre_logits else self.fc(pooled)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward_head(self.forward_features(x))

    def group_matcher(self, coarse: bool = False) -> dict:
        return {"stem": r"^stem", "blocks": r"^layer(\d+)"}


def _create(name: str, pretrained: bool = False, in_chans: int = 1, num_classes: int = 0, drop_rate: float = 0.0,
            **_timm_options) -> VideoResNet3D:
    """timm's entry point arguments → a VideoResNet3D (timm's pretrained_cfg and cache options do not apply)."""
    if pretrained:
        raise UserError("3-D backbones have no ImageNet weights here: use backbone.weights=none or model.init_from")
    return VideoResNet3D(name, in_chans=in_chans, num_classes=num_classes, drop_rate=drop_rate)


@register_model
def video_r3d_18(pretrained: bool = False, **kwargs) -> VideoResNet3D:
    """torchvision's 3-D ResNet-18 (r3d_18)."""
    return _create("video_r3d_18", pretrained, **kwargs)


@register_model
def video_mc3_18(pretrained: bool = False, **kwargs) -> VideoResNet3D:
    """torchvision's mixed-convolution ResNet-18 (mc3_18)."""
    return _create("video_mc3_18", pretrained, **kwargs)


@register_model
def video_r2plus1d_18(pretrained: bool = False, **kwargs) -> VideoResNet3D:
    """torchvision's (2+1)-D ResNet-18 (r2plus1d_18)."""
    return _create("video_r2plus1d_18", pretrained, **kwargs)
