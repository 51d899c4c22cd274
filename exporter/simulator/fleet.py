"""The simulated fleet: instances, their backups as the clock sees them, and knobs for tests.

Scheduled backups are computed per instance-day on demand (see ``generator``) and cached;
backups a test adds by hand are kept in a sorted list. Log backup files are generated for the
stretch asked about (``logchain``); their knobs live in a ``LogBook``. Ground truth for tests
comes from the ``FleetTruth`` mixin (``truth``), and for cross-region backup and backup storage
use from ``CrossRegionTruth`` (``drtruth``), which has their knobs too. Nothing here does I/O or
reads a clock: every question about visibility takes ``now``.
"""

from __future__ import annotations

import bisect
import dataclasses
import math
from collections.abc import Iterator, Mapping, Sequence

from exporter.simulator.drcopies import DrBook
from exporter.simulator.drtruth import CrossRegionTruth
from exporter.simulator.generator import (
    day_backups,
    floor_minute,
    make_instance,
    policy_for_storage,
)
from exporter.simulator.logbook import LogBook
from exporter.simulator.logchain import with_log_settings
from exporter.simulator.models import SimBackup, SimInstance, SimPolicy
from exporter.simulator.timefmt import DAY
from exporter.simulator.truth import RUNNING_DAYS, SNAPSHOT_CHAIN_DAYS, FleetTruth

DEFAULT_REGIONS = ("cn-hangzhou", "cn-shanghai", "ap-southeast-1")
DEFAULT_FAILURE_RATE = 0.02
DEFAULT_READONLY_FRACTION = 0.08
_ADDED_ID_BASE = 10**15  # hand-added BackupIds sit above every generated one
_CACHE_DAYS = 400  # per instance; a cache this big is dropped and rebuilt

__all__ = ["DEFAULT_REGIONS", "SNAPSHOT_CHAIN_DAYS", "Fleet"]


class Fleet(FleetTruth, CrossRegionTruth):
    """Instances, their backups and log backups, deterministic from ``seed``."""

    def __init__(
        self,
        *,
        seed: int = 1,
        now: float,
        history_days: float = 8.0,
        regions: Sequence[str] = DEFAULT_REGIONS,
        failure_rate: float = DEFAULT_FAILURE_RATE,
        readonly_fraction: float = DEFAULT_READONLY_FRACTION,
        expire_after_retention: bool = False,
    ) -> None:
        """An empty fleet; see :meth:`generate`.

        ``expire_after_retention``: hide backups older than the instance's
        BackupRetentionPeriod, as RDS does. Off by default so that ground truth is simply
        "everything since the history began".
        """
        if not regions:
            raise ValueError("regions must not be empty")
        self.seed = seed
        self.origin = now - history_days * DAY  # generated instances exist from here on
        self.regions = tuple(regions)
        self.failure_rate = failure_rate
        self.readonly_fraction = readonly_fraction
        self.expire_after_retention = expire_after_retention
        self._instances: dict[str, SimInstance] = {}
        self._primaries: dict[tuple[str, str], list[SimInstance]] = {}
        self._replicas: dict[str, list[str]] = {}
        self._next_serial = 0
        self._failure_rates: dict[str, list[tuple[float, float]]] = {}
        self._stop_after: dict[str, float] = {}
        self._added: dict[str, list[SimBackup]] = {}
        self._added_count = 0
        self._cache: dict[str, dict[int, tuple[SimBackup, ...]]] = {}
        self._logs = LogBook(seed, now, expire_after_retention=expire_after_retention)
        self._stuck_jobs: dict[str, tuple[str, float]] = {}  # instance -> (BackupId, Process)
        self._dr = DrBook(seed)
        self._paid: dict[str, int] = {}  # PaidBackupSize set by hand

    @classmethod
    def generate(
        cls,
        *,
        seed: int = 1,
        instances: int = 50,
        now: float,
        history_days: float = 8.0,
        regions: Sequence[str] = DEFAULT_REGIONS,
        failure_rate: float = DEFAULT_FAILURE_RATE,
        readonly_fraction: float = DEFAULT_READONLY_FRACTION,
        expire_after_retention: bool = False,
    ) -> Fleet:
        """``instances`` instances with backups from ``now - history_days`` onwards (and on
        for ever after ``now``: visibility is decided by the clock each question passes)."""
        fleet = cls(
            seed=seed,
            now=now,
            history_days=history_days,
            regions=regions,
            failure_rate=failure_rate,
            readonly_fraction=readonly_fraction,
            expire_after_retention=expire_after_retention,
        )
        for _ in range(instances):
            fleet._insert(fleet._draw_instance(fleet.regions, readonly_fraction, None))
        return fleet

    # ----- instances -------------------------------------------------------------------------

    @property
    def instances(self) -> Mapping[str, SimInstance]:
        """Instances by id, in creation order. Read-only: change them with the methods."""
        return self._instances

    def instance(self, instance_id: str) -> SimInstance:
        return self._instances[instance_id]

    def replicas_of(self, instance_id: str) -> list[str]:
        return list(self._replicas.get(instance_id, ()))

    def _draw_instance(
        self, regions: Sequence[str], readonly_fraction: float, engine: str | None
    ) -> SimInstance:
        serial = self._next_serial
        self._next_serial += 1
        drawn = make_instance(
            seed=self.seed,
            serial=serial,
            created_at=self.origin,
            regions=regions,
            taken=self._instances,
            primaries=self._primaries,
            readonly_fraction=readonly_fraction,
            engine=engine,
        )
        # Drawn from hashes of their own: every other draw stays as it was.
        return with_log_settings(self.seed, drawn)

    def _insert(self, instance: SimInstance) -> None:
        self._instances[instance.instance_id] = instance
        if instance.instance_type == "Primary":
            key = (instance.engine, instance.region_id)
            self._primaries.setdefault(key, []).append(instance)
        if instance.master_instance_id:
            self._replicas.setdefault(instance.master_instance_id, []).append(instance.instance_id)

    def add_instance(
        self,
        *,
        instance_id: str | None = None,
        engine: str | None = None,
        engine_version: str | None = None,
        region_id: str | None = None,
        instance_type: str = "Primary",
        master_instance_id: str = "",
        status: str = "Running",
        tags: Mapping[str, str] | None = None,
        resource_group_id: str | None = None,
        description: str | None = None,
        policy: SimPolicy | None = None,
        created_at: float | None = None,
        minute_precision: bool | None = None,
        storage_type: str | None = None,
    ) -> SimInstance:
        """A new instance; what is not given is drawn deterministically from the seed.

        ``created_at`` (default: the start of the fleet's history) is when its backups begin.
        ``minute_precision``: its backup times are whole minutes, listed without seconds
        while the simulator's ``minute_times`` quirk is on. ``storage_type`` (``local_ssd`` or
        ``cloud_essd``): the drawn policy's backup method follows it, unless ``policy`` is given.
        """
        if instance_id is not None and instance_id in self._instances:
            raise ValueError(f"instance {instance_id} already exists")
        if storage_type not in (None, "local_ssd", "cloud_essd"):
            raise ValueError("storage_type must be local_ssd or cloud_essd")
        regions = (region_id,) if region_id else self.regions
        drawn = self._draw_instance(regions, 0.0, engine)
        changes: dict[str, object] = {
            "instance_type": instance_type,
            "master_instance_id": master_instance_id,
            "status": status,
        }
        optional = {
            "instance_id": instance_id,
            "engine_version": engine_version,
            "tags": dict(tags) if tags is not None else None,
            "resource_group_id": resource_group_id,
            "description": description,
            "policy": policy,
            "created_at": created_at,
            "minute_precision": minute_precision,
        }
        changes.update({name: value for name, value in optional.items() if value is not None})
        if storage_type is not None and storage_type != drawn.storage_type:
            changes["storage_type"] = storage_type
            changes.setdefault("policy", policy_for_storage(drawn, storage_type))
        instance = dataclasses.replace(drawn, **changes)  # type: ignore[arg-type]
        self._insert(instance)
        return instance

    def remove_instance(self, instance_id: str) -> SimInstance:
        """Deletes an instance: it leaves DescribeDBInstances and its backups become NotFound."""
        instance = self._instances.pop(instance_id)
        if instance.instance_type == "Primary":
            self._primaries[(instance.engine, instance.region_id)].remove(instance)
        if instance.master_instance_id in self._replicas:
            self._replicas[instance.master_instance_id].remove(instance_id)
        stores = (self._failure_rates, self._stop_after, self._added, self._cache, self._stuck_jobs)
        for store in stores:
            store.pop(instance_id, None)
        self._paid.pop(instance_id, None)
        self._logs.forget(instance_id)
        self._dr.forget(instance_id)
        return instance

    def _replace(self, instance_id: str, **changes: object) -> SimInstance:
        old = self._instances[instance_id]
        new = dataclasses.replace(old, **changes)  # type: ignore[arg-type]
        self._instances[instance_id] = new
        if old.instance_type == "Primary":
            group = self._primaries[(old.engine, old.region_id)]
            group[group.index(old)] = new
        self._cache.pop(instance_id, None)
        return new

    def set_status(self, instance_id: str, status: str) -> SimInstance:
        """DBInstanceStatus in DescribeDBInstances (``Running``, ``Restarting``, ...)."""
        return self._replace(instance_id, status=status)

    def set_policy(self, instance_id: str, policy: SimPolicy) -> SimInstance:
        """A new backup policy. It rewrites the whole schedule, past days included."""
        return self._replace(instance_id, policy=policy)

    # ----- knobs -----------------------------------------------------------------------------

    def set_failure_rate(
        self, instance_id: str, rate: float, *, since: float | None = None
    ) -> None:
        """Scheduled backups starting at or after ``since`` (default: all of them, history
        included) fail with probability ``rate``; which ones is fixed by the seed."""
        if not 0.0 <= rate <= 1.0:
            raise ValueError("rate must be in 0..1")
        self._require(instance_id)
        segments = self._failure_rates.setdefault(instance_id, [])
        if since is None:
            segments.clear()
            segments.append((float("-inf"), rate))
        else:
            segments.append((since, rate))
            segments.sort(key=lambda segment: segment[0])
        self._cache.pop(instance_id, None)

    def stop_backups(self, instance_id: str, after: float | None) -> None:
        """No scheduled backup starts after ``after`` (a "stale" instance); None resumes."""
        self._require(instance_id)
        if after is None:
            self._stop_after.pop(instance_id, None)
        else:
            self._stop_after[instance_id] = after
        self._cache.pop(instance_id, None)

    def add_backup(
        self,
        instance_id: str,
        *,
        start: float,
        end: float,
        status: str = "Success",
        backup_type: str = "FullBackup",
        size: int | None = None,
        method: str | None = None,
        mode: str = "Automated",
        initiator: str | None = None,
        available: bool = True,
    ) -> SimBackup:
        """A backup set by hand, on top of the scheduled ones. Visible once ``end <= now``.

        ``available=False``: a success that cannot be used to restore (IsAvail 0). On a
        minute-precision instance, ``start`` and ``end`` are floored to whole minutes.
        """
        if end < start:
            raise ValueError("end must not be before start")
        instance = self._require(instance_id)
        if instance.minute_precision:
            start, end = floor_minute(start), floor_minute(end) if math.isfinite(end) else end
        self._added_count += 1
        failed = status != "Success"
        chosen_method = method or instance.policy.method
        snapshot_elsewhere = chosen_method == "Snapshot" and instance.engine != "SQLServer"
        url: str | None = None if snapshot_elsewhere else ""
        backup = SimBackup(
            backup_id=str(_ADDED_ID_BASE + self._added_count),
            instance_id=instance_id,
            start=start,
            end=end,
            status=status,
            backup_type=backup_type,
            mode=mode,
            method=chosen_method,
            initiator=initiator or ("User" if mode == "Manual" else "System"),
            size=size if size is not None else (0 if failed else instance.base_size_bytes),
            engine=instance.engine,
            engine_version=instance.engine_version,
            region_id=instance.region_id,
            host_instance_id=instance.host_ids[0],
            storage_class="1" if instance.archive else "0",
            encryption=instance.encryption,
            checksum=str(self._added_count),
            download_url=url,
            intranet_download_url=url,
            available=available,
        )
        added = self._added.setdefault(instance_id, [])
        bisect.insort(added, backup, key=lambda b: b.start)
        return backup

    def stick_backup(self, instance_id: str, start: float, progress: float) -> SimBackup:
        """A full backup that started at ``start`` and never ends: DescribeBackupTasks lists it
        with Process fixed at ``progress`` (percent) until :meth:`unstick_backup`."""
        if not 0 <= progress <= 100:
            raise ValueError("progress must be in 0..100")
        if instance_id in self._stuck_jobs:
            raise ValueError(f"instance {instance_id} already has a stuck backup")
        backup = self.add_backup(instance_id, start=start, end=math.inf)
        self._stuck_jobs[instance_id] = (backup.backup_id, progress)
        return backup

    def unstick_backup(self, instance_id: str, end: float) -> SimBackup:
        """The stuck backup finishes at ``end``: DescribeBackups lists it from then on, and
        DescribeBackupTasks no longer does."""
        backup_id, _ = self._stuck_jobs.pop(instance_id)
        added = self._added[instance_id]
        (stuck,) = [b for b in added if b.backup_id == backup_id]
        if end < stuck.start:
            raise ValueError("end must not be before the start")
        if self._instances[instance_id].minute_precision:
            end = floor_minute(end)
        added.remove(stuck)
        done = dataclasses.replace(stuck, end=end)
        bisect.insort(added, done, key=lambda b: b.start)
        return done

    def stuck_process(self, backup: SimBackup) -> float | None:
        stuck = self._stuck_jobs.get(backup.instance_id)
        return stuck[1] if stuck is not None and stuck[0] == backup.backup_id else None

    def set_log_backup(self, instance_id: str, on: bool) -> SimInstance:
        """Log backup on or off (EnableBackupLog), for the whole history, like ``set_policy``.
        Off, MySQL, PostgreSQL and MariaDB list no log files; SQL Server backs its logs up
        with each data backup instead (it cannot stop)."""
        policy = self._require(instance_id).policy
        return self._replace(instance_id, policy=dataclasses.replace(policy, log_backup=on))

    def add_log_gap(self, instance_id: str, start: float, end: float) -> None:
        """No log file covers [start, end] (on SQL Server: widened to whole minutes); the file
        it starts in closes at ``start`` and a new one opens at ``end``."""
        self._logs.add_gap(self._require(instance_id), start, end)

    def clear_log_gaps(self, instance_id: str) -> None:
        """A chain without holes: the drawn gap (if any) and every added one are gone."""
        self._require(instance_id)
        self._logs.clear_gaps(instance_id)

    def stick_log_upload(self, instance_id: str, since: float | None) -> None:
        """Log files that close after ``since`` stay Uploading (SQL Server: are never listed);
        None lets them complete."""
        self._require(instance_id)
        self._logs.stick_uploads(instance_id, since)

    def _require(self, instance_id: str) -> SimInstance:
        try:
            return self._instances[instance_id]
        except KeyError:
            raise KeyError(f"unknown instance {instance_id}") from None

    # ----- backups ---------------------------------------------------------------------------

    def _failure_rate_at(self, instance_id: str, start: float) -> float:
        rate = self.failure_rate
        for since, segment_rate in self._failure_rates.get(instance_id, ()):
            if since > start:
                break
            rate = segment_rate
        return rate

    def _day(self, instance: SimInstance, day: int) -> tuple[SimBackup, ...]:
        cache = self._cache.setdefault(instance.instance_id, {})
        found = cache.get(day)
        if found is None:
            if len(cache) >= _CACHE_DAYS:
                cache.clear()
            iid = instance.instance_id
            found = day_backups(
                self.seed,
                instance,
                day,
                lambda start: self._failure_rate_at(iid, start),
                self._stop_after.get(iid),
            )
            cache[day] = found
        return found

    def _iter_visible(
        self, instance: SimInstance, start: float, end: float, now: float
    ) -> Iterator[SimBackup]:
        """Unordered: completed backups (``end <= now``) starting in ``[start, end]``."""
        if self.expire_after_retention:
            start = max(start, now - instance.policy.retention_days * DAY)
        low = max(start, instance.created_at)
        high = min(end, now)
        if low <= high:
            for day in range(int(low // DAY), int(high // DAY) + 1):
                for backup in self._day(instance, day):
                    if start <= backup.start <= end and backup.end <= now:
                        yield backup
        added = self._added.get(instance.instance_id)
        if added:
            first = bisect.bisect_left(added, start, key=lambda b: b.start)
            last = bisect.bisect_right(added, end, key=lambda b: b.start)
            for backup in added[first:last]:
                if backup.end <= now:
                    yield backup

    def _running(self, instance: SimInstance, now: float) -> Iterator[SimBackup]:
        for day in range(int((now - RUNNING_DAYS * DAY) // DAY), int(now // DAY) + 1):
            yield from (b for b in self._day(instance, day) if b.start <= now < b.end)
        added = self._added.get(instance.instance_id, [])
        last = bisect.bisect_right(added, now, key=lambda b: b.start)
        yield from (b for b in added[:last] if b.end > now)

    def backups_between(
        self, instance_id: str, start: float, end: float, now: float
    ) -> list[SimBackup]:
        """Completed backups (``end <= now``) whose start is in ``[start, end]``, newest first
        (by start, then BackupId), as DescribeBackups lists them."""
        instance = self._require(instance_id)
        found = list(self._iter_visible(instance, start, end, now))
        found.sort(key=lambda b: (b.start, int(b.backup_id)), reverse=True)
        return found
