"""The per-instance API duties the poller runs, one small unit each (see ``base.Duty``).

Adding one: a module with a ``Duty`` subclass (its action, when it is due, the call and how the
answer folds into ``InstanceState``, its cost), and a line in ``_switchable``.
"""

from __future__ import annotations

from exporter.clock import Clock
from exporter.config import PollingConfig
from exporter.duties.backup_policy import BackupPolicyDuty
from exporter.duties.backup_storage import BackupStorageDuty
from exporter.duties.backup_tasks import BackupTasksDuty
from exporter.duties.backups import BackupsDuty, PollObserver
from exporter.duties.base import Duty, DutyLoad, Outcome
from exporter.duties.cross_region_backups import CrossRegionBackupsDuty
from exporter.duties.cross_region_policy import CrossRegionPolicyDuty
from exporter.duties.log_backups import LogBackupsDuty
from exporter.duties.recovery_window import RecoveryWindowDuty

__all__ = [
    "BackupPolicyDuty",
    "BackupStorageDuty",
    "BackupTasksDuty",
    "BackupsDuty",
    "CrossRegionBackupsDuty",
    "CrossRegionPolicyDuty",
    "Duty",
    "DutyLoad",
    "LogBackupsDuty",
    "Outcome",
    "RecoveryWindowDuty",
    "duties_for",
    "switched_off",
]


def duties_for(
    polling: PollingConfig, clock: Clock, observer: PollObserver | None = None
) -> list[Duty]:
    """The duties the configuration enables, in the order they run at each poll."""
    duties: list[Duty] = [BackupsDuty(polling, clock, observer)]
    duties += [kind(polling, clock) for refresh, kind in _switchable(polling) if refresh > 0]
    return duties


def switched_off(polling: PollingConfig, clock: Clock) -> list[Duty]:
    """The duties the configuration switches off (a refresh of 0)."""
    return [kind(polling, clock) for refresh, kind in _switchable(polling) if refresh <= 0]


def _switchable(polling: PollingConfig) -> tuple[tuple[float, type[Duty]], ...]:
    return (
        (polling.policy_refresh, BackupPolicyDuty),
        (polling.backup_tasks_refresh, BackupTasksDuty),
        (polling.log_backup_refresh, LogBackupsDuty),
        (polling.recovery_window_refresh, RecoveryWindowDuty),
        # The settings first: the copies are not listed while they say copying is off.
        (polling.cross_region_policy_refresh, CrossRegionPolicyDuty),
        (polling.cross_region_backup_refresh, CrossRegionBackupsDuty),
        (polling.backup_storage_refresh, BackupStorageDuty),
    )


def disabled_lines(polling: PollingConfig) -> list[str]:
    """What ``--check-config`` says of the duties the configuration switches off."""
    off = (
        (polling.policy_refresh, "backup policy", "policy_refresh"),
        (polling.backup_tasks_refresh, "running backups", "backup_tasks_refresh"),
        (polling.log_backup_refresh, "log backups", "log_backup_refresh"),
        (polling.recovery_window_refresh, "restorable window", "recovery_window_refresh"),
        (
            polling.cross_region_policy_refresh,
            "cross-region backup settings",
            "cross_region_policy_refresh",
        ),
        (polling.cross_region_backup_refresh, "cross-region copies", "cross_region_backup_refresh"),
        (polling.backup_storage_refresh, "backup storage", "backup_storage_refresh"),
    )
    return [f"{what}: not read (polling.{key} is 0)" for refresh, what, key in off if not refresh]
