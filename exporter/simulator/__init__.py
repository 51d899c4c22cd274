"""A simulated Alibaba Cloud RDS API (DescribeBackups, DescribeBackupPolicy,
DescribeDBInstances; for recoverability DescribeBinlogFiles, DescribeLogBackupFiles,
DescribeLocalAvailableRecoveryTime, DescribeBackupTasks; for disaster recovery and cost
DescribeInstanceCrossBackupPolicy, DescribeCrossRegionBackupDBInstance,
DescribeCrossRegionBackups, DescribeAvailableRecoveryTime, DescribeResourceUsage): a real aiohttp
server for tests, ``--demo`` and benchmarks.

It imports nothing from the exporter except the request signer, so it can stand on its own.

Modules, one job each:

- ``server``: the aiohttp app (order of checks per request, serving, who may see what);
  ``__main__``: ``python -m exporter.simulator``
- ``actions``: one function per RDS action, the registry by name, shared parameter rules
- ``injection``: seeded fault decisions and per-key flow control
- ``replies``, ``records``: what is sent (success, error, HTML, hostile) and what is kept
- ``auth``, ``errors``, ``hostile``: signatures, API errors, hostile answers
- ``faults``, ``quirks``, ``inferred``: settings that tests change on a live simulator
- ``fleet``, ``generator``: instances and backups, deterministic from a seed; ``truth``: the
  fleet's ground truth for tests
- ``logchain``, ``logbook``: log backup files, generated, and their knobs (gaps, stuck uploads)
- ``restore``, ``jobs``: the restorable window, backups as running jobs
- ``drcopies``, ``usage``: cross-region settings and copies, backup storage use and its quota;
  ``drtruth``: their knobs and ground truth
- ``models``, ``render``, ``timefmt``: the records, their API shapes, the API's time formats
"""

from exporter.simulator.drcopies import CrossCopy, CrossPolicy
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
from exporter.simulator.inferred import Inferred
from exporter.simulator.models import SimBackup, SimInstance, SimJob, SimLogFile, SimPolicy
from exporter.simulator.quirks import Quirks
from exporter.simulator.records import HTML_CODE, RESET_CODE, TRUNCATED_CODE, RequestRecord
from exporter.simulator.server import (
    API_VERSION,
    DEFAULT_WIDE_WINDOW_DELAY,
    DEFAULT_WIDE_WINDOW_SECONDS,
    DEMO_ACCESS_KEY_ID,
    DEMO_ACCESS_KEY_SECRET,
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
    "CrossCopy",
    "CrossPolicy",
    "Faults",
    "Fleet",
    "ForcedError",
    "Inferred",
    "InstanceFaults",
    "Quirks",
    "RequestRecord",
    "SimBackup",
    "SimInstance",
    "SimJob",
    "SimLogFile",
    "SimPolicy",
    "SimulatedRds",
]
