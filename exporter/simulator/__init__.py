"""A simulated Alibaba Cloud RDS API (DescribeBackups, DescribeBackupPolicy,
DescribeDBInstances): a real aiohttp server for tests, ``--demo`` and benchmarks.

It imports nothing from the exporter except the request signer, so it can stand on its own.
"""

from exporter.simulator.errors import ApiError
from exporter.simulator.faults import (
    FORBIDDEN_RAM,
    HOSTILE_MODES,
    INCORRECT_STATE,
    Faults,
    ForcedError,
    InstanceFaults,
)
from exporter.simulator.fleet import Fleet
from exporter.simulator.models import SimBackup, SimInstance, SimPolicy
from exporter.simulator.quirks import Quirks
from exporter.simulator.server import (
    API_VERSION,
    DEFAULT_WIDE_WINDOW_DELAY,
    DEFAULT_WIDE_WINDOW_SECONDS,
    DEMO_ACCESS_KEY_ID,
    DEMO_ACCESS_KEY_SECRET,
    HTML_CODE,
    RESET_CODE,
    TRUNCATED_CODE,
    RequestRecord,
    SimulatedRds,
)

__all__ = [
    "API_VERSION",
    "DEFAULT_WIDE_WINDOW_DELAY",
    "DEFAULT_WIDE_WINDOW_SECONDS",
    "DEMO_ACCESS_KEY_ID",
    "DEMO_ACCESS_KEY_SECRET",
    "FORBIDDEN_RAM",
    "HOSTILE_MODES",
    "HTML_CODE",
    "INCORRECT_STATE",
    "RESET_CODE",
    "TRUNCATED_CODE",
    "ApiError",
    "Faults",
    "Fleet",
    "ForcedError",
    "InstanceFaults",
    "Quirks",
    "RequestRecord",
    "SimBackup",
    "SimInstance",
    "SimPolicy",
    "SimulatedRds",
]
