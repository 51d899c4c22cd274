"""Splitting one fleet between several exporter replicas (``--shard.index``, ``--shard.total``).

Each replica polls only the instances whose id hashes to its shard. The shard of an id depends
on nothing but the id and the number of shards: not on the order of the configuration, on which
instances discovery found, or on the process (Python's ``hash()`` is salted per process, so it
is not used). Replicas that share a configuration therefore split the fleet with no overlap and
no gap, and an instance keeps its replica however many others come and go.

The id goes through SHA-256 and then a jump consistent hash (Lamping and Veach, "A Fast, Minimal
Memory, Consistent Hash Algorithm", 2014) rather than a plain modulo: going from N to N + 1
replicas moves only about 1/(N + 1) of the instances, all of them to the new replica, where a
modulo would move almost all. An instance that moves starts over on its new replica (a first
poll, its failure counter from zero), so moving few matters.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

_MASK64 = (1 << 64) - 1
_LCG = 2862933555777941757  # the 64-bit linear congruential step of the jump hash paper


def jump_hash(key: int, buckets: int) -> int:
    """The bucket in ``0 .. buckets - 1`` of a 64-bit key (jump consistent hash)."""
    if buckets < 1:
        raise ValueError("buckets must be at least 1")
    bucket, candidate = -1, 0
    while candidate < buckets:
        bucket = candidate
        key = (key * _LCG + 1) & _MASK64
        candidate = int((bucket + 1) * ((1 << 31) / ((key >> 33) + 1)))
    return bucket


def shard_of(instance_id: str, total: int) -> int:
    """The shard, in ``0 .. total - 1``, that polls an instance."""
    key = int.from_bytes(hashlib.sha256(instance_id.encode("utf-8")).digest()[:8], "big")
    return jump_hash(key, total)


@dataclass(frozen=True)
class Shard:
    """This replica's share of the fleet: shard ``index`` of ``total`` (0 of 1: everything)."""

    index: int = 0
    total: int = 1

    def __post_init__(self) -> None:
        problem = shard_problem(self.index, self.total)
        if problem is not None:
            raise ValueError(problem)

    @property
    def sharded(self) -> bool:
        return self.total > 1

    def owns(self, instance_id: str) -> bool:
        return self.total == 1 or shard_of(instance_id, self.total) == self.index

    def __str__(self) -> str:
        return f"{self.index} of {self.total}"


def shard_problem(index: int, total: int) -> str | None:
    """What is wrong with a shard index and total, in flag terms; None when they are fine."""
    if total < 1:
        return f"--shard.total: must be at least 1, got {total}"
    if not 0 <= index < total:
        return f"--shard.index: must be in 0..{total - 1} (--shard.total is {total}), got {index}"
    return None
