"""The RDS client against the simulated API over loopback: paging, errors, retries, limits."""

from __future__ import annotations

import asyncio
import logging
import math
import random
import socket
import sys
import threading
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

import aiohttp
import pytest
from aiohttp import web

from exporter.aliyun.client import RdsClient, RetryPolicy
from exporter.aliyun.credentials import Credentials, StaticCredentialsProvider
from exporter.aliyun.errors import (
    AuthError,
    InvalidRequestError,
    MalformedResponseError,
    NotFoundError,
    PermanentError,
    ServerError,
    ThrottledError,
    TransportError,
)
from exporter.aliyun.limiter import RequestLimiter
from exporter.aliyun.signing import canonical_query_string
from exporter.clock import SystemClock
from exporter.simulator import INCORRECT_STATE, SimulatedRds
from tests.clock import ManualClock
from tests.helpers import KEY_ID, NOW, SECRET, InstantClock, make_simulator

DAY = 86400.0


@dataclass
class Recorder:
    calls: list[tuple[str, str]] = field(default_factory=list)

    def observe(self, action: str, code: str, seconds: float) -> None:
        self.calls.append((action, code))


@dataclass
class Env:
    sim: SimulatedRds
    clock: InstantClock
    url: str
    session: aiohttp.ClientSession
    recorder: Recorder

    def client(
        self,
        *,
        secret: str = SECRET,
        key_id: str = KEY_ID,
        retries: int = 3,
        timeout: float = 5.0,
        url: str | None = None,
    ) -> RdsClient:
        return RdsClient(
            self.session,
            StaticCredentialsProvider(Credentials(key_id, secret)),
            # Its own clock: these tests count the client's backoff sleeps only.
            RequestLimiter(1000, 8, InstantClock()),
            self.clock,
            endpoint=url or self.url,
            timeout=timeout,
            retry=RetryPolicy(retries=retries, base_delay=0.5, max_delay=20.0),
            observer=self.recorder,
            rng=random.Random(3),
        )

    @property
    def first(self) -> str:
        return next(iter(self.sim.fleet.instances))


@pytest.fixture
async def env() -> AsyncIterator[Env]:
    clock = InstantClock()
    sim = make_simulator(clock.time, instances=3, shuffle=True)
    async with sim.serve("127.0.0.1", 0) as url, aiohttp.ClientSession() as session:
        yield Env(sim, clock, url, session, Recorder())


async def collect(client: RdsClient, instance_id: str, start: float, end: float, size: int):  # type: ignore[no-untyped-def]
    pages = [
        p
        async for p in client.iter_backup_pages(
            instance_id, "cn-hangzhou", start, end, page_size=size
        )
    ]
    return pages


async def test_pages_to_the_end_and_matches_ground_truth(env: Env) -> None:
    iid = env.first
    for n in range(70):  # enough manual backups to need several pages
        env.sim.fleet.add_backup(iid, start=NOW - DAY + n * 60, end=NOW - DAY + n * 60 + 30)
    start, end = NOW - 2 * DAY, NOW
    pages = await collect(env.client(), iid, start, end, 30)
    ids = [b.backup_id for p in pages for b in p.items]
    truth = env.sim.fleet.backups_between(iid, start, end, NOW)
    assert sorted(ids) == sorted(b.backup_id for b in truth)
    assert len(ids) == len(set(ids))
    assert len(pages) == math.ceil(len(truth) / 30)
    assert [r.params["PageNumber"] for r in env.sim.requests] == [
        str(n) for n in range(1, len(pages) + 1)
    ]


async def test_query_string_on_the_wire_is_the_signed_one(env: Env) -> None:
    await env.client().describe_backups(env.first, "cn-hangzhou", NOW - DAY, NOW)
    (record,) = env.sim.requests
    assert record.code == "OK"
    assert record.query_string == canonical_query_string(record.params)
    assert record.params["StartTime"].endswith("Z") and len(record.params["StartTime"]) == 17


async def test_throttling_is_retried_with_bounded_backoff(env: Env) -> None:
    env.sim.faults.throttle_rate = 0.6
    client = env.client(retries=10)
    for _ in range(5):
        await client.describe_backups(env.first, "cn-hangzhou", NOW - DAY, NOW)
    codes = [r.code for r in env.sim.requests]
    assert codes.count("OK") == 5
    assert codes.count("Throttling.User") == len(env.clock.sleeps) > 0
    assert [c for _, c in env.recorder.calls] == codes
    assert all(0 <= s <= 20.0 for s in env.clock.sleeps)


async def test_backoff_grows_exponentially_with_full_jitter() -> None:
    policy = RetryPolicy(retries=6, base_delay=0.5, max_delay=4.0)
    rng = random.Random(1)
    for attempt in range(6):
        ceiling = min(4.0, 0.5 * 2**attempt)
        delays = [policy.backoff(attempt, rng, None) for _ in range(200)]
        assert all(0 <= d <= ceiling for d in delays)
        assert max(delays) > 0.8 * ceiling  # jitter spans the whole range
    assert policy.backoff(0, rng, retry_after=3.0) >= 3.0
    # What the server asks for is honoured beyond the backoff's own ceiling, up to the cap.
    assert policy.backoff(0, rng, retry_after=60.0) == 60.0
    assert policy.backoff(0, rng, retry_after=600.0) == 120.0
    assert policy.backoff(0, rng, retry_after=0.0) <= 0.5


async def test_retry_after_header_is_honoured(env: Env) -> None:
    env.sim.faults.throttle_rate = 1.0
    env.sim.faults.retry_after_ms = 1500
    with pytest.raises(ThrottledError) as caught:
        await env.client(retries=2).describe_backups(env.first, "cn-hangzhou", NOW - DAY, NOW)
    assert caught.value.retry_after == 1.5
    assert env.clock.sleeps and all(s >= 1.5 for s in env.clock.sleeps)


@pytest.mark.parametrize(
    ("setup", "error", "code"),
    [
        (lambda f: setattr(f, "outage", True), ServerError, "ServiceUnavailable"),
        (lambda f: setattr(f, "error_5xx_rate", 1.0), ServerError, None),
        (lambda f: setattr(f, "html_error_rate", 1.0), ServerError, "HTTP502"),
        (lambda f: setattr(f, "throttle_rate", 1.0), ThrottledError, "Throttling.User"),
    ],
)
async def test_retryable_errors_exhaust_retries_then_raise(env: Env, setup, error, code) -> None:  # type: ignore[no-untyped-def]
    setup(env.sim.faults)
    with pytest.raises(error) as caught:
        await env.client(retries=3).describe_backups(env.first, "cn-hangzhou", NOW - DAY, NOW)
    assert len(env.sim.requests) == 4  # one try and three retries
    assert len(env.clock.sleeps) == 3
    if code:
        assert caught.value.code == code
    assert caught.value.retryable


@pytest.mark.parametrize(
    ("arrange", "error", "code"),
    [
        ("unknown_instance", NotFoundError, "InvalidDBInstanceId.NotFound"),
        ("wrong_secret", AuthError, "SignatureDoesNotMatch"),
        ("unknown_key", AuthError, "InvalidAccessKeyId.NotFound"),
        ("clock_skew", AuthError, "InvalidTimeStamp.Expired"),
        ("forced_state", PermanentError, "IncorrectDBInstanceState"),
    ],
)
async def test_permanent_errors_raise_at_once_with_code_and_request_id(
    env: Env, arrange: str, error: type[Exception], code: str
) -> None:
    instance_id = env.first
    client = env.client()
    if arrange == "unknown_instance":
        instance_id = "rm-doesnotexist000"
    elif arrange == "wrong_secret":
        client = env.client(secret="not-the-secret")
    elif arrange == "unknown_key":
        client = env.client(key_id="LTAI5tUnknownKey0000000")
    elif arrange == "clock_skew":
        env.sim.clock = lambda: NOW + 3600
    elif arrange == "forced_state":
        env.sim.faults.for_instance(instance_id).forced_error = INCORRECT_STATE
    with pytest.raises(error) as caught:
        await client.describe_backups(instance_id, "cn-hangzhou", NOW - DAY, NOW)
    assert caught.value.code == code  # type: ignore[attr-defined]
    assert caught.value.request_id  # type: ignore[attr-defined]
    assert len(env.sim.requests) == 1
    assert env.clock.sleeps == []
    assert SECRET not in str(caught.value)


async def test_bad_parameters_are_permanent(env: Env) -> None:
    client = env.client()
    with pytest.raises(InvalidRequestError) as caught:
        await client.describe_backups(env.first, "cn-hangzhou", NOW, NOW - DAY)
    assert caught.value.code == "InvalidParameterCombination"
    with pytest.raises(InvalidRequestError):
        await client.describe_backups(env.first, "cn-hangzhou", NOW - DAY, NOW, page_size=20)


async def test_timeout_is_a_transport_error_and_retried(env: Env) -> None:
    env.sim.faults.latency = 0.5
    with pytest.raises(TransportError) as caught:
        await env.client(retries=1, timeout=0.1).describe_backups(
            env.first, "cn-hangzhou", NOW - DAY, NOW
        )
    assert caught.value.code == "Timeout"
    assert [c for _, c in env.recorder.calls] == ["Timeout", "Timeout"]


async def test_connection_refused_is_a_transport_error(env: Env) -> None:
    # A port that was just free: nothing listens there.
    server = await asyncio.start_server(lambda r, w: None, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    server.close()
    await server.wait_closed()
    with pytest.raises(TransportError) as caught:
        await env.client(retries=2, url=f"http://127.0.0.1:{port}").describe_backups(
            env.first, "cn-hangzhou", NOW - DAY, NOW
        )
    assert caught.value.code == "ConnectionError"
    assert len(env.clock.sleeps) == 2


@pytest.mark.parametrize(
    ("status", "body", "content_type", "expected"),
    [
        (200, b'{"Items": {"Backup": [', "application/json", MalformedResponseError),
        (200, b"<html>oops</html>", "text/html", MalformedResponseError),
        (200, b"[1, 2]", "application/json", MalformedResponseError),
        (200, b"", "application/json", MalformedResponseError),
        (404, b"not json at all", "text/plain", NotFoundError),
        (
            400,
            b'{"Code": "Throttling.Api", "Message": "slow down"}',
            "application/json",
            ThrottledError,
        ),
        (429, b"", "text/plain", ThrottledError),
        (500, b"<h1>Internal</h1>", "text/html", ServerError),
    ],
)
async def test_odd_bodies_become_clear_errors(
    env: Env, status: int, body: bytes, content_type: str, expected: type[Exception]
) -> None:
    async def handler(request: web.Request) -> web.Response:
        return web.Response(status=status, body=body, content_type=content_type)

    app = web.Application()
    app.router.add_post("/", handler)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    try:
        with pytest.raises(expected) as caught:
            await env.client(retries=0, url=f"http://127.0.0.1:{port}").describe_backups(
                env.first, "cn-hangzhou", NOW - DAY, NOW
            )
    finally:
        await runner.cleanup()
    assert "\n" not in str(caught.value)
    assert str(caught.value).startswith("DescribeBackups: ")


async def test_rate_limiter_holds_the_configured_rate() -> None:
    """40 requests at 20/s through 4 slots take two seconds, as the simulator sees them arrive.
    On a manual clock, which stands still while a request is on the wire: a loaded machine
    cannot slow the rate down."""
    calls = 41
    slots = 4

    def quiet() -> bool:
        # No request in flight: every slot holder sleeps, or no call is left to start.
        return clock.sleeping >= min(slots, calls - len(sim.requests))

    clock = ManualClock(start=NOW, quiet_when=quiet)
    sim = make_simulator(clock.time, instances=2, monotonic=clock.monotonic)
    rate = 20.0
    async with sim.serve("127.0.0.1", 0) as url, aiohttp.ClientSession() as session:
        client = RdsClient(
            session,
            StaticCredentialsProvider(Credentials(KEY_ID, SECRET)),
            RequestLimiter(rate, slots, clock),
            clock,
            endpoint=url,
        )
        iid = next(iter(sim.fleet.instances))
        burst = asyncio.gather(
            *(client.describe_backups(iid, "cn-hangzhou", NOW - DAY, NOW) for _ in range(calls))
        )
        await clock.advance(10.0)
        await burst
    assert len(sim.requests) == calls
    arrivals = sorted(r.received for r in sim.requests)
    achieved = (len(arrivals) - 1) / (arrivals[-1] - arrivals[0])
    assert abs(achieved - rate) / rate < 0.10, achieved


# Calls that block the thread they run on; on the event loop's thread, they stall every request
# and scrape. Python raises an audit event for each (sys.addaudithook), whatever the machine's load
# (time.sleep raises one from Python 3.12 on). Work that only burns CPU on the loop is caught by
# the tests of what runs in a worker thread (large answers, bcrypt, the credential chain).
BLOCKING_EVENTS = frozenset(
    {
        "time.sleep",
        "socket.getaddrinfo",
        "socket.gethostbyname",
        "socket.gethostbyaddr",
        "open",
        "subprocess.Popen",
        "os.system",
    }
)


class BlockingCalls:
    """Records the blocking calls made on one thread while armed. An audit hook cannot be
    removed, so it is installed once per process and only listens while a test arms it."""

    _installed: BlockingCalls | None = None

    def __init__(self) -> None:
        self.thread: int | None = None
        self.seen: list[str] = []

    @classmethod
    def hook(cls) -> BlockingCalls:
        if cls._installed is None:
            cls._installed = BlockingCalls()
            sys.addaudithook(cls._installed._audit)
        return cls._installed

    def _audit(self, event: str, args: tuple[object, ...]) -> None:
        if self.thread == threading.get_ident() and event in BLOCKING_EVENTS:
            self.seen.append(f"{event}{args!r}"[:200])


async def test_event_loop_is_never_blocked() -> None:
    """No call that blocks its thread (a synchronous DNS lookup, file I/O, a sleep, a
    subprocess) runs on the event loop while 200 calls go through the client and the simulator:
    checked by audit events, not by timing, so a loaded machine cannot fail it (or pass it)."""
    calls = BlockingCalls.hook()
    clock = SystemClock()
    sim = make_simulator(clock.time, instances=4)
    async with sim.serve("127.0.0.1", 0) as url, aiohttp.ClientSession() as session:
        client = RdsClient(
            session,
            StaticCredentialsProvider(Credentials(KEY_ID, SECRET)),
            RequestLimiter(400, 8, clock),  # half a second of steady traffic
            clock,
            endpoint=url,
        )
        ids = list(sim.fleet.instances)
        calls.thread, calls.seen = threading.get_ident(), []
        try:
            await asyncio.gather(
                *(
                    client.describe_backups(ids[n % 4], "cn-hangzhou", NOW - 2 * DAY, NOW)
                    for n in range(200)
                )
            )
        finally:
            calls.thread = None
    assert len(sim.requests) == 200
    assert calls.seen == []


def test_the_blocking_call_check_catches_a_blocking_call() -> None:
    """The check above is not vacuous: a name lookup or a file opened on the armed thread
    shows, and the same on another thread does not."""
    calls = BlockingCalls.hook()
    socket.getaddrinfo("127.0.0.1", 80)  # once unarmed: its first call imports a codec
    calls.thread, calls.seen = threading.get_ident(), []
    try:
        socket.getaddrinfo("127.0.0.1", 80)
        with open(__file__, "rb"):
            pass
        other = threading.Thread(target=lambda: open(__file__, "rb").close())
        other.start()
        other.join()
    finally:
        calls.thread = None
    assert [event.split("(")[0] for event in calls.seen] == ["socket.getaddrinfo", "open"]


async def test_secrets_never_reach_reprs_errors_or_logs(
    env: Env, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    creds = Credentials(KEY_ID, SECRET, security_token="STS-TOKEN-SECRET-VALUE")
    provider = StaticCredentialsProvider(creds)
    assert SECRET not in repr(creds) and "STS-TOKEN-SECRET-VALUE" not in repr(creds)
    assert SECRET not in repr(provider) and KEY_ID not in provider.description
    with pytest.raises(AuthError) as caught:
        await env.client(secret="wrong-" + SECRET).describe_backups(
            env.first, "cn-hangzhou", NOW - DAY, NOW
        )
    text = str(caught.value) + repr(caught.value) + caplog.text
    assert SECRET not in text


async def test_observer_sees_every_attempt_by_code(env: Env) -> None:
    await env.client().describe_backups(env.first, "cn-hangzhou", NOW - DAY, NOW)
    with pytest.raises(NotFoundError):
        await env.client().describe_backups("rm-nope0000000000", "cn-hangzhou", NOW - DAY, NOW)
    assert env.recorder.calls == [
        ("DescribeBackups", "OK"),
        ("DescribeBackups", "InvalidDBInstanceId.NotFound"),
    ]


async def test_policy_and_instances_plumbing(env: Env) -> None:
    client = env.client()
    policy = await client.describe_backup_policy(env.first, "cn-hangzhou")
    assert policy.preferred_backup_period
    assert policy.retention_days is not None
    page = await client.describe_db_instances("cn-hangzhou", page_size=100)
    truth = [i for i in env.sim.fleet.instances.values() if i.region_id == "cn-hangzhou"]
    assert sorted(i.instance_id for i in page.items) == sorted(i.instance_id for i in truth)


@pytest.mark.parametrize(
    ("region", "endpoint"),
    [
        ("cn-hangzhou", "https://rds.aliyuncs.com"),
        ("cn-hongkong", "https://rds.aliyuncs.com"),
        ("cn-shanghai-finance-1", "https://rds.aliyuncs.com"),
        ("ap-southeast-1", "https://rds.aliyuncs.com"),
        ("eu-central-1", "https://rds.eu-central-1.aliyuncs.com"),
        ("cn-zhangjiakou", "https://rds.cn-zhangjiakou.aliyuncs.com"),
    ],
)
async def test_endpoint_per_region_and_override(region: str, endpoint: str) -> None:
    from exporter.aliyun.endpoints import endpoint_for_region

    assert endpoint_for_region(region) == endpoint
    clock = InstantClock()
    provider = StaticCredentialsProvider(Credentials(KEY_ID, SECRET))
    limiter = RequestLimiter(1, 1, clock)
    async with aiohttp.ClientSession() as session:
        client = RdsClient(session, provider, limiter, clock)
        assert client.endpoint_for(region) == endpoint
        override = RdsClient(session, provider, limiter, clock, endpoint="https://rds-vpc.x.com/")
        assert override.endpoint_for(region) == "https://rds-vpc.x.com"


async def test_a_cancelled_call_is_not_counted_as_an_outcome(env: Env) -> None:
    env.sim.faults.latency = 5.0  # the answer would come much later
    task = asyncio.create_task(
        env.client().describe_backups(env.first, "cn-hangzhou", NOW - DAY, NOW)
    )
    await asyncio.sleep(0.2)  # real time: the request is on the wire, the server is waiting
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert env.recorder.calls == []  # shutdown is not an API outcome, and certainly not OK


@pytest.mark.parametrize("reported", ["25", "60", "not a number", None])
async def test_paging_reads_everything_whatever_total_is_reported(
    env: Env, reported: str | None
) -> None:
    """A total that cannot be right (less than what was read), a larger one, or none at all
    never ends the listing early."""
    iid = env.first
    for n in range(37):
        env.sim.fleet.add_backup(iid, start=NOW - DAY + n * 60, end=NOW - DAY + n * 60 + 30)

    def lie(action: str, params: object, body: dict[str, object]) -> dict[str, object]:
        body["TotalRecordCount"] = reported
        return body

    env.sim.faults.transform = lie
    start, end = NOW - DAY - 60, NOW - DAY + 37 * 60
    pages = await collect(env.client(), iid, start, end, 30)
    truth = env.sim.fleet.backups_between(iid, start, end, NOW)
    assert len(truth) >= 37
    assert sorted(b.backup_id for p in pages for b in p.items) == sorted(b.backup_id for b in truth)


async def test_an_exactly_full_last_page_ends_the_listing_by_the_total(env: Env) -> None:
    iid = env.first
    start, end = NOW - DAY - 60, NOW - DAY + 30 * 60
    existing = len(env.sim.fleet.backups_between(iid, start, end, NOW))
    for n in range(30 - existing):
        env.sim.fleet.add_backup(iid, start=NOW - DAY + n * 60, end=NOW - DAY + n * 60 + 30)
    pages = await collect(env.client(), iid, start, end, 30)
    assert [p.raw_count for p in pages] == [30]
    assert [r.params["PageNumber"] for r in env.sim.requests] == ["1"]
