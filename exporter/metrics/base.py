"""What a metric definition holds: name, type, HELP, labels, feed, and whether its value is read
at scrape time."""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass

from exporter.aliyun.client import DESCRIBE_BACKUPS

PREFIX = "aliyun_rds_"
BY_TYPE = ("instance_id", "backup_type")
BY_INSTANCE = ("instance_id",)
# The feed of the log backup metrics: one action or the other, by engine.
LOG_BACKUP_FILES = "DescribeBinlogFiles/DescribeLogBackupFiles"


class Kind(enum.Enum):
    GAUGE = "gauge"
    COUNTER = "counter"  # exposed with _total
    INFO = "info"  # exposed with _info, value 1, its data in labels
    HISTOGRAM = "histogram"


@dataclass(frozen=True)
class MetricDef:
    name: str
    """Without the prefix, and without the ``_total``/``_info`` the type adds."""
    kind: Kind
    help: str
    """One sentence, no final period: ``help_text`` adds where the value comes from."""
    labels: tuple[str, ...] = BY_INSTANCE
    """For info metrics, the labels every sample has besides its data."""
    feed: str | None = DESCRIBE_BACKUPS
    """The API action whose background poll gives the value; None for what the exporter
    knows itself."""
    at_scrape: bool = False
    """Read at every scrape, not formatted once per change of the instance's state: the value
    depends on the scrape time, or changes at every poll."""

    @property
    def full_name(self) -> str:
        return PREFIX + self.name

    @property
    def exposed_name(self) -> str:
        """The sample name a scrape shows (a histogram's family name)."""
        suffix = {Kind.COUNTER: "_total", Kind.INFO: "_info"}.get(self.kind, "")
        return self.full_name + suffix

    def help_text(self, intervals: Mapping[str, str]) -> str:
        """The HELP line: the sentence, and how often its feed is polled."""
        if self.feed is None:
            return f"{self.help}."
        return f"{self.help} (from a background poll of {self.feed} every {intervals[self.feed]})."
