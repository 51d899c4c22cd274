"""Run by tests/test_memory.py in a fresh interpreter, so that the allocator's settings are the
ones under test and nothing else in the process has moved them.

Mimics what a scrape does to the heap: many buffers of a few hundred KiB made and dropped while
small, long-lived allocations land between them. Prints one JSON line: whether the settings were
applied, and the resident MiB before, at the peak and after the buffers are gone.
"""

from __future__ import annotations

import json
import sys

from exporter.memory import tune_malloc

BUFFER = 512 * 1024
BUFFERS = 200


def resident_mib() -> float:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    raise RuntimeError("no VmRSS in /proc/self/status")


tuned = tune_malloc() if sys.argv[1:] == ["tune"] else False
# A first round freed at once: after it, glibc's default raises its mmap threshold above BUFFER.
warm = [bytes(BUFFER) for _ in range(BUFFERS // 2)]
del warm
before = resident_mib()
kept: list[bytes] = []
buffers: list[bytes] = []
for _ in range(BUFFERS):
    buffers.append(b"x" * BUFFER)
    kept.append(b"y" * 2000)  # above the small-object allocator: from malloc, between the buffers
peak = resident_mib()
del buffers
print(json.dumps({"tuned": tuned, "before": before, "peak": peak, "after": resident_mib()}))
