"""Keeping large buffers: glibc's allocator tuned so decoded frames, batches and activations are
reused instead of being handed back to the kernel after every batch.

By default glibc serves allocations above a sliding threshold (128 KiB at first) with fresh ``mmap``
calls and returns them with ``munmap``, and trims the heap top whenever 128 KiB are free. Every
backbone batch allocates and frees tens of megabytes (frames, resized pixels, activations), so each
batch paid for new zeroed pages: on the 2-core machine a third of the CPU went to system time and
page faults (1.22 M minor faults for six clips). ``keep_large_buffers`` sets the mmap threshold to
32 MiB, the trim threshold to 2 GiB and a 1 GiB top pad, the ``mallopt`` equivalents of
``MALLOC_MMAP_THRESHOLD_``, ``MALLOC_TRIM_THRESHOLD_`` and ``MALLOC_TOP_PAD_``. What it changes: freed
memory below those sizes stays in the process for reuse, so its resident size stays near its peak
instead of shrinking between batches. Embeddings are bit-identical.

``SemanticMoments`` calls it once when a model is made (not at import). Set
``SEMANTIC_MOMENTS_KEEP_BUFFERS=0`` to leave the allocator alone; it does nothing off glibc.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os

M_TRIM_THRESHOLD, M_TOP_PAD, M_MMAP_THRESHOLD = -1, -2, -3
SETTINGS = {M_MMAP_THRESHOLD: 32 << 20, M_TRIM_THRESHOLD: (2 << 30) - 1, M_TOP_PAD: 1 << 30}
_applied: bool | None = None


def keep_large_buffers() -> bool:
    """Tune glibc's allocator once per process (see the module doc); True if it was tuned."""
    global _applied
    if _applied is not None:
        return _applied
    _applied = False
    if os.environ.get("SEMANTIC_MOMENTS_KEEP_BUFFERS", "1") == "0":
        return False
    name = ctypes.util.find_library("c")
    if not name:
        return False
    try:
        libc = ctypes.CDLL(name)
        mallopt = libc.mallopt
    except (OSError, AttributeError):  # not glibc (musl, macOS, Windows)
        return False
    mallopt.argtypes, mallopt.restype = [ctypes.c_int, ctypes.c_int], ctypes.c_int
    _applied = all(mallopt(option, value) == 1 for option, value in SETTINGS.items())
    return _applied
