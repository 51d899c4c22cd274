"""Fleet records in the API's response shapes (field names and value types as RDS sends them)."""

from __future__ import annotations

from collections.abc import Sequence

from exporter.simulator.drcopies import CrossCopy, CrossPolicy
from exporter.simulator.models import SimBackup, SimInstance, SimJob, SimLogFile
from exporter.simulator.timefmt import format_minute, format_second

LINK_SECONDS = 3600.0  # how long a log file's download links stay valid
# DescribeBackupPolicy's log backup fields (BackupInterval is both: MySQL's snapshot frequency,
# SQL Server's log backup frequency).
LOG_POLICY_FIELDS = frozenset(
    {
        "BackupLog",
        "EnableBackupLog",
        "LogBackupRetentionPeriod",
        "LogBackupFrequency",
        "BackupInterval",
        "LocalLogRetentionHours",
        "LocalLogRetentionSpace",
        "LogBackupLocalRetentionNumber",
        "HighSpaceUsageProtection",
        "SupportsHighFrequencyBackup",
    }
)


def backup_item(
    backup: SimBackup, *, minute_times: bool = False, unusable_successes: bool = True
) -> dict[str, object]:
    """One ``Items.Backup[]`` entry of DescribeBackups.

    ``minute_times``: times as ``yyyy-MM-ddTHH:mmZ`` (the documented form). Without
    ``unusable_successes`` every success is IsAvail 1.
    """
    when = format_minute if minute_times else format_second
    item: dict[str, object] = {
        "BackupId": backup.backup_id,
        "DBInstanceId": backup.instance_id,
        "BackupStatus": backup.status,
        "BackupStartTime": when(backup.start),
        "BackupEndTime": when(backup.end),
        "BackupType": backup.backup_type,
        "BackupMode": backup.mode,
        "BackupMethod": backup.method,
        "BackupInitiator": backup.initiator,
        "BackupSize": backup.size,
        "IsAvail": backup.is_avail if unusable_successes else int(backup.status == "Success"),
        "ConsistentTime": backup.consistent_time,
        "StorageClass": backup.storage_class,
        "CopyOnlyBackup": "0",
        "Encryption": backup.encryption,
        "Engine": backup.engine,
        "EngineVersion": backup.engine_version,
        "HostInstanceID": backup.host_instance_id,
        "Checksum": backup.checksum,
        "MetaStatus": backup.meta_status,
        "StoreStatus": "Enabled" if backup.mode == "Manual" else "Disabled",
    }
    # Cloud-disk instances leave the download fields out altogether (see the reference page).
    if backup.download_url is not None:
        item["BackupDownloadURL"] = backup.download_url
        item["BackupIntranetDownloadURL"] = backup.intranet_download_url or ""
        links = [
            {
                "DataBase": name,
                "DownloadLink": f"{backup.download_url}&dbList={name}",
                "IntranetDownloadLink": f"{backup.intranet_download_url}&dbList={name}",
            }
            for name in backup.databases
            if backup.download_url
        ]
        item["BackupDownloadLinkByDB"] = {"BackupDownloadLinkByDB": links}
    return item


def instance_item(instance: SimInstance, replicas: Sequence[str]) -> dict[str, object]:
    """One ``Items.DBInstance[]`` entry of DescribeDBInstances (no tags: the API omits them)."""
    return {
        "DBInstanceId": instance.instance_id,
        "Engine": instance.engine,
        "EngineVersion": instance.engine_version,
        "RegionId": instance.region_id,
        "ZoneId": instance.zone_id,
        "DBInstanceDescription": instance.description,
        "DBInstanceStatus": instance.status,
        "DBInstanceType": instance.instance_type,
        "DBInstanceClass": instance.instance_class,
        "DBInstanceStorageType": instance.storage_type,
        "Category": instance.category,
        "ResourceGroupId": instance.resource_group_id,
        "DBInstanceNetType": "Intranet",
        "InstanceNetworkType": "VPC",
        "ConnectionMode": "Standard",
        "PayType": "Postpaid",
        "LockMode": "Unlock",
        "LockReason": "",
        "CreateTime": format_second(instance.created_at),
        "ExpireTime": "",
        "VpcId": instance.vpc_id,
        "VSwitchId": instance.vswitch_id,
        "MasterInstanceId": instance.master_instance_id,
        "ReadOnlyDBInstanceIds": {
            "ReadOnlyDBInstanceId": [{"DBInstanceId": replica} for replica in replicas]
        },
        "DeletionProtection": False,
        "MutriORsignle": False,
    }


def policy_body(
    instance: SimInstance,
    next_backup: float | None,
    *,
    five_minute_frequency: str = "LogInterval",
    data_cycle_frequency: str = "",
) -> dict[str, object]:
    """DescribeBackupPolicy's answer for one instance (without RequestId): data and log fields.

    The two frequencies: SQL Server's LogBackupFrequency for 5-minute log backups and for logs
    backed up with the data (see ``Inferred``)."""
    policy = instance.policy
    body: dict[str, object] = {
        "PreferredBackupPeriod": policy.period,
        "PreferredBackupTime": policy.window,
        "PreferredNextBackupTime": format_minute(next_backup) if next_backup else "",
        "BackupRetentionPeriod": policy.retention_days,
        "BackupMethod": policy.method,
        "Category": policy.category,
        "EnableIncrementDataBackup": policy.incremental,
        "ReleasedKeepPolicy": "None",
    }
    on, frequency, interval = policy.log_backup, "LogInterval", "-1"
    if instance.engine == "SQLServer":
        # SQL Server says on only for 5-minute log backups, though it backs logs up every 30
        # minutes (LogInterval) or with each data backup (log backup "off") just the same.
        every = policy.log_interval_minutes if policy.log_backup else None
        on = every == 5
        if every is None:
            frequency = data_cycle_frequency
        elif on:
            frequency = five_minute_frequency
        interval = str(every) if every else "-1"
        body["SupportsHighFrequencyBackup"] = 1
    body.update(
        {
            "BackupLog": "Enable" if on else "Disabled",  # sic: Enable / Disabled
            "EnableBackupLog": "1" if on else "0",
            "LogBackupRetentionPeriod": policy.log_retention_days,
            "LogBackupFrequency": frequency,
            "BackupInterval": interval,
            "LocalLogRetentionHours": policy.local_log_retention_hours,
            "LocalLogRetentionSpace": str(policy.local_log_retention_space),
            "LogBackupLocalRetentionNumber": 60,
            "HighSpaceUsageProtection": "Enable"
            if policy.high_space_usage_protection
            else "Disable",
        }
    )
    return body


def _log_links(instance: SimInstance, file: SimLogFile, now: float) -> tuple[str, str]:
    """DownloadLink and IntranetDownloadLink: empty until the file is in backup storage."""
    if not file.completed(now):
        return "", ""
    region = instance.region_id
    name = file.name or format_minute(file.begin).replace(":", "")
    path = f"custins{instance.serial}/hins{file.host or instance.host_ids[0]}/{name}?Expires=****"
    return (
        f"http://rdslog-{region}-v3.oss-{region}.aliyuncs.com/{path}",
        f"http://rdslog-{region}-v3.oss-{region}-internal.aliyuncs.com/{path}",
    )


def binlog_item(instance: SimInstance, file: SimLogFile, now: float) -> dict[str, object]:
    """One ``Items.BinLogFile[]`` entry of DescribeBinlogFiles (MySQL, PostgreSQL, MariaDB)."""
    download, intranet = _log_links(instance, file, now)
    return {
        "LogFileName": file.name,
        "LogBeginTime": format_second(file.begin),
        "LogEndTime": format_second(file.end),
        "FileSize": file.size,
        "HostInstanceID": file.host,
        "RemoteStatus": "Completed" if file.completed(now) else "Uploading",
        "Checksum": file.checksum,  # an unsigned CRC64 in decimal: a string, as documented
        "DownloadLink": download,
        "IntranetDownloadLink": intranet,
        "LinkExpiredTime": format_second(now + LINK_SECONDS),
    }


def log_backup_item(instance: SimInstance, file: SimLogFile, now: float) -> dict[str, object]:
    """One ``Items.BinLogFile[]`` entry of DescribeLogBackupFiles (SQL Server): whole minutes,
    no name, host, checksum or upload status."""
    download, intranet = _log_links(instance, file, now)
    return {
        "LogBeginTime": format_minute(file.begin),
        "LogEndTime": format_minute(file.end),
        "FileSize": file.size,
        "DownloadLink": download,
        "IntranetDownloadLink": intranet,
        "LinkExpiredTime": format_second(now + LINK_SECONDS),
    }


def job_item(job: SimJob, *, asked_by_id: bool) -> dict[str, object]:
    """One ``Items.BackupJob[]`` entry of DescribeBackupTasks (no times: the API has none)."""
    shown = job.finished and job.status == "Finished" and asked_by_id
    return {
        "BackupJobId": job.job_id,
        "BackupStatus": job.status,
        "BackupProgressStatus": job.status,
        "Process": str(job.process),
        "JobMode": job.backup.mode,
        "TaskAction": job.task_action,
        # The backup set it made: known once finished, and shown only when asked by id.
        "BackupId": job.backup.backup_id if shown else "",
    }


def cross_policy_fields(
    instance: SimInstance, policy: CrossPolicy, *, blank_when_off: bool = True
) -> dict[str, object]:
    """An instance's cross-region settings: DescribeInstanceCrossBackupPolicy's answer (less
    RegionId) and a DescribeCrossRegionBackupDBInstance item. ``blank_when_off``: switched
    off, the destination, retention and times are empty, as for an instance never set up."""
    shown = policy.enabled or not blank_when_off
    return {
        "DBInstanceId": instance.instance_id,
        "DBInstanceDescription": instance.description,
        "DBInstanceStatus": instance.status,
        "Engine": instance.engine,
        "EngineVersion": instance.engine_version,
        "LockMode": "Unlock",
        "BackupEnabled": "Enable" if policy.enabled else "Disable",
        "BackupEnabledTime": format_second(policy.enabled_at) if shown else "",
        "LogBackupEnabled": "Enable" if policy.log_enabled else "Disable",
        "LogBackupEnabledTime": format_second(policy.enabled_at) if policy.log_enabled else "",
        "CrossBackupRegion": policy.region if shown else "",
        "CrossBackupType": "1",  # a string: every backup is copied
        "RetentType": 1,  # kept for a period of time
        "Retention": policy.retention_days if shown else 0,
    }


_SET_SUFFIXES = {"MySQL": "_qp.xb", "PostgreSQL": "_pg.tar.gz", "SQLServer": "_full.zip"}


def cross_copy_item(
    instance: SimInstance, copy: CrossCopy, *, lowercase_engine: bool = True
) -> dict[str, object]:
    """One ``Items.Item[]`` entry of DescribeCrossRegionBackups. The times are the source
    backup's; InstanceId is the node that made it (a number, not the rm- id)."""
    source = copy.source
    stamp = "".join(ch for ch in format_second(source.start) if ch.isdigit())
    host = source.host_instance_id
    name = f"{instance.region_id}_{instance.instance_id}_hins{host}_data_{stamp}"
    name += _SET_SUFFIXES.get(instance.engine, ".tar.gz")
    bucket = f"rdsddrbak-{copy.region.removeprefix('cn-')}.oss-{copy.region}.aliyuncs.com"
    link = f"http://{bucket}/custins{instance.serial}/{name}?Expires=****"
    return {
        "CrossBackupId": copy.cross_backup_id,
        "BackupSetStatus": copy.status,
        "BackupStartTime": format_second(source.start),
        "BackupEndTime": format_second(source.end),
        "ConsistentTime": format_second(copy.consistent),
        "CrossBackupSetSize": copy.size,
        "CrossBackupRegion": copy.region,
        "CrossBackupSetLocation": "oss",
        "CrossBackupSetFile": name,
        "CrossBackupDownloadLink": "" if copy.failed else link,
        "BackupType": "F",
        "BackupMethod": "P",
        "BackupSetScale": 0,
        "InstanceId": int(host),
        "Engine": instance.engine.lower() if lowercase_engine else instance.engine,
        "EngineVersion": instance.engine_version,
        "Category": instance.category,
        "DBInstanceStorageType": instance.storage_type,
        "RestoreRegions": {"RestoreRegion": [instance.region_id, copy.region]},
    }
