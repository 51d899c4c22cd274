"""How the simulator answers where the API reference only infers the real API's behaviour.

Each default is the reference's best guess; each can be switched, so a client can be tested
against the other reading too. Unlike :class:`Quirks` (documented departures, all on by
default), these are guesses either way. Plain mutable record: tests change it while a client
runs.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass
class Inferred:
    # DescribeBinlogFiles/DescribeLogBackupFiles TotalFileSize: the bytes of every file that
    # matches the query (True) or only of this page's files (False). The docs do not say.
    total_file_size_whole_result: bool = True
    # DescribeBinlogFiles/DescribeLogBackupFiles asked for a page past the last one (page > 1):
    # an empty page, with the same TotalRecordCount (False), or HTTP 400
    # InvalidPageNumbers.Malformed, as DescribeBackups answers (True). The docs only say that
    # clients stop on an empty page or once they have read TotalRecordCount files.
    log_page_past_end_error: bool = False
    # DescribeBackupTasks: a finished job drops out of the default listing at once (0). More
    # than 0: it stays listed this many seconds, BackupStatus Finished (or Failed). Asked for by
    # BackupJobId, a finished job is listed either way, with its BackupId (documented).
    finished_job_seconds: float = 0.0
    # DescribeBackupPolicy answers the data and the log backup fields together whatever
    # BackupPolicyMode says (False). True: DataBackupPolicy leaves the log fields out and
    # LogBackupPolicy the data fields; with no mode, both.
    policy_mode_filters: bool = False
    # DescribeLocalAvailableRecoveryTime takes ``Region``, not ``RegionId``: a RegionId is
    # ignored, as the gateway ignores parameters an action does not have (False), or refused
    # with 400 InvalidParameter (True).
    refuse_region_id: bool = False
    # RecoveryEndTime: the end of the newest log file in backup storage (True), or of the
    # newest closed one, uploaded or not (False).
    recovery_end_completed_only: bool = True
    # RecoveryBeginTime: the start of the oldest usable full backup (False), or its end (True).
    recovery_begin_at_backup_end: bool = False
    # SQL Server LogBackupFrequency. The reference documents "LogInterval" (every 30 minutes)
    # and "otherwise the same as the data backup cycle" without that value; for 5-minute log
    # backups it says nothing.
    sqlserver_five_minute_frequency: str = "LogInterval"
    sqlserver_data_cycle_frequency: str = ""
    # DescribeInstanceCrossBackupPolicy and DescribeCrossRegionBackupDBInstance, cross-region
    # backup off: CrossBackupRegion "", Retention 0 and no enabled times, as for an instance
    # never set up (True), or the last settings kept, only BackupEnabled "Disable" (False).
    cross_policy_disabled_blank: bool = True
    # DescribeCrossRegionBackupDBInstance lists only the instances with cross-region backup on
    # (False: the reference's reading), or every instance that supports it (True).
    cross_list_disabled_instances: bool = False
    # DescribeCrossRegionBackups' StartTime/EndTime filter on BackupStartTime (False) or on
    # BackupEndTime (True). The docs do not say.
    cross_window_on_end_time: bool = False
    # The two cross-region lists asked for a page past the last one (page > 1): HTTP 404
    # InvalidPage.notFound, the code both document (True), or an empty page (False).
    cross_page_past_end_error: bool = True
    # DescribeCrossRegionBackups' Engine in lower case ("mysql"), as its only documented
    # example has it (True), or as the other actions name it ("MySQL", False).
    cross_engine_lowercase: bool = True
    # DescribeAvailableRecoveryTime for a copy whose logs are not copied (cross-region log
    # backup off): 400 NoAvailableLogBackup (True), or a window of the copy's own point only.
    dr_log_off_error: bool = True
    # ... for a failed copy: 400 NoAvailableDisasterRestoreBakset (False), or 404
    # InvalidBackupSetID.NotFound, as if there were no such set (True).
    dr_failed_copy_not_found: bool = False
    # RecoveryBeginTime: the copy's ConsistentTime (False) or its BackupEndTime (True).
    dr_begin_at_backup_end: bool = False
    # RecoveryEndTime: the newest log copied to the destination, which trails the source by
    # minutes (False), or the source's newest stored log (True).
    dr_end_at_source_logs: bool = False
    # DescribeResourceUsage BackupSize: BackupOssDataSize + BackupOssLogSize, as in the
    # official example (True), or BackupDataSize + BackupLogSize (False).
    usage_backup_size_oss: bool = True
    # BackupEcsSnapshotSize is in the SDK but not in the documented example: answered (True)
    # or left out (False).
    usage_ecs_snapshot_field: bool = True
