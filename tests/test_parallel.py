"""Process pools (radscreen.utils.parallel): OpenCV runs on one thread in the workers, with the same results."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import numpy as np

from radscreen.preprocess.cxr import CXRPreprocess

# OpenCV's threads started in the parent first: cv2.setNumThreads inside a forked worker would hang then
POOL_THREADS = textwrap.dedent("""
    import cv2, numpy as np
    from radscreen.utils.parallel import map_with_progress
    image = np.random.default_rng(0).integers(0, 4096, (1024, 1024), dtype=np.uint16)

    def threads(_):
        cv2.calcHist([image], [0], None, [65536], [0, 65536])
        return cv2.getNumThreads()

    cv2.setNumThreads(2)
    threads(0)
    print(sorted(set(map_with_progress(threads, range(8), total=8, workers=2, chunksize=1, show_progress=False))),
          cv2.getNumThreads())
""")


def test_pool_workers_run_opencv_on_one_thread_and_the_parent_keeps_its_count():
    result = subprocess.run([sys.executable, "-c", POOL_THREADS], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["[1]", "2"]


def test_preprocessing_does_not_depend_on_opencv_threads():
    import cv2

    rng = np.random.default_rng(3)
    rows, cols = np.mgrid[0:1500, 0:1400]
    stored = (rows * 2 + cols + rng.integers(0, 400, rows.shape)).astype(np.uint16) % 4096
    before = cv2.getNumThreads()
    try:
        outputs = []
        for threads in (1, 2):
            cv2.setNumThreads(threads)
            outputs.append(CXRPreprocess(image_size=512).from_stored(stored, lambda values, present=None: values))
    finally:
        cv2.setNumThreads(before)
    assert np.array_equal(outputs[0], outputs[1])
