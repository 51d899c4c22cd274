"""Log backup files, generated: MySQL/MariaDB binlogs, PostgreSQL WAL segments and SQL Server log
backups, as pure functions of (seed, instance, rotation).

Rotation ``k`` of an instance closes file ``k - 1`` and opens file ``k``; its time is drawn from
its own hash, so any stretch of the chain costs only the files in it, and nothing here touches
the random streams that make instances and backups. SQL Server rotates on whole minutes every
30 (or 5) minutes, or, with log backup "off", at each scheduled data backup (it cannot stop
backing its logs up). Gaps cut holes out of the chain: the file a gap starts in is closed there
and a new one opens where the gap ends. HA instances have two nodes: the primary writes each file
and the standby lists a copy (its own name and size, the same times); a failover swaps them.
"""

from __future__ import annotations

import bisect
import dataclasses
import hashlib
import itertools
import math
import struct
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cached_property

from exporter.simulator.generator import floor_minute, full_backup_start
from exporter.simulator.models import SimInstance, SimLogFile
from exporter.simulator.timefmt import DAY

MYSQL_FILES_PER_DAY = (32, 48)  # binlogs rotate every 20 to 60 minutes
PG_FILES_PER_DAY = (120, 170)  # WAL segments are archived every 5 to 15 minutes
JITTER = 0.3  # a rotation moves up to 15% of a step either way: steps vary from 0.7 to 1.3
FAILOVERS_PER_DAY = 0.02
UPLOAD_SECONDS = (60.0, 300.0)  # a closed file is Uploading this long, then Completed
WAL_SEGMENT_BYTES = 16 << 20
MAX_BINLOG_BYTES = 500 << 20  # a binlog this big rotates (max_binlog_size) in real life
SQLSERVER_FIVE_MINUTE_RATE = 0.25  # SQL Server instances drawn with 5-minute log backups
Gap = tuple[float, float]


def hash_words(*parts: object) -> tuple[int, ...]:
    """Eight 32-bit values from a hash of ``parts`` (a stream of their own)."""
    digest = hashlib.blake2b("|".join(map(str, parts)).encode(), digest_size=32).digest()
    return struct.unpack("<8I", digest)


def unit(word: int) -> float:
    return word / 4294967296.0


def with_log_settings(seed: int, instance: SimInstance) -> SimInstance:
    """The instance with its log backup settings drawn (a primary's; replicas copy them)."""
    if instance.master_instance_id:
        return instance
    words = hash_words(seed, "log-policy", instance.instance_id)
    policy = dataclasses.replace(
        instance.policy,
        log_interval_minutes=5 if unit(words[0]) < SQLSERVER_FIVE_MINUTE_RATE else 30,
        local_log_retention_hours=(0, 18, 18, 24, 48, 168)[words[1] % 6],
        local_log_retention_space=(30, 30, 40, 50)[words[2] % 4],
        high_space_usage_protection=unit(words[3]) < 0.7,
    )
    return dataclasses.replace(instance, policy=policy)


def log_bytes_per_second(seed: int, instance_id: str) -> float:
    """How fast an instance writes binlogs (or SQL Server logs): 2 kB/s to 500 kB/s,
    log-uniform."""
    return 2e3 * math.pow(250.0, unit(hash_words(seed, "log-rate", instance_id)[0]))


@dataclass(frozen=True)
class Cadence:
    """When an instance's log files rotate."""

    step: float  # mean seconds between rotations
    phase: float  # time of rotation 0, before jitter
    jitter: float  # share of a step a rotation may move
    minute: bool  # rotations on whole minutes (SQL Server)
    with_data: bool = False  # SQL Server: at each scheduled data backup instead


def cadence_of(seed: int, instance: SimInstance) -> Cadence:
    words = hash_words(seed, "log-cadence", instance.instance_id)
    if instance.engine == "SQLServer":
        step = instance.policy.log_interval_minutes * 60.0
        phase = float(words[0] % instance.policy.log_interval_minutes) * 60.0
        return Cadence(step, phase, 0.0, True, with_data=not instance.policy.log_backup)
    low, high = PG_FILES_PER_DAY if instance.engine == "PostgreSQL" else MYSQL_FILES_PER_DAY
    per_day = low + words[1] % (high - low + 1)
    step = DAY / per_day
    return Cadence(step, unit(words[2]) * step, JITTER, False)


def _rotation(seed: int, instance_id: str, cadence: Cadence, k: int) -> float:
    at = cadence.phase + k * cadence.step
    if cadence.jitter:
        at += (
            (unit(hash_words(seed, "log-cut", instance_id, k)[0]) - 0.5)
            * cadence.jitter
            * cadence.step
        )
    return floor_minute(at) if cadence.minute else float(math.floor(at))


def rotations(
    seed: int, instance: SimInstance, cadence: Cadence, low: float, high: float
) -> list[tuple[int, float]]:
    """(index, time) of the rotations from the last at or before ``low`` to the first at or
    after ``high``."""
    if cadence.with_data:
        return _data_rotations(seed, instance, low, high)
    first = math.floor((low - cadence.phase) / cadence.step) - 1
    last = math.floor((high - cadence.phase) / cadence.step) + 2
    iid = instance.instance_id
    return [(k, _rotation(seed, iid, cadence, k)) for k in range(first, last + 1)]


def _data_rotations(
    seed: int, instance: SimInstance, low: float, high: float
) -> list[tuple[int, float]]:
    """At each scheduled full backup's start (whatever became of the backup)."""
    found: list[tuple[int, float]] = []
    for day in range(int(low // DAY) - 8, int(high // DAY) + 9):
        start = full_backup_start(seed, instance, day)
        if start is not None:
            found.append((day, floor_minute(start)))
    before = [i for i, (_, at) in enumerate(found) if at <= low]
    after = [i for i, (_, at) in enumerate(found) if at >= high]
    return found[(before[-1] if before else 0) : (after[0] + 1 if after else len(found))]


def index_at(seed: int, instance: SimInstance, cadence: Cadence, at: float) -> int:
    """The index of the file open at ``at``."""
    cuts = rotations(seed, instance, cadence, at, at)
    return max((k for k, time in cuts if time <= at), default=cuts[0][0])


def cut_gaps(begin: float, end: float, gaps: Sequence[Gap]) -> list[tuple[float, float]]:
    """[begin, end] less the gaps, as the pieces left."""
    pieces: list[tuple[float, float]] = []
    low = begin
    for gap_start, gap_end in gaps:
        if gap_end <= low or gap_start >= end:
            continue
        if gap_start > low:
            pieces.append((low, gap_start))
        low = max(low, gap_end)
    if low < end:
        pieces.append((low, end))
    return pieces


@dataclass(frozen=True)
class Chain:
    """What it takes to name and place an instance's files."""

    seed: int
    instance: SimInstance
    cadence: Cadence
    start: float  # the chain's first instant (the instance's creation)
    first_index: int  # the file open at ``start``
    gaps: tuple[Gap, ...]
    stuck_since: float | None  # files closing after this stay Uploading

    @cached_property
    def hosts(self) -> tuple[str, ...]:
        return ("",) if self.instance.engine == "SQLServer" else self.instance.host_ids

    @cached_property
    def name_words(self) -> dict[str, tuple[int, ...]]:
        iid = self.instance.instance_id
        return {host: hash_words(self.seed, "log-name", iid, host) for host in self.hosts}

    @cached_property
    def renumbering(self) -> tuple[list[float], list[int]]:
        """Where each gap ends, and by how much file numbers move from there on: the files a
        gap swallows are gone, and the one it starts in is split in two, so that numbers run
        on without a hole."""
        ends, moves, total = [], [], 0
        for start, end in self.gaps:
            first = index_at(self.seed, self.instance, self.cadence, start)
            last = index_at(self.seed, self.instance, self.cadence, end)
            total += 1 - (last - first)
            ends.append(end)
            moves.append(total)
        return ends, moves

    def renumbered(self, k: int, begin: float) -> int:
        """The number of file ``k``'s piece that begins at ``begin``, counted from ``k``."""
        ends, moves = self.renumbering
        passed = bisect.bisect_right(ends, begin)
        return k + (moves[passed - 1] if passed else 0)

    @cached_property
    def bytes_per_second(self) -> float:
        return log_bytes_per_second(self.seed, self.instance.instance_id)

    def failovers(self, last_index: int) -> list[int]:
        """Indexes of the first file each failover's new primary wrote, up to ``last_index``."""
        if len(self.hosts) < 2:
            return []
        block = max(1, round(DAY / self.cadence.step))
        found = []
        for number in range(self.first_index // block, last_index // block + 1):
            words = hash_words(self.seed, "failover", self.instance.instance_id, number)
            at = number * block + int(unit(words[1]) * block)
            if unit(words[0]) < FAILOVERS_PER_DAY and self.first_index < at <= last_index:
                found.append(at)
        return found


def chain_files(chain: Chain, low: float, high: float) -> list[SimLogFile]:
    """Every node's files overlapping [low, high] (closed or not), oldest first."""
    low = max(low, chain.start)
    if high <= low:
        return []
    cuts = rotations(chain.seed, chain.instance, chain.cadence, low, high)
    failovers = chain.failovers(cuts[-1][0])
    files: list[SimLogFile] = []
    for (k, begin), (_, end) in itertools.pairwise(cuts):
        begin = max(begin, chain.start)
        if end <= low or begin >= high or end <= begin:
            continue
        switched = bisect.bisect_right(failovers, k)
        for number, (b, e) in enumerate(cut_gaps(begin, end, chain.gaps)):
            files.extend(_copies(chain, k, number, b, e, switched))
    return files


def _copies(
    chain: Chain, k: int, piece: int, begin: float, end: float, switched: int
) -> list[SimLogFile]:
    """One piece of file ``k`` as each node lists it (the primary's first)."""
    instance = chain.instance
    hosts = chain.hosts
    primary = switched % len(hosts)
    ordered = [hosts[primary]] + [h for i, h in enumerate(hosts) if i != primary]
    stuck = chain.stuck_since is not None and end > chain.stuck_since
    copies = []
    for host in ordered:
        words = hash_words(chain.seed, "log-file", instance.instance_id, host, k, piece)
        delay = UPLOAD_SECONDS[0] + unit(words[0]) * (UPLOAD_SECONDS[1] - UPLOAD_SECONDS[0])
        copies.append(
            SimLogFile(
                name=_name(chain, host, chain.renumbered(k, begin), switched),
                host=host,
                begin=begin,
                end=end,
                size=_size(chain, end - begin, unit(words[1]), words[2]),
                checksum=str((words[3] << 32) | words[4]),
                uploaded_at=math.inf if stuck else (end if chain.cadence.minute else end + delay),
                primary=host == ordered[0],
            )
        )
    return copies


def _name(chain: Chain, host: str, k: int, switched: int) -> str:
    instance = chain.instance
    if instance.engine == "SQLServer":
        return ""
    words = chain.name_words[host]
    number = 1 + words[0] % 900 + (k - chain.first_index)
    if instance.engine == "PostgreSQL":
        timeline = 1 + words[1] % 3 + switched
        segment = 0x100 + words[2] % 0x4000 + (k - chain.first_index)
        return f"{timeline:08X}{segment >> 8:08X}{segment & 0xFF:08X}"
    return f"mysql-bin.{number:06d}"


def _size(chain: Chain, seconds: float, wobble: float, word: int) -> int:
    if chain.instance.engine == "PostgreSQL":
        return int(WAL_SEGMENT_BYTES * (0.15 + 0.85 * wobble))  # archived segments, compressed
    written = int(chain.bytes_per_second * seconds * (0.7 + 0.6 * wobble))
    return min(MAX_BINLOG_BYTES, max(4096, written) + word % 4096)
