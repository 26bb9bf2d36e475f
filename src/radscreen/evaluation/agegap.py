"""Age-gap analysis (thesis §3.3.4): old-, well- and young-predicted subjects against clinical variables."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
from scipy import stats

GROUPS = ("young-predicted", "well-predicted", "old-predicted")


def age_gap_groups(predicted: pd.Series, true: pd.Series, margin: float = 5.0) -> pd.Series:
    """predicted − true ≥ +margin: old-predicted; ≤ −margin: young-predicted; otherwise well-predicted."""
    gap = predicted - true
    groups = np.select([gap >= margin, gap <= -margin], ["old-predicted", "young-predicted"], "well-predicted")
    return pd.Series(pd.Categorical(groups, categories=GROUPS), index=predicted.index, name="age_gap_group")


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
            row[name] = f"{v.mean():.2f} ± {v.std(ddof=1):.2f} (n={len(v)})" if len(v) > 1 else \
                (f"{v.iloc[0]:.2f} (n=1)" if len(v) else "–")
        row["p_value"] = p_value
        rows.append(row)
    return pd.DataFrame(rows)


def density_plots(frame: pd.DataFrame, variables: list[str], folder: Path, group: str = "age_gap_group") -> list[Path]:
    """One kernel-density plot per continuous variable, a curve per age-gap group."""
    from radscreen.utils.figures import plt, save_figure

    paths = []
    for variable in variables:
        fig, ax = plt.subplots(figsize=(5, 3.5))
        for name in GROUPS:
            v = pd.to_numeric(frame.loc[frame[group] == name, variable], errors="coerce").dropna()
            if len(v) > 2 and v.std() > 0:
                grid = np.linspace(v.min() - v.std(), v.max() + v.std(), 200)
                ax.plot(grid, stats.gaussian_kde(v)(grid), label=f"{name} (n={len(v)})")
        ax.set(xlabel=variable, ylabel="density", title=f"{variable} by age-gap group")
        ax.legend(fontsize=8)
        paths.append(save_figure(fig, folder / f"agegap_{variable}.png"))
    return paths
