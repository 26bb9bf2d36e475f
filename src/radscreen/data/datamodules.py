"""Lightning data module for images of any modality: manifest → splits → cache → batches.

Chest radiographs use CXRPreprocess (conf/data/preprocess/cxr.yaml); CT studies use CTPreprocess, which turns each
volume into a projection (conf/data/preprocess/ct.yaml). Everything after preprocessing is shared.
"""

from __future__ import annotations

import copy
import logging
from collections.abc import Callable, Mapping
from dataclasses import asdict
from pathlib import Path

import pandas as pd
import pytorch_lightning as pl
import torch
from torch.utils.data import DataLoader

from radscreen.data import cache
from radscreen.data.datasets import CachedImageDataset
from radscreen.data.inputs import check_image_root, check_some_images_exist, check_task_columns
from radscreen.data.randomness import EpochSeededSampler
from radscreen.errors import UserError
from radscreen.manifests.schema import SOURCE_SUFFIX, beside, read_manifest, recorded_image_root
from radscreen.manifests.splits import EXTERNAL, SelectionLog, SplitConfig, make_splits
from radscreen.preprocess.pipelines import Preprocess, build_preprocess
from radscreen.tasks import Task, as_tasks
from radscreen.utils.tables import write_csv

log = logging.getLogger(__name__)
SELECTION_FILE = "selection.csv"
CACHE_SCOPES = ("node", "shared")  # data.cache_scope: who builds the cache in a multi-node run


class ImageDataModule(pl.LightningDataModule):
    """Reads a manifest, splits it by patient, caches preprocessed images (or CT projections) and serves batches.

    Batches are dicts: image (B, in_chans, H, W) z-scored per image, targets {task: (B,)},
    age (B,) in years and sex (B,) 1 = female / 0 = male (NaN when unknown), image_id (list).
    Test loaders: the internal test split, then the external set when there is one
    (rows with split == 'external' in the manifest, or `external_manifest`).
    `seed` fixes the training order of each epoch and each sample's augmentation (radscreen.data.randomness).
    `cache_scope` says who builds the cache in a multi-node run: 'node' (the first process of every node, for a
    cache_root on node-local disks) or 'shared' (the first process of the first node only, for a cache_root on a
    file system every node sees); the other processes wait for it (Lightning's prepare_data_per_node).
    """

    def __init__(
        self,
        manifest: str,
        tasks: Mapping[str, Task | Mapping],
        cache_root: str,
        image_root: str | None = None,
        image_size: int | None = None,
        preprocess: Preprocess | Mapping | None = None,
        split: SplitConfig | Mapping | None = None,
        train_transform: Callable | None = None,
        eval_transform: Callable | None = None,
        external_manifest: str | None = None,
        external_image_root: str | None = None,
        batch_size: int = 32,
        eval_batch_size: int | None = None,
        num_workers: int = 0,
        in_chans: int = 1,
        pin_memory: bool = False,
        cache_workers: int | None = None,
        show_progress: bool = True,
        seed: int = 0,
        cache_scope: str = "node",
    ) -> None:
        super().__init__()
        if cache_scope not in CACHE_SCOPES:
            raise UserError(f"data.cache_scope must be one of {', '.join(CACHE_SCOPES)}, got '{cache_scope}'")
        self.cache_scope = cache_scope
        self.prepare_data_per_node = cache_scope == "node"
        self.manifest_path = str(manifest)
        self.tasks = as_tasks(tasks)
        self.cache_root = str(cache_root)
        self.image_root = str(image_root) if image_root else default_image_root(manifest)
        self.image_root_key = "data.image_root" if image_root else image_root_origin(manifest)
        self.preprocess = build_preprocess(preprocess, image_size)
        self.split = split if isinstance(split, SplitConfig) else SplitConfig(**_tuples(split or {}))
        self.train_transform = train_transform
        self.eval_transform = eval_transform
        self.external_manifest = external_manifest
        self.external_image_root = external_image_root
        self.batch_size = batch_size
        self.eval_batch_size = eval_batch_size or batch_size
        self.num_workers = num_workers
        self.in_chans = in_chans
        self.pin_memory = pin_memory
        self.cache_workers = cache_workers
        self.show_progress = show_progress
        self.seed = int(seed)
        self.frame: pd.DataFrame | None = None
        self._loaded: pd.DataFrame | None = None
        self._prepared = False
        self.datasets: dict[str, CachedImageDataset] = {}
        self.cache_failures = pd.DataFrame(columns=["image_id", "path", "reason"])
        self.selection = SelectionLog()  # what filters, balancing, subsets and the cache dropped, per split

    # ----------------------------------------------------------------- preparation
    def _load(self) -> pd.DataFrame:
        """Manifest(s) with split columns, external rows marked 'external', task columns checked (read once).

        Mistakes in the inputs (a missing manifest or image folder, a task column the manifest lacks, image
        paths that exist nowhere) raise UserError before anything is cached or trained."""
        if self._loaded is not None:
            return self._loaded
        manifest = read_manifest(self.manifest_path, "data.manifest").assign(_root=self.image_root)
        check_image_root(self.image_root, self.image_root_key)
        check_task_columns(manifest, self.tasks, self.manifest_path)
        frame = make_splits(manifest, self.split, self.selection)
        if self.external_manifest:
            external = read_manifest(self.external_manifest, "data.external_manifest")
            root = self.external_image_root or default_image_root(self.external_manifest)
            check_image_root(root, "data.external_image_root" if self.external_image_root
                             else image_root_origin(self.external_manifest))
            frame = pd.concat([frame, external.assign(split=EXTERNAL, _root=root)], ignore_index=True)
        for root, rows in frame.groupby("_root", sort=False):
            key = "data.external_manifest" if rows["split"].eq(EXTERNAL).all() else "data.manifest"
            check_some_images_exist(rows, root, key)
        self._loaded = frame.reset_index(drop=True)
        return self._loaded

    def check_inputs(self) -> None:
        """Read and check the manifest(s) now (train.py calls it before building the trainer)."""
        self._load()

    def prepare_data(self) -> None:
        """Build the cache for every image that any split may use. Lightning calls this on the first process of
        every node (cache_scope 'node') or of the first node only ('shared'); the other processes wait."""
        if self._prepared:
            return
        frame = self._load()
        failures = [cache.build_cache(rows, root, self.preprocess, self.cache_root, workers=self.cache_workers,
                                      show_progress=self.show_progress).failures
                    for root, rows in frame.groupby("_root", sort=False)]
        failed = pd.concat(failures, ignore_index=True)
        if len(failed):
            reasons = ", ".join(f"{n} {reason}" for reason, n in failed["reason"].value_counts().items())
            log.warning("%d image(s) could not be preprocessed and are left out (%s); see %s", len(failed), reasons,
                        cache.cache_directory(self.cache_root, self.preprocess) / cache.FAILURES_FILE)
        self._prepared = True

    def setup(self, stage: str | None = None) -> None:
        """Split, drop images absent from the cache (failed to decode), and build the datasets."""
        if self.datasets:
            return
        frame = self._load()
        directory = cache.cache_directory(self.cache_root, self.preprocess)
        present = cache.available(directory, frame["image_id"].astype(str))
        self._check_cache_seen(directory, present)
        if not present.all():
            dropped = frame.loc[~present]
            self.cache_failures = dropped[["image_id", "path"]].assign(reason="not in cache")
        for name, in_split in frame.groupby("split", observed=True, sort=False)["image_id"]:
            kept = int(present.loc[in_split.index].sum())
            self.selection.record("cache", str(name), len(in_split), kept, "(unreadable or missing image files)")
        self.frame = frame.loc[present].drop(columns="_root").reset_index(drop=True)
        for name, task in self.tasks.items():
            labelled = task.has_label(self.frame)
            for split, rows in self.frame.assign(_labelled=labelled).groupby("split", observed=True, sort=False):
                if not rows["_labelled"].all():
                    log.info("%d of %d images of %s have no %s label: kept, not counted in %s's loss or metrics",
                             int((~rows["_labelled"]).sum()), len(rows), split, task.column, name)
        for name in ("train", "val", "test", EXTERNAL):
            rows = self.frame[self.frame["split"] == name]
            if len(rows):
                transform = self.train_transform if name == "train" else self.eval_transform
                self.datasets[name] = CachedImageDataset(rows, directory, self.tasks, transform, self.in_chans,
                                                         seed=self.seed)
        log.info("dataset sizes: %s", {k: len(v) for k, v in self.datasets.items()})

    def _check_cache_seen(self, directory: Path, present: pd.Series) -> None:
        """A node other than the first that finds none of the images a shared cache should hold is looking at a
        folder the first node did not write to (node-local disks): stop instead of training on nothing."""
        node_rank = int(getattr(self.trainer, "node_rank", 0) or 0)
        if self.cache_scope == "shared" and node_rank > 0 and len(present) and not present.any():
            raise UserError(f"node {node_rank} finds none of the cached images in {directory}: with "
                            "data.cache_scope=shared only the first node builds the cache, so data.cache_root must "
                            "be a folder every node sees; set data.cache_scope=node for node-local disks")

    # ----------------------------------------------------------------- loaders
    def _loader(self, name: str, shuffle: bool, dataset: CachedImageDataset | None = None) -> DataLoader:
        """Training loaders shuffle with EpochSeededSampler; every loader draws its worker seeds from its own
        generator, so loading never advances the global torch generator that dropout uses."""
        if name not in self.datasets:
            raise ValueError(f"the '{name}' split is empty: check the split fractions and filters in conf/data/")
        dataset = dataset or self.datasets[name]
        sampler = None
        if shuffle:
            sampler = EpochSeededSampler(dataset, self.seed)
            # Lightning creates the first iterator (and loader workers prefetch from it) before it calls set_epoch:
            # a resumed run must draw its first epoch's order from that epoch, not from epoch 0
            sampler.set_epoch(self._epoch_to_train())
        return DataLoader(
            dataset,
            batch_size=self.batch_size if shuffle else self.eval_batch_size,
            sampler=sampler,
            drop_last=shuffle and len(self.datasets[name]) > self.batch_size,
            num_workers=self.num_workers,
            pin_memory=self.pin_memory,
            persistent_workers=self.num_workers > 0,
            generator=torch.Generator().manual_seed(self.seed),
        )

    def _epoch_to_train(self) -> int:
        """The epoch Lightning is about to train: the one it passes to set_epoch (a resumed run's next epoch)."""
        if self.trainer is None:
            return 0
        return int(self.trainer.fit_loop.epoch_progress.current.processed)

    def train_dataloader(self) -> DataLoader:
        return self._loader("train", shuffle=True)

    def val_dataloader(self) -> DataLoader:
        return self._loader("val", shuffle=False)

    def test_dataloader(self) -> list[DataLoader]:
        return [self._loader(name, shuffle=False) for name in self.test_splits]

    def predict_dataloader(self) -> list[DataLoader]:
        return [self.prediction_loader(name) for name in self.datasets]

    def prediction_loader(self, name: str) -> DataLoader:
        """Unshuffled loader of a split with the evaluation transform (never the training augmentation)."""
        dataset = copy.copy(self.datasets[name])
        dataset.transform = self.eval_transform
        return self._loader(name, shuffle=False, dataset=dataset)

    @property
    def test_splits(self) -> list[str]:
        """Names of the test loaders in order: 'test', then 'external' when present."""
        return [name for name in ("test", EXTERNAL) if name in self.datasets]

    def describe(self) -> dict:
        """Split sizes and settings, for logs and run folders."""
        dropped = [{"step": e.step, "split": e.split, "dropped": e.dropped} for e in self.selection if e.dropped]
        return {"sizes": {k: len(v) for k, v in self.datasets.items()}, "split": asdict(self.split),
                "preprocess": self.preprocess.describe(), "cache": self.preprocess.key(), "dropped": dropped}

    def write_selection(self, folder: Path) -> Path:
        """selection.csv in a run folder: per step and split, how many images were kept and dropped."""
        return write_csv(self.selection.frame(), Path(folder) / SELECTION_FILE)


def default_image_root(manifest: str) -> str:
    """Where a manifest's relative paths start when no image root is set: the folder recorded beside it by the
    tool that built it (`<name>.source.json`), else the manifest's own folder."""
    return recorded_image_root(manifest) or str(Path(manifest).parent)


def image_root_origin(manifest: str) -> str:
    """Where the default image root of a manifest comes from, for messages."""
    source = beside(manifest, SOURCE_SUFFIX)
    return f"the image folder recorded in {source}" if source.is_file() else "the manifest's folder (data.image_root)"


def _tuples(mapping: Mapping) -> dict:
    """Split settings from config: lists become tuples (fractions, stratify, balance_by); the rest as given."""
    return {key: tuple(value) if isinstance(value, list) else value for key, value in dict(mapping).items()}
