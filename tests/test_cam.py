"""Class-activation maps: localisation on a known target, per-layer output, registration, comparison."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pandas as pd
import pytest
import torch

from radscreen.data.datamodules import ImageDataModule
from radscreen.interpret.align import register, transform_parameters, warp
from radscreen.interpret.cam import TaskOutput, compute_maps, resolve_layers
from radscreen.interpret.compare import similarity
from radscreen.models.module import RadscreenModule

SQUARE = (slice(8, 24), slice(8, 24))  # rows, columns of the bright square in positives
TASK = {"square": {"name": "square", "column": "square", "_target_": "radscreen.tasks.BinaryTask", "positive": [1]}}


def square_cohort(root: Path, n: int = 160, size: int = 64) -> Path:
    """Every image has a distractor square at a random place away from SQUARE; positives also have one at SQUARE,
    negatives a second distractor. Image statistics are alike and only a square at SQUARE tells the label."""
    rng = np.random.default_rng(0)
    (root / "img").mkdir(parents=True)
    rows = []
    for i in range(n):
        image = rng.normal(0.4, 0.08, (size, size))
        label = i % 2
        for place in ([SQUARE] if label else []) + [None] * (1 if label else 2):
            while place is None:  # anywhere that does not overlap SQUARE
                top, left = rng.integers(0, size - 16, 2)
                if top >= SQUARE[0].stop or left >= SQUARE[1].stop or top + 16 <= SQUARE[0].start:
                    place = (slice(top, top + 16), slice(left, left + 16))
            image[place] += 0.5
        cv2.imwrite(str(root / "img" / f"{i}.png"), np.clip(image * 4000, 0, 65535).astype(np.uint16))
        rows.append({"image_id": f"s{i}", "patient_id": f"p{i}", "path": f"img/{i}.png", "square": label,
                     "sex": "F" if i % 4 < 2 else "M", "age_years": 50.0})
    pd.DataFrame(rows).to_csv(root / "m.csv", index=False)
    return root / "m.csv"


class HandSetSquareModel(torch.nn.Module):
    """A CNN with weights set by hand, in RadscreenModule's call signature: `features` (a 5×5 mean filter and a
    ReLU) responds to local brightness; the positive logit is the mean response inside SQUARE. Its Grad-CAM is
    known without training: the brightness map, whose average over positives peaks at SQUARE (distractors move)."""

    def __init__(self) -> None:
        super().__init__()
        self.features = torch.nn.Sequential(torch.nn.Conv2d(1, 1, 5, padding=2, bias=False), torch.nn.ReLU())
        torch.nn.init.constant_(self.features[0].weight, 1 / 25)

    def forward(self, images: torch.Tensor, age: torch.Tensor | None = None,
                sex: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
        response = self.features(images)[:, 0]
        logit = response[:, SQUARE[0], SQUARE[1]].mean(dim=(1, 2)) - 0.5
        if age is not None:  # fusion inputs reach the model: Score-CAM binds one row per image
            logit = logit + 0.0 * age
        return {"square": logit[:, None]}


def test_average_gradcam_peaks_inside_the_square(tmp_path):
    datamodule = ImageDataModule(manifest=str(square_cohort(tmp_path)), tasks=TASK, cache_root=str(tmp_path / "c"),
                                 image_size=64, split={"stratify": ["square"]}, batch_size=16, show_progress=False)
    datamodule.prepare_data()
    datamodule.setup("test")
    test = datamodule.prediction_loader("test").dataset
    positives = [test[i] for i in range(len(test)) if test.targets["square"][i] == 1]
    images = torch.stack([p["image"] for p in positives])
    task = RadscreenModule(tasks=TASK, backbone={"name": "test_resnet", "in_chans": 1}).tasks["square"]
    model = HandSetSquareModel()
    wrapper = TaskOutput(model, task)
    maps = compute_maps(wrapper, resolve_layers(model, ["features"]), images, "gradcam")
    assert maps.shape == (len(positives), 64, 64) and len(positives) >= 10
    average = maps.mean(0)
    peak = np.unravel_index(average.argmax(), average.shape)
    assert SQUARE[0].start <= peak[0] < SQUARE[0].stop and SQUARE[1].start <= peak[1] < SQUARE[1].stop
    assert average[SQUARE].mean() > 2 * average[32:, 32:].mean()
    # per layer: the map of a layer listed twice is that layer's map
    twice = compute_maps(wrapper, resolve_layers(model, ["features", "features"]), images[:4], "gradcam")
    np.testing.assert_allclose(twice, maps[:4], atol=1e-6)
    score = compute_maps(wrapper, resolve_layers(model, ["features.1"]), images[:2], "scorecam",
                         age=torch.tensor([50.0, 60.0]), sex=torch.tensor([1.0, 0.0]))
    assert score.shape == (2, 64, 64) and np.isfinite(score).all()
    assert all(score[i][SQUARE].mean() > score[i][32:, 32:].mean() for i in range(2))


def test_unknown_layer_lists_the_backbones_last_modules():
    module = RadscreenModule(tasks=TASK, backbone={"name": "test_resnet", "in_chans": 1})
    assert resolve_layers(module.backbone, ["layer2"])[0] is module.backbone.layer2
    with pytest.raises(ValueError, match="not in this backbone; its last modules are"):
        resolve_layers(module.backbone, ["Mixed_7c.branch1x1.conv"])


def test_registration_recovers_a_known_shift():
    rng = np.random.default_rng(1)
    yy, xx = np.mgrid[0:96, 0:96]
    fixed = np.exp(-((yy - 40) ** 2 + (xx - 50) ** 2) / 200.0) + 0.6 * np.exp(-((yy - 65) ** 2 + (xx - 30) ** 2) / 90.0)
    fixed = (fixed + rng.normal(0, 0.01, fixed.shape)).astype(np.float32)
    shift = np.float32([[1, 0, 5], [0, 1, -3]])  # moving = fixed moved 5 px right, 3 px up
    moving = cv2.warpAffine(fixed, shift, (96, 96))
    transform = register(fixed, moving, "rigid")
    angle, tx, ty = transform_parameters(transform)[-3:]
    assert abs(tx - 5) < 1 and abs(ty + 3) < 1 and abs(angle) < 0.02
    restored = warp(moving, transform, fixed)
    assert np.abs(restored - fixed)[10:-10, 10:-10].mean() < 0.02


def test_mask_registration_recovers_a_known_shift_of_a_phantom(synthetic_ct_dir):
    from radscreen.phantoms.drr import load_ct_projections, render

    neutral = {"thickness": 1.0, "bone_factor": 1.0, "lung_density": 1.0, "aortic_calcification": 0.0,
               "cartilage_calcification": 0.0, "rotation_deg": 0.0, "body_scale": 0.85, "height_loss": 0.0,
               "shift_x": 0.0, "shift_y": 0.0, "exposure": 1.0}
    fixed = render(load_ct_projections(synthetic_ct_dir, 128), neutral, None).astype(np.float32) / 4095
    moving = cv2.warpAffine(fixed, np.float32([[1, 0, -4], [0, 1, 6]]), (128, 128))
    angle, tx, ty = transform_parameters(register(fixed, moving, "rigid", on="mask"))[-3:]
    assert abs(tx + 4) < 1 and abs(ty - 6) < 1 and abs(angle) < 0.02


def test_map_similarity():
    a = np.random.default_rng(0).random((32, 32)).astype(np.float32)
    same = similarity(a, a)
    assert same["pearson"] == pytest.approx(1.0) and same["ssim"] == pytest.approx(1.0, abs=1e-5)
    other = similarity(a, np.random.default_rng(1).random((32, 32)).astype(np.float32))
    assert other["pearson"] < 0.2 and other["ssim"] < 0.3
