"""What every action receives (:class:`Call`) and returns (:class:`Answer`)."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

from exporter.simulator.fleet import Fleet
from exporter.simulator.quirks import Quirks

TAGS_MATCH = ("any", "all")  # Call.tags_match


@dataclass(frozen=True)
class Call:
    fleet: Fleet
    params: Mapping[str, str]
    now: float  # the simulator's clock
    can_see: Callable[[str], bool]  # may the caller's access key see this instance?
    shuffle_seed: int | None = None  # shuffle each DescribeBackups page deterministically
    quirks: Quirks = field(default_factory=Quirks)  # how DescribeBackups departs from the docs
    # DescribeDBInstances Tags: "any" pair matches (as the API documents it) or "all" must.
    tags_match: str = "any"


@dataclass(frozen=True)
class Answer:
    body: dict[str, object]
    window_seconds: float = 0.0  # StartTime..EndTime span asked for (inf when open-ended)


Action = Callable[[Call], Answer]
