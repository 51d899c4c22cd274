"""Which instances to poll: the static list, plus what DescribeDBInstances finds.

Each ``discovery:`` entry is one :class:`DiscoveryLoop`: every ``refresh`` it lists its region's
instances for its account, with its filters, paged to the end. A filter with one value goes to
the API (``Engine``, ``DBInstanceStatus``, ``DBInstanceType``); several values are one listing
filtered here, not one call per combination. ``ResourceGroupId`` and ``Tags`` always go to the
API (tags are not in the response). The API documents its ``Tags`` filter as matching instances
that have *any* of the pairs given, and an entry wants those with *all* of them: an entry with
several pairs makes one listing per pair (the other filters in each) and keeps the instances
every listing found, which is right whichever way the API matches. Read-only replicas are left
out unless the entry includes them: they keep no backups of their own.

A failed refresh keeps the last good list. An instance that a successful refresh no longer
finds is *retiring*: it is still polled, with its series and counters, for ``grace`` (a restart
that briefly fails a status filter costs nothing), then dropped at the first refresh after that.
If its poll says it does not exist any more, it is dropped at once (see ``Poller``).

:func:`merge_targets` combines the static list and every loop's targets; static wins.
"""

from __future__ import annotations

import dataclasses
import json
import logging
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

from exporter.aliyun.client import RdsClient
from exporter.aliyun.models import DBInstance
from exporter.clock import Clock
from exporter.config import DiscoveryConfig, format_duration
from exporter.failures import failure_of
from exporter.schedule import next_slot
from exporter.state import READ_ONLY, DiscoveryStatus, Source, Target

log = logging.getLogger(__name__)

PAGE_SIZE = 100  # the API's largest


def listing_filters(entry: DiscoveryConfig) -> list[dict[str, str]]:
    """DescribeDBInstances parameters (RegionId and paging aside) of each listing an entry
    needs: one, or one per tag pair when it has several."""
    filters: dict[str, str] = {}
    for name, values in (
        ("Engine", entry.engines),
        ("DBInstanceStatus", entry.statuses),
        ("DBInstanceType", entry.instance_types),
    ):
        if len(values) == 1:
            filters[name] = values[0]
    if entry.resource_group:
        filters["ResourceGroupId"] = entry.resource_group
    pairs = [
        json.dumps({key: value}, separators=(",", ":"), ensure_ascii=False)
        for key, value in entry.tags.items()
    ]
    return [{**filters, "Tags": pair} for pair in pairs] or [filters]


def wanted(entry: DiscoveryConfig, instance: DBInstance) -> bool:
    """Whether a listed instance passes the entry's filters. A field the answer leaves empty
    does not exclude the instance (the API applied that filter when it could)."""
    if instance.instance_type == READ_ONLY and not entry.include_read_only:
        return False
    checks = (
        ({e.lower() for e in entry.engines}, instance.engine.lower()),
        ({s.lower() for s in entry.statuses}, instance.status.lower()),
        (set(entry.instance_types), instance.instance_type),
        ({entry.resource_group} if entry.resource_group else set(), instance.resource_group_id),
    )
    return all(not allowed or not value or value in allowed for allowed, value in checks)


async def list_instances(client: RdsClient, entry: DiscoveryConfig) -> list[DBInstance]:
    """Every instance of the entry's region that passes its filters, in the API's order (the
    first listing's, when there are several: those found by every listing)."""
    first, *others = listing_filters(entry)
    found = await _listing(client, entry, first)
    for filters in others:
        if not found:
            break  # nothing left that another listing could confirm
        listed = await _listing(client, entry, filters)
        found = {key: instance for key, instance in found.items() if key in listed}
    return list(found.values())


async def _listing(
    client: RdsClient, entry: DiscoveryConfig, filters: dict[str, str]
) -> dict[str, DBInstance]:
    """One listing, paged to the end: the instances that pass the entry's filters, by id."""
    found: dict[str, DBInstance] = {}
    pages = client.iter_db_instance_pages(entry.region, filters, page_size=PAGE_SIZE)
    async for page in pages:
        for instance in page.items:
            # An instance listed twice (the listing shifted between pages) counts once.
            if wanted(entry, instance):
                found.setdefault(instance.instance_id, instance)
    return found


def discovery_line(entry: DiscoveryConfig) -> str:
    """What ``--check-config`` says one discovery entry costs."""
    listings = len(listing_filters(entry))  # several tags: one listing per pair
    calls = (
        "one DescribeDBInstances call per 100 instances found"
        if listings == 1
        else f"{listings} DescribeDBInstances listings (one per tag), each one call per 100 "
        "instances it finds"
    )
    return (
        f"discovery: account {entry.account}, region {entry.region}: {calls}, every "
        f"{format_duration(entry.refresh)}; vanished instances kept for "
        f"{format_duration(entry.grace)}"
    )


def target_for(entry: DiscoveryConfig, instance: DBInstance) -> Target:
    return Target(
        instance_id=instance.instance_id,
        region=instance.region_id or entry.region,
        account=entry.account,
        source=Source.DISCOVERY,
        description=instance.description,
        engine=instance.engine,
        engine_version=instance.engine_version,
        instance_type=instance.instance_type,
        created_at=instance.created_at,
    )


def merge_targets(static: Sequence[Target], discovered: Iterable[Iterable[Target]]) -> list[Target]:
    """One target per instance id: static ones first, in config order, then discovered ones.

    Static wins on conflict: its account, region, labels and source stay, and it only takes
    what the config cannot say (description, engine, version, type) from discovery. An instance
    found by several entries keeps the first entry's target, unless that one is retiring.
    """
    merged: dict[str, Target] = {target.instance_id: target for target in static}
    for group in discovered:
        for target in group:
            current = merged.get(target.instance_id)
            if current is None or (current.retiring and not target.retiring):
                merged[target.instance_id] = target
            elif current.source == Source.STATIC and not current.description:
                merged[target.instance_id] = dataclasses.replace(
                    current,
                    description=target.description,
                    engine=current.engine or target.engine,
                    engine_version=current.engine_version or target.engine_version,
                    instance_type=current.instance_type or target.instance_type,
                    created_at=current.created_at or target.created_at,
                )
    return list(merged.values())


@dataclass
class _Known:
    target: Target
    last_seen: float  # monotonic time of the last successful refresh that listed it


class DiscoveryLoop:
    """One discovery entry: refreshes on its own schedule and keeps the instances it found."""

    def __init__(
        self,
        entry: DiscoveryConfig,
        client: RdsClient,
        clock: Clock,
        status: DiscoveryStatus,
        on_change: Callable[[], None],
        owns: Callable[[str], bool] | None = None,
    ) -> None:
        """``owns(instance_id)``: whether this replica polls an instance (its shard); the
        others are left out as if the listing had not found them."""
        self.entry = entry
        self._client = client
        self._clock = clock
        self.status = status
        self._on_change = on_change
        self._owns = owns
        self._known: dict[str, _Known] = {}

    @property
    def name(self) -> str:
        return f"account {self.entry.account} region {self.entry.region}"

    def targets(self) -> list[Target]:
        """What this entry contributes to polling, retiring instances included."""
        return [known.target for known in self._known.values()]

    def adopt(self, previous: DiscoveryLoop) -> None:
        """Takes over what ``previous`` found (a reload that kept the same entry), so its
        instances stay polled, with their state, instead of waiting for a first refresh."""
        self._known = dict(previous._known)

    def forget(self, instance_id: str) -> bool:
        """Drops a retiring instance before its grace ends (it no longer exists)."""
        known = self._known.get(instance_id)
        if known is None or not known.target.retiring:
            return False
        del self._known[instance_id]
        return True

    async def run(self) -> None:
        """Refreshes at once, then every ``refresh``, anchored so slow refreshes do not drift."""
        refresh = self.entry.refresh
        anchor = self._clock.monotonic()
        slot = 0
        while True:
            await self.refresh()
            now = self._clock.monotonic()
            slot = next_slot(anchor, refresh, slot, now)
            await self._clock.sleep(anchor + slot * refresh - now)

    async def refresh(self) -> None:
        """One listing (one per tag pair with several tags); on success the instance set
        follows it, on failure of any nothing changes."""
        status = self.status
        error: str | None = None
        try:
            found = await list_instances(self._client, self.entry)
            if self._owns is not None:
                found = [instance for instance in found if self._owns(instance.instance_id)]
        except Exception as exc:  # mapped to a code and logged once per change of code
            failure = failure_of(exc)
            error = failure.code
            if failure.unexpected and status.last_error != error:
                log.error(
                    "discovery (%s): unexpected error",
                    self.name,
                    exc_info=(type(exc), exc, exc.__traceback__),
                )
            elif error != status.last_error:
                log.warning(
                    "discovery (%s): refresh failed, keeping the last list of %d instance(s): %s",
                    self.name,
                    len(self._known),
                    failure.message,
                )
        else:
            changed = self._apply(found)
            status.last_success = self._clock.time()
            status.instances = len(found)
            if status.last_error is not None:
                log.info("discovery (%s): recovered, %d instance(s)", self.name, len(found))
            if changed:
                self._on_change()
        status.success = error is None
        status.last_error = error
        if not status.refreshed:
            status.refreshed = True
            self._on_change()  # readiness may depend on this first refresh

    def _apply(self, found: Sequence[DBInstance]) -> bool:
        """Takes a successful listing; returns whether the targets changed."""
        now = self._clock.monotonic()
        grace = self.entry.grace
        before = self.targets()
        listed = {instance.instance_id for instance in found}
        added = [i.instance_id for i in found if i.instance_id not in self._known]
        for instance in found:
            self._known[instance.instance_id] = _Known(target_for(self.entry, instance), now)
        for instance_id, known in list(self._known.items()):
            if instance_id in listed:
                continue
            if now - known.last_seen >= grace:
                del self._known[instance_id]
                log.info(
                    "discovery (%s): %s not found for %s: no longer polled",
                    self.name,
                    instance_id,
                    format_duration(grace),
                )
            elif not known.target.retiring:
                known.target = dataclasses.replace(known.target, retiring=True)
                log.info(
                    "discovery (%s): %s no longer found; still polled for up to %s",
                    self.name,
                    instance_id,
                    format_duration(grace),
                )
        if added:
            log.info("discovery (%s): %d new instance(s)", self.name, len(added))
            log.debug("discovery (%s): new: %s", self.name, ", ".join(added))
        return self.targets() != before
