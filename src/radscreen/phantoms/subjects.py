"""The generative model of a synthetic subject: demographics, DXA T-scores and imaging factors.

Every effect size lives in `CohortModel` (documented in docs/phantoms.md); sampling is deterministic by seed.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import date, timedelta

import numpy as np
import pandas as pd

from radscreen.manifests.clinical import add_bmd_labels


@dataclass(frozen=True)
class CohortModel:
    """Effect sizes of the synthetic cohort."""

    age_min: float = 20.0
    age_max: float = 90.0
    age_beta: tuple[float, float] = (2.2, 1.6)  # age = min + range * Beta(a, b): a health-check cohort, median ~61 y
    female_share: float = 0.5
    t_young: float = 0.2  # skeletal T-score at 30 y
    t_loss_per_year: tuple[float, float] = (0.050, 0.040)  # (women, men) T-score lost per year after 30
    t_between_sd: float = 0.9  # between-subject SD of the skeletal T-score
    t_site_offsets: tuple[float, float, float] = (0.0, -0.1, 0.2)  # lumbar spine, femoral neck, total hip
    t_site_sd: float = 0.3  # site-specific deviation from the skeletal T-score
    # Bone: realistic values (0.11 per T-score SD, gain 1, thickness SD 0.12) leave a CNN on a few hundred 64 px
    # images near chance; the demo exaggerates bone so that the whole pipeline has a learnable target.
    bone_factor_per_t: float = 0.15  # bone attenuation above soft tissue ∝ 1 + 0.15·T (real: 1 SD of BMD ≈ 11 %)
    bone_contrast: float = 6.0  # gain on bone's excess attenuation (exaggerated bone, like a very low-kV technique)
    size_by_sex: tuple[float, float] = (0.93, 1.0)  # body scale (women, men), ± size_sd
    size_sd: float = 0.03
    thickness_sd: float = 0.06  # soft-tissue (AP) thickness factor: lognormal SD, + 0.004 per BMI unit
    lung_density_loss_per_year: float = 0.003  # lung attenuation × (1 − 0.003·(age − 20))
    aortic_calcification_per_decade: float = 0.08  # share of the aorta's path length calcified per decade past 40
    cartilage_calcification_per_decade: float = 0.06  # share of costal cartilage calcified per decade past 30
    height_loss_per_year: float = 0.0008  # vertical compression (kyphosis / height loss) after 40
    pose_rotation_deg: float = 3.0
    pose_shift: float = 0.03  # of the image size
    exposure_log_sd: float = 0.25  # detector dose: lognormal
    photons_per_pixel: float = 20000.0  # mean unattenuated quanta per pixel (quantum noise)
    electronic_noise: float = 2.0  # detector read noise, in quanta
    dxa_days_sd: float = 30.0  # DXA date around the radiograph (thesis pairing window: 92 days)


def sample_subjects(n: int, seed: int = 0, model: CohortModel = CohortModel()) -> pd.DataFrame:
    """n subjects with demographics, T-scores, WHO class, anthropometry and imaging factors (one row each)."""
    rng = np.random.default_rng(seed)
    female = rng.random(n) < model.female_share
    age = model.age_min + (model.age_max - model.age_min) * rng.beta(*model.age_beta, size=n)
    loss = np.where(female, *model.t_loss_per_year)
    skeletal = model.t_young - loss * np.maximum(age - 30, 0) + rng.normal(0, model.t_between_sd, n)
    sites = {name: skeletal + offset + rng.normal(0, model.t_site_sd, n)
             for name, offset in zip(("t_score_ls", "t_score_fn", "t_score_th"), model.t_site_offsets)}
    height = np.where(female, 162.0, 176.0) + rng.normal(0, 6.5, n) - 8 * model.height_loss_per_year * \
        np.maximum(age - 40, 0) * 100
    bmi = np.clip(rng.normal(np.where(female, 24.5, 26.0), 3.8), 16, 42)
    study = [date(2016, 1, 1) + timedelta(days=int(d)) for d in rng.integers(0, 6 * 365, n)]
    birth = [s - timedelta(days=int(round(a * 365.2425))) for s, a in zip(study, age)]
    decades_40 = np.maximum(age - 40, 0) / 10
    frame = pd.DataFrame({
        "subject": np.arange(n),
        "patient_id": [f"RS{seed:02d}{i:06d}" for i in range(n)],
        "patient_name": [f"PHANTOM^{seed:02d}{i:06d}" for i in range(n)],
        "sex": np.where(female, "F", "M"),
        "age_years": age,
        "birth_date": birth,
        "study_date": study,
        "dxa_date": [s + timedelta(days=int(d)) for s, d in zip(study, rng.normal(0, model.dxa_days_sd, n))],
        **sites,
        "height_cm": height.round(1),
        "weight_kg": (bmi * (height / 100) ** 2).round(1),
        "skeletal_t": skeletal,
        "bone_factor": model.bone_contrast * np.clip(1 + model.bone_factor_per_t * skeletal, 0.35, 1.4),
        "body_scale": np.where(female, *model.size_by_sex) + rng.normal(0, model.size_sd, n),
        "thickness": np.exp(rng.normal(0, model.thickness_sd, n) + 0.004 * (bmi - 25)),
        "lung_density": 1 - model.lung_density_loss_per_year * (age - 20),
        "aortic_calcification": np.clip(model.aortic_calcification_per_decade * decades_40
                                        * rng.lognormal(0, 0.5, n), 0, 0.6),
        "cartilage_calcification": np.clip(model.cartilage_calcification_per_decade * np.maximum(age - 30, 0) / 10
                                           * rng.lognormal(0, 0.5, n), 0, 0.6),
        "height_loss": model.height_loss_per_year * np.maximum(age - 40, 0),
        "rotation_deg": rng.uniform(-model.pose_rotation_deg, model.pose_rotation_deg, n),
        "shift_x": rng.uniform(-model.pose_shift, model.pose_shift, n),
        "shift_y": rng.uniform(-model.pose_shift, model.pose_shift, n),
        "exposure": rng.lognormal(0, model.exposure_log_sd, n),
    })
    return add_bmd_labels(frame)


def describe(model: CohortModel = CohortModel()) -> dict:
    return asdict(model)
