"""On-disk cache of preprocessed images: decode once, memory-map at training time.

Layout: CACHE_ROOT/<preprocess key>/config.json, failures.csv and ab/<image_id>.npy (uint16, value /
65535 = the [0, 1] image). The key hashes the preprocessing parameters, so caches for 224, 512 and
1024 px live side by side. Files are written atomically (temp file + rename): an interrupted build
keeps everything finished so far, and the next build only does what is missing.
"""

from __future__ import annotations

import functools
import json
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from radscreen.io.errors import ImageReadError
from radscreen.preprocess.ct import CTPreprocess
from radscreen.preprocess.cxr import CXRPreprocess
from radscreen.utils.parallel import auto_chunksize, default_workers, map_with_progress

SCALE = 65535.0
FAILURES_FILE = "failures.csv"
MISSING_FILE = "image file not found"


@dataclass(frozen=True)
class CacheReport:
    """Outcome of a cache build."""

    directory: Path
    built: int
    reused: int
    failures: pd.DataFrame  # image_id, path, reason


def cache_directory(cache_root: str | os.PathLike, preprocess: CXRPreprocess | CTPreprocess) -> Path:
    """The folder of one preprocessing configuration (created, with its config.json)."""
    directory = Path(cache_root) / preprocess.key()
    directory.mkdir(parents=True, exist_ok=True)
    config = directory / "config.json"
    if not config.exists():
        config.write_text(json.dumps(preprocess.describe(), indent=2, default=str))
    return directory


def cached_file(directory: Path, image_id: str) -> Path:
    """Where one image lives in a cache folder (sharded by the id's last two characters)."""
    return directory / image_id[-2:] / f"{image_id}.npy"


def encode(image: np.ndarray) -> np.ndarray:
    """[0, 1] float image → uint16 (quantisation step 1/65535)."""
    return np.round(np.clip(image, 0.0, 1.0) * SCALE).astype(np.uint16)


def decode(stored: np.ndarray) -> np.ndarray:
    """uint16 cache array → float32 [0, 1] image."""
    return stored.astype(np.float32) / np.float32(SCALE)


def load(directory: Path, image_id: str) -> np.ndarray:
    """The cached [0, 1] float32 image (read through a memory map)."""
    return decode(np.load(cached_file(directory, image_id), mmap_mode="r"))


def _save_atomic(target: Path, array: np.ndarray) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=target.parent, suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as fp:
            np.save(fp, array)
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def preprocess_file(preprocess: CXRPreprocess | CTPreprocess, path: str) -> tuple[np.ndarray | None, str | None]:
    """(the preprocessed [0, 1] image, None) or (None, the reason it failed); never raises for a bad file.
    `path` is an image file, or a folder holding one CT series."""
    if not os.path.exists(path):
        return None, MISSING_FILE
    try:
        return preprocess.from_file(path), None
    except ImageReadError as exc:
        return None, str(exc)
    except Exception as exc:  # noqa: BLE001 - a bad file must never stop the build
        return None, f"preprocessing failed ({type(exc).__name__})"


def _build_one(item: tuple[str, str], directory: Path,
               preprocess: CXRPreprocess | CTPreprocess) -> tuple[str, str | None]:
    """Preprocess and store one image; (image_id, None) or (image_id, reason)."""
    image_id, path = item
    image, reason = preprocess_file(preprocess, path)
    if image is None:
        return image_id, reason
    _save_atomic(cached_file(directory, image_id), encode(image))
    return image_id, None


def build_cache(
    manifest: pd.DataFrame,
    image_root: str | os.PathLike,
    preprocess: CXRPreprocess | CTPreprocess,
    cache_root: str | os.PathLike,
    *,
    workers: int | None = None,
    show_progress: bool = True,
) -> CacheReport:
    """Preprocess every manifest image not yet in the cache, on a process pool, with progress.

    Images that fail are listed (with a reason) in the report and in failures.csv, never raised.
    """
    directory = cache_directory(cache_root, preprocess)
    todo = [(row.image_id, str(Path(image_root) / row.path)) for row in manifest[["image_id", "path"]].itertuples()
            if not cached_file(directory, row.image_id).exists()]
    paths = dict(todo)
    worker = functools.partial(_build_one, directory=directory, preprocess=preprocess)
    failed = []
    # An image takes 10 ms to seconds (JPEG 2000, CT volumes): small chunks, so that no worker sits idle at the end
    # while another finishes a chunk of slow ones, yet up to 8 images per task, so that the parent's per-task cost
    # (about 0.5 ms) does not limit a node with many cores.
    workers = workers or default_workers()
    chunksize = auto_chunksize(len(todo), workers, largest=8, tasks_per_worker=32)
    for image_id, reason in map_with_progress(worker, todo, total=len(todo), workers=workers,
                                              description=f"caching {preprocess.image_size} px images",
                                              chunksize=chunksize, show_progress=show_progress and bool(todo)):
        if reason is not None:
            failed.append({"image_id": image_id, "path": os.path.relpath(paths[image_id], image_root),
                           "reason": reason})
    failures = pd.DataFrame(failed, columns=["image_id", "path", "reason"])
    if len(failures):
        log_file = directory / FAILURES_FILE
        failures.to_csv(log_file, mode="a", header=not log_file.exists(), index=False)
    return CacheReport(directory=directory, built=len(todo) - len(failures), reused=len(manifest) - len(todo),
                       failures=failures)


def available(directory: Path, image_ids: pd.Series) -> pd.Series:
    """Boolean mask of the ids whose cached file exists."""
    return image_ids.map(lambda i: cached_file(directory, i).exists()).astype(bool)
