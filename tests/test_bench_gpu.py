"""benchmarks/bench_gpu.py: one line and exit 0 without a GPU; its table from a CPU smoke run (no timing thresholds)."""

from __future__ import annotations

import os
import re
import subprocess
import sys

from hydra_helpers import ROOT

SCRIPT = ROOT / "benchmarks" / "bench_gpu.py"
COLUMNS = ["model", "precision", "input", "loop", "images/s", "peak MiB", "vs plain"]


def run_bench(*args: str, **env: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(SCRIPT), *args], capture_output=True, text=True, timeout=120,
                          env={**os.environ, "OMP_NUM_THREADS": "1", **env})


def test_without_a_gpu_it_says_so_and_exits_cleanly():
    done = run_bench(CUDA_VISIBLE_DEVICES="")  # no device visible, even on a GPU machine
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip().splitlines() == [
        "bench_gpu.py: no CUDA device (torch.cuda.is_available() is False), nothing measured; run it on a GPU "
        "machine, or with --device cpu for a smoke run"]
    assert "Traceback" not in done.stderr


def test_cpu_smoke_run_prints_one_row_per_input_and_loop():
    done = run_bench("--device", "cpu", "--workers", "0")
    assert done.returncode == 0, done.stderr[-3000:]
    lines = done.stdout.strip().splitlines()
    header = next(i for i, line in enumerate(lines) if line.startswith("model"))
    assert re.split(r"\s{2,}", lines[header].strip()) == COLUMNS
    rows = [line.split() for line in lines[header + 1:]]
    assert sorted((r[2], r[3]) for r in rows) == [("loader", "plain"), ("loader", "radscreen"),
                                                   ("memory", "plain"), ("memory", "radscreen")]
    for model, precision, _, loop, rate, peak, ratio in rows:
        assert (model, precision) == ("test_resnet", "bf16-mixed")
        assert float(rate) > 0 and float(peak) > 0 and float(ratio) > 0
        if loop == "plain":
            assert float(ratio) == 1.0
