"""scripts/cam_compare.py: the comparison goes beside the first map, and wrong inputs are one line."""

from __future__ import annotations

import numpy as np
import pandas as pd

from script_helpers import run_tool, user_error


def test_comparison_is_written_beside_the_first_map(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    rng = np.random.default_rng(0)
    (tmp_path / "a" / "cam").mkdir(parents=True)
    (tmp_path / "b").mkdir()
    first, second = rng.random((16, 16)), rng.random((16, 16))
    np.save(tmp_path / "a" / "cam" / "all_average.npy", first)
    np.save(tmp_path / "b" / "map.npy", second)
    code, out, err = run_tool("cam_compare", [f"osteo={tmp_path}/a/cam/all_average.npy", f"age={tmp_path}/b/map.npy"],
                              capsys)
    assert code == 0, err
    table = pd.read_csv(tmp_path / "a" / "cam" / "comparison" / "similarity.csv")
    row = table.iloc[0]
    assert (row["map_a"], row["map_b"]) == ("osteo", "age")
    assert row["pearson"] == np.corrcoef(first.ravel(), second.ravel())[0, 1]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a", "b"]  # nothing in the current folder


def test_wrong_maps_are_one_line(tmp_path, capsys):
    np.save(tmp_path / "small.npy", np.zeros((8, 8)))
    np.save(tmp_path / "big.npy", np.zeros((16, 16)))
    (tmp_path / "text.npy").write_text("not an array")
    assert "give two or more maps as NAME=path.npy" in user_error("cam_compare", [f"a={tmp_path}/small.npy"], capsys)
    assert f"map b {tmp_path}/none.npy does not exist" in user_error(
        "cam_compare", [f"a={tmp_path}/small.npy", f"b={tmp_path}/none.npy"], capsys)
    assert "the maps have different shapes" in user_error(
        "cam_compare", [f"a={tmp_path}/small.npy", f"b={tmp_path}/big.npy"], capsys)
    assert f"map b {tmp_path}/text.npy is not a NumPy .npy map" in user_error(
        "cam_compare", [f"a={tmp_path}/small.npy", f"b={tmp_path}/text.npy"], capsys)
