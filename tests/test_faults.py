"""The fault matrix: each bad day the API can have, and what the exporter does about it.

Every case runs the real exporter against the simulator over loopback with a manual clock:
a fault starts, a successful and a failed backup happen during it, the fault clears, and then
the exporter must still be serving, its collect metrics must have told the truth throughout,
and no backup may be lost or counted twice. docs/faults.md lists the cases.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import aiohttp
import pytest
from aiohttp.abc import AbstractResolver, ResolveResult
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from exporter.aliyun.client import RdsClient, RetryPolicy
from exporter.aliyun.credentials import Credentials
from exporter.aliyun.limiter import RequestLimiter
from exporter.collector import BackupCollector
from exporter.config import PollingConfig
from exporter.duties import duties_for
from exporter.duties.backups import REREAD_EVERY
from exporter.poller import Poller
from exporter.simulator import Fleet, SimulatedRds
from exporter.state import FleetState, Target
from tests.clock import ManualClock
from tests.harness import DAY, INTERVAL, Harness, key, running, success_key
from tests.helpers import KEY_ID, NOW, SECRET

Body = dict[str, Any]


def corrupt_types(action: str, params: Mapping[str, str], body: Body) -> Body:
    for item in body.get("Items", {}).get("Backup", []):
        item["BackupSize"] = "a lot"
        item["IsAvail"] = "maybe"
        item["BackupEndTime"] = 1_700_000_000
        item["ConsistentTime"] = {"odd": True}
    body["TotalRecordCount"] = None
    body["TotalEcsSnapshotSize"] = "n/a"
    return body


def drop_fields(action: str, params: Mapping[str, str], body: Body) -> Body:
    for item in body.get("Items", {}).get("Backup", []):
        for name in ("BackupEndTime", "BackupSize", "BackupStatus", "BackupMethod"):
            item.pop(name, None)
    body.pop("TotalRecordCount", None)
    return body


def duplicate_across_pages() -> Callable[[str, Mapping[str, str], Body], Body]:
    """Page 2 and later also carry the first item of page 1 (as if the list shifted while it
    was read), so the same backup arrives on two different pages."""
    first_items: dict[tuple[str, str, str], Body] = {}

    def transform(action: str, params: Mapping[str, str], body: Body) -> Body:
        items = body.get("Items", {}).get("Backup", [])
        window = (params.get("DBInstanceId", ""), params["StartTime"], params["EndTime"])
        if params.get("PageNumber", "1") == "1":
            if items:
                first_items[window] = dict(items[0])
        elif window in first_items:
            items.append(dict(first_items[window]))
        return body

    return transform


def drifting_totals() -> Callable[[str, Mapping[str, str], Body], Body]:
    """The total grows between pages, as backups that finish while the list is read do (a total
    that cannot be right at all is tests/test_client.py's)."""
    rng = random.Random(4)

    def transform(action: str, params: Mapping[str, str], body: Body) -> Body:
        total = int(body.get("TotalRecordCount") or 0)
        body["TotalRecordCount"] = str(total + rng.randint(0, 3))
        return body

    return transform


@dataclass(frozen=True)
class Fault:
    name: str
    start: Callable[[Harness, str], None]
    stop: Callable[[Harness, str], None]
    collect_during: float  # what collect_success must say for the instance while it lasts
    api: dict[str, Any] | None = None
    # Longer than the overlap, so only the watermark can bring back what happened meanwhile.
    duration: float = 1.5 * DAY
    # How long after the fault ends everything must be back.
    recovery: float = 2 * INTERVAL


def per_instance(attribute: str, value: object) -> Fault:
    def start(h: Harness, iid: str) -> None:
        setattr(h.sim.faults.for_instance(iid), attribute, value)

    def stop(h: Harness, iid: str) -> None:
        setattr(h.sim.faults.for_instance(iid), attribute, type(value)())

    return Fault(attribute, start, stop, 0.0)


def transform(
    function: Callable[[str, Mapping[str, str], Body], Body],
    collect_during: float = 1.0,
    recovery: float = 2 * INTERVAL,
) -> Fault:
    def start(h: Harness, iid: str) -> None:
        def only_this_instance(action: str, params: Mapping[str, str], body: Body) -> Body:
            return function(action, params, body) if params.get("DBInstanceId") == iid else body

        h.sim.faults.transform = only_this_instance

    def stop(h: Harness, iid: str) -> None:
        h.sim.faults.transform = None

    name = getattr(function, "__name__", "transform")
    return Fault(name, start, stop, collect_during, recovery=recovery)


def clock_skew() -> Fault:
    def start(h: Harness, iid: str) -> None:
        h.sim.clock = lambda: h.clock.time() + 20 * 60  # the server's clock runs 20 min ahead

    def stop(h: Harness, iid: str) -> None:
        h.sim.clock = h.clock.time

    return Fault("clock_skew", start, stop, 0.0)


def key_revoked() -> Fault:
    def start(h: Harness, iid: str) -> None:
        h.sim.remove_credentials(KEY_ID)

    def stop(h: Harness, iid: str) -> None:
        h.sim.add_credentials(KEY_ID, SECRET)

    return Fault("auth_error_that_heals", start, stop, 0.0)


def latency(seconds: float) -> Fault:
    base = per_instance("latency", seconds)
    # Real seconds on loopback (the client's timeout runs on the real clock): a short timeout
    # and a fault of two polls keep the test fast. The backups made during the fault end
    # within 700 s of its start, so the two intervals after it still read them.
    return Fault(
        "timeout",
        base.start,
        base.stop,
        0.0,
        api={"timeout": "1s", "retries": 1},
        duration=2 * INTERVAL,
    )


FAULTS = [
    Fault(
        "throttling_storm",
        per_instance("throttle_rate", 1.0).start,
        per_instance("throttle_rate", 1.0).stop,
        0.0,
    ),
    Fault(
        "5xx_burst",
        per_instance("error_5xx_rate", 1.0).start,
        per_instance("error_5xx_rate", 1.0).stop,
        0.0,
    ),
    Fault("outage", per_instance("outage", True).start, per_instance("outage", True).stop, 0.0),
    Fault(
        "connection_reset",
        per_instance("reset_rate", 1.0).start,
        per_instance("reset_rate", 1.0).stop,
        0.0,
    ),
    Fault(
        "truncated_body",
        per_instance("truncate_rate", 1.0).start,
        per_instance("truncate_rate", 1.0).stop,
        0.0,
    ),
    Fault(
        "html_error_page",
        per_instance("html_error_rate", 1.0).start,
        per_instance("html_error_rate", 1.0).stop,
        0.0,
    ),
    latency(1.5),
    # Records without a usable end time or status are skipped (the poll goes on, the others
    # are folded in) and their windows read again, at most hourly, until they can be read:
    # nothing is lost.
    transform(corrupt_types, collect_during=1.0, recovery=REREAD_EVERY + 2 * INTERVAL),
    transform(drop_fields, collect_during=1.0, recovery=REREAD_EVERY + 2 * INTERVAL),
    Fault(
        "duplicate_across_pages",
        transform(duplicate_across_pages()).start,
        transform(duplicate_across_pages()).stop,
        1.0,
    ),
    Fault(
        "totals_change_between_pages",
        transform(drifting_totals()).start,
        transform(drifting_totals()).stop,
        1.0,
    ),
    clock_skew(),
    key_revoked(),
]


def series(
    samples: dict[str, dict[frozenset[tuple[str, str]], float]], name: str
) -> dict[frozenset[tuple[str, str]], float]:
    return samples.get(name, {})


@pytest.mark.slow
@pytest.mark.parametrize("fault", FAULTS, ids=[f.name for f in FAULTS])
async def test_fault_then_recovery_loses_and_doubles_nothing(fault: Fault) -> None:
    async with running(instances=3, page_size=30, api=fault.api) as h:
        iid = next(iter(h.fleet.instances))
        others = [i for i in h.fleet.instances if i != iid]
        k = success_key(iid)
        # Enough manual backups that a day needs two pages of 30 (paging faults need pages).
        for n in range(35):
            h.fleet.add_backup(iid, start=NOW - DAY / 2 + n * 60, end=NOW - DAY / 2 + n * 60 + 30)
        await h.advance(INTERVAL)
        before = await h.scrape()
        failures_before = before["aliyun_rds_backup_failures_total"][k]

        fault.start(h, iid)
        now = h.clock.time()
        h.fleet.add_backup(iid, start=now + 60, end=now + 600, size=123_456)
        h.fleet.add_backup(iid, start=now + 120, end=now + 700, status="Failed")
        await h.advance(fault.duration)
        during = await h.scrape()  # still serving
        assert series(during, "aliyun_rds_backup_collect_success")[key(instance_id=iid)] == (
            fault.collect_during
        )
        if fault.name not in ("clock_skew", "auth_error_that_heals"):
            for other in others:  # only the faulty instance is affected
                assert during["aliyun_rds_backup_collect_success"][key(instance_id=other)] == 1

        fault.stop(h, iid)
        await h.advance(fault.recovery)
        after = await h.scrape()
        now = h.clock.time()
        for instance in h.fleet.instances:
            assert after["aliyun_rds_backup_collect_success"][key(instance_id=instance)] == 1
        newest = h.fleet.newest_success(iid, "FullBackup", now=now)
        assert newest is not None
        assert after["aliyun_rds_backup_last_success_timestamp_seconds"][k] == newest.end
        assert after["aliyun_rds_backup_last_success_size_bytes"][k] == newest.size
        assert after["aliyun_rds_backup_failures_total"][k] == failures_before + 1
        assert after["aliyun_rds_backup_sets"][k] == h.fleet.count(
            iid, backup_type="FullBackup", since=now - 8 * DAY, now=now
        )
        assert after["aliyun_rds_backup_failed_sets"][k] == h.fleet.count(
            iid, backup_type="FullBackup", status="Failed", since=now - 8 * DAY, now=now
        )


class FailingResolver(AbstractResolver):
    """Name resolution that fails, as when DNS is down: nothing real to break on loopback."""

    def __init__(self) -> None:
        self.failing = True

    async def resolve(self, host: str, port: int = 0, family: int = 0) -> list[ResolveResult]:
        if self.failing:
            raise OSError(-2, "Name or service not known")
        return [
            ResolveResult(hostname=host, host="127.0.0.1", port=port, family=2, proto=0, flags=0)
        ]

    async def close(self) -> None:
        return None


class RotatingCredentials:
    """Temporary credentials that expire and are replaced shortly before, as the official STS
    providers do; the simulator rejects each one once it has expired."""

    def __init__(
        self, clock: ManualClock, sim: SimulatedRds, lifetime: float, margin: float
    ) -> None:
        self._clock = clock
        self._sim = sim
        self._lifetime = lifetime
        self._margin = margin
        self.issued = 0
        self._current: Credentials | None = None
        self._expires = 0.0

    async def get(self) -> Credentials:
        if self._current is None or self._clock.time() >= self._expires - self._margin:
            self.issued += 1
            self._expires = self._clock.time() + self._lifetime
            token = f"CAIS-token-{self.issued}"
            key_id = f"STS.key{self.issued:04d}"
            self._sim.add_sts_credentials(key_id, "sts-secret", token, expires_at=self._expires)
            self._current = Credentials(key_id, "sts-secret", token)
        return self._current

    @property
    def description(self) -> str:
        return "rotating STS credentials"


class Recorder:
    def __init__(self) -> None:
        self.codes: list[str] = []

    def observe(self, action: str, code: str, seconds: float) -> None:
        self.codes.append(code)


def start_poller(
    sim: SimulatedRds,
    clock: ManualClock,
    session: aiohttp.ClientSession,
    provider: Any,
    base_url: str,
    recorder: Recorder | None = None,
) -> tuple[Poller, FleetState]:
    state = FleetState()
    client = RdsClient(
        session,
        provider,
        RequestLimiter(20, 4, clock),  # 20/s: each first poll spans virtual seconds
        clock,
        endpoint=base_url,
        retry=RetryPolicy(retries=2),
        observer=recorder,
        rng=random.Random(1),
    )
    polling = PollingConfig(INTERVAL, 8 * DAY, DAY, DAY - INTERVAL, policy_refresh=0)
    poller = Poller(state, {"default": client}, polling, clock, duties_for(polling, clock))
    poller.set_targets(Target(iid, "cn-hangzhou") for iid in sim.fleet.instances)
    return poller, state


def render(
    state: FleetState, clock: ManualClock
) -> dict[str, dict[frozenset[tuple[str, str]], float]]:
    registry = CollectorRegistry()
    registry.register(BackupCollector(state, clock, interval_text="5m", version="x"))
    samples: dict[str, dict[frozenset[tuple[str, str]], float]] = {}
    for family in text_string_to_metric_families(generate_latest(registry).decode()):
        for sample in family.samples:
            samples.setdefault(sample.name, {})[frozenset(sample.labels.items())] = sample.value
    return samples


def assert_matches_ground_truth(fleet: Fleet, state: FleetState, clock: ManualClock) -> None:
    samples = render(state, clock)
    now = clock.time()
    for iid in fleet.instances:
        newest = fleet.newest_success(iid, "FullBackup", now=now)
        assert newest is not None
        got = samples["aliyun_rds_backup_last_success_timestamp_seconds"][success_key(iid)]
        assert got == newest.end


async def test_credentials_expiring_mid_poll_are_refreshed() -> None:
    holder: list[int] = []
    clock = ManualClock(start=NOW, quiet_when=lambda: clock.sleeping >= holder[0])
    fleet = Fleet.generate(seed=2, instances=3, now=NOW, readonly_fraction=0.0)
    holder.append(len(fleet.instances))
    sim = SimulatedRds(fleet, {}, clock=clock.time)
    # Each token lives a second (about 20 calls at 20/s); a first poll is 24 calls, so tokens
    # expire and are replaced in the middle of polls.
    provider = RotatingCredentials(clock, sim, lifetime=1.0, margin=0.2)
    async with sim.serve("127.0.0.1", 0) as url, aiohttp.ClientSession() as session:
        poller, state = start_poller(sim, clock, session, provider, url)
        for _ in range(3):
            await clock.advance(INTERVAL)
        await poller.stop()
    calls = [r for r in sim.requests if r.action == "DescribeBackups"]
    assert {r.code for r in calls} == {"OK"}  # none was used after it expired
    keys_per_call = [r.access_key_id for r in calls]
    assert max(keys_per_call.count(k) for k in set(keys_per_call)) >= 8  # reused, not per call
    first_polls = {
        iid: [r.access_key_id for r in calls[:24] if r.instance_id == iid]
        for iid in fleet.instances
    }
    # Some first poll (8 windows) changed keys half way: they expired and were replaced mid-poll.
    assert any(len(set(keys)) > 1 for keys in first_polls.values()), first_polls
    assert all(s.collect_success for s in state.instances.values())
    assert_matches_ground_truth(fleet, state, clock)


async def test_dns_failure_is_retried_reported_and_heals() -> None:
    holder: list[int] = []
    clock = ManualClock(start=NOW, quiet_when=lambda: clock.sleeping >= holder[0])
    fleet = Fleet.generate(seed=2, instances=2, now=NOW, readonly_fraction=0.0)
    holder.append(len(fleet.instances))
    sim = SimulatedRds(fleet, {KEY_ID: SECRET}, clock=clock.time)
    resolver = FailingResolver()
    recorder = Recorder()

    class Keys:
        description = "static"

        async def get(self) -> Credentials:
            return Credentials(KEY_ID, SECRET)

    async with sim.serve("127.0.0.1", 0) as url:
        port = url.rsplit(":", 1)[1]
        connector = aiohttp.TCPConnector(resolver=resolver)
        async with aiohttp.ClientSession(connector=connector) as session:
            poller, state = start_poller(
                sim, clock, session, Keys(), f"http://rds.example.internal:{port}", recorder
            )
            await clock.advance(2 * INTERVAL)
            assert all(not s.collect_success for s in state.instances.values())
            assert {s.last_error for s in state.instances.values()} == {"ConnectionError"}
            assert sim.requests == []
            # Each first poll alone tried three times (one call and two retries) before giving up.
            assert set(recorder.codes) == {"ConnectionError"}
            assert len(recorder.codes) >= 3 * len(fleet.instances)
            iid = next(iter(fleet.instances))
            now = clock.time()
            fleet.add_backup(iid, start=now - 300, end=now - 60, size=777)  # during the outage
            resolver.failing = False
            await clock.advance(2 * INTERVAL)  # the same poller recovers on its own
            await poller.stop()
    assert all(s.collect_success for s in state.instances.values())
    assert render(state, clock)["aliyun_rds_backup_collect_success"] == {
        key(instance_id=iid): 1.0 for iid in fleet.instances
    }
    assert_matches_ground_truth(fleet, state, clock)
