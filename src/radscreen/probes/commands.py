"""What scripts/embed.py and scripts/probe.py run."""

from __future__ import annotations

import logging
from pathlib import Path

import pandas as pd
from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf
from torch.utils.data import DataLoader

from radscreen.data import cache
from radscreen.data.datamodules import ImageDataModule
from radscreen.data.datasets import CachedImageDataset
from radscreen.evaluation.sweeps import to_markdown
from radscreen.manifests.schema import read_manifest
from radscreen.probes.ablation import removal_analysis, removal_plot, removal_table
from radscreen.probes.embeddings import embed, join_manifest, load_embeddings, save_embeddings
from radscreen.probes.probes import cross_validate, infer_target, summarise
from radscreen.runs import load_checkpoint, load_run_config
from radscreen.utils.tables import check_input_file, write_csv, write_text

log = logging.getLogger(__name__)


def embed_command(cfg: DictConfig) -> Path:
    """Pooled penultimate features of every image of a manifest, preprocessed as the checkpoint's run was."""
    run_cfg, _ = load_run_config(cfg)
    data: ImageDataModule = instantiate(run_cfg.data)
    manifest = read_manifest(data.manifest_path)
    report = cache.build_cache(manifest, data.image_root, data.preprocess, data.cache_root,
                               workers=data.cache_workers, show_progress=data.show_progress)
    present = cache.available(report.directory, manifest["image_id"].astype(str))
    if not present.all():
        log.warning("%d image(s) could not be preprocessed and have no embedding", int((~present).sum()))
    dataset = CachedImageDataset(manifest[present.to_numpy()], report.directory, {}, data.eval_transform, data.in_chans)
    loader = DataLoader(dataset, batch_size=cfg.batch_size, num_workers=data.num_workers)
    ids, features = embed(load_checkpoint(cfg.ckpt_path), loader, show_progress=data.show_progress)
    out = Path(cfg.out) if cfg.get("out") else Path(cfg.paths.output_dir) / f"embeddings.{cfg.format}"
    path = save_embeddings(out, ids, features)
    log.info("%d embeddings of dimension %d written to %s", *features.shape, path)
    return path


def probe_command(cfg: DictConfig) -> dict[str, pd.DataFrame]:
    """Probe every target with every probe under patient-level k-fold CV; optionally the removal analysis."""
    ids, features = load_embeddings(check_input_file(cfg.embeddings, "embeddings"))
    frame, features = join_manifest(ids, features, read_manifest(cfg.manifest, "manifest"))
    bins = OmegaConf.to_container(cfg.bins, resolve=True) if cfg.get("bins") else {}
    mlp = OmegaConf.to_container(cfg.mlp, resolve=True) if cfg.get("mlp") else None
    out = Path(cfg.paths.output_dir)
    out.mkdir(parents=True, exist_ok=True)
    folds = []
    for column in cfg.targets:
        target = infer_target(frame, column, bins.get(column))
        for probe in cfg.probes:
            if target.kind == "continuous" and probe != "linear":
                continue  # the seed studies regress continuous targets linearly; bin them for classifiers
            folds.append(cross_validate(target, frame, features, probe, cfg.folds, cfg.seed, mlp))
    folds = pd.concat(folds, ignore_index=True)
    summary = summarise(folds)
    write_csv(folds, out / "probe_folds.csv")
    write_csv(summary, out / "probe_summary.csv")
    write_text(to_markdown(summary) + "\n", out / "probe_summary.md")
    print(to_markdown(summary))
    results = {"folds": folds, "summary": summary}
    removal = cfg.get("removal") or {}
    if removal.get("audited"):
        audited = infer_target(frame, removal.audited, bins.get(removal.audited))
        reference = infer_target(frame, removal.reference, bins.get(removal.reference)) if removal.get("reference") \
            else None
        curve = removal_analysis(audited, frame, features, reference, removal.probe, list(removal.percentages),
                                 cfg.folds, removal.mode, cfg.seed, mlp)
        table = removal_table(curve)
        write_csv(curve, out / "removal_folds.csv")
        write_csv(table, out / "removal.csv")
        write_text(to_markdown(table) + "\n", out / "removal.md")
        removal_plot(curve, out / "removal.png")
        print(to_markdown(table))
        results.update(removal=table)
    log.info("probe results in %s (%d images, %d dimensions)", out, len(frame), features.shape[1])
    return results



