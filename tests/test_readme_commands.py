"""Every command block of README.md runs as written, in order, so the README and the code cannot drift apart.

The README states the substitutions (under "Your own data"): its /data/... folders become small phantom cohorts
made here from the synthetic chest CT (/data/mimic in MIMIC-CXR's layout), `<time>` the newest run, RUN / AGE_RUN /
RUN_A / RUN_B runs made by the commands before them; `trainer=gpu` becomes `trainer=cpu`, the size sweep trains
tiny images, and the commands that train or load a checkpoint get tiny settings. The workspace stands in for the
project root after `make demo` ($PROJECT_ROOT): its data_manifests/demo.csv is built from the /data/site_a phantoms
as `make demo` builds it.
"""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from hydra_helpers import ROOT

README = ROOT / "README.md"
TRAIN_TINY = ["backbone=test_resnet", "backbone.weights=none", "data.num_workers=0", "data.show_progress=false",
              "data.batch_size=16", "trainer.max_epochs=1", "trainer.enable_progress_bar=false", "report.n_boot=20"]
TINY = {  # script → settings appended (the README names them)
    "train.py": TRAIN_TINY,
    "eval.py": ["report.n_boot=20", "data.num_workers=0", "data.show_progress=false"],
    "scripts/cam.py": ["cam.threshold=0", "cam.max_images=8", "data.num_workers=0", "data.show_progress=false"],
    "scripts/embed.py": ["data.num_workers=0", "data.show_progress=false"],
}


def readme_commands(text: str) -> list[list[str]]:
    """The commands of the README's ```bash blocks: continuation lines joined, comments dropped, split as the
    shell would."""
    commands = []
    for block in re.findall(r"```bash\n(.*?)```", text, flags=re.S):
        for line in block.replace("\\\n", " ").splitlines():
            words = shlex.split(line, comments=True)
            if words:
                commands.append(words)
    return commands


def newest(folder: Path) -> Path:
    entries = sorted(p for p in folder.iterdir() if p.is_dir() and not p.name.startswith("."))
    assert entries, f"nothing in {folder}"
    return entries[-1]


class Workspace:
    """The folders the README's placeholders stand for, resolved when a command needs them."""

    def __init__(self, root: Path, data: dict[str, Path]) -> None:
        self.root = root
        self.data = data

    def runs(self) -> dict[str, Path]:
        logs = self.root / "logs"
        found = {}
        if (logs / "osteo_baseline" / "runs").is_dir():
            found["RUN"] = newest(logs / "osteo_baseline" / "runs")
        if (logs / "osteo_baseline" / "multiruns").is_dir():  # two folds: the same test images
            sweep = newest(logs / "osteo_baseline" / "multiruns")
            found["RUN_A"], found["RUN_B"] = sweep / "0", sweep / "1"
        if (logs / "age_densenet169" / "multiruns").is_dir():
            found["AGE_RUN"] = newest(logs / "age_densenet169" / "multiruns") / "0"
        return found

    def substitute(self, word: str) -> str:
        for placeholder, folder in self.data.items():
            word = word.replace(placeholder, str(folder))
        for name, folder in self.runs().items():
            word = re.sub(rf"\b{name}\b", str(folder), word)
        if "<time>" in word:
            head, tail = word.split("<time>", 1)
            prefix = re.sub(r"^[\w.]+=", "", head)  # key=logs/x/runs/ → logs/x/runs/
            word = head + newest(self.root / prefix).name + tail
        return word

    def command(self, words: list[str]) -> list[str]:
        """The README command as this test runs it: the script from the checkout, placeholders filled in, the
        substitutions the README announces applied."""
        assert words[0] == "python", words
        script, args = words[1], [self.substitute(w) for w in words[2:]]
        args = ["trainer=cpu" if a == "trainer=gpu" else a for a in args]
        args += TINY.get(script, [])  # after a size=... pair: 32 px in batches of 16
        if script == "train.py" and not any(a.startswith("data.image_size=") for a in args):
            args.append("data.image_size=32")
        if "hydra/launcher=slurm" in args:  # composed only, the first job's config: the suite has no cluster
            args = [a.split(",")[0] for a in args if a != "-m"] + ["--cfg", "hydra"]
        return [sys.executable, str(ROOT / script), *args]


def make_phantoms(out: Path, n: int, seed: int, ct_dir: Path, *extra: str) -> Path:
    from radscreen.phantoms.cxr import make_cohort

    if not extra:
        make_cohort(out, n=n, seed=seed, size=64, n_broken_each=1, ct_dir=ct_dir, show_progress=False)
        return out
    subprocess.run([sys.executable, str(ROOT / "scripts" / "make_phantoms.py"), "--n", str(n), "--seed", str(seed),
                    "--size", "64", "--out", str(out), "--ct-dir", str(ct_dir), "--quiet", *extra], check=True,
                   capture_output=True)
    return out


def make_mimic(out: Path, n: int, seed: int, ct_dir: Path) -> Path:
    """Phantom radiographs in MIMIC-CXR's folder layout (files/pXX/p<subject>/s<study>/<dicom>.dcm, two studies per
    subject) with the four CSVs in MIMIC-CXR 2.0.0 / MIMIC-IV hosp columns and seeded values."""
    import shutil

    import numpy as np

    from radscreen.manifests.importers import CHEXPERT_FINDINGS
    from radscreen.phantoms.cxr import make_cohort

    source = out / "phantoms"
    make_cohort(source, n=n, seed=seed, size=64, n_broken_each=0, ct_dir=ct_dir, show_progress=False)
    rng = np.random.default_rng(seed)
    metadata, labels = [], []
    dicoms = sorted((source / "dicom").rglob("*.dcm"))
    for i, dicom in enumerate(dicoms):
        subject, study, day = 10_000_000 + 37 * (i // 2), 50_000_000 + i, pd.Timestamp("2150-01-01") + pd.Timedelta(
            days=int(rng.integers(0, 3000)))
        target = out / "files" / f"p{str(subject)[:2]}" / f"p{subject}" / f"s{study}" / f"{dicom.stem}-{i:04d}.dcm"
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(dicom, target)
        metadata.append({"dicom_id": target.stem, "subject_id": subject, "study_id": study,
                         "PerformedProcedureStepDescription": "CHEST (PA AND LAT)", "ViewPosition": "PA",
                         "Rows": 64, "Columns": 64, "StudyDate": day.strftime("%Y%m%d"), "StudyTime": 101500.0,
                         "ProcedureCodeSequence_CodeMeaning": "CHEST (PA AND LAT)",
                         "ViewCodeSequence_CodeMeaning": "postero-anterior",
                         "PatientOrientationCodeSequence_CodeMeaning": "Erect"})
        labels.append({"subject_id": subject, "study_id": study,
                       **{f: rng.choice([1.0, 0.0, -1.0, np.nan]) for f in CHEXPERT_FINDINGS}})
    metadata = pd.DataFrame(metadata)
    first = metadata.groupby("subject_id")["StudyDate"].min()
    subjects = first.index.to_numpy()
    dies = rng.random(len(subjects)) < 0.5
    dod = pd.to_datetime(first.astype(str)) + pd.to_timedelta(rng.integers(0, 700, len(subjects)), unit="D")
    pd.DataFrame({"subject_id": subjects, "gender": rng.choice(["M", "F"], len(subjects)),
                  "anchor_age": rng.integers(20, 85, len(subjects)), "anchor_year": 2150,
                  "anchor_year_group": "2014 - 2016", "dod": dod.dt.strftime("%Y-%m-%d").where(dies).to_numpy(),
                  }).to_csv(out / "patients.csv", index=False)
    admit = pd.to_datetime(first.astype(str)).to_numpy()
    pd.DataFrame({"subject_id": subjects, "hadm_id": 20_000_000 + np.arange(len(subjects)), "admittime": admit,
                  "dischtime": admit + np.timedelta64(3, "D"), "deathtime": "", "admission_type": "EW EMER.",
                  "admit_provider_id": "P874LG", "admission_location": "EMERGENCY ROOM",
                  "discharge_location": "HOME",
                  "insurance": rng.choice(["Medicare", "Medicaid", "Other"], len(subjects)), "language": "ENGLISH",
                  "marital_status": "MARRIED",
                  "race": rng.choice(["WHITE", "BLACK/AFRICAN AMERICAN", "ASIAN - CHINESE", "HISPANIC OR LATINO",
                                      "OTHER", "UNKNOWN"], len(subjects)),
                  "edregtime": "", "edouttime": "", "hospital_expire_flag": 0}).to_csv(out / "admissions.csv",
                                                                                       index=False)
    metadata.to_csv(out / "mimic-cxr-2.0.0-metadata.csv", index=False)
    pd.DataFrame(labels).to_csv(out / "mimic-cxr-2.0.0-chexpert.csv", index=False)
    shutil.rmtree(source)
    return out


@pytest.fixture(scope="module")
def workspace(tmp_path_factory, synthetic_ct_dir) -> Workspace:
    """A project root as `make demo` leaves it (demo manifest and phantoms) plus the README's /data folders."""
    root = tmp_path_factory.mktemp("readme_workspace")
    (root / "data_manifests").mkdir()
    site_a = make_phantoms(root / "data" / "demo" / "phantoms", 90, 0, synthetic_ct_dir)
    site_b = make_phantoms(root / "site_b", 40, 1, synthetic_ct_dir)
    ct = make_phantoms(root / "ct", 20, 2, synthetic_ct_dir, "--volumes", "dicom", "--volume-shape", "32", "32", "32")
    env = {**os.environ, "RADSCREEN_SALT": "readme-test", "PROJECT_ROOT": str(root)}
    demo = root / "data_manifests" / "demo.csv"
    for command in (["scripts/build_manifest.py", str(site_a / "dicom"), "--clinical", str(site_a / "dxa.csv"),
                     "--out", str(demo), "--quiet"],
                    ["scripts/split_manifest.py", str(demo), "--out", str(demo), "--stratify", "bmd_class", "sex"]):
        done = subprocess.run([sys.executable, str(ROOT / command[0]), *command[1:]], cwd=root, env=env,
                              capture_output=True, text=True)
        assert done.returncode == 0, done.stderr
    mimic = make_mimic(root / "mimic", 60, 3, synthetic_ct_dir)
    return Workspace(root, {"/data/site_a": site_a, "/data/site_b": site_b, "/data/ct_series": ct / "volumes",
                            "/data/mimic": mimic})


def test_the_readme_starts_with_the_two_setup_commands():
    first = README.read_text().split("\n\n")[1].split("\n")
    assert [line.split("#")[0].strip() for line in first[:2]] == ["make demo", "make test"]
    makefile = (ROOT / "Makefile").read_text()
    assert re.search(r"^demo:", makefile, re.M) and re.search(r"^test:", makefile, re.M)


@pytest.mark.slow
def test_every_readme_command_runs_as_written(workspace):
    commands = readme_commands(README.read_text())
    assert len(commands) >= 20, commands  # the blocks were found
    env = {**os.environ, "PROJECT_ROOT": str(workspace.root)}
    for words in commands:
        if words[0] == "export":
            name, value = words[1].split("=", 1)
            env[name] = value
            continue
        command = workspace.command(words)
        done = subprocess.run(command, cwd=workspace.root, env=env, capture_output=True, text=True, timeout=600)
        shown = " ".join(words)
        assert done.returncode == 0, f"README command failed: {shown}\n{done.stderr[-3000:]}"
        if "hydra/launcher=slurm" in words:
            assert "hydra_plugins.hydra_submitit_launcher" in done.stdout, done.stdout[-2000:]

    root = workspace.root
    site_a = pd.read_csv(root / "data_manifests" / "site_a.csv")
    assert site_a["split"].notna().all() and set(site_a["body_part"]) == {"CHEST"}
    assert (root / "data_manifests" / "site_b.csv").is_file()
    evaluations = sorted((root / "logs" / "eval" / "runs").iterdir())
    assert all((e / "report" / "report.html").is_file() for e in evaluations) and len(evaluations) == 3
    external = pd.read_csv(evaluations[0] / "predictions_external.csv")  # the first block's eval.py
    assert len(external) and external["cohort"].eq("site_b").all()
    sweep = newest(root / "logs" / "age_densenet169" / "multiruns")  # the image-size table: five size= pairs
    assert len([p for p in sweep.iterdir() if (p / "metrics.json").is_file()]) == 5
    assert sorted(pd.read_csv(sweep / "summary.csv")["size"]) == sorted(
        ["224_b100", "224_b20", "512_b20", "512_b4", "1024_b4"])
    runs = workspace.runs()
    assert (runs["RUN_A"] / "comparison" / "comparison.csv").is_file()
    assert (runs["RUN"] / "cam" / "comparison" / "similarity.csv").is_file()
    assert (root / "emb.parquet").is_file()
    assert len(pd.read_csv(root / "site_b_predictions.csv")) and (root / "site_b_manifest_cam").is_dir()
    assert (root / "osteo.onnx").is_file() and (root / "osteo.onnx.json").is_file()
    assert (root / "osteo.torchscript.pt").is_file()
    mimic = pd.read_csv(root / "data_manifests" / "mimic.csv")
    assert len(mimic) == 60 and mimic["split"].notna().all() and set(mimic["mortality_1y"]) == {0, 1}
    compared = newest(root / "logs" / "mimic_mortality" / "multiruns") / "0" / "cam" / "comparison"
    assert pd.read_csv(compared / "similarity.csv")["map_a"].tolist()[:3] == ["mortality"] * 3
    folds = newest(root / "logs" / "ct_age_resnet18_gnll" / "multiruns")
    assert len([p for p in folds.iterdir() if (p / "metrics.json").is_file()]) == 5
    assert not list(ROOT.glob("comparison")), "nothing is written into the checkout"
