"""Keep freed memory in a worker process instead of handing it back to the kernel after every image.

glibc's malloc returns a large freed block to the kernel (munmap, or trimming the heap top) and maps fresh pages
for the next one, and every fresh page costs a page fault. A process that preprocesses one radiograph after another
allocates and frees the same few arrays of 8-16 MB per image: on 2048x2048 films that is about 2,000 page faults
and a third of the CPU time of an image, spent in the kernel. Serving large blocks from the heap and raising the
trim threshold keeps them there for the next image. The setting is process-wide and cannot be undone (it turns
off glibc's own adaptive thresholds), so radscreen applies it only in the pool workers it starts, never in the
caller's process.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import functools

M_TRIM_THRESHOLD = -1  # glibc's mallopt parameter numbers (malloc.h)
M_MMAP_MAX = -4
TRIM_THRESHOLD = 512 << 20  # the heap keeps up to this much free memory at its top


@functools.cache
def _glibc() -> ctypes.CDLL | None:
    """The C library when it is glibc (whose mallopt takes these parameters), else None."""
    name = ctypes.util.find_library("c")
    if name is None:
        return None
    try:
        libc = ctypes.CDLL(name)
        libc.gnu_get_libc_version  # noqa: B018 - present in glibc only
    except (OSError, AttributeError):
        return None
    return libc


def keep_freed_memory() -> bool:
    """Serve every allocation of this process from its heap and keep up to 512 MB of freed memory there; whether
    it took effect (False off glibc).

    Memory the process frees stays mapped for its next allocation: its resident size stays near its peak instead
    of falling between images. Turning mmap off (M_MMAP_MAX 0) rather than raising M_MMAP_THRESHOLD covers arrays
    of any size: the threshold's upper limit is 32 MB, less than a 3072x3072 film in float32.
    """
    libc = _glibc()
    if libc is None:
        return False
    no_mmap = libc.mallopt(M_MMAP_MAX, 0)
    kept = libc.mallopt(M_TRIM_THRESHOLD, TRIM_THRESHOLD)
    return bool(no_mmap) and bool(kept)
