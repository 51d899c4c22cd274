"""The per-instance API duties the poller runs, one small unit each (see ``base.Duty``).

Adding one: a module with a ``Duty`` subclass (its action, when it is due, the call and how the
answer folds into ``InstanceState``, its cost), and a line in :func:`duties_for`.
"""

from __future__ import annotations

from exporter.clock import Clock
from exporter.config import PollingConfig
from exporter.duties.backup_policy import BackupPolicyDuty
from exporter.duties.backups import BackupsDuty, PollObserver
from exporter.duties.base import Duty, DutyLoad, Outcome

__all__ = ["BackupPolicyDuty", "BackupsDuty", "Duty", "DutyLoad", "Outcome", "duties_for"]


def duties_for(
    polling: PollingConfig, clock: Clock, observer: PollObserver | None = None
) -> list[Duty]:
    """The duties the configuration enables, in the order they run at each poll."""
    duties: list[Duty] = [BackupsDuty(polling, clock, observer)]
    if polling.policy_refresh > 0:
        duties.append(BackupPolicyDuty(polling, clock))
    return duties


def disabled_lines(polling: PollingConfig) -> list[str]:
    """What ``--check-config`` says of the duties the configuration switches off."""
    if polling.policy_refresh > 0:
        return []
    return ["backup policy: not read (polling.policy_refresh is 0)"]
