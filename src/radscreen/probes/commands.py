"""What scripts/embed.py and scripts/probe.py run."""

from __future__ import annotations

import logging
from pathlib import Path

import pandas as pd
from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf
from torch.utils.data import DataLoader

from radscreen.data import cache
from radscreen.data.datamodules import ImageDataModule, default_image_root
from radscreen.data.datasets import CachedImageDataset
from radscreen.errors import UserError
from radscreen.evaluation.sweeps import to_markdown
from radscreen.manifests.schema import read_manifest
from radscreen.preprocess.cxr import CXRPreprocess
from radscreen.probes.ablation import removal_analysis, removal_plot, removal_table
from radscreen.probes.embeddings import embed, join_manifest, load_embeddings, save_embeddings
from radscreen.probes.pretrained import PreparedImages, PretrainedEncoder, load_encoder
from radscreen.probes.probes import cross_validate, infer_target, summarise
from radscreen.runs import load_checkpoint, load_run_config
from radscreen.utils.tables import check_input_file, write_csv, write_text

log = logging.getLogger(__name__)


def embed_command(cfg: DictConfig) -> Path:
    """Pooled features of every image of a manifest: from a radscreen checkpoint (ckpt_path=, preprocessed as its run
    was) or from a library's model (model=timm:NAME | open_clip:NAME | torchxrayvision:WEIGHTS, with that model's
    own input size and normalisation applied to the cached images)."""
    if cfg.get("encoder"):
        if cfg.get("ckpt_path"):
            raise UserError("give either ckpt_path= (a radscreen checkpoint) or model=library:NAME, not both")
        encoder = load_encoder(cfg.encoder, cfg.get("weights_file"), cfg.get("pretrained", True))
        pipeline = OmegaConf.to_container(cfg.data.preprocess, resolve=True)
        pipeline = {k: v for k, v in pipeline.items() if k not in ("_target_", "image_size")}  # the model's size
        preprocess = CXRPreprocess(**pipeline, image_size=encoder.image_size)
        manifest_path = str(cfg.data.manifest)
        image_root = str(cfg.data.image_root) if cfg.data.image_root else default_image_root(manifest_path)
        settings = {k: cfg.data.get(k) for k in ("cache_root", "cache_workers", "show_progress", "num_workers")}
        module = encoder
    elif cfg.get("ckpt_path"):
        run_cfg, _ = load_run_config(cfg)
        datamodule: ImageDataModule = instantiate(run_cfg.data)
        manifest_path, image_root, preprocess = datamodule.manifest_path, datamodule.image_root, datamodule.preprocess
        settings = {"cache_root": datamodule.cache_root, "cache_workers": datamodule.cache_workers,
                    "show_progress": datamodule.show_progress, "num_workers": datamodule.num_workers}
        module = load_checkpoint(cfg.ckpt_path)
    else:
        raise UserError("embed.py needs ckpt_path=RUN/checkpoints/best.ckpt or model=library:NAME "
                        "(e.g. model=timm:densenet121)")
    manifest = read_manifest(manifest_path, "data.manifest")
    report = cache.build_cache(manifest, image_root, preprocess, settings["cache_root"],
                               workers=settings["cache_workers"], show_progress=settings["show_progress"])
    present = cache.available(report.directory, manifest["image_id"].astype(str))
    if not present.all():
        log.warning("%d image(s) could not be preprocessed and have no embedding", int((~present).sum()))
    frame = manifest[present.to_numpy()]
    if isinstance(module, PretrainedEncoder):
        dataset = PreparedImages(frame, report.directory, module.prepare)
    else:
        dataset = CachedImageDataset(frame, report.directory, {}, datamodule.eval_transform, datamodule.in_chans)
    loader = DataLoader(dataset, batch_size=cfg.batch_size, num_workers=settings["num_workers"])
    ids, features = embed(module, loader, show_progress=settings["show_progress"])
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
    targets = list(cfg.targets) + ([cfg.reference] if cfg.get("reference") and cfg.reference not in cfg.targets
                                   else [])
    for column in targets:
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



