"""DescribeLocalAvailableRecoveryTime: the times a point-in-time restore can reach (MySQL,
PostgreSQL, MariaDB). Its answers ``LogBackupNotEnabled``, ``InvalidBinlog.NotFound`` and
``InvalidBackup.NotFound`` are not failures to ask: they say point-in-time recovery is broken,
and are kept as such (``aliyun_rds_recovery_broken``), apart from "we could not ask".

With no engine known (a static instance without backups in the lookback, the very case where
recovery may be broken), it asks anyway: SQL Server answers ``IncorrectDBInstanceEngine``, and
that answer tells the log backups duty which action to call.
"""

from __future__ import annotations

import logging

from exporter.aliyun.client import RdsClient
from exporter.aliyun.errors import ApiError
from exporter.aliyun.recovery import DESCRIBE_LOCAL_RECOVERY_TIME
from exporter.duties.base import Duty, DutyLoad
from exporter.recovery_state import RECOVERY_BROKEN_CODES, RecoveryStatus
from exporter.state import READ_ONLY, DutyStatus, InstanceState

log = logging.getLogger(__name__)

ENGINES = frozenset({"mysql", "postgresql", "mariadb"})  # not SQL Server
INCORRECT_ENGINE = "IncorrectDBInstanceEngine"


class RecoveryWindowDuty(Duty):
    name = "recovery_window"
    action = DESCRIBE_LOCAL_RECOVERY_TIME
    failure_text = "cannot read the restorable window (the last one read is kept)"
    recovery_text = "restorable window read again"

    @property
    def refresh(self) -> float:
        return self.polling.recovery_window_refresh

    def applies_to(self, state: InstanceState) -> bool:
        if state.target.instance_type == READ_ONLY:
            return False
        engine = state.known_engine.lower()
        return engine in ENGINES if engine else state.sql_server_by_answer is not True

    async def run(self, client: RdsClient, state: InstanceState, status: DutyStatus) -> None:
        target = state.target
        try:
            window = await client.describe_recovery_window(target.instance_id, target.region)
        except ApiError as err:
            if err.code == INCORRECT_ENGINE and not state.known_engine:
                log.info(
                    "instance %s: engine not known yet; %s says SQL Server",
                    target.instance_id,
                    self.action,
                )
                state.sql_server_by_answer = True
                return None
            if err.code not in RECOVERY_BROKEN_CODES:
                raise
            state.sql_server_by_answer = False
            # An answer about the instance, not a failure of ours: the metric and the alert
            # carry it, the log notes the change.
            if state.recovery is None or state.recovery.broken != err.code:
                log.info(
                    "instance %s: point-in-time recovery is broken: %s",
                    target.instance_id,
                    err.summary(),
                )
            state.recovery = RecoveryStatus(broken=err.code)
            return None
        state.sql_server_by_answer = False
        if state.recovery is not None and state.recovery.broken is not None:
            log.info("instance %s: point-in-time recovery works again", target.instance_id)
        state.recovery = RecoveryStatus(window=window)
        return None

    def forget(self, state: InstanceState) -> None:
        state.recovery = None

    def load(self, instances: int, rate_limit: float) -> DutyLoad:
        return self.refresh_load(instances, "restorable window")
