"""Plain records of the simulated fleet: instances, their backup policies, their backups, their
log backup files and their running backups."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from exporter.simulator.timefmt import DAY

WEEKDAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")

ENGINES = ("MySQL", "PostgreSQL", "SQLServer", "MariaDB")


@dataclass(frozen=True)
class SimPolicy:
    """An instance's data backup policy; scheduled full backups follow it exactly."""

    weekdays: frozenset[int]  # 0 = Monday, as in datetime.weekday()
    window_start_hour: int  # UTC; the window is one hour long
    retention_days: int = 7
    log_backup: bool = True
    log_retention_days: int = 7
    method: str = "Physical"  # Physical | Logical | Snapshot
    category: str = "Standard"  # Standard | Flash
    incremental: bool = False  # an IncrementalBackup every day, half a day after the window
    # SQL Server log backups every 30 minutes (LogInterval) or 5; with ``log_backup`` off, SQL
    # Server backs its logs up with each data backup instead (it cannot stop log backups).
    log_interval_minutes: int = 30
    local_log_retention_hours: int = 18  # binlogs kept on the instance's disk (0..168)
    local_log_retention_space: int = 30  # percent of the disk local logs may use (0..50)
    high_space_usage_protection: bool = True  # local logs purged when the disk is nearly full

    def __post_init__(self) -> None:
        if not self.weekdays or not self.weekdays <= frozenset(range(7)):
            raise ValueError("weekdays must be a non-empty subset of 0..6")
        if not 0 <= self.window_start_hour < 24:
            raise ValueError("window_start_hour must be in 0..23")

    @property
    def period(self) -> str:
        """``PreferredBackupPeriod``: ``Monday,Wednesday,...``."""
        return ",".join(WEEKDAYS[day] for day in sorted(self.weekdays))

    @property
    def window(self) -> str:
        """``PreferredBackupTime``: ``15:00Z-16:00Z``."""
        start = self.window_start_hour
        return f"{start:02d}:00Z-{(start + 1) % 24:02d}:00Z"

    def longest_gap_seconds(self) -> float:
        """Longest span between two consecutive scheduled days (ground truth for staleness)."""
        days = sorted(self.weekdays)
        gaps = [(days[(i + 1) % len(days)] - day) % 7 or 7 for i, day in enumerate(days)]
        return max(gaps) * DAY


@dataclass(frozen=True)
class SimInstance:
    """One RDS instance as DescribeDBInstances and the backup generator see it."""

    instance_id: str
    serial: int  # stable per fleet; part of every generated BackupId
    engine: str
    engine_version: str
    region_id: str
    zone_id: str
    description: str
    instance_type: str  # Primary | Readonly | Guard | Temp
    status: str
    resource_group_id: str
    tags: Mapping[str, str]
    policy: SimPolicy
    created_at: float  # epoch seconds; no backup starts earlier
    storage_type: str  # local_ssd | cloud_essd
    category: str  # Basic | HighAvailability | AlwaysOn
    instance_class: str
    master_instance_id: str = ""
    base_size_bytes: int = 1 << 30  # size of the first full backup
    daily_growth: float = 0.002  # relative growth of the data per day
    throughput_bytes_per_second: float = 80e6
    encryption: str = "{}"
    archive: bool = False  # backups kept in archive storage (StorageClass "1")
    host_ids: tuple[str, ...] = ("5882781",)
    databases: tuple[str, ...] = ()  # per-database download links (SQL Server)
    vpc_id: str = ""
    vswitch_id: str = ""
    # Its backups start and end on whole minutes and, with the minute_times quirk, are
    # listed without seconds.
    minute_precision: bool = False
    # Purchased storage in GB, on which the free backup quota depends; 0: the fleet derives
    # one (see ``usage.derived_storage_gb``).
    storage_gb: int = 0

    @property
    def has_backups(self) -> bool:
        """Read-only replicas and other non-primary types keep no backups of their own."""
        return self.instance_type == "Primary"


@dataclass(frozen=True)
class SimBackup:
    """One backup set; :func:`exporter.simulator.render.backup_item` turns it into an API item."""

    backup_id: str
    instance_id: str
    start: float
    end: float
    status: str  # Success | Failed
    backup_type: str  # FullBackup | IncrementalBackup
    mode: str  # Automated | Manual
    method: str  # Physical | Logical | Snapshot
    initiator: str  # System | User
    size: int
    engine: str
    engine_version: str
    region_id: str
    host_instance_id: str
    consistent_time: int = 0
    storage_class: str = "0"
    encryption: str = "{}"
    checksum: str = ""
    meta_status: str = ""
    databases: tuple[str, ...] = field(default=())
    # None: the field is left out (cloud-disk snapshots); "": present but empty.
    download_url: str | None = ""
    intranet_download_url: str | None = ""
    # False: a success that cannot be used to restore (IsAvail 0).
    available: bool = True

    @property
    def is_avail(self) -> int:
        return 1 if self.status == "Success" and self.available else 0


@dataclass(frozen=True)
class SimLogFile:
    """One log backup file as one node lists it: a binlog, a WAL segment or (no name, no host)
    a SQL Server log backup."""

    name: str  # LogFileName: mysql-bin.000123 or a 24-hex-digit WAL segment; "" on SQL Server
    host: str  # HostInstanceID of the node that lists it; "" on SQL Server
    begin: float
    end: float
    size: int
    checksum: str
    uploaded_at: float  # when it is Completed in backup storage; inf while stuck uploading
    primary: bool  # written by the node that was primary then (else the standby's copy)

    def completed(self, now: float) -> bool:
        return self.uploaded_at <= now


@dataclass(frozen=True)
class SimJob:
    """A backup as DescribeBackupTasks sees it: running, or (asked for by id) finished."""

    job_id: str  # BackupJobId: an int32 in requests, a string in answers
    backup: SimBackup
    process: int  # percent done
    finished: bool = False

    @property
    def status(self) -> str:
        """BackupStatus (and BackupProgressStatus): where the job is."""
        if self.finished:
            return "Finished" if self.backup.status == "Success" else "Failed"
        if self.process < 5:
            return "Preparing"
        return "Uploading" if self.process < 95 else "Checking"

    @property
    def task_action(self) -> str:
        return "NormalBackupTask" if self.backup.mode == "Automated" else "TempBackupTask"
