"""Fleet records in the API's response shapes (field names and value types as RDS sends them)."""

from __future__ import annotations

from collections.abc import Sequence

from exporter.simulator.models import SimBackup, SimInstance
from exporter.simulator.timefmt import format_minute, format_second


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


def policy_body(instance: SimInstance, next_backup: float | None) -> dict[str, object]:
    """DescribeBackupPolicy's answer for one instance (without RequestId)."""
    policy = instance.policy
    return {
        "PreferredBackupPeriod": policy.period,
        "PreferredBackupTime": policy.window,
        "PreferredNextBackupTime": format_minute(next_backup) if next_backup else "",
        "BackupRetentionPeriod": policy.retention_days,
        "BackupLog": "Enable" if policy.log_backup else "Disabled",
        "EnableBackupLog": "1" if policy.log_backup else "0",
        "LogBackupRetentionPeriod": policy.log_retention_days,
        "LogBackupFrequency": "LogInterval",
        "BackupMethod": policy.method,
        "Category": policy.category,
        "BackupInterval": "-1",
        "EnableIncrementDataBackup": policy.incremental,
        "ReleasedKeepPolicy": "None",
    }
