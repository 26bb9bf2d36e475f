"""Process pools (radscreen.utils.parallel): OpenCV runs on one thread in the workers, with the same results, and
the workers keep the memory they free (radscreen.utils.allocator); 0 workers run in the caller's process."""

from __future__ import annotations

import os
import resource
import subprocess
import sys
import textwrap

import numpy as np
import pytest

from radscreen.io.dicom_write import write_radiograph
from radscreen.preprocess.cxr import CXRPreprocess
from radscreen.utils import allocator
from radscreen.utils.parallel import map_with_progress

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


GLIBC = sys.platform.startswith("linux") and allocator._glibc() is not None


def _radiograph_faults(paths: list[str]) -> list[int]:
    """Page faults while caching each file in turn (the cache build's per-image work, in this process)."""
    from radscreen.data.cache import encode

    preprocess, faults = CXRPreprocess(image_size=512), []
    for path in paths:
        before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
        encode(preprocess.from_file(path))
        faults.append(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
    return faults


@pytest.mark.skipif(not GLIBC, reason="the allocator setting is glibc's")
def test_a_pool_worker_reuses_its_memory_from_one_radiograph_to_the_next(tmp_path):
    # films of two sizes in turn, as in a real folder: glibc maps fresh pages for each one (about 1,000-3,000 page
    # faults per image, a third of its CPU time) unless the worker keeps what it frees
    rng = np.random.default_rng(0)
    paths = []
    for i, (rows, cols) in enumerate([(1955, 1841), (2048, 2048)] * 3):
        pixels = rng.integers(0, 4096, (rows, cols), dtype=np.uint16)
        write_radiograph(tmp_path / f"{i}.dcm", pixels, patient_id=f"P{i}", bits_stored=12)
        paths.append(str(tmp_path / f"{i}.dcm"))
    worker_faults = next(map_with_progress(_radiograph_faults, [paths], total=1, workers=1, show_progress=False))
    assert max(worker_faults[2:]) < 100, worker_faults  # the first two images grow the heap, the rest reuse it
    assert allocator.keep_freed_memory()


# In a fresh interpreter (the test process's own allocator settings are unknown): a 24 MB array comes from mapped
# pages in the caller's process, as glibc does by default, and from the heap in a pool worker.
MAPPED_BYTES = textwrap.dedent("""
    import ctypes, numpy as np
    from radscreen.utils.parallel import map_with_progress

    class MallInfo2(ctypes.Structure):
        _fields_ = [(name, ctypes.c_size_t) for name in
                    "arena ordblks smblks hblks hblkhd usmblks fsmblks uordblks fordblks keepcost".split()]

    libc = ctypes.CDLL("libc.so.6")
    libc.mallinfo2.restype = MallInfo2

    def mapped_while_holding(_):
        array = np.ones(24 << 20, np.uint8)
        return libc.mallinfo2().hblkhd >= array.nbytes

    print(next(map_with_progress(mapped_while_holding, [0], total=1, workers=1, show_progress=False)),
          next(map_with_progress(mapped_while_holding, [0], total=1, workers=0, show_progress=False)))
""")


@pytest.mark.skipif(not GLIBC, reason="the allocator setting is glibc's")
def test_only_pool_workers_change_the_allocator_settings():
    result = subprocess.run([sys.executable, "-c", MAPPED_BYTES], capture_output=True, text=True, timeout=120)
    if "mallinfo2" in result.stderr:
        pytest.skip("glibc older than 2.33 has no mallinfo2")
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["False", "True"]


def _process_id(_: int) -> int:
    return os.getpid()


def test_zero_workers_run_in_this_process_and_one_worker_in_another():
    assert set(map_with_progress(_process_id, range(3), total=3, workers=0, show_progress=False)) == {os.getpid()}
    (worker,) = set(map_with_progress(_process_id, range(3), total=3, workers=1, show_progress=False))
    assert worker != os.getpid()
    with pytest.raises(ValueError, match="workers must be 0"):
        next(map_with_progress(_process_id, range(3), total=3, workers=-1, show_progress=False))
