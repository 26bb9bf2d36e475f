"""Demographic fusion: pooled image features concatenated with age, sex or a frozen age model's prediction."""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn as nn

FUSION_INPUTS = ("age", "sex", "predicted_age")


class DemographicFusion(nn.Module):
    """features (B, F) → (B, F + len(inputs)); age terms are z-scored with the training set's age statistics.

    Missing age or sex (NaN) enter as 0, i.e. the training mean for age and halfway between the sexes.
    `predicted_age` needs `age_model`: a frozen module mapping images to predicted age in years.
    """

    def __init__(self, in_features: int, inputs: Sequence[str] = (), age_model: nn.Module | None = None) -> None:
        super().__init__()
        unknown = set(inputs) - set(FUSION_INPUTS)
        if unknown:
            raise ValueError(f"fusion inputs must be among {FUSION_INPUTS}, got {sorted(unknown)}")
        if "predicted_age" in inputs and age_model is None:
            raise ValueError("fusion with predicted_age needs model.fusion.age_model=CKPT (an age model checkpoint)")
        self.inputs = tuple(inputs)
        self.in_features = in_features
        self.age_model = age_model
        if age_model is not None:
            age_model.requires_grad_(False)
            age_model.eval()
        self.register_buffer("age_stats", torch.tensor([50.0, 15.0]))  # mean, SD in years; set before fit

    @property
    def out_features(self) -> int:
        return self.in_features + len(self.inputs)

    def train(self, mode: bool = True) -> DemographicFusion:
        super().train(mode)
        if self.age_model is not None:
            self.age_model.eval()  # frozen: batch-norm statistics stay as trained
        return self

    def _age_z(self, age: torch.Tensor) -> torch.Tensor:
        z = (age.float() - self.age_stats[0]) / self.age_stats[1]
        return torch.nan_to_num(z, nan=0.0)

    def forward(self, features: torch.Tensor, images: torch.Tensor, age: torch.Tensor | None,
                sex: torch.Tensor | None) -> torch.Tensor:
        if not self.inputs:
            return features
        batch = features.shape[0]
        columns = []
        for name in self.inputs:
            if name == "age":
                missing = torch.full((batch,), float("nan"), device=features.device)
                value = self._age_z(age if age is not None else missing)
            elif name == "sex":
                value = torch.nan_to_num((sex.float() - 0.5) * 2 if sex is not None
                                         else torch.zeros(batch, device=features.device), nan=0.0)
            else:
                with torch.no_grad():
                    value = self._age_z(self.age_model.predict_age(images))
            columns.append(value.to(features.dtype).unsqueeze(1))
        return torch.cat([features, *columns], dim=1)
