"""The cached preprocessing of a data config: the CXR or CT pipeline object, from the config or a run's record."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace

from hydra.utils import instantiate

from radscreen.preprocess.ct import CTPreprocess
from radscreen.preprocess.cxr import CXRPreprocess

Preprocess = CXRPreprocess | CTPreprocess


def build_preprocess(preprocess: Preprocess | Mapping | None, image_size: int | None = None) -> Preprocess:
    """The pipeline of `data.preprocess`: conf/data/preprocess/ builds it by `_target_`, its image_size interpolated
    from data.image_size; a mapping is instantiated by its `_target_`, or taken as CXRPreprocess fields when it has
    none (run configs written before the CXR pipeline had one); None is the default CXR pipeline.
    `image_size` (data.image_size), when given, is the size it resizes to."""
    if preprocess is None or isinstance(preprocess, Mapping):
        params = dict(preprocess or {})
        preprocess = instantiate(params, _convert_="all") if "_target_" in params else CXRPreprocess(**params)
    return replace(preprocess, image_size=int(image_size)) if image_size else preprocess
