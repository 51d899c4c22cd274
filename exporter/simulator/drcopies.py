"""Cross-region (disaster-recovery) backup: each instance's settings, and the copies of its full
backups in the destination region.

Settings and copies are drawn from hashes of their own, so adding them changed no instance,
backup or log file. :class:`DrBook` keeps only what tests set by hand.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from exporter.simulator.logchain import hash_words, unit
from exporter.simulator.models import SimBackup, SimInstance
from exporter.simulator.timefmt import DAY

ENABLED_RATE = 0.6  # share of the supported instances with cross-region backup on
LOG_RATE = 0.85  # share of those that copy their logs too
RETENTION_DAYS = (7, 30)
ENABLED_WITHIN = 2 * DAY  # switched on this soon after the instance was created
COPY_DELAY_SECONDS = (600.0, 3600.0)  # a copy is listed this long after its source ended
LOG_COPY_DELAY_SECONDS = (300.0, 1800.0)  # how far the copied logs trail the source's
DESTINATIONS = (
    "cn-hangzhou",
    "cn-shanghai",
    "cn-beijing",
    "cn-shenzhen",
    "cn-hongkong",
    "ap-southeast-1",
)
# CrossBackupId = 1 + (serial % ID_SERIALS) * ID_BLOCK + (a hash % ID_BLOCK): an int32, and the
# instance it belongs to can be found again from the id alone (DescribeAvailableRecoveryTime).
ID_BLOCK = 2_000_000
ID_SERIALS = 1000


@dataclass(frozen=True)
class CrossPolicy:
    """One instance's cross-region backup settings (DescribeInstanceCrossBackupPolicy)."""

    enabled: bool
    log_enabled: bool  # cross-region LOG backup; never on while ``enabled`` is off
    region: str  # destination (CrossBackupRegion)
    retention_days: int
    enabled_at: float  # BackupEnabledTime (and LogBackupEnabledTime when the logs are copied)


@dataclass(frozen=True)
class CrossCopy:
    """One cross-region copy of a successful full backup (DescribeCrossRegionBackups)."""

    cross_backup_id: int
    source: SimBackup  # BackupStartTime/BackupEndTime are the source's
    region: str  # destination
    copied_at: float  # listed from then on
    failed: bool  # BackupSetStatus 1
    consistent: float  # ConsistentTime

    @property
    def instance_id(self) -> str:
        return self.source.instance_id

    @property
    def status(self) -> int:
        return 1 if self.failed else 0

    @property
    def size(self) -> int:
        return 0 if self.failed else self.source.size  # a failed copy stored nothing


def supports_cross_region(instance: SimInstance) -> bool:
    """MySQL on local disks, PostgreSQL and SQL Server primaries; never MariaDB or replicas."""
    if not instance.has_backups:
        return False
    if instance.engine in ("PostgreSQL", "SQLServer"):
        return True
    return instance.engine == "MySQL" and instance.storage_type == "local_ssd"


def supports_cross_region_restore(instance: SimInstance) -> bool:
    """DescribeAvailableRecoveryTime covers MySQL on local disks only."""
    return supports_cross_region(instance) and instance.engine == "MySQL"


def destinations(own_region: str) -> tuple[str, ...]:
    return tuple(region for region in DESTINATIONS if region != own_region)


def drawn_policy(seed: int, instance: SimInstance) -> CrossPolicy:
    words = hash_words(seed, "dr-policy", instance.instance_id)
    enabled = unit(words[0]) < ENABLED_RATE
    choices = destinations(instance.region_id)
    low, high = RETENTION_DAYS
    return CrossPolicy(
        enabled=enabled,
        log_enabled=enabled and unit(words[3]) < LOG_RATE,
        region=choices[words[1] % len(choices)],
        retention_days=low + words[2] % (high - low + 1),
        enabled_at=float(math.floor(instance.created_at + unit(words[4]) * ENABLED_WITHIN)),
    )


def id_serial(cross_backup_id: int) -> int | None:
    """``serial % ID_SERIALS`` of the instance a CrossBackupId may belong to."""
    residue = (cross_backup_id - 1) // ID_BLOCK
    return residue if 0 <= residue < ID_SERIALS else None


class DrBook:
    """Cross-region settings set by hand, and copies made to fail."""

    def __init__(self, seed: int) -> None:
        self.seed = seed
        self._policies: dict[str, CrossPolicy] = {}
        self._failing: dict[str, float] = {}

    def policy(self, instance: SimInstance) -> CrossPolicy:
        found = self._policies.get(instance.instance_id)
        return found if found is not None else drawn_policy(self.seed, instance)

    def set_policy(self, instance_id: str, policy: CrossPolicy) -> None:
        self._policies[instance_id] = policy

    def fail_since(self, instance_id: str, since: float | None) -> None:
        if since is None:
            self._failing.pop(instance_id, None)
        else:
            self._failing[instance_id] = since

    def forget(self, instance_id: str) -> None:
        self._policies.pop(instance_id, None)
        self._failing.pop(instance_id, None)

    def copy_of(self, instance: SimInstance, backup: SimBackup, policy: CrossPolicy) -> CrossCopy:
        words = hash_words(self.seed, "dr-copy", instance.instance_id, backup.backup_id)
        low, high = COPY_DELAY_SECONDS
        delay = float(int(low + unit(words[0]) * (high - low)))
        serial = instance.serial % ID_SERIALS
        if backup.consistent_time:
            consistent = float(backup.consistent_time)
        else:
            # A point just before the backup ended, as physical backups have it.
            consistent = max(backup.start, float(int(backup.end)) - 5 - words[2] % 60)
        failing = self._failing.get(instance.instance_id)
        return CrossCopy(
            cross_backup_id=1 + serial * ID_BLOCK + words[1] % ID_BLOCK,
            source=backup,
            region=policy.region,
            copied_at=backup.end + delay,
            failed=failing is not None and backup.start >= failing,
            consistent=consistent,
        )

    def log_copy_delay(self, instance: SimInstance) -> float:
        words = hash_words(self.seed, "dr-log", instance.instance_id)
        low, high = LOG_COPY_DELAY_SECONDS
        return float(int(low + unit(words[0]) * (high - low)))
