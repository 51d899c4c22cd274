"""Cross-region backup and backup storage use: the knobs tests turn and the ground truth they
compare answers with. A mixin of :class:`exporter.simulator.fleet.Fleet`, which supplies the
hooks declared here.

Copies (see ``drcopies``): while cross-region backup is on, every successful full backup that
ends after it was switched on is copied; the copy is listed a drawn 10 to 60 minutes after its
source ended, and until the cross-region retention has passed since then. Switched off, no copy
is listed. Resource usage: see ``usage``.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Mapping

from exporter.simulator.drcopies import (
    ID_SERIALS,
    CrossCopy,
    CrossPolicy,
    DrBook,
    id_serial,
    supports_cross_region,
    supports_cross_region_restore,
)
from exporter.simulator.logbook import LogBook
from exporter.simulator.models import SimBackup, SimInstance
from exporter.simulator.timefmt import DAY
from exporter.simulator.usage import BackupBytes, derived_storage_gb, paid_bytes, usage_fields

# DescribeAvailableRecoveryTime's error codes, as ``cross_region_recovery_window`` returns them.
SET_NOT_FOUND = "InvalidBackupSetID.NotFound"
NOT_SUPPORTED = "CrossBackupNotSupport"
NO_LOG_BACKUP = "NoAvailableLogBackup"
NO_RESTORABLE_SET = "NoAvailableDisasterRestoreBakset"  # sic, as documented
_LONGEST_BACKUP = 2 * DAY  # as truth.RUNNING_DAYS: no backup runs longer


class CrossRegionTruth:
    """Cross-region settings, copies and restorable windows; backup storage use."""

    seed: int
    _logs: LogBook
    _dr: DrBook
    _paid: dict[str, int]

    @property
    def instances(self) -> Mapping[str, SimInstance]:
        raise NotImplementedError

    def _require(self, instance_id: str) -> SimInstance:
        raise NotImplementedError

    def _replace(self, instance_id: str, **changes: object) -> SimInstance:
        raise NotImplementedError

    def _iter_visible(
        self, instance: SimInstance, start: float, end: float, now: float
    ) -> Iterator[SimBackup]:
        raise NotImplementedError

    # ----- knobs -----------------------------------------------------------------------------

    def set_cross_region(
        self,
        instance_id: str,
        enabled: bool,
        *,
        log: bool = True,
        region: str | None = None,
        retention_days: int = 7,
        since: float | None = None,
    ) -> CrossPolicy:
        """Cross-region backup on or off (and its log backup with it), to ``region`` (default:
        the drawn destination), keeping copies ``retention_days`` (7..1825). ``since`` (default:
        the instance's creation) is BackupEnabledTime: full backups ending after it are copied.
        The instance must support it (MySQL on local disks, PostgreSQL, SQL Server)."""
        instance = self._require(instance_id)
        if not supports_cross_region(instance):
            raise ValueError(f"instance {instance_id} does not support cross-region backup")
        if not 7 <= retention_days <= 1825:
            raise ValueError("retention_days must be in 7..1825")
        if region == instance.region_id:
            raise ValueError("the destination must be another region")
        policy = CrossPolicy(
            enabled=enabled,
            log_enabled=enabled and log,
            region=region or self._dr.policy(instance).region,
            retention_days=retention_days,
            enabled_at=float(math.floor(since if since is not None else instance.created_at)),
        )
        self._dr.set_policy(instance_id, policy)
        return policy

    def fail_cross_region_copies(self, instance_id: str, since: float | None) -> None:
        """Copies of full backups starting at or after ``since`` fail (BackupSetStatus 1);
        None lets every copy succeed again."""
        self._require(instance_id)
        self._dr.fail_since(instance_id, since)

    def set_storage_gb(self, instance_id: str, gb: int) -> SimInstance:
        """Purchased storage, on which the free backup quota depends (0: drawn again)."""
        if gb < 0:
            raise ValueError("gb must not be negative")
        return self._replace(instance_id, storage_gb=gb)

    def set_paid_backup_bytes(self, instance_id: str, paid: int | None) -> None:
        """PaidBackupSize answers ``paid`` whatever the quota; None: computed again."""
        self._require(instance_id)
        if paid is None:
            self._paid.pop(instance_id, None)
        elif paid < 0:
            raise ValueError("paid must not be negative")
        else:
            self._paid[instance_id] = paid

    # ----- cross-region backup ---------------------------------------------------------------

    def cross_region_policy(self, instance_id: str) -> CrossPolicy | None:
        """The instance's cross-region settings; None when it cannot have any (MariaDB, MySQL
        on cloud disks, replicas: CrossBackupNotSupport)."""
        instance = self._require(instance_id)
        return self._dr.policy(instance) if supports_cross_region(instance) else None

    def cross_region_copies(
        self, instance_id: str, start: float, end: float, now: float, *, on_end: bool = False
    ) -> list[CrossCopy]:
        """What DescribeCrossRegionBackups lists for the window, every page: the copies listed
        at ``now`` whose source's start (``on_end``: end) is in [start, end], newest first."""
        instance = self._require(instance_id)
        policy = self.cross_region_policy(instance_id)
        if policy is None or not policy.enabled:
            return []
        low = start - _LONGEST_BACKUP if on_end else start
        found = []
        for backup in self._iter_visible(instance, low, end, now):
            if backup.backup_type != "FullBackup" or backup.status != "Success":
                continue
            if backup.end <= policy.enabled_at:
                continue
            if not start <= (backup.end if on_end else backup.start) <= end:
                continue
            if backup.end + policy.retention_days * DAY <= now:
                continue  # expired in the destination
            copy = self._dr.copy_of(instance, backup, policy)
            if copy.copied_at <= now:
                found.append(copy)
        found.sort(key=lambda c: (c.source.start, int(c.source.backup_id)), reverse=True)
        return found

    def find_cross_region_copy(self, cross_backup_id: int, now: float) -> CrossCopy | None:
        """The copy listed at ``now`` under this CrossBackupId, in any instance."""
        serial = id_serial(cross_backup_id)
        if serial is None:
            return None
        for instance in self.instances.values():
            policy = self.cross_region_policy(instance.instance_id)
            if instance.serial % ID_SERIALS != serial or policy is None:
                continue
            since = now - policy.retention_days * DAY - _LONGEST_BACKUP
            for copy in self.cross_region_copies(instance.instance_id, since, now, now):
                if copy.cross_backup_id == cross_backup_id:
                    return copy
        return None

    def cross_region_recovery_window(
        self,
        cross_backup_id: int,
        now: float,
        *,
        begin_at_backup_end: bool = False,
        end_at_source_logs: bool = False,
        log_off_error: bool = True,
        failed_not_found: bool = False,
    ) -> tuple[float, float] | str:
        """DescribeAvailableRecoveryTime's (RecoveryBeginTime, RecoveryEndTime) for a copy, or
        its error code. The window runs from the copy's ConsistentTime (or its source's end)
        to the end of the newest log file copied to the destination, which trails the source
        by a drawn 5 to 30 minutes (or, ``end_at_source_logs``, to the source's newest stored
        log), cut at the first hole in the logs. The keywords follow ``Inferred``."""
        copy = self.find_cross_region_copy(cross_backup_id, now)
        if copy is None:
            return SET_NOT_FOUND
        instance = self._require(copy.instance_id)
        if not supports_cross_region_restore(instance):
            return NOT_SUPPORTED
        if copy.failed:
            return SET_NOT_FOUND if failed_not_found else NO_RESTORABLE_SET
        begin = copy.source.end if begin_at_backup_end else copy.consistent
        at = now if end_at_source_logs else now - self._dr.log_copy_delay(instance)
        copied_logs = self._dr.policy(instance).log_enabled
        log_end = self._logs.newest_end(instance, at) if copied_logs else None
        if log_end is None:
            return NO_LOG_BACKUP if log_off_error else (begin, begin)
        holes = self._logs.gaps_within(instance, begin, log_end)
        if holes:
            log_end = holes[0][0]
        return begin, max(begin, log_end)

    # ----- backup storage --------------------------------------------------------------------

    def storage_gb(self, instance_id: str) -> int:
        """Purchased storage: set by hand, or derived from the instance (``usage``)."""
        instance = self._require(instance_id)
        return instance.storage_gb or derived_storage_gb(self.seed, instance)

    def backup_bytes(self, instance_id: str, now: float) -> BackupBytes:
        """Successful data backups that ended within the backup retention, and the stored log
        files that overlap the log retention, at ``now``."""
        instance = self._require(instance_id)
        if not instance.has_backups:
            return BackupBytes(0, 0, 0, 0, has_backup=False)
        since = now - instance.policy.retention_days * DAY
        recent = self._iter_visible(instance, since - _LONGEST_BACKUP, now, now)
        kept = [b for b in recent if b.status == "Success" and b.end > since]
        snapshot = sum(b.size for b in kept if b.method == "Snapshot")
        other = sum(b.size for b in kept if b.method != "Snapshot")
        log_since = now - instance.policy.log_retention_days * DAY
        files = self._logs.files(instance, log_since, now, now)
        return BackupBytes(
            physical=0 if instance.archive else other,
            snapshot=snapshot,
            archive=other if instance.archive else 0,
            log=sum(f.size for f in files if f.completed(now)),
            has_backup=bool(kept),
        )

    def resource_usage(
        self,
        instance_id: str,
        now: float,
        *,
        backup_size_oss: bool = True,
        ecs_snapshot_field: bool = True,
    ) -> dict[str, int | str]:
        """Exactly the fields DescribeResourceUsage answers (but RequestId). The keywords
        follow ``Inferred``."""
        instance = self._require(instance_id)
        measured = self.backup_bytes(instance_id, now)
        paid = self._paid.get(instance_id)
        if paid is None:
            paid = paid_bytes(instance, measured, self.storage_gb(instance_id))
        return usage_fields(
            self.seed,
            instance,
            measured,
            paid=paid,
            now=now,
            backup_size_oss=backup_size_oss,
            ecs_snapshot_field=ecs_snapshot_field,
        )
