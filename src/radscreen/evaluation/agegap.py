"""Age-gap analysis (thesis §3.3.4): old-, well- and young-predicted subjects against clinical variables.

The gap predicted − true of any regression model regresses to the mean: it is positive for the young and
negative for the old, whatever the biology. By default the gap is therefore bias-corrected as brain-age studies
do (Beheshti et al. 2019, NeuroImage: Clinical 24:102063; Le et al. 2018, Front. Aging Neurosci. 10:317): the
line gap = a + b·age is fitted on the validation split and subtracted from the test gap, so the corrected gap
is uncorrelated with chronological age. `RAW` keeps the uncorrected gap.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from scipy import stats

from radscreen.errors import UserError
from radscreen.evaluation.formatting import MISSING, mean_sd_text

GROUPS = ("young-predicted", "well-predicted", "old-predicted")


@dataclass(frozen=True)
class GapCorrection:
    """gap − (intercept + slope·age), with the line fitted on `fitted_on` (n rows); `fitted_on=None` is the raw
    gap (nothing subtracted)."""

    intercept: float = 0.0
    slope: float = 0.0
    n: int = 0
    fitted_on: str | None = None

    @property
    def is_raw(self) -> bool:
        return self.fitted_on is None

    @property
    def short(self) -> str:
        """Two words for figure titles: 'raw gap' or 'bias-corrected gap'."""
        return "raw gap" if self.is_raw else "bias-corrected gap"

    def describe(self) -> str:
        """Which gap, in words, for every table and output."""
        if self.is_raw:
            return "raw (predicted − true, not bias-corrected)"
        return (f"bias-corrected on {self.fitted_on} (n={self.n}, slope {self.slope:.3f}, "
                f"intercept {self.intercept:.2f} y)")

    def apply(self, gap: np.ndarray | pd.Series, age: np.ndarray | pd.Series) -> np.ndarray:
        """The corrected gap: gap − (intercept + slope·age)."""
        return np.asarray(gap, float) - (self.intercept + self.slope * np.asarray(age, float))


RAW = GapCorrection()


def fit_gap_correction(true: np.ndarray | pd.Series, pred: np.ndarray | pd.Series,
                       fitted_on: str = "validation") -> GapCorrection:
    """Least-squares line of the gap (pred − true) on chronological age (scipy.stats.linregress) over the rows
    with both values; UserError with fewer than 3 such rows or a single age."""
    true, pred = np.asarray(true, float), np.asarray(pred, float)
    keep = np.isfinite(true) & np.isfinite(pred)
    if keep.sum() < 3 or np.ptp(true[keep]) == 0:
        raise UserError(f"the {fitted_on} predictions have {int(keep.sum())} labelled row(s) with varying age; the "
                        f"bias correction needs at least 3 (pass --correction none for the raw gap)")
    fit = stats.linregress(true[keep], pred[keep] - true[keep])
    return GapCorrection(float(fit.intercept), float(fit.slope), int(keep.sum()), fitted_on)


def age_gap(predicted: pd.Series, true: pd.Series, correction: GapCorrection = RAW) -> pd.Series:
    """predicted − true, minus the fitted line of `correction` (none for RAW)."""
    gap = correction.apply(np.asarray(predicted, float) - np.asarray(true, float), true)
    return pd.Series(gap, index=predicted.index, name="age_gap")


def gap_groups(gap: pd.Series, margin: float = 5.0) -> pd.Series:
    """gap ≥ +margin: old-predicted; ≤ −margin: young-predicted; otherwise well-predicted (missing gap: no group)."""
    groups = np.select([gap >= margin, gap <= -margin], ["old-predicted", "young-predicted"], "well-predicted")
    groups = np.where(pd.isna(gap), None, groups)
    return pd.Series(pd.Categorical(groups, categories=GROUPS), index=gap.index, name="age_gap_group")


def age_gap_groups(predicted: pd.Series, true: pd.Series, margin: float = 5.0,
                   correction: GapCorrection = RAW) -> pd.Series:
    """Groups of `gap_groups` for the (raw, by default, or corrected) gap of predicted against true."""
    return gap_groups(age_gap(predicted, true, correction), margin)


def add_age_gap(frame: pd.DataFrame, task: str, correction: GapCorrection, margin: float = 5.0) -> pd.DataFrame:
    """Labelled rows of a predictions frame with age_gap_raw, age_gap (the one used) and age_gap_group."""
    pred, true = f"{task}_pred", f"{task}_target"
    rows = frame[frame[pred].notna() & frame[true].notna()].copy()
    rows["age_gap_raw"] = rows[pred] - rows[true]
    rows["age_gap"] = age_gap(rows[pred], rows[true], correction)
    rows["age_gap_group"] = gap_groups(rows["age_gap"], margin)
    return rows


def gap_summary(frame: pd.DataFrame, task: str, correction: GapCorrection) -> pd.DataFrame:
    """Mean and SD of the raw and the used gap and their Pearson r with chronological age (scipy.stats.pearsonr):
    a gap that still tracks age is regression to the mean, not biology."""
    true = frame[f"{task}_target"].to_numpy(float)
    rows = []
    for name, column in (("raw", "age_gap_raw"), ("used: " + correction.describe(), "age_gap")):
        gap = frame[column].to_numpy(float)
        varies = len(gap) > 2 and np.ptp(gap) > 0 and np.ptp(true) > 0
        rows.append({"gap": name, "n": len(gap), "mean": float(np.mean(gap)) if len(gap) else np.nan,
                     "sd": float(np.std(gap, ddof=1)) if len(gap) > 1 else np.nan,
                     "pearson_r_with_age": float(stats.pearsonr(true, gap)[0]) if varies else np.nan})
    return pd.DataFrame(rows)


def group_counts(frame: pd.DataFrame, group: str = "age_gap_group") -> pd.DataFrame:
    """Images per age-gap group (integers), in the order young, well, old."""
    counts = frame[group].value_counts().reindex(list(GROUPS), fill_value=0)
    return pd.DataFrame({"group": list(GROUPS), "images": counts.to_numpy(int)})


def categorical_table(frame: pd.DataFrame, variables: list[str], group: str = "age_gap_group") -> pd.DataFrame:
    """Counts and column percentages of each category per group, with the chi-square test of independence
    (scipy.stats.chi2_contingency) per variable (thesis Table 3.5)."""
    rows = []
    for variable in variables:
        data = frame[[group, variable]].dropna()
        counts = pd.crosstab(data[variable].astype("string"), data[group]).reindex(columns=list(GROUPS), fill_value=0)
        kept = counts.loc[counts.sum(axis=1) > 0, counts.sum(axis=0) > 0]
        p_value = stats.chi2_contingency(kept.to_numpy())[1] if min(kept.shape) > 1 else np.nan
        for category, counts_row in counts.iterrows():
            row = {"variable": variable, "category": category}
            for name in GROUPS:
                total = counts[name].sum()
                row[name] = f"{counts_row[name]} ({100 * counts_row[name] / total:.1f} %)" if total else "0"
            row["p_value"] = p_value
            rows.append(row)
    return pd.DataFrame(rows)


def continuous_table(frame: pd.DataFrame, variables: list[str], group: str = "age_gap_group") -> pd.DataFrame:
    """Mean ± SD per group and the Kruskal–Wallis test (scipy.stats.kruskal) per variable (thesis Table 3.6)."""
    rows = []
    for variable in variables:
        values = [pd.to_numeric(frame.loc[frame[group] == name, variable], errors="coerce").dropna() for name in GROUPS]
        testable = [v for v in values if len(v) > 0]
        p_value = stats.kruskal(*testable).pvalue if len(testable) > 1 else np.nan
        row = {"variable": variable}
        for name, v in zip(GROUPS, values):
            row[name] = f"{mean_sd_text(v.mean(), v.std(ddof=1), 2)} (n={len(v)})" if len(v) else MISSING
        row["p_value"] = p_value
        rows.append(row)
    return pd.DataFrame(rows)


def density_plots(frame: pd.DataFrame, variables: list[str], folder: Path, group: str = "age_gap_group",
                  correction: GapCorrection = RAW) -> list[Path]:
    """One kernel-density plot per continuous variable, a curve per age-gap group; the title names the gap."""
    from radscreen.utils.figures import plt, save_figure

    paths = []
    for variable in variables:
        fig, ax = plt.subplots(figsize=(5, 3.5))
        for name in GROUPS:
            v = pd.to_numeric(frame.loc[frame[group] == name, variable], errors="coerce").dropna()
            if len(v) > 2 and v.std() > 0:
                grid = np.linspace(v.min() - v.std(), v.max() + v.std(), 200)
                ax.plot(grid, stats.gaussian_kde(v)(grid), label=f"{name} (n={len(v)})")
        ax.set(xlabel=variable, ylabel="density", title=f"{variable} by age-gap group ({correction.short})")
        ax.legend(fontsize=8)
        paths.append(save_figure(fig, Path(folder) / f"agegap_{variable}.png"))
    return paths
