"""Patient-level splits: train/val/test, k-fold, class/sex balancing, subgroup filters, stress-test subsets.

Every function that assigns or subsets splits keeps whole patients together; `check_patient_disjoint`
verifies it and runs at the end of `make_splits`, every time a split is made.
"""

from __future__ import annotations

import logging
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from sklearn.model_selection import StratifiedGroupKFold, train_test_split

from radscreen.errors import UserError

log = logging.getLogger(__name__)

SPLITS = ("train", "val", "test")
EXTERNAL = "external"


class PatientLeakError(ValueError):
    """A patient appears in more than one split or fold."""


@dataclass(frozen=True)
class SelectionStep:
    """How many images one selection step kept of a split ('all' before splitting)."""

    step: str  # filters | balance_by | n_train | n_val | cache | ...
    split: str
    before: int
    after: int
    detail: str = ""

    @property
    def dropped(self) -> int:
        return self.before - self.after

    def describe(self) -> str:
        """One log line, e.g. 'balance_by [bmd_class, sex] kept 23 of 55 images of train (32 dropped)'."""
        return (f"{self.step} {self.detail} kept {self.after} of {self.before} images of {self.split} "
                f"({self.dropped} dropped)").replace("  ", " ")


class SelectionLog(list):
    """Every selection step of a run, in order (a list of SelectionStep); written to the run folder."""

    def record(self, step: str, split: str, before: int, after: int, detail: str = "") -> None:
        entry = SelectionStep(step, split, int(before), int(after), detail)
        self.append(entry)
        if entry.dropped:
            log.info(entry.describe())

    def frame(self) -> pd.DataFrame:
        """One row per step: step, split, before, after, dropped, detail."""
        rows = [{**vars(e), "dropped": e.dropped} for e in self]
        return pd.DataFrame(rows, columns=["step", "split", "before", "after", "dropped", "detail"])


def check_patient_disjoint(df: pd.DataFrame, column: str = "split") -> None:
    """Raise PatientLeakError when any patient has rows in two values of `column` (split or fold)."""
    assigned = df.dropna(subset=[column])
    per_patient = assigned.groupby("patient_id", observed=True)[column].nunique()
    leaking = int((per_patient > 1).sum())
    if leaking:
        raise PatientLeakError(f"{leaking} patient(s) appear in more than one {column}")


def apply_filters(df: pd.DataFrame, filters: Mapping[str, object] | None) -> pd.DataFrame:
    """Keep rows matching every filter: `{column: [values]}` (membership) or `{column: {min:, max:}}` (range).

    Example (thesis sub-groups): {"age_years": {"min": 40}, "bmd_class": ["normal", "osteoporosis"]}.
    """
    keep = pd.Series(True, index=df.index)
    for column, rule in (filters or {}).items():
        if column not in df.columns:
            raise UserError(f"data.split.filters names '{column}', which is not a manifest column")
        values = df[column]
        if isinstance(rule, Mapping):
            unknown = set(rule) - {"min", "max"}
            if unknown:
                raise ValueError(f"filter on '{column}': only min and max are allowed, got {sorted(unknown)}")
            if rule.get("min") is not None:
                keep &= values >= rule["min"]
            if rule.get("max") is not None:
                keep &= values <= rule["max"]
        elif isinstance(rule, (list, tuple, set)):
            keep &= values.isin(list(rule))
        else:
            keep &= values == rule
    return df.loc[keep.fillna(False)]


def patient_strata(df: pd.DataFrame, stratify: Sequence[str]) -> pd.Series:
    """One stratum label per patient (from the patient's first row), e.g. 'osteoporosis|F'; 'all' if none."""
    first = df.groupby("patient_id", observed=True, sort=True).first()
    if not stratify:
        return pd.Series("all", index=first.index)
    parts = [first[c].astype("string").fillna("NA") for c in stratify]
    key = parts[0]
    for part in parts[1:]:
        key = key + "|" + part
    return key


def _stratified_split(ids: np.ndarray, strata: pd.Series, test_size: float, seed: int):
    """train_test_split on patients, stratified on the finest strata that allow it, else unstratified."""
    labels = strata
    while True:
        try:
            return train_test_split(ids, test_size=test_size, random_state=seed, stratify=labels.to_numpy())
        except ValueError:
            if "|" not in "".join(labels.unique()):
                break
            labels = labels.str.rsplit("|", n=1).str[0]  # drop the last stratification column
    warnings.warn("too few patients per stratum: split without stratification", stacklevel=3)
    return train_test_split(ids, test_size=test_size, random_state=seed)


def split_patients(
    df: pd.DataFrame,
    fractions: Sequence[float] = (0.7, 0.1, 0.2),
    stratify: Sequence[str] = (),
    seed: int = 0,
) -> pd.Series:
    """Assign each row to train/val/test by patient, stratified by `stratify`; returns the split Series."""
    if len(fractions) != 3 or min(fractions) < 0 or not np.isclose(sum(fractions), 1.0):
        raise ValueError(f"split fractions must be three non-negative numbers summing to 1, got {list(fractions)}")
    strata = patient_strata(df, stratify)
    ids = strata.index.to_numpy()
    assignment: dict[str, str] = {}
    train_f, val_f, test_f = fractions
    rest = ids
    if test_f > 0:
        rest, test = _stratified_split(ids, strata, test_f, seed)
        assignment.update(dict.fromkeys(test, "test"))
    if val_f > 0:
        train, val = _stratified_split(rest, strata.loc[rest], val_f / (train_f + val_f), seed)
        assignment.update(dict.fromkeys(val, "val"))
    else:
        train = rest
    assignment.update(dict.fromkeys(train, "train"))
    return df["patient_id"].map(assignment).astype("string")


def patient_folds(patients: np.ndarray, strata: np.ndarray, k: int,
                  seed: int = 0) -> list[tuple[np.ndarray, np.ndarray]]:
    """Stratified k-fold (train, held-out) row-index pairs where no patient is on both sides (scikit-learn's
    StratifiedGroupKFold, shuffled by `seed`); `patients` and `strata` hold one entry per row."""
    if k < 2:
        raise ValueError(f"k-fold needs k >= 2, got {k}")
    n_patients = len(pd.unique(patients))
    if n_patients < k:
        raise ValueError(f"{k} folds need at least {k} patients, got {n_patients}")
    splitter = StratifiedGroupKFold(n_splits=k, shuffle=True, random_state=seed)
    return list(splitter.split(np.zeros(len(patients)), strata, groups=patients))


def assign_folds(df: pd.DataFrame, k: int, stratify: Sequence[str] = (), seed: int = 0) -> pd.Series:
    """Patient-level stratified k-fold (patient_folds on each patient's stratum); returns the fold of each row."""
    strata = patient_strata(df, stratify)
    y = df["patient_id"].map(strata).to_numpy()
    folds = pd.Series(pd.NA, index=df.index, dtype="Int64")
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="The least populated class")
        for fold, (_, held_out) in enumerate(patient_folds(df["patient_id"].to_numpy(), y, k, seed)):
            folds.iloc[held_out] = fold
    return folds


def _take_patients(df: pd.DataFrame, n_images: int, rng: np.random.Generator) -> pd.DataFrame:
    """Whole patients in random order until n_images rows are reached (exact with one image per patient)."""
    patients = np.asarray(df["patient_id"].unique(), dtype=object)
    rng.shuffle(patients)
    sizes = df.groupby("patient_id", observed=True).size().loc[patients]
    chosen = patients[: int(np.searchsorted(sizes.cumsum().to_numpy(), n_images, side="left")) + 1]
    return df[df["patient_id"].isin(chosen)]


def balance(df: pd.DataFrame, by: Sequence[str], seed: int = 0) -> pd.DataFrame:
    """Down-sample every cell of `by` (e.g. bmd_class × sex) to the smallest cell's size, by patient.

    Rows with a missing value in `by` are dropped (they cannot be placed in a cell).
    """
    complete = df.dropna(subset=list(by))
    if complete.empty:
        return complete
    rng = np.random.default_rng(seed)
    cells = complete.groupby(list(by), observed=True)
    target = int(cells.size().min())
    return pd.concat([_take_patients(cell, target, rng) for _, cell in cells]).sort_index()


def _allocate(counts: pd.Series, n: int) -> pd.Series:
    """Split n over strata proportionally to counts (largest remainder), never above a stratum's count."""
    share = counts / counts.sum() * n
    alloc = np.floor(share).astype(int)
    for key in (share - alloc).sort_values(ascending=False).index[: n - int(alloc.sum())]:
        alloc[key] += 1
    return alloc.clip(upper=counts)


def subsample(df: pd.DataFrame, n: int, stratify: Sequence[str] = (), seed: int = 0) -> pd.DataFrame:
    """A seeded subset of about n images (exactly n with one image per patient), keeping strata shares."""
    if n >= len(df):
        return df
    if n <= 0:
        raise ValueError(f"subsample size must be positive, got {n}")
    rng = np.random.default_rng(seed)
    if not stratify:
        return _take_patients(df, n, rng).sort_index()
    key = df[list(stratify)].astype("string").fillna("NA").agg("|".join, axis=1)
    alloc = _allocate(key.value_counts(), n)
    parts = [_take_patients(df[key == stratum], int(k), rng) for stratum, k in alloc.items() if k > 0]
    return pd.concat(parts).sort_index()


@dataclass
class SplitConfig:
    """How a manifest becomes train/val/test (all keys live in conf/data/split/*.yaml)."""

    fractions: tuple[float, float, float] = (0.7, 0.1, 0.2)
    stratify: tuple[str, ...] = ("sex",)
    seed: int = 0
    # the manifest's own split column (scripts/split_manifest.py): None uses it when every row has one, True
    # requires it, False splits again from fractions / stratify / seed
    use_existing: bool | None = None
    filters: dict = field(default_factory=dict)  # subgroup filters, applied before splitting
    balance_by: tuple[str, ...] = ()  # e.g. (bmd_class, sex): equal cells in every split
    folds: int | None = None  # k-fold over train+val (the test split stays fixed)
    fold: int | None = None  # with folds: which fold is validation
    n_train: int | None = None  # stress test: a seeded subset of the training split
    n_val: int | None = None


def _use_existing_split(internal: pd.DataFrame, use_existing: bool | None) -> bool:
    """Whether the manifest's split column is kept (see SplitConfig.use_existing); says so in the log."""
    labelled = int(internal["split"].notna().sum())
    if use_existing is False:
        if labelled:
            log.info("data.split.use_existing=false: the manifest's split column is ignored and the rows split again")
        return False
    if labelled == len(internal) and labelled:
        unknown = sorted(set(internal["split"].dropna().astype(str)) - set(SPLITS))
        if unknown:
            raise UserError(f"the manifest's split column holds {', '.join(unknown)}; allowed: "
                            f"{', '.join(SPLITS + (EXTERNAL,))}")
        log.info("using the manifest's own split column (%s); data.split.use_existing=false splits again",
                 internal["split"].value_counts().to_dict())
        return True
    if use_existing:
        raise UserError(f"data.split.use_existing=true but {len(internal) - labelled} of {len(internal)} manifest "
                        "rows have no split; write one with scripts/split_manifest.py, or set "
                        "data.split.use_existing=false")
    if labelled:
        raise UserError(f"the manifest's split column is filled for {labelled} of {len(internal)} rows; fill it "
                        "for all (scripts/split_manifest.py) or set data.split.use_existing=false to split again")
    return False


def make_splits(manifest: pd.DataFrame, config: SplitConfig, selection: SelectionLog | None = None) -> pd.DataFrame:
    """Filter, split, fold, balance and subsample a manifest; returns the rows kept with split (and fold).

    Rows whose split is 'external' are kept as an external test set and never split. The test split
    depends only on the filters, fractions, stratification and seed: stress-test subsampling and fold
    choice never change it. Raises PatientLeakError if any patient ends up in two splits or folds.
    Every step that drops images is recorded in `selection` (and logged).
    """
    selection = SelectionLog() if selection is None else selection
    df = apply_filters(manifest, config.filters)
    if config.filters:
        selection.record("filters", "all", len(manifest), len(df), _describe_rule(config.filters))
    if "split" not in df.columns:
        df = df.assign(split=pd.Series(pd.NA, index=df.index, dtype="string"))
    is_external = df["split"].eq(EXTERNAL).fillna(False).astype(bool)
    external = df[is_external]
    internal = df[~is_external].copy()
    if not _use_existing_split(internal, config.use_existing):
        internal["split"] = split_patients(internal, config.fractions, config.stratify, config.seed)
    if config.folds:
        development = internal["split"].isin(["train", "val"])
        internal["fold"] = pd.Series(pd.NA, index=internal.index, dtype="Int64")
        internal.loc[development, "fold"] = assign_folds(internal[development], config.folds,
                                                         config.stratify, config.seed)
        check_patient_disjoint(internal[development], "fold")
        if config.fold is not None:
            if not 0 <= config.fold < config.folds:
                raise UserError(f"data.split.fold must be in 0..{config.folds - 1}, got {config.fold}")
            internal.loc[development, "split"] = np.where(internal.loc[development, "fold"] == config.fold,
                                                          "val", "train")
    parts = []
    for name, rows in internal.groupby("split", observed=True, sort=False):
        if config.balance_by:
            before = len(rows)
            rows = balance(rows, config.balance_by, config.seed)
            selection.record("balance_by", str(name), before, len(rows), f"[{', '.join(config.balance_by)}]")
        limit = {"train": config.n_train, "val": config.n_val}.get(str(name))
        if limit:
            before = len(rows)
            rows = subsample(rows, limit, config.stratify, config.seed)
            selection.record(f"n_{name}", str(name), before, len(rows), f"={limit}")
        parts.append(rows)
    out = pd.concat(parts + [external]).sort_index()
    check_patient_disjoint(out, "split")
    log.info("split sizes: %s", out["split"].value_counts().to_dict())
    return out


def _describe_rule(filters: Mapping) -> str:
    return "{" + ", ".join(f"{k}: {dict(v) if isinstance(v, Mapping) else v}" for k, v in filters.items()) + "}"
