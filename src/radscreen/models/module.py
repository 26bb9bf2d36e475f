"""One LightningModule for every task: timm backbone → [demographic fusion] → one head per task."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from pathlib import Path

import numpy as np
import pytorch_lightning as pl
import torch
import torch.nn as nn
from hydra.utils import instantiate
from omegaconf import DictConfig, ListConfig, OmegaConf

from radscreen.models.backbones import create_backbone, pooled_features
from radscreen.models.epoch_metrics import EpochMetrics
from radscreen.models.fusion import DemographicFusion
from radscreen.models.heads import make_head
from radscreen.models.transfer import freeze_all_but_last_blocks, frozen_norm_layers, load_backbone_weights
from radscreen.tasks import Task, as_tasks
from radscreen.utils.rng_state import capture_rng_states, restore_rng_states

log = logging.getLogger(__name__)

DEFAULT_OPTIMIZER = {"_target_": "torch.optim.Adam", "_partial_": True, "lr": 1e-3}
RNG_STATES_KEY = "radscreen_rng_states"


class RadscreenModule(pl.LightningModule):
    """Backbone + optional fusion + a head per task, trained on the weighted sum of the task losses.

    All constructor arguments are plain config mappings (saved as hyper-parameters), so a checkpoint
    reloads with `RadscreenModule.load_from_checkpoint(path)` alone, without Hydra or upstream files.
    Regression heads work in z-scored target units (statistics of the training split, stored in the
    checkpoint); predictions and metrics are in the column's own units (years).
    """

    def __init__(
        self,
        tasks: Mapping,
        backbone: Mapping,
        head: Mapping | None = None,
        fusion: Mapping | None = None,
        optimizer: Mapping | None = None,
        scheduler: Mapping | None = None,
        scheduler_monitor: str = "val/loss",
        init_from: str | None = None,
        trainable_blocks: int | None = None,
        channels_last: bool = True,
        test_splits: tuple[str, ...] = ("test", "external"),
    ) -> None:
        super().__init__()
        # plain containers only (no OmegaConf objects): the checkpoint then also unpickles with
        # torch.load(weights_only=True), torch's default that Lightning's resume uses, and without OmegaConf.
        # load_module() below and transfer's init_from read with weights_only=False, so that checkpoints whose
        # hyper-parameters hold OmegaConf objects (other Lightning code writes them) load too: that runs the
        # file's pickle, so load only checkpoints you trust.
        tasks, backbone, head, fusion, optimizer, scheduler = (
            _plain(v) for v in (tasks, backbone, head, fusion, optimizer, scheduler))
        self.tasks: dict[str, Task] = as_tasks(tasks)
        tasks = {name: task.to_config() for name, task in self.tasks.items()}  # saved as conf/task entries
        self.save_hyperparameters()
        self.backbone = create_backbone(**dict(backbone))
        fusion = dict(fusion or {})
        age_model = _load_age_model(fusion) if "predicted_age" in fusion.get("inputs", ()) else None
        self.hparams["fusion"] = fusion  # now holds the age model's hyper-parameters for reloading
        self.fusion = DemographicFusion(self.backbone.num_features, fusion.get("inputs", ()), age_model)
        head = dict(head or {})
        self.heads = nn.ModuleDict({name: make_head(self.fusion.out_features, task.n_outputs, **head)
                                    for name, task in self.tasks.items()})
        for name in self.tasks:
            self.register_buffer(f"target_stats_{name}", torch.tensor([0.0, 1.0]))  # mean, SD
        if init_from:
            load_backbone_weights(self.backbone, init_from)
        if trainable_blocks is not None:
            freeze_all_but_last_blocks(self.backbone, trainable_blocks)
        self.metrics = nn.ModuleDict({  # keyed "<stage>_metrics": ModuleDict refuses the key "train"
            f"{stage}_metrics": nn.ModuleDict({
                name: EpochMetrics(task.metrics().clone(prefix=f"{stage}/{name}_"), f"{stage}/{name}_loss")
                for name, task in self.tasks.items()})
            for stage in ("train", "val", *test_splits)
        })

    # ------------------------------------------------------------------ forward
    def features(self, images: torch.Tensor) -> torch.Tensor:
        """Pooled penultimate image features (B, num_features): the embedding audited by radscreen.probes."""
        if self.hparams.channels_last and images.is_cuda:
            images = images.contiguous(memory_format=torch.channels_last)
        return pooled_features(self.backbone, images)

    def forward(self, images: torch.Tensor, age: torch.Tensor | None = None,
                sex: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
        """Raw head outputs per task: regression (B, 1 or 2) in z-units, logits otherwise."""
        fused = self.fusion(self.features(images), images, age, sex)
        return {name: head(fused) for name, head in self.heads.items()}

    def decode(self, outputs: Mapping[str, torch.Tensor]) -> dict[str, dict[str, torch.Tensor]]:
        """Head outputs → user units: {'pred': years | P(positive) | class probabilities, 'var': years²}."""
        return {name: task.decode(outputs[name].float(), getattr(self, f"target_stats_{name}"))
                for name, task in self.tasks.items()}

    def predict_age(self, images: torch.Tensor) -> torch.Tensor:
        """Predicted age in years from images alone (used when this module is a frozen fusion input)."""
        name = next((n for n, t in self.tasks.items() if t.normalised), None)
        if name is None:
            raise ValueError("the fusion age model has no regression task")
        return self.decode(self(images))[name]["pred"]

    # ------------------------------------------------------------------ setup
    def setup(self, stage: str) -> None:
        """Before fitting: regression target and fusion age statistics from the training split."""
        datamodule = getattr(self.trainer, "datamodule", None) if self._trainer is not None else None
        if stage != "fit" or datamodule is None or "train" not in getattr(datamodule, "datasets", {}):
            return
        train = datamodule.datasets["train"]
        # one image's shape: Lightning's model summary then shows input/output sizes and the forward FLOPs
        self.example_input_array = torch.zeros(1, *train[0]["image"].shape)
        for name, task in self.tasks.items():
            if task.normalised:
                values = train.targets[name]
                stats = torch.tensor([np.nanmean(values), max(float(np.nanstd(values)), 1e-3)])
                getattr(self, f"target_stats_{name}").copy_(stats)
        ages = train.age[~np.isnan(train.age)]
        if len(ages):
            self.fusion.age_stats.copy_(torch.tensor([ages.mean(), max(float(ages.std()), 1e-3)]))

    def train(self, mode: bool = True) -> RadscreenModule:
        super().train(mode)
        for norm in frozen_norm_layers(self.backbone):
            norm.eval()  # frozen blocks keep their batch-norm statistics
        return self

    # ------------------------------------------------------------------ steps
    def _shared_step(self, batch: Mapping, stage: str) -> torch.Tensor:
        """The weighted loss; each task's loss and metric inputs are kept for the epoch end (`_log_epoch_metrics`),
        so a step logs only the total (`<stage>/loss`, on the progress bar)."""
        outputs = self(batch["image"], batch.get("age"), batch.get("sex"))
        decoded = self.decode(outputs)
        total = sum(o.sum() * 0.0 for o in outputs.values())  # keeps the graph when no row has a label
        batch_size = batch["image"].shape[0]
        for name, task in self.tasks.items():
            target = batch["targets"][name]
            loss = task.compute_loss(outputs[name], task.head_target(target, getattr(self, f"target_stats_{name}")))
            if loss is None:
                continue
            total = total + task.weight * loss
            preds, metric_target = task.metric_inputs(decoded[name]["pred"].detach(), target)
            self.metrics[f"{stage}_metrics"][name].add(preds, metric_target, loss, batch_size)
        self.log(f"{stage}/loss", total, on_step=stage == "train", on_epoch=True, prog_bar=True,
                 batch_size=batch_size, add_dataloader_idx=False)
        return total

    def _stage_metrics(self, stages: list[str]) -> list[EpochMetrics]:
        return [metrics for stage in stages for metrics in self.metrics[f"{stage}_metrics"].values()]

    def _reset_epoch_metrics(self, stages: list[str]) -> None:
        for metrics in self._stage_metrics(stages):
            metrics.reset()

    def _log_epoch_metrics(self, stages: list[str]) -> None:
        """Each task's epoch metrics and mean loss of `stages` (`<stage>/<task>_<metric>`, `<stage>/<task>_loss`):
        fed once here, computed and reset by Lightning, read by ModelCheckpoint / EarlyStopping after this hook."""
        for metrics in self._stage_metrics(stages):
            if metrics.update():
                self.log_dict(metrics.collection, add_dataloader_idx=False)
                self.log(metrics.loss_name, metrics.loss, add_dataloader_idx=False)

    def training_step(self, batch: Mapping, batch_idx: int) -> torch.Tensor:
        return self._shared_step(batch, "train")

    def validation_step(self, batch: Mapping, batch_idx: int) -> None:
        self._shared_step(batch, "val")

    def test_step(self, batch: Mapping, batch_idx: int, dataloader_idx: int = 0) -> None:
        self._shared_step(batch, self.test_stage_names[dataloader_idx])

    def on_train_epoch_end(self) -> None:
        self._log_epoch_metrics(["train"])

    def on_validation_epoch_start(self) -> None:
        self._reset_epoch_metrics(["val"])

    def on_validation_epoch_end(self) -> None:
        self._log_epoch_metrics(["val"])

    def on_test_epoch_start(self) -> None:
        self._reset_epoch_metrics(self.test_stage_names)

    def on_test_epoch_end(self) -> None:
        self._log_epoch_metrics(self.test_stage_names)

    def predict_step(self, batch: Mapping, batch_idx: int, dataloader_idx: int = 0) -> dict:
        decoded = self.decode(self(batch["image"], batch.get("age"), batch.get("sex")))
        return {"image_id": list(batch["image_id"]),
                "outputs": {n: {k: v.float().cpu() for k, v in d.items()} for n, d in decoded.items()}}

    @property
    def test_stage_names(self) -> list[str]:
        """Metric prefixes of the test dataloaders, in order (the data module's test_splits)."""
        datamodule = getattr(self._trainer, "datamodule", None)  # no error when not attached (tracing, export)
        return list(getattr(datamodule, "test_splits", None) or ["test"])

    # ------------------------------------------------------------------ optimisation
    def configure_optimizers(self):
        params = [p for p in self.parameters() if p.requires_grad]
        optimizer = instantiate(dict(self.hparams.optimizer or DEFAULT_OPTIMIZER))(params=params)
        if not self.hparams.scheduler:
            return optimizer
        scheduler = instantiate(dict(self.hparams.scheduler))(optimizer=optimizer)
        return {"optimizer": optimizer,
                "lr_scheduler": {"scheduler": scheduler, "monitor": self.hparams.scheduler_monitor}}

    def on_fit_start(self) -> None:
        if self.hparams.channels_last and self.device.type == "cuda":
            self.backbone.to(memory_format=torch.channels_last)

    # ------------------------------------------------------------------ exact resume
    def on_save_checkpoint(self, checkpoint: dict) -> None:
        """Every checkpoint carries the global generator states of the moment it was written (epoch end)."""
        checkpoint[RNG_STATES_KEY] = capture_rng_states()

    def on_load_checkpoint(self, checkpoint: dict) -> None:
        """Keep the saved generator states until training resumes (restored at the next epoch start, after
        Lightning's sanity check), so the redone epochs draw the dropout masks of the uninterrupted run."""
        self._resumed_rng_states = checkpoint.get(RNG_STATES_KEY)

    def on_train_epoch_start(self) -> None:
        self._reset_epoch_metrics(["train"])
        states = getattr(self, "_resumed_rng_states", None)
        if states is not None:
            restore_rng_states(states)
            self._resumed_rng_states = None


def _plain(value):
    """DictConfig / ListConfig → dict / list (resolved); anything else unchanged."""
    return OmegaConf.to_container(value, resolve=True) if isinstance(value, (DictConfig, ListConfig)) else value


def _load_age_model(fusion: dict) -> RadscreenModule:
    """The frozen age model of predicted-age fusion: rebuilt from saved hyper-parameters when reloading a
    fused checkpoint (its weights come with the checkpoint), else loaded from fusion['age_model']."""
    if fusion.get("age_model_hparams"):
        return RadscreenModule(**_reload_arguments(fusion["age_model_hparams"]))
    path = fusion.get("age_model")
    if not path or not Path(path).is_file():
        raise FileNotFoundError(
            f"fusion with predicted_age needs model.fusion.age_model=CKPT of a trained age model; got {path!r}")
    age_model = load_module(path)
    fusion["age_model_hparams"] = dict(age_model.hparams)
    return age_model


def _reload_arguments(hparams: Mapping) -> dict:
    """Hyper-parameters for rebuilding a trained module whose weights come from a checkpoint: no ImageNet
    file, no upstream checkpoint, nothing frozen."""
    arguments = dict(hparams)
    arguments["backbone"] = {**dict(arguments["backbone"]), "weights": "none", "weights_file": None}
    arguments.update(init_from=None, trainable_blocks=None)
    return arguments


def load_module(checkpoint: str | Path, map_location: str = "cpu") -> RadscreenModule:
    """Reload a trained module from its checkpoint alone (upstream files such as ImageNet weights, the
    transfer source or the fusion age model are not needed: their weights are inside the checkpoint)."""
    saved = torch.load(str(checkpoint), map_location=map_location, weights_only=False)
    module = RadscreenModule(**_reload_arguments(saved["hyper_parameters"]))
    module.load_state_dict(saved["state_dict"])
    return module.eval()
