"""Task kinds as classes: conf/task/*.yaml build them by `_target_`, older `kind:` entries still load, encodings and
mistakes."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch
from omegaconf import OmegaConf

from radscreen.errors import UserError
from radscreen.models.module import RadscreenModule, load_module
from radscreen.tasks import IGNORE_INDEX, BinaryTask, MulticlassTask, RegressionTask, as_tasks, build_task

from hydra_helpers import ROOT

TINY = {"name": "test_resnet", "in_chans": 1}
EXPECTED = {"age": (RegressionTask, 1), "age_gnll": (RegressionTask, 2), "osteo_binary": (BinaryTask, 1),
            "osteo_subgroup": (BinaryTask, 1), "osteo_multiclass": (MulticlassTask, 3), "sex": (BinaryTask, 1)}


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_every_task_yaml_builds_its_class(name):
    entries = OmegaConf.to_container(OmegaConf.load(ROOT / "conf" / "task" / f"{name}.yaml"))
    (task,) = as_tasks(entries).values()
    cls, width = EXPECTED[name]
    assert type(task) is cls and task.n_outputs == width
    assert build_task(task.to_config()) == task  # what checkpoints record builds the same task


def test_entries_written_before_task_classes_still_build_the_same_task():
    old = {"name": "osteo", "column": "bmd_class", "kind": "binary", "loss": "bce", "positive": ["osteoporosis"],
           "negative": [], "classes": []}
    new = {"_target_": "radscreen.tasks.BinaryTask", "name": "osteo", "column": "bmd_class",
           "positive": ["osteoporosis"]}
    old.pop("classes")  # a BinaryTask has no classes; the old record held every kind's fields empty
    assert build_task(old) == build_task(new)
    assert build_task({"name": "age", "column": "age_years", "kind": "regression", "loss": "gaussian_nll"}) == \
        RegressionTask(name="age", column="age_years", loss="gaussian_nll")


def test_old_checkpoint_with_kind_entries_reloads(tmp_path):
    """A checkpoint whose hyper-parameters hold `kind:` task entries (written before task classes) still loads, and
    predicts exactly what the module it was saved from predicts."""
    module = RadscreenModule(tasks={"age": {"_target_": "radscreen.tasks.RegressionTask", "name": "age",
                                            "column": "age_years"}}, backbone=TINY).eval()
    hparams = dict(module.hparams)
    hparams["tasks"] = {"age": {"name": "age", "column": "age_years", "kind": "regression", "loss": "mse",
                                "positive": [], "negative": [], "classes": [], "weight": 1.0}}
    path = tmp_path / "old.ckpt"
    torch.save({"hyper_parameters": hparams, "state_dict": module.state_dict()}, path)
    reloaded = load_module(path)
    images = torch.randn(2, 1, 32, 32, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        assert torch.equal(reloaded(images)["age"], module(images)["age"])
    assert reloaded.hparams["tasks"]["age"]["_target_"] == "radscreen.tasks.RegressionTask"


def test_encodings():
    values = pd.Series(["osteoporosis", "normal", "osteopenia", None])
    assert np.array_equal(BinaryTask(name="o", column="c", positive=["osteoporosis"]).encode(values),
                          np.array([1, 0, 0, np.nan], np.float32), equal_nan=True)
    subgroup = BinaryTask(name="o", column="c", positive=["osteoporosis"], negative=["normal"])
    assert np.array_equal(subgroup.encode(values), np.array([1, 0, np.nan, np.nan], np.float32), equal_nan=True)
    flags = BinaryTask(name="m", column="c", positive=[1]).encode(pd.Series([1, "1", 1.0, 0, "0.0", None]))
    assert np.array_equal(flags, np.array([1, 1, 1, 0, 0, np.nan], np.float32), equal_nan=True)
    who = MulticlassTask(name="w", column="c", classes=["normal", "osteopenia", "osteoporosis"])
    assert who.encode(values).tolist() == [2, 0, 1, IGNORE_INDEX]
    assert who.present(torch.tensor([2, IGNORE_INDEX])).tolist() == [True, False]
    age = RegressionTask(name="a", column="age_years").encode(pd.Series(["61", 40, None, "n/a"]))
    assert np.array_equal(age, np.array([61, 40, np.nan, np.nan], np.float32), equal_nan=True)


def test_regression_decodes_to_years_and_scores_the_gaussian_head():
    task = RegressionTask(name="age", column="age_years", loss="gaussian_nll")
    stats = torch.tensor([50.0, 10.0])
    decoded = task.decode(torch.tensor([[1.0, np.log(0.25)]]), stats)
    assert decoded["pred"].item() == pytest.approx(60.0) and decoded["var"].item() == pytest.approx(25.0)
    assert task.head_target(torch.tensor([60.0]), stats).item() == pytest.approx(1.0)
    assert task.output_keys() == ("pred", "var") and task.output_description("var")["unit"] == "years²"


@pytest.mark.parametrize("entry, message", [
    ({"_target_": "radscreen.tasks.RegressionTask", "name": "age", "column": "age_years", "loss": "huber"},
     "loss 'huber' does not fit a RegressionTask (choose mse, gaussian_nll)"),
    ({"_target_": "radscreen.tasks.BinaryTask", "name": "sex", "column": "sex"}, "needs `positive` values"),
    ({"_target_": "radscreen.tasks.MulticlassTask", "name": "w", "column": "c", "classes": ["a"]},
     "at least two `classes`"),
    ({"_target_": "radscreen.tasks.BinaryTask", "name": "sex", "column": "sex", "positive": ["F"], "postive": [1]},
     "unexpected keyword argument 'postive' for BinaryTask (it takes name, column, loss, weight, positive, "
     "negative)"),
    ({"_target_": "radscreen.tasks.Regression", "name": "age", "column": "age_years"}, "is not an importable class"),
    ({"_target_": "collections.OrderedDict", "name": "age", "column": "age_years"}, "is not a radscreen.tasks.Task"),
    ({"name": "age", "column": "age_years"}, "names no class: give _target_: radscreen.tasks.RegressionTask"),
    ({"name": "age", "column": "age_years", "kind": "ordinal"}, "kind must be one of"),
])
def test_task_mistakes_are_one_line_user_errors(entry, message):
    with pytest.raises(UserError) as error:
        build_task(entry)
    assert message in str(error.value) and "\n" not in str(error.value)
