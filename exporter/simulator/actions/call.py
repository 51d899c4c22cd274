"""What every action receives (:class:`Call`) and returns (:class:`Answer`)."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

from exporter.simulator.fleet import Fleet
from exporter.simulator.inferred import Inferred
from exporter.simulator.quirks import Quirks

TAGS_MATCH = ("any", "all")  # Call.tags_match


@dataclass(frozen=True)
class Call:
    fleet: Fleet
    params: Mapping[str, str]
    now: float  # the simulator's clock
    can_see: Callable[[str], bool]  # may the caller's access key see this instance?
    # Shuffle each page of DescribeBackups, DescribeBinlogFiles and DescribeLogBackupFiles
    # deterministically.
    shuffle_seed: int | None = None
    quirks: Quirks = field(default_factory=Quirks)  # how the API departs from its docs
    # DescribeDBInstances Tags: "any" pair matches (as the API documents it) or "all" must.
    tags_match: str = "any"
    inferred: Inferred = field(default_factory=Inferred)  # answers the reference only infers


@dataclass(frozen=True)
class Answer:
    body: dict[str, object]
    window_seconds: float = 0.0  # StartTime..EndTime span asked for (inf when open-ended)


Action = Callable[[Call], Answer]
