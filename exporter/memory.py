"""How the C allocator gives memory back: settings for a long-lived process whose scrapes make
megabytes of short-lived buffers."""

from __future__ import annotations

import ctypes
import ctypes.util
import logging

log = logging.getLogger(__name__)

# mallopt(3) parameters (glibc's malloc.h).
M_MMAP_THRESHOLD = -3
M_ARENA_MAX = -8
# Blocks from this size up get pages of their own, returned when freed. Fixed: glibc otherwise
# raises the threshold (to 32 MiB) after the first large free, and a scrape's buffers then land
# in the heap, where the holes they leave keep the process's peak for good.
MMAP_THRESHOLD = 256 * 1024
# The event loop is one thread; the few helper threads (file reads, DNS) need no arena each.
ARENA_MAX = 2


def tune_malloc() -> bool:
    """Sets the allocator up as above, where the C library is glibc; returns whether it did."""
    # Without ldconfig (distroless images) find_library finds nothing: the process's own
    # symbols (CDLL(None)) include the C library's.
    name = ctypes.util.find_library("c")
    try:
        mallopt = getattr(ctypes.CDLL(name), "mallopt", None)
    except OSError:
        mallopt = None
    if mallopt is None:  # another C library (musl): its allocator returns memory by itself
        return False
    done = bool(mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD)) and bool(mallopt(M_ARENA_MAX, ARENA_MAX))
    if not done:
        log.debug("mallopt refused the memory settings; the defaults stay")
    return done
