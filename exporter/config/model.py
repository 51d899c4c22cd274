"""What a checked configuration holds: frozen dataclasses, and FrozenMap for labels and tags.

A setting's default is its field's default here, and nowhere else: the schema leaves out what
the file does not set.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field


class FrozenMap(Mapping[str, str]):
    """A read-only, hashable ``str -> str`` mapping, for labels and tags in frozen dataclasses."""

    __slots__ = ("_items",)

    def __init__(self, items: Mapping[str, str] | Iterable[tuple[str, str]] = ()) -> None:
        self._items: dict[str, str] = dict(items)

    def __getitem__(self, key: str) -> str:
        return self._items[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._items)

    def __len__(self) -> int:
        return len(self._items)

    def __hash__(self) -> int:
        return hash(frozenset(self._items.items()))

    def __repr__(self) -> str:
        return f"FrozenMap({self._items!r})"


@dataclass(frozen=True)
class ApiConfig:
    # "https://host[:port]", normalised; the host may hold {region}, filled in with each
    # instance's region at call time. None = the SDK's endpoint for the region.
    endpoint: str | None = None
    timeout: float = 10.0  # seconds, per HTTP request
    rate_limit: float = 10.0  # requests per second, whole process
    concurrency: int = 8  # requests in flight
    retries: int = 4  # per request
    max_response_bytes: int = 8 * 1024 * 1024  # per answer, compressed and inflated


@dataclass(frozen=True)
class StaticCredentials:
    access_key_id: str
    access_key_secret: str = field(repr=False)
    security_token: str | None = field(default=None, repr=False)


@dataclass(frozen=True)
class PollingConfig:
    interval: float = 300.0
    lookback: float = 8 * 86400.0
    window: float = 86400.0
    overlap: float | None = None  # None: window - interval, at least 0
    page_size: int = 100
    policy_refresh: float = 6 * 3600.0  # DescribeBackupPolicy per instance; 0 = never
    # The recoverability duties, each on its own refresh; 0 = never.
    recovery_window_refresh: float = 3600.0  # DescribeLocalAvailableRecoveryTime
    log_backup_refresh: float = 900.0  # DescribeBinlogFiles / DescribeLogBackupFiles
    backup_tasks_refresh: float = 900.0  # DescribeBackupTasks
    # Disaster recovery and cost; 0 = never.
    cross_region_policy_refresh: float = 6 * 3600.0  # DescribeInstanceCrossBackupPolicy
    cross_region_backup_refresh: float = 3600.0  # DescribeCrossRegionBackups
    backup_storage_refresh: float = 3600.0  # DescribeResourceUsage

    @property
    def effective_overlap(self) -> float:
        """How far before the watermark a later poll starts re-reading; never negative."""
        if self.overlap is not None:
            return max(0.0, self.overlap)
        return max(0.0, self.window - self.interval)


@dataclass(frozen=True)
class InstanceConfig:
    id: str
    region: str
    account: str
    labels: Mapping[str, str] = FrozenMap()


@dataclass(frozen=True)
class DiscoveryConfig:
    region: str
    account: str
    engines: tuple[str, ...] = ()
    statuses: tuple[str, ...] = ()
    instance_types: tuple[str, ...] = ()
    resource_group: str | None = None
    tags: Mapping[str, str] = FrozenMap()
    include_read_only: bool = False
    refresh: float = 600.0
    grace: float = 3600.0


@dataclass(frozen=True)
class AccountConfig:
    name: str
    credentials: StaticCredentials | None  # None: the standard Alibaba Cloud credential chain
    instances: tuple[InstanceConfig, ...] = ()
    discovery: tuple[DiscoveryConfig, ...] = ()
    endpoint: str | None = None  # overrides api.endpoint for this account's calls (same form)


@dataclass(frozen=True)
class Config:
    api: ApiConfig
    polling: PollingConfig
    accounts: tuple[AccountConfig, ...]
    warnings: tuple[str, ...] = ()

    @property
    def instances(self) -> tuple[InstanceConfig, ...]:
        """Every account's static instances, in file order."""
        return tuple(i for account in self.accounts for i in account.instances)

    @property
    def discovery(self) -> tuple[DiscoveryConfig, ...]:
        """Every account's discovery entries, in file order."""
        return tuple(d for account in self.accounts for d in account.discovery)
