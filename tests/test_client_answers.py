"""The client against answers a broken or hostile peer gives: redirects, oversized and bombed
bodies, pages that hold too much or never end, wrong shapes, untrusted error strings, XML, and
retry-after values. Each runs over loopback against a small aiohttp server that answers exactly
that, so what is asserted is what the client does with real HTTP."""

from __future__ import annotations

import asyncio
import gzip
import json
import random
import threading
import zlib
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any

import aiohttp
import pytest
from aiohttp import web

from exporter.aliyun.client import MAX_RECORDS_PER_LISTING, RdsClient, RetryPolicy
from exporter.aliyun.credentials import Credentials, StaticCredentialsProvider
from exporter.aliyun.errors import (
    KNOWN_CODES,
    MalformedResponseError,
    PermanentError,
    ThrottledError,
    code_label,
)
from exporter.aliyun.limiter import RequestLimiter
from exporter.aliyun.models import parse_backups_page
from tests.clock import ManualClock
from tests.helpers import KEY_ID, NOW, SECRET, InstantClock

DAY = 86400.0
TOKEN = "StsTokenValue-abcdefghijklmnop"
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@asynccontextmanager
async def answering(handler: Handler) -> AsyncIterator[tuple[str, list[web.Request]]]:
    """A server on loopback whose every answer ``handler`` gives; yields its URL and the
    requests it received."""
    seen: list[web.Request] = []

    async def record(request: web.Request) -> web.StreamResponse:
        seen.append(request)
        return await handler(request)

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", record)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    try:
        yield f"http://127.0.0.1:{runner.addresses[0][1]}", seen
    finally:
        await runner.cleanup()


class Observed:
    def __init__(self) -> None:
        self.codes: list[str] = []

    def observe(self, action: str, code: str, seconds: float) -> None:
        self.codes.append(code)


@pytest.fixture
async def session() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as opened:
        yield opened


def client(
    session: aiohttp.ClientSession,
    url: str,
    *,
    retries: int = 3,
    clock: InstantClock | None = None,
    observer: Observed | None = None,
    max_bytes: int = 1024 * 1024,
    token: str | None = TOKEN,
) -> RdsClient:
    return RdsClient(
        session,
        StaticCredentialsProvider(Credentials(KEY_ID, SECRET, token)),
        RequestLimiter(1000, 4, InstantClock()),
        clock or InstantClock(),
        endpoint=url,
        retry=RetryPolicy(retries=retries),
        observer=observer,
        rng=random.Random(1),
        max_response_bytes=max_bytes,
    )


def backup(n: int) -> dict[str, Any]:
    return {
        "BackupId": str(n),
        "BackupStatus": "Success",
        "BackupStartTime": "2025-11-27T01:00:00Z",
        "BackupEndTime": "2025-11-27T01:10:00Z",
        "BackupType": "FullBackup",
        "IsAvail": 1,
    }


def page_body(items: list[dict[str, Any]], total: object = None) -> dict[str, Any]:
    body: dict[str, Any] = {"Items": {"Backup": items}, "RequestId": "R1"}
    if total is not None:
        body["TotalRecordCount"] = total
    return body


def json_answer(body: object, status: int = 200, **headers: str) -> Handler:
    async def handler(request: web.Request) -> web.Response:
        return web.json_response(body, status=status, headers=headers)

    return handler


async def describe(rds: RdsClient) -> Any:
    return await rds.describe_backups("rm-1", "cn-hangzhou", NOW - DAY, NOW, page_size=30)


async def test_every_request_asks_for_json_and_inflates_only_what_it_can(
    session: aiohttp.ClientSession,
) -> None:
    async with answering(json_answer(page_body([]))) as (url, seen):
        await describe(client(session, url))
    (request,) = seen
    assert request.headers["Accept"] == "application/json"
    assert request.headers["Accept-Encoding"] == "gzip, deflate"


async def test_a_redirect_is_an_error_and_is_never_followed(session: aiohttp.ClientSession) -> None:
    """Followed, it would carry the signed headers and the STS token to another host."""
    async with answering(json_answer(page_body([backup(1)]))) as (elsewhere, stolen):

        async def redirect(request: web.Request) -> web.Response:
            raise web.HTTPFound(elsewhere + "/steal")

        async with answering(redirect) as (url, seen):
            observed = Observed()
            with pytest.raises(PermanentError) as caught:
                await describe(client(session, url, observer=observed))
    assert caught.value.code == "Redirect"
    assert stolen == []
    assert len(seen) == 1  # not retried either
    assert observed.codes == ["Redirect"]


@pytest.mark.parametrize("encoding", ["gzip", "deflate"])
async def test_a_compression_bomb_fails_the_call_without_inflating_it(
    encoding: str, session: aiohttp.ClientSession
) -> None:
    # 64 MiB of zeros compresses to about 64 KiB; the cap is 1 MiB.
    inflated = b"0" * (64 * 1024 * 1024)
    bomb = gzip.compress(inflated, 9) if encoding == "gzip" else zlib.compress(inflated, 9)
    del inflated

    async def handler(request: web.Request) -> web.Response:
        return web.Response(
            body=bomb, headers={"Content-Encoding": encoding, "Content-Type": "application/json"}
        )

    async with answering(handler) as (url, seen):
        with pytest.raises(PermanentError) as caught:
            await describe(client(session, url))
    assert caught.value.code == "ResponseTooLarge"
    assert len(seen) == 1


async def test_a_compressed_answer_under_the_cap_is_read(session: aiohttp.ClientSession) -> None:
    body = gzip.compress(json.dumps(page_body([backup(1), backup(2)])).encode())

    async def handler(request: web.Request) -> web.Response:
        return web.Response(
            body=body, headers={"Content-Encoding": "gzip", "Content-Type": "application/json"}
        )

    async with answering(handler) as (url, _):
        page = await describe(client(session, url))
    assert [b.backup_id for b in page.items] == ["1", "2"]


@pytest.mark.parametrize("announced", [True, False])
async def test_a_body_over_the_cap_is_refused(
    announced: bool, session: aiohttp.ClientSession
) -> None:
    big = b"[" + b" " * (2 * 1024 * 1024) + b"]"

    async def handler(request: web.Request) -> web.StreamResponse:
        if announced:
            return web.Response(body=big, content_type="application/json")
        response = web.StreamResponse(headers={"Content-Type": "application/json"})
        response.enable_chunked_encoding()
        await response.prepare(request)
        for start in range(0, len(big), 256 * 1024):
            await response.write(big[start : start + 256 * 1024])
        await response.write_eof()
        return response

    async with answering(handler) as (url, _):
        with pytest.raises(PermanentError) as caught:
            await describe(client(session, url))
    assert caught.value.code == "ResponseTooLarge"


async def test_a_page_holding_more_than_its_page_size_is_refused(
    session: aiohttp.ClientSession,
) -> None:
    async with answering(json_answer(page_body([backup(n) for n in range(31)]))) as (url, seen):
        with pytest.raises(PermanentError) as caught:
            await describe(client(session, url))
    assert caught.value.code == "InvalidResponse"
    assert "31 records, more than PageSize 30" in caught.value.message
    assert len(seen) == 1  # a shape error is not retried


async def test_a_listing_that_never_ends_is_cut_off(session: aiohttp.ClientSession) -> None:
    numbers = iter(range(10**9))

    async def handler(request: web.Request) -> web.Response:
        return web.json_response(page_body([backup(next(numbers)) for _ in range(100)]))

    async with answering(handler) as (url, seen):
        rds = client(session, url)
        with pytest.raises(PermanentError) as caught:
            async for _ in rds.iter_backup_pages("rm-1", "cn-hangzhou", NOW - DAY, NOW):
                pass
    assert caught.value.code == "TooManyPages"
    assert len(seen) == MAX_RECORDS_PER_LISTING // 100


@pytest.mark.parametrize(
    "body",
    [
        {},
        {"Items": None, "RequestId": "R"},
        {"Items": {"Backup": "none"}, "RequestId": "R"},
        {"Items": {"Backup": []}, "TotalRecordCount": "7", "RequestId": "R"},
    ],
)
async def test_an_answer_of_the_wrong_shape_fails_once_and_is_not_retried(
    body: dict[str, Any], session: aiohttp.ClientSession
) -> None:
    async with answering(json_answer(body)) as (url, seen):
        rds = client(session, url, retries=4)
        with pytest.raises(PermanentError) as caught:
            async for _ in rds.iter_backup_pages("rm-1", "cn-hangzhou", NOW - DAY, NOW):
                pass
    assert caught.value.code == "InvalidResponse"
    assert len(seen) == 1


async def test_json_nested_too_deeply_is_a_malformed_answer(session: aiohttp.ClientSession) -> None:
    async def handler(request: web.Request) -> web.Response:
        return web.Response(body=b"[" * 100_000 + b"]" * 100_000, content_type="application/json")

    async with answering(handler) as (url, _):
        with pytest.raises(MalformedResponseError) as caught:
            await describe(client(session, url, retries=0))
    assert caught.value.code == "MalformedResponse"


async def test_a_large_answer_is_parsed_off_the_event_loop(session: aiohttp.ClientSession) -> None:
    items = [dict(backup(n), Checksum="x" * 4000) for n in range(100)]  # about 420 KB
    threads: list[threading.Thread] = []

    def parse(body: Any) -> Any:
        threads.append(threading.current_thread())
        return parse_backups_page(body)

    async with answering(json_answer(page_body(items))) as (url, _):
        rds = client(session, url)
        page = await rds.call("DescribeBackups", {}, region="cn-hangzhou", parse=parse)
    assert len(page.items) == 100
    assert threads and threads[0] is not threading.main_thread()


@pytest.mark.parametrize("cut", [0, 50, 58, 60])
async def test_untrusted_error_strings_are_cut_redacted_and_bounded_as_labels(
    session: aiohttp.ClientSession, cut: int
) -> None:
    """A secret echoed anywhere in Code, Message or RequestId is blanked out, also when the
    length limit cuts it in two (``cut`` characters come before it)."""
    giant = "E" * 300_000

    async def handler(request: web.Request) -> web.Response:
        return web.json_response(
            {
                "Code": f"{'C' * cut}{SECRET}{giant}",
                "Message": f"you sent {SECRET} and {TOKEN}\nfake log line",
                "RequestId": f"{'R' * cut}{TOKEN}{giant}",
            },
            status=400,
        )

    async with answering(handler) as (url, _):
        observed = Observed()
        with pytest.raises(PermanentError) as caught:
            await describe(client(session, url, observer=observed))
    err = caught.value
    text = str(err)
    assert SECRET[:5] not in text and TOKEN[:5] not in text
    assert len(err.code) <= 64 and len(err.request_id or "") <= 64
    assert len(text) < 600 and "\n" not in text
    assert "****" in err.message
    # Only a head too short to mean anything (under four characters) may stay.
    assert "****" in err.code or len(err.code) - 3 - cut < 4
    assert code_label(observed.codes[0]) == "other"


def test_code_labels_are_bounded() -> None:
    codes = {code_label(f"Err.{random.Random(n).getrandbits(64):x}") for n in range(1000)}
    assert codes == {"other"}
    assert code_label("Throttling.User") == "Throttling.User"
    assert code_label("Throttling.SomethingNew") == "Throttling"
    assert code_label("HTTP502") == "HTTP502"
    assert code_label("InvalidPageNumbers.Malformed") in KNOWN_CODES


async def test_an_xml_error_body_still_names_its_code(session: aiohttp.ClientSession) -> None:
    xml = (
        "<?xml version='1.0' encoding='UTF-8'?><Error><RequestId>R-1</RequestId>"
        "<HostId>rds.aliyuncs.com</HostId><Code>InvalidDBInstanceId.NotFound</Code>"
        "<Message>The DBInstanceId provided does not exist &amp; never did.</Message></Error>"
    )

    async def handler(request: web.Request) -> web.Response:
        return web.Response(status=404, text=xml, content_type="text/xml")

    async with answering(handler) as (url, _):
        with pytest.raises(PermanentError) as caught:
            await describe(client(session, url))
    assert caught.value.code == "InvalidDBInstanceId.NotFound"
    assert caught.value.request_id == "R-1"
    assert "never did" in caught.value.message


async def test_retry_after_on_a_good_answer_is_ignored(session: aiohttp.ClientSession) -> None:
    async with answering(json_answer(page_body([backup(1)]), **{"x-acs-retry-after": "5000"})) as (
        url,
        seen,
    ):
        clock = InstantClock()
        page = await describe(client(session, url, clock=clock))
    assert [b.backup_id for b in page.items] == ["1"]
    assert clock.sleeps == [] and len(seen) == 1


@pytest.mark.parametrize(
    ("header", "floor"), [("90000", 90.0), ("600000", 120.0), ("0", 0.0), ("-5", 0.0)]
)
async def test_retry_after_on_an_error_is_honoured_up_to_a_cap(
    header: str, floor: float, session: aiohttp.ClientSession
) -> None:
    attempts: list[int] = []

    async def handler(request: web.Request) -> web.Response:
        attempts.append(1)
        if len(attempts) == 1:
            return web.json_response(
                {"Code": "Throttling.User", "Message": "slow down", "RequestId": "R"},
                status=400,
                headers={"x-acs-retry-after": header},
            )
        return web.json_response(page_body([]))

    async with answering(handler) as (url, _):
        clock = InstantClock()
        await describe(client(session, url, clock=clock))
    (slept,) = clock.sleeps
    assert slept >= floor
    assert slept <= max(floor, 0.5)  # the first backoff's own ceiling is 0.5 s


async def test_a_server_requested_wait_holds_no_concurrency_slot(
    session: aiohttp.ClientSession,
) -> None:
    """While one call waits out a long retry-after, another call goes through the only slot."""
    clock = ManualClock(start=NOW)
    order: list[str] = []

    async def handler(request: web.Request) -> web.Response:
        who = request.query["DBInstanceId"]
        order.append(who)
        if who == "rm-slow" and order.count("rm-slow") == 1:
            return web.json_response(
                {"Code": "Throttling.User", "Message": "wait", "RequestId": "R"},
                status=400,
                headers={"x-acs-retry-after": "60000"},
            )
        return web.json_response(page_body([]))

    async with answering(handler) as (url, _):
        rds = RdsClient(
            session,
            StaticCredentialsProvider(Credentials(KEY_ID, SECRET)),
            RequestLimiter(1000, 1, InstantClock()),  # one slot; its pacing off the test clock
            clock,
            endpoint=url,
            retry=RetryPolicy(retries=2),
            rng=random.Random(1),
        )
        slow = asyncio.create_task(rds.describe_backups("rm-slow", "cn-hangzhou", NOW - DAY, NOW))
        while order != ["rm-slow"] or clock.sleeping == 0:  # noqa: ASYNC110 (real loopback I/O)
            await asyncio.sleep(0.01)
        await rds.describe_backups("rm-fast", "cn-hangzhou", NOW - DAY, NOW)
        assert order == ["rm-slow", "rm-fast"]
        await clock.advance(61)
        await slow
    assert order == ["rm-slow", "rm-fast", "rm-slow"]


async def test_a_throttled_error_without_a_wait_is_still_throttling(
    session: aiohttp.ClientSession,
) -> None:
    async with answering(
        json_answer({"Code": "Throttling.User", "Message": "x", "RequestId": "R"}, status=400)
    ) as (url, seen):
        with pytest.raises(ThrottledError):
            await describe(client(session, url, retries=1))
    assert len(seen) == 2


async def test_a_small_compressed_answer_that_inflates_big_is_parsed_off_the_loop(
    session: aiohttp.ClientSession,
) -> None:
    """A few KB of gzip can inflate to megabytes of JSON: judged by its encoding, not its
    compressed size."""
    items = [dict(backup(n), Checksum="x" * 4000) for n in range(100)]
    body = gzip.compress(json.dumps(page_body(items)).encode(), 9)
    assert len(body) < 64 * 1024
    threads: list[threading.Thread] = []

    def parse(answer: Any) -> Any:
        threads.append(threading.current_thread())
        return parse_backups_page(answer)

    async def handler(request: web.Request) -> web.Response:
        return web.Response(
            body=body, headers={"Content-Encoding": "gzip", "Content-Type": "application/json"}
        )

    async with answering(handler) as (url, _):
        page = await client(session, url).call(
            "DescribeBackups", {}, region="cn-hangzhou", parse=parse
        )
    assert len(page.items) == 100
    assert threads and threads[0] is not threading.main_thread()


async def test_the_waits_of_one_call_are_bounded_together(session: aiohttp.ClientSession) -> None:
    """Each wait the server asks for is honoured up to 120 s, and all of one call's waits
    together too: a poll must not sit for many minutes without saying how it went."""

    async def handler(request: web.Request) -> web.Response:
        return web.json_response(
            {"Code": "Throttling.User", "Message": "wait", "RequestId": "R"},
            status=400,
            headers={"x-acs-retry-after": "90000"},
        )

    clock = InstantClock()
    async with answering(handler) as (url, seen):
        with pytest.raises(ThrottledError):
            await describe(client(session, url, retries=4, clock=clock))
    assert clock.sleeps == [90.0]  # a second wait of 90 s would pass the 120 s budget
    assert len(seen) == 2
