"""3-D backbones from torchvision's video ResNets, with the timm seam the module uses
(num_features, forward_features, forward_head(pre_logits=True), group_matcher)."""

from __future__ import annotations

import torch
import torch.nn as nn
from torchvision.models import video

VIDEO_MODELS = {"video_r3d_18": video.r3d_18, "video_mc3_18": video.mc3_18, "video_r2plus1d_18": video.r2plus1d_18}


class VideoResNet3D(nn.Module):
    """A torchvision video ResNet on volumes (B, in_chans, z, y, x), classifier removed, stem adapted to in_chans."""

    def __init__(self, name: str, in_chans: int = 1, drop_rate: float = 0.0) -> None:
        super().__init__()
        model = VIDEO_MODELS[name](weights=None)  # never downloads
        stem = model.stem[0]
        if in_chans != stem.in_channels:
            model.stem[0] = nn.Conv3d(in_chans, stem.out_channels, stem.kernel_size, stem.stride, stem.padding,
                                      bias=False)
        self.stem, self.layer1, self.layer2, self.layer3, self.layer4 = (
            model.stem, model.layer1, model.layer2, model.layer3, model.layer4)
        self.num_features = model.fc.in_features
        self.drop = nn.Dropout(drop_rate)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        return self.layer4(self.layer3(self.layer2(self.layer1(self.stem(x)))))

    def forward_head(self, x: torch.Tensor, pre_logits: bool = True) -> torch.Tensor:
        return self.drop(torch.flatten(nn.functional.adaptive_avg_pool3d(x, 1), 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward_head(self.forward_features(x))

    def group_matcher(self, coarse: bool = False) -> dict:
        return {"stem": r"^stem", "blocks": r"^layer(\d+)"}
