"""Deterministic generation of instances and of each instance's daily backups.

Pure functions of (seed, instance, day): nothing is stored here, so a fleet of any size costs
nothing until a day is asked for, and the same seed always gives the same fleet and backups.
"""

from __future__ import annotations

import dataclasses
import hashlib
import math
import random
import string
import struct
from collections.abc import Callable, Container, Mapping, Sequence

from exporter.simulator.models import SimBackup, SimInstance, SimPolicy
from exporter.simulator.timefmt import DAY, format_second

_ALNUM = string.ascii_lowercase + string.digits
_TEAMS = ("payments", "orders", "search", "identity", "analytics", "platform", "billing")
_APPS = ("api", "core", "ledger", "catalog", "events", "auth")
_ENVS = (("prod", 5), ("staging", 3), ("dev", 2))

# Real instance ids start with a region code (rm-bp1... is Hangzhou, rm-uf6... Shanghai);
# unknown regions get a code derived from their name.
_REGION_CODES = {
    "cn-hangzhou": "bp1",
    "cn-shanghai": "uf6",
    "cn-beijing": "2ze",
    "cn-shenzhen": "wz9",
    "cn-hongkong": "j6c",
    "ap-southeast-1": "gs5",
}
_ID_BODY = 15  # characters after the "rm-" / "pgm-" prefix, as in rm-uf6wjk5xxxxxxxx
_ID_PREFIX = {"MySQL": "rm-", "SQLServer": "rm-", "MariaDB": "rm-", "PostgreSQL": "pgm-"}
_ENGINE_WEIGHTS = (("MySQL", 55), ("PostgreSQL", 25), ("SQLServer", 12), ("MariaDB", 8))
_VERSIONS = {
    "MySQL": (("5.6", 1), ("5.7", 3), ("8.0", 6)),
    "PostgreSQL": (("13", 1), ("14", 2), ("15", 2), ("16", 3)),
    "SQLServer": (("2019_std_ha", 4), ("2022_std_ha", 2), ("2017_ent", 1), ("2016_web", 1)),
    "MariaDB": (("10.3", 1),),
}
_CLASSES = {
    "MySQL": ("mysql.n2.medium.2c", "mysql.x4.large.2c", "mysql.n4.xlarge.2c"),
    "PostgreSQL": ("pg.n2.medium.2c", "pg.x4.large.2c"),
    "SQLServer": ("mssql.x4.medium.e2", "mssql.x8.large.e2"),
    "MariaDB": ("mariadb.x4.large.2c",),
}
_WEEKDAY_SETS = (
    (frozenset(range(7)), 5),
    (frozenset({0, 2, 4, 6}), 2),
    (frozenset({1, 3, 5}), 2),
    (frozenset({0, 3}), 1),
)

# Slots make BackupIds unique: id = 10**8 + serial * 10**7 + (day % 10**5) * 100 + slot.
SLOT_FULL = 0
SLOT_INCREMENTAL = 1
SLOT_MANUAL = 2
MANUAL_DAY_RATE = 0.03  # share of days with one extra user-initiated full backup
MINUTE_PRECISION_RATE = 0.25  # share of instances whose backup times are whole minutes
UNUSABLE_RATE = 0.03  # share of successful backups that cannot be used to restore (IsAvail 0)


def _weighted(rng: random.Random, choices: Sequence[tuple[str, int]]) -> str:
    return rng.choices([c for c, _ in choices], weights=[w for _, w in choices])[0]


def _hash_text(*parts: object, length: int) -> str:
    digest = hashlib.blake2b("|".join(map(str, parts)).encode(), digest_size=32).digest()
    return "".join(_ALNUM[b % len(_ALNUM)] for b in digest[:length])


def _hash_unit(*parts: object) -> float:
    """A number in [0, 1) from its own hash: deciding something new this way leaves every
    existing random stream, and so every existing fleet, unchanged."""
    digest = hashlib.blake2b("|".join(map(str, parts)).encode(), digest_size=8).digest()
    return int.from_bytes(digest, "little") / 2.0**64


def floor_minute(epoch: float) -> float:
    return float(epoch // 60 * 60)


def region_code(region_id: str) -> str:
    return _REGION_CODES.get(region_id) or _hash_text("region", region_id, length=3)


def zone_for(region_id: str, letter: str) -> str:
    # ap-southeast-1a, but cn-hangzhou-h
    return f"{region_id}{letter}" if region_id[-1].isdigit() else f"{region_id}-{letter}"


def resource_group_id(seed: int, team: str, env: str) -> str:
    return "rg-acfm" + _hash_text(seed, "rg", team, env, length=11)


def _new_id(rng: random.Random, engine: str, region_id: str, taken: Container[str]) -> str:
    code = region_code(region_id)
    while True:
        body = code + "".join(rng.choices(_ALNUM, k=_ID_BODY - len(code)))
        candidate = _ID_PREFIX[engine] + body
        if candidate not in taken:
            return candidate


def _policy(rng: random.Random, engine: str, storage: str) -> SimPolicy:
    if storage == "cloud_essd":
        method = "Snapshot"
    else:
        method = "Logical" if engine == "MySQL" and rng.random() < 0.1 else "Physical"
    if engine == "SQLServer":
        incremental = method == "Physical"
    else:
        incremental = engine == "MySQL" and method == "Physical" and rng.random() < 0.3
    weekdays = rng.choices(
        [days for days, _ in _WEEKDAY_SETS], weights=[w for _, w in _WEEKDAY_SETS]
    )[0]
    return SimPolicy(
        weekdays=weekdays,
        window_start_hour=rng.randrange(24),
        retention_days=rng.choice((7, 7, 7, 14, 30, 365)),
        log_backup=rng.random() < 0.8,
        log_retention_days=7,
        method=method,
        category="Flash" if method == "Snapshot" and rng.random() < 0.25 else "Standard",
        incremental=incremental,
    )


def policy_for_storage(instance: SimInstance, storage: str) -> SimPolicy:
    """The instance's policy with a backup method that fits ``storage`` (cloud disks back up by
    snapshot, local disks never do), for an instance moved to another storage type."""
    policy = instance.policy
    if storage == "cloud_essd":
        method = "Snapshot"
    elif policy.method == "Snapshot":
        method = "Physical"
    else:
        return policy
    incremental = method == "Physical" and (instance.engine == "SQLServer" or policy.incremental)
    return dataclasses.replace(policy, method=method, category="Standard", incremental=incremental)


def _storage(rng: random.Random, engine: str, version: str) -> str:
    share_on_cloud_disk = {"MySQL": 0.35, "PostgreSQL": 0.6, "SQLServer": 0.5, "MariaDB": 1.0}
    if engine == "MySQL" and version == "5.6":
        return "local_ssd"  # only 5.6 reports ConsistentTime, which needs physical backups
    return "cloud_essd" if rng.random() < share_on_cloud_disk[engine] else "local_ssd"


def _master(
    rng: random.Random,
    engine: str,
    masters: Sequence[SimInstance],
    readonly_fraction: float,
) -> SimInstance | None:
    """The primary a new instance replicates, or None for a primary of its own."""
    readonly = bool(masters) and engine != "MariaDB" and rng.random() < readonly_fraction
    return rng.choice(masters) if readonly else None


def _version_and_tags(
    rng: random.Random, engine: str, master: SimInstance | None
) -> tuple[str, dict[str, str]]:
    """A replica keeps its primary's version, env and team."""
    version = master.engine_version if master else _weighted(rng, _VERSIONS[engine])
    env = master.tags["env"] if master else _weighted(rng, _ENVS)
    team = master.tags["team"] if master else rng.choice(_TEAMS)
    tags = {"env": env, "team": team}
    if rng.random() < 0.5:
        tags["app"] = rng.choice(_APPS)
    return version, tags


def _category(rng: random.Random, engine: str, version: str) -> str:
    if version.endswith("_web") or (rng.random() < 0.15 and engine != "SQLServer"):
        return "Basic"
    return "AlwaysOn" if version.endswith("_ent") else "HighAvailability"


def _description(serial: int, engine: str, tags: Mapping[str, str], readonly: bool) -> str:
    return f"{tags['team']}-{engine.lower()}-{tags['env']}-{serial:04d}" + (
        "-ro" if readonly else ""
    )


def _base_size(rng: random.Random) -> int:
    """Log-uniform from 50 MB to 300 GB: most instances small, a few large."""
    return int(math.exp(rng.uniform(math.log(5e7), math.log(3e11))))


def _throughput(rng: random.Random) -> float:
    """Backup bytes per second: 300 GB at 60 MB/s is about 80 minutes; small instances take
    a few minutes."""
    return rng.uniform(25e6, 120e6)


def _network(seed: int, region: str, env: str) -> tuple[str, str]:
    """VPC and vSwitch ids, shared by the instances of one region and env."""
    code = region_code(region)
    vpc_id = f"vpc-{code}" + _hash_text(seed, "vpc", region, env, length=17)
    vswitch_id = f"vsw-{code}" + _hash_text(seed, "vsw", region, env, length=17)
    return vpc_id, vswitch_id


def make_instance(
    *,
    seed: int,
    serial: int,
    created_at: float,
    regions: Sequence[str],
    taken: Container[str],
    primaries: Mapping[tuple[str, str], Sequence[SimInstance]],
    readonly_fraction: float,
    engine: str | None = None,
) -> SimInstance:
    """One instance, drawn from its own stream so it does not depend on the fleet's size.

    A read-only replica copies one of ``primaries[(engine, region)]``; it has no backups.
    Every draw happens in a fixed order (keyword arguments are evaluated left to right):
    reordering them would change every fleet.
    """
    rng = random.Random(f"{seed}/instance/{serial}")
    chosen_engine = engine or _weighted(rng, _ENGINE_WEIGHTS)
    region = regions[rng.randrange(len(regions))]
    masters = primaries.get((chosen_engine, region), ())
    master = _master(rng, chosen_engine, masters, readonly_fraction)
    version, tags = _version_and_tags(rng, chosen_engine, master)
    storage = _storage(rng, chosen_engine, version)
    category = _category(rng, chosen_engine, version)
    hosts = tuple(str(rng.randrange(1_000_000, 99_999_999)) for _ in range(2))
    instance_id = _new_id(rng, chosen_engine, region, taken)
    vpc_id, vswitch_id = _network(seed, region, tags["env"])
    return SimInstance(
        instance_id=instance_id,
        serial=serial,
        engine=chosen_engine,
        engine_version=version,
        region_id=region,
        zone_id=zone_for(region, rng.choice("abchijk")),
        description=_description(serial, chosen_engine, tags, master is not None),
        instance_type="Readonly" if master else "Primary",
        status="Running",
        resource_group_id=resource_group_id(seed, tags["team"], tags["env"]),
        tags=tags,
        policy=master.policy if master else _policy(rng, chosen_engine, storage),
        created_at=created_at,
        storage_type=storage,
        category=category,
        instance_class=rng.choice(_CLASSES[chosen_engine]),
        master_instance_id=master.instance_id if master else "",
        base_size_bytes=_base_size(rng),
        daily_growth=rng.uniform(0.0005, 0.006),
        throughput_bytes_per_second=_throughput(rng),
        encryption='{"EncryptionType":"TDE"}' if rng.random() < 0.1 else "{}",
        archive=rng.random() < 0.05,
        host_ids=hosts[:1] if category == "Basic" else hosts,
        databases=("app", "reporting") if chosen_engine == "SQLServer" else (),
        vpc_id=vpc_id,
        vswitch_id=vswitch_id,
        minute_precision=_hash_unit(seed, "minute", instance_id) < MINUTE_PRECISION_RATE,
    )


def _draws(seed: int, instance_id: str, day: int) -> tuple[int, ...]:
    """Sixteen 32-bit values that decide everything about one instance-day.

    0 full-backup jitter, 1 size wobble, 2-3 incremental time and size, 4-6 duration per slot,
    7-9 failure roll per slot, 10-11 manual backup roll and time, 12 host, 13 consistent time,
    14-15 checksum.
    """
    digest = hashlib.blake2b(f"{seed}|{instance_id}|{day}".encode(), digest_size=64).digest()
    return struct.unpack("<16I", digest)


def _unit(value: int) -> float:
    return value / 4294967296.0


def weekday_of(day: int) -> int:
    return (day + 3) % 7  # 1970-01-01 (day 0) was a Thursday


def full_backup_start(seed: int, instance: SimInstance, day: int) -> float | None:
    """Start of the scheduled full backup on a UTC day, or None when the policy skips it."""
    if weekday_of(day) not in instance.policy.weekdays:
        return None
    jitter = int(_unit(_draws(seed, instance.instance_id, day)[0]) * 3000)
    return _on_grid(instance, day * DAY + instance.policy.window_start_hour * 3600 + jitter)


def _on_grid(instance: SimInstance, epoch: float) -> float:
    # Minute-precision instances: whole minutes, so what is listed is exactly the truth.
    return floor_minute(epoch) if instance.minute_precision else epoch


def _size_on(instance: SimInstance, day: int, wobble: float) -> int:
    age = max(0.0, day - instance.created_at // DAY)
    growth = (1.0 + instance.daily_growth) ** age
    return int(instance.base_size_bytes * growth * (0.995 + 0.01 * wobble))


def _duration(instance: SimInstance, size: int, method: str, wobble: float) -> float:
    if method == "Snapshot":
        return float(int(60 + 540 * wobble))  # snapshots take minutes whatever the size
    rate = instance.throughput_bytes_per_second * (0.25 if method == "Logical" else 1.0)
    return float(int(120 + 180 * wobble + size / rate * (0.85 + 0.3 * wobble)))


def backup_id(serial: int, day: int, slot: int) -> str:
    return str(10**8 + serial * 10**7 + (day % 10**5) * 100 + slot)


def _end(
    instance: SimInstance, draws: tuple[int, ...], slot: int, start: float, size: int, failed: bool
) -> float:
    duration = _duration(instance, size, instance.policy.method, _unit(draws[slot + 4]))
    if failed:
        # A failed backup stops partway and leaves nothing usable.
        share = 0.1 + 0.6 * _unit((draws[slot + 7] * 2654435761) & 0xFFFFFFFF)
        duration = max(30.0, float(int(duration * share)))
    end = start + duration
    if instance.minute_precision:
        end = max(floor_minute(end), start + 60)  # start is on the grid already
    return end


def _download_urls(
    instance: SimInstance, host: str, start: float, failed: bool
) -> tuple[str | None, str | None]:
    """BackupDownloadURL and BackupIntranetDownloadURL ("" when there is nothing to fetch)."""
    method = instance.policy.method
    if method == "Snapshot" and instance.engine != "SQLServer":
        return None, None  # cloud-disk instances do not return the fields at all
    if failed or method == "Snapshot":
        return "", ""
    region = instance.region_id
    stamp = "".join(ch for ch in format_second(start) if ch.isdigit())
    path = f"custins{instance.serial}/hins{host}_{stamp}.tar.gz?Expires=****"
    return (
        f"http://rdsbak-{region}-v3.oss-{region}.aliyuncs.com/{path}",
        f"http://rdsbak-{region}-v3.oss-{region}-internal.aliyuncs.com/{path}",
    )


def _meta_status(instance: SimInstance, failed: bool) -> str:
    if instance.engine == "MySQL" and instance.policy.method == "Physical":
        return "EMPTY" if failed else "OK"
    return ""


def _backup(
    instance: SimInstance,
    *,
    draws: tuple[int, ...],
    day: int,
    slot: int,
    start: float,
    size: int,
    backup_type: str,
    manual: bool,
    failed: bool,
    available: bool,
) -> SimBackup:
    method = instance.policy.method
    end = _end(instance, draws, slot, start, size, failed)
    host = instance.host_ids[(draws[12] + slot) % len(instance.host_ids)]
    download, intranet = _download_urls(instance, host, start, failed)
    is_mysql56 = instance.engine == "MySQL" and instance.engine_version == "5.6"
    return SimBackup(
        backup_id=backup_id(instance.serial, day, slot),
        instance_id=instance.instance_id,
        start=start,
        end=end,
        status="Failed" if failed else "Success",
        backup_type=backup_type,
        mode="Manual" if manual else "Automated",
        method=method,
        initiator="User" if manual else "System",
        size=0 if failed else size,
        engine=instance.engine,
        engine_version=instance.engine_version,
        region_id=instance.region_id,
        host_instance_id=host,
        consistent_time=int(end) - draws[13] % 20 if is_mysql56 and not failed else 0,
        storage_class="1" if instance.archive else "0",
        encryption=instance.encryption,
        checksum=str(((draws[14] << 32) | draws[15]) ^ slot),
        meta_status=_meta_status(instance, failed),
        databases=instance.databases if not failed and method == "Physical" else (),
        download_url=download,
        intranet_download_url=intranet,
        available=available,
    )


def day_backups(
    seed: int,
    instance: SimInstance,
    day: int,
    failure_rate_at: Callable[[float], float],
    stop_after: float | None,
) -> tuple[SimBackup, ...]:
    """Every backup that starts on one UTC day, oldest first (completed or not: the caller
    decides visibility against its clock).
    """
    if not instance.has_backups:
        return ()
    draws = _draws(seed, instance.instance_id, day)
    day_start = day * DAY
    size_today = _size_on(instance, day, _unit(draws[1]))
    planned: list[tuple[int, float, int, str, bool]] = []
    full_start = full_backup_start(seed, instance, day)
    if full_start is not None:
        planned.append((SLOT_FULL, full_start, size_today, "FullBackup", False))
    if instance.policy.incremental:
        hour = (instance.policy.window_start_hour + 12) % 24
        start = _on_grid(instance, day_start + hour * 3600 + int(_unit(draws[2]) * 3000))
        size = int(size_today * (0.02 + 0.08 * _unit(draws[3])))
        planned.append((SLOT_INCREMENTAL, start, size, "IncrementalBackup", False))
    if _unit(draws[10]) < MANUAL_DAY_RATE:
        start = _on_grid(instance, day_start + int(_unit(draws[11]) * 80000))
        planned.append((SLOT_MANUAL, start, size_today, "FullBackup", True))
    backups = []
    for slot, start, size, backup_type, manual in sorted(planned, key=lambda p: p[1]):
        if start < instance.created_at or (stop_after is not None and start > stop_after):
            continue
        failed = _unit(draws[slot + 7]) < failure_rate_at(start)
        unusable = _hash_unit(seed, "unusable", instance.instance_id, day, slot) < UNUSABLE_RATE
        backups.append(
            _backup(
                instance,
                draws=draws,
                day=day,
                slot=slot,
                start=start,
                size=size,
                backup_type=backup_type,
                manual=manual,
                failed=failed,
                available=failed or not unusable,  # only successes can be unusable
            )
        )
    return tuple(backups)
