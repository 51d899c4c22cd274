"""The names and limits that values in the file are checked against."""

from __future__ import annotations

# DescribeDBInstances filter values, spelt as the API spells them.
ENGINES = ("MySQL", "PostgreSQL", "SQLServer", "MariaDB")
INSTANCE_TYPES = ("Primary", "Readonly", "Guard", "Temp")
# Known DBInstanceStatus values. Others are passed on as written, with a warning.
INSTANCE_STATUSES = (
    "Creating",
    "Running",
    "Deleting",
    "Rebooting",
    "DBInstanceClassChanging",
    "TRANSING",
    "EngineVersionUpgrading",
    "TransingToOthers",
    "GuardDBInstanceCreating",
    "Restoring",
    "Importing",
    "ImportingFromOthers",
    "DBInstanceNetTypeChanging",
    "GuardSwitching",
    "INS_CLONING",
    "Released",
)
PAGE_SIZES = (30, 50, 100)
MIN_RESPONSE_BYTES = 1024 * 1024  # api.max_response_bytes below this would refuse real pages
MAX_DISCOVERY_TAGS = 5  # DescribeDBInstances accepts at most five tag pairs

# Label names the exporter sets itself (SPEC.md metrics table, the info metric's likely extras,
# and what Prometheus adds or uses), so a user's `labels:` may not take them.
RESERVED_LABEL_NAMES = frozenset(
    {
        "instance_id",
        "account",
        "region_id",
        "zone_id",
        "engine",
        "engine_version",
        "description",
        "instance_type",
        "instance_class",
        "instance_status",
        "resource_group_id",
        "source",
        "backup_type",
        "backup_method",
        "backup_mode",
        "backup_initiator",
        "storage_class",
        "encrypted",
        "action",
        "code",
        "version",
        "job",
        "instance",
        "le",
        "quantile",
    }
)
