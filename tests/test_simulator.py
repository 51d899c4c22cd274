"""The simulated RDS API, over real loopback HTTP with requests signed by our signer."""

from __future__ import annotations

import asyncio
import calendar
import itertools
import json
import os
import re
import signal
import sys
import time
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any
from xml.etree import ElementTree

import aiohttp
import pytest
import yarl
from multidict import CIMultiDictProxy

from exporter.aliyun.signing import canonical_query_string, sign_rpc_v3
from exporter.simulator import (
    API_VERSION,
    HTML_CODE,
    INCORRECT_STATE,
    Faults,
    Fleet,
    InstanceFaults,
    SimPolicy,
    SimulatedRds,
)
from exporter.simulator.timefmt import format_minute, parse_second

DAY = 86400.0
NOW = float(calendar.timegm((2025, 3, 12, 6, 30, 0)))  # a Wednesday
KEY_ID = "LTAI5tTestKey00000000000"
SECRET = "test-secret-0123456789"
OTHER_KEY_ID = "LTAI5tOtherKey0000000000"
OTHER_SECRET = "other-secret-0123456789"
REPO_ROOT = str(Path(__file__).resolve().parents[1])


class FakeClock:
    """Wall clock that moves only when a test says so."""

    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@dataclass
class Reply:
    status: int
    headers: CIMultiDictProxy[str]
    text: str

    @property
    def body(self) -> Any:
        return json.loads(self.text)

    @property
    def error(self) -> dict[str, str]:
        """The error document's fields, whether the simulator answered JSON or XML."""
        if self.headers["Content-Type"].startswith("text/xml"):
            return {field.tag: field.text or "" for field in ElementTree.fromstring(self.text)}
        return {name: str(value) for name, value in self.body.items()}

    @property
    def code(self) -> str:
        return "OK" if self.status == 200 else self.error["Code"]


class Api:
    """A minimal signed client, independent of the exporter's own."""

    def __init__(self, session: aiohttp.ClientSession, base_url: str, clock: FakeClock) -> None:
        self.session = session
        self.base_url = base_url
        self.host = yarl.URL(base_url).host_port_subcomponent or ""
        self.clock = clock
        self._nonces = itertools.count()

    async def call(
        self,
        action: str,
        params: Mapping[str, str] | None = None,
        *,
        key_id: str = KEY_ID,
        secret: str = SECRET,
        token: str | None = None,
        date: float | None = None,
        nonce: str | None = None,
        version: str = API_VERSION,
        method: str = "POST",
        send_query: str | None = None,
        extra_headers: Mapping[str, str] | None = None,
        drop_headers: tuple[str, ...] = (),
    ) -> Reply:
        when = self.clock() if date is None else date
        signed = sign_rpc_v3(
            method=method,
            host=self.host,
            action=action,
            version=version,
            params=dict(params or {}),
            access_key_id=key_id,
            access_key_secret=secret,
            security_token=token,
            date=datetime.fromtimestamp(when, tz=timezone.utc),
            nonce=nonce or f"nonce-{next(self._nonces)}",
        )
        headers = {k: v for k, v in signed.headers.items() if k not in drop_headers}
        headers.update(extra_headers or {})
        query = signed.query_string if send_query is None else send_query
        url = yarl.URL(f"{self.base_url}/?{query}", encoded=True)
        async with self.session.request(method, url, headers=headers) as response:
            return Reply(response.status, response.headers, await response.text())

    async def backups(self, instance_id: str, **params: str) -> Reply:
        return await self.call("DescribeBackups", {"DBInstanceId": instance_id, **params})


def window(start: float, end: float) -> dict[str, str]:
    return {"StartTime": format_minute(start), "EndTime": format_minute(end)}


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(NOW)


@pytest.fixture
def fleet() -> Fleet:
    return Fleet.generate(seed=7, instances=40, now=NOW)


def make_sim(fleet: Fleet, clock: FakeClock, **options: Any) -> SimulatedRds:
    # Wide-window delays are tested on their own; elsewhere they would only slow tests down.
    options.setdefault("wide_window_delay", 0.0)
    return SimulatedRds(fleet, {KEY_ID: SECRET}, clock=clock, **options)


@pytest.fixture
def sim(fleet: Fleet, clock: FakeClock) -> SimulatedRds:
    return make_sim(fleet, clock)


@pytest.fixture
async def api(sim: SimulatedRds, clock: FakeClock) -> AsyncIterator[Api]:
    async with sim.serve("127.0.0.1", 0) as base_url, aiohttp.ClientSession() as session:
        yield Api(session, base_url, clock)


def primary(fleet: Fleet, **wanted: object) -> str:
    """The first primary instance whose attributes (or policy attributes) match."""
    for instance in fleet.instances.values():
        if instance.instance_type != "Primary":
            continue
        fields = {**vars(instance.policy), **vars(instance)}
        if all(fields[name] == value for name, value in wanted.items()):
            return instance.instance_id
    raise LookupError(wanted)


# ----- signature V3 ------------------------------------------------------------------------


async def test_official_v3_example_signature_is_accepted(fleet: Fleet) -> None:
    # Independent of our signer: the documented request and signature, sent byte for byte.
    clock = FakeClock(parse_second("2023-10-26T10:22:32Z") or 0.0)
    sim = SimulatedRds(fleet, {"YourAccessKeyId": "YourAccessKeySecret"}, clock=clock)
    headers = {
        "Host": "ecs.cn-shanghai.aliyuncs.com",
        "x-acs-action": "RunInstances",
        "x-acs-version": "2014-05-26",
        "x-acs-date": "2023-10-26T10:22:32Z",
        "x-acs-signature-nonce": "3156853299f313e23d1673dc12e1703d",
        "x-acs-content-sha256": "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
        "Accept": "application/json",  # not signed; errors come as JSON
    }
    query = "ImageId=win2019_1809_x64_dtc_zh-cn_40G_alibase_20230811.vhd&RegionId=cn-shanghai"
    signed = "host;x-acs-action;x-acs-content-sha256;x-acs-date;x-acs-signature-nonce;x-acs-version"
    signature = "06563a9e1b43f5dfe96b81484da74bceab24a1d853912eee15083a6f0f3283c0"

    async def send(sig: str) -> dict[str, Any]:
        auth = f"ACS3-HMAC-SHA256 Credential=YourAccessKeyId,SignedHeaders={signed},Signature={sig}"
        url = yarl.URL(f"{base_url}/?{query}", encoded=True)
        async with session.post(url, headers={**headers, "Authorization": auth}) as response:
            result: dict[str, Any] = await response.json(content_type=None)
            return result

    async with sim.serve() as base_url, aiohttp.ClientSession() as session:
        # Past the signature, the ECS action is (rightly) unknown to RDS.
        assert (await send(signature))["Code"] == "InvalidAction.NotFound"
        assert (await send("f" + signature[1:]))["Code"] == "SignatureDoesNotMatch"


async def test_signed_request_succeeds_and_is_recorded(api: Api, sim: SimulatedRds) -> None:
    instance_id = primary(sim.fleet)
    reply = await api.backups(instance_id, **window(NOW - DAY, NOW))
    assert reply.status == 200
    assert reply.headers["x-acs-request-id"] == reply.body["RequestId"]
    [record] = sim.requests
    assert record.action == "DescribeBackups"
    assert record.access_key_id == KEY_ID
    assert record.instance_id == instance_id
    assert record.params == {"DBInstanceId": instance_id, **window(NOW - DAY, NOW)}
    assert record.query_string == canonical_query_string(record.params)
    assert (record.status, record.code, record.method) == (200, "OK", "POST")


async def test_get_is_accepted_too(api: Api, sim: SimulatedRds) -> None:
    reply = await api.call("DescribeBackups", {"DBInstanceId": primary(sim.fleet)}, method="GET")
    assert reply.status == 200


async def test_wrong_secret_is_signature_does_not_match(api: Api, sim: SimulatedRds) -> None:
    reply = await api.call(
        "DescribeBackups", {"DBInstanceId": primary(sim.fleet)}, secret="not-the-secret"
    )
    assert (reply.status, reply.code) == (400, "SignatureDoesNotMatch")


async def test_query_changed_after_signing_is_signature_does_not_match(
    api: Api, sim: SimulatedRds
) -> None:
    instance_id = primary(sim.fleet)
    signed_for = {"DBInstanceId": instance_id, "PageSize": "30"}
    sent = canonical_query_string({"DBInstanceId": instance_id, "PageSize": "50"})
    reply = await api.call("DescribeBackups", signed_for, send_query=sent)
    assert (reply.status, reply.code) == (400, "SignatureDoesNotMatch")


async def test_query_is_verified_decoded(api: Api, sim: SimulatedRds) -> None:
    # The server re-encodes what it decoded, so %3A and a literal ":" are the same request.
    params = {"DBInstanceId": primary(sim.fleet), **window(NOW - DAY, NOW)}
    raw = "&".join(f"{name}={value}" for name, value in sorted(params.items()))
    assert ":" in raw
    reply = await api.call("DescribeBackups", params, send_query=raw)
    assert reply.status == 200


async def test_unknown_access_key_is_not_found(api: Api, sim: SimulatedRds) -> None:
    reply = await api.call(
        "DescribeBackups", {"DBInstanceId": primary(sim.fleet)}, key_id="LTAI5tNobody000000000000"
    )
    assert (reply.status, reply.code) == (404, "InvalidAccessKeyId.NotFound")
    assert sim.requests[-1].access_key_id == "LTAI5tNobody000000000000"


@pytest.mark.parametrize(
    "authorization",
    [None, "", "Bearer abc", "ACS3-HMAC-SHA256 Credential=x", "ACS3-HMAC-SHA256 garbage"],
)
async def test_missing_or_garbled_authorization_is_incomplete_signature(
    api: Api, sim: SimulatedRds, authorization: str | None
) -> None:
    reply = await api.call(
        "DescribeBackups",
        {"DBInstanceId": primary(sim.fleet)},
        extra_headers={} if authorization is None else {"Authorization": authorization},
        drop_headers=("Authorization",) if authorization is None else (),
    )
    assert (reply.status, reply.code) == (400, "IncompleteSignature")


async def test_unsigned_acs_header_is_incomplete_signature(api: Api, sim: SimulatedRds) -> None:
    reply = await api.call(
        "DescribeBackups",
        {"DBInstanceId": primary(sim.fleet)},
        extra_headers={"x-acs-extra": "sneaked in"},
    )
    assert (reply.status, reply.code) == (400, "IncompleteSignature")


@pytest.mark.parametrize(
    ("skew", "code"),
    [
        (-901, "InvalidTimeStamp.Expired"),
        (-840, "OK"),
        (840, "OK"),
        (901, "InvalidTimeStamp.Expired"),
    ],
)
async def test_date_must_be_within_15_minutes(
    api: Api, sim: SimulatedRds, skew: float, code: str
) -> None:
    reply = await api.call("DescribeBackups", {"DBInstanceId": primary(sim.fleet)}, date=NOW + skew)
    assert reply.code == code


async def test_reused_nonce_is_refused_for_15_minutes(
    api: Api, sim: SimulatedRds, clock: FakeClock
) -> None:
    instance_id = primary(sim.fleet)
    first = await api.call("DescribeBackups", {"DBInstanceId": instance_id}, nonce="n-1")
    again = await api.call("DescribeBackups", {"DBInstanceId": instance_id}, nonce="n-1")
    assert (first.status, again.status, again.code) == (200, 400, "SignatureNonceUsed")
    clock.advance(16 * 60)
    later = await api.call("DescribeBackups", {"DBInstanceId": instance_id}, nonce="n-1")
    assert later.status == 200


async def test_sts_token_must_match_and_not_be_expired(
    api: Api, sim: SimulatedRds, clock: FakeClock
) -> None:
    sim.add_sts_credentials("STS.key", "sts-secret", "token-1", expires_at=NOW + 3600)
    instance_id = primary(sim.fleet)

    async def with_token(token: str | None) -> str:
        reply = await api.call(
            "DescribeBackups",
            {"DBInstanceId": instance_id},
            key_id="STS.key",
            secret="sts-secret",
            token=token,
        )
        return reply.code

    assert await with_token("token-1") == "OK"
    assert await with_token(None) == "MissingSecurityToken"
    assert await with_token("token-2") == "InvalidSecurityToken.MismatchWithAccessKey"
    clock.advance(3600)
    assert await with_token("token-1") == "InvalidSecurityToken.Expired"
    # A token sent with a long-term key is refused as well.
    reply = await api.call("DescribeBackups", {"DBInstanceId": instance_id}, token="token-1")
    assert reply.code == "InvalidSecurityToken.MismatchWithAccessKey"


async def test_unknown_action_and_wrong_version(api: Api) -> None:
    unknown = await api.call("DeleteDBInstance", {"DBInstanceId": "rm-x"})
    assert (unknown.status, unknown.code) == (404, "InvalidAction.NotFound")
    old = await api.call("DescribeBackups", {"DBInstanceId": "rm-x"}, version="2013-05-28")
    assert (old.status, old.code) == (400, "InvalidVersion")


async def test_error_body_has_the_gateway_fields(api: Api) -> None:
    reply = await api.call("DescribeBackups", {}, extra_headers={"Accept": "application/json"})
    assert reply.headers["Content-Type"].startswith("application/json")
    assert set(reply.body) == {"RequestId", "HostId", "Code", "Message", "Recommend"}
    assert reply.body["RequestId"] in reply.body["Recommend"]


# ----- DescribeBackups parameter rules -----------------------------------------------------


async def test_db_instance_id_is_required(api: Api) -> None:
    reply = await api.call("DescribeBackups", window(NOW - DAY, NOW))
    assert (reply.status, reply.code) == (400, "MissingDBInstanceId")


async def test_unknown_instance_is_not_found(api: Api) -> None:
    reply = await api.backups("rm-doesnotexist0000")
    assert (reply.status, reply.code) == (404, "InvalidDBInstanceId.NotFound")


@pytest.mark.parametrize(
    "value",
    [
        "2025-03-10T00:00:00Z",
        "2025-03-10T00:00",
        "2025-03-10 00:00Z",
        "2025-13-10T00:00Z",
        "2025-02-30T00:00Z",
        "1741564800",
        "",
    ],
)
@pytest.mark.parametrize("name", ["StartTime", "EndTime"])
async def test_times_must_be_minute_precision(
    api: Api, sim: SimulatedRds, name: str, value: str
) -> None:
    params = window(NOW - 2 * DAY, NOW)
    params[name] = value
    reply = await api.backups(primary(sim.fleet), **params)
    assert (reply.status, reply.code) == (400, f"Invalid{name}.Format")


@pytest.mark.parametrize("end_offset", [0.0, -60.0])
async def test_end_must_be_after_start(api: Api, sim: SimulatedRds, end_offset: float) -> None:
    start = NOW - DAY
    reply = await api.backups(primary(sim.fleet), **window(start, start + end_offset))
    assert (reply.status, reply.code) == (400, "InvalidParameterCombination")


@pytest.mark.parametrize("size", ["30", "50", "100"])
async def test_page_sizes_30_50_100_are_accepted(api: Api, sim: SimulatedRds, size: str) -> None:
    reply = await api.backups(primary(sim.fleet), PageSize=size, **window(NOW - DAY, NOW))
    assert reply.status == 200


@pytest.mark.parametrize("size", ["10", "40", "1000", "0", "-30", "abc", "", "030"])
async def test_other_page_sizes_are_refused(api: Api, sim: SimulatedRds, size: str) -> None:
    reply = await api.backups(primary(sim.fleet), PageSize=size)
    assert (reply.status, reply.code) == (403, "InvalidMaxRecordsPerPage.Malformed")


@pytest.mark.parametrize("number", ["0", "-1", "x", "1.5", "", "2147483648"])
async def test_page_number_must_be_positive(api: Api, sim: SimulatedRds, number: str) -> None:
    reply = await api.backups(primary(sim.fleet), PageNumber=number)
    assert (reply.status, reply.code) == (400, "InvalidPageNumbers.Malformed")


# ----- DescribeBackups results --------------------------------------------------------------


async def test_pages_have_string_counters_and_cover_everything_once(
    api: Api, sim: SimulatedRds
) -> None:
    instance_id = primary(sim.fleet)
    for i in range(70):  # a busy instance: well over two pages of 30
        sim.fleet.add_backup(instance_id, start=NOW - DAY + i * 600, end=NOW - DAY + i * 600 + 60)
    expected = sim.fleet.backups_between(instance_id, NOW - 2 * DAY, NOW, NOW)
    total = len(expected)
    assert 60 < total <= 90  # three pages, the last one short
    seen: list[str] = []
    for page in (1, 2, 3):
        body = (
            await api.backups(instance_id, PageNumber=str(page), **window(NOW - 2 * DAY, NOW))
        ).body
        assert body["PageNumber"] == str(page)
        assert body["TotalRecordCount"] == str(total)
        items = body["Items"]["Backup"]
        assert body["PageRecordCount"] == str(len(items))
        assert len(items) == min(30, total - 30 * (page - 1))
        seen += [item["BackupId"] for item in items]
    assert seen == [backup.backup_id for backup in expected]
    assert len(set(seen)) == total
    past_end = await api.backups(instance_id, PageNumber="4", **window(NOW - 2 * DAY, NOW))
    assert (past_end.status, past_end.code) == (400, "InvalidPageNumbers.Malformed")


async def test_default_page_size_is_30(api: Api, sim: SimulatedRds) -> None:
    instance_id = primary(sim.fleet)
    for i in range(40):
        sim.fleet.add_backup(instance_id, start=NOW - DAY + i * 60, end=NOW - DAY + i * 60 + 30)
    body = (await api.backups(instance_id, **window(NOW - DAY, NOW))).body
    assert body["PageRecordCount"] == "30"
    assert len(body["Items"]["Backup"]) == 30


async def test_window_filters_on_start_time_inclusive(api: Api, sim: SimulatedRds) -> None:
    fleet = sim.fleet
    instance_id = primary(fleet)
    fleet.stop_backups(instance_id, after=NOW - 10 * DAY)  # only the backups added here
    start, end = NOW - 5 * 3600, NOW - 3600
    at_start = fleet.add_backup(instance_id, start=start, end=start + 600)
    at_end = fleet.add_backup(instance_id, start=end, end=end + 600)
    before = fleet.add_backup(instance_id, start=start - 60, end=start + 1800)  # ends inside
    after = fleet.add_backup(instance_id, start=end + 60, end=end + 120)
    body = (await api.backups(instance_id, **window(start, end))).body
    ids = {item["BackupId"] for item in body["Items"]["Backup"]}
    assert ids == {at_start.backup_id, at_end.backup_id}
    assert before.backup_id not in ids and after.backup_id not in ids


async def test_running_backup_appears_once_finished(
    api: Api, sim: SimulatedRds, clock: FakeClock
) -> None:
    instance_id = primary(sim.fleet)
    running = sim.fleet.add_backup(instance_id, start=NOW - 600, end=NOW + 1200)

    async def listed() -> bool:
        body = (await api.backups(instance_id, **window(NOW - 3600, NOW + 3600))).body
        return running.backup_id in {item["BackupId"] for item in body["Items"]["Backup"]}

    assert not await listed()
    clock.advance(1200)
    assert await listed()


async def test_scheduled_backups_keep_coming_as_the_clock_moves(
    api: Api, sim: SimulatedRds, clock: FakeClock
) -> None:
    instance_id = primary(sim.fleet, weekdays=frozenset(range(7)))
    clock.advance(3 * DAY)
    body = (
        await api.backups(
            instance_id, BackupType="FullBackup", BackupMode="Automated", **window(NOW, clock())
        )
    ).body
    expected = [
        b.backup_id
        for b in sim.fleet.backups_between(instance_id, NOW, clock(), clock())
        if b.backup_type == "FullBackup" and b.mode == "Automated"
    ]
    assert [item["BackupId"] for item in body["Items"]["Backup"]] == expected
    assert len(expected) >= 2


async def test_items_are_newest_first_with_all_documented_fields(
    api: Api, sim: SimulatedRds
) -> None:
    instance_id = primary(sim.fleet, method="Physical", minute_precision=False)
    truth = {b.backup_id: b for b in sim.fleet.backups_between(instance_id, 0, NOW, NOW)}
    body = (await api.backups(instance_id, **window(NOW - 8 * DAY, NOW))).body
    items = body["Items"]["Backup"]
    assert len(items) >= 4
    starts = [item["BackupStartTime"] for item in items]
    assert starts == sorted(starts, reverse=True)
    strings = {
        "BackupId",
        "DBInstanceId",
        "BackupStatus",
        "BackupStartTime",
        "BackupEndTime",
        "BackupType",
        "BackupMode",
        "BackupMethod",
        "BackupInitiator",
        "StorageClass",
        "CopyOnlyBackup",
        "Encryption",
        "Engine",
        "EngineVersion",
        "HostInstanceID",
        "Checksum",
        "MetaStatus",
        "StoreStatus",
        "BackupDownloadURL",
        "BackupIntranetDownloadURL",
    }
    for item in items:
        assert all(isinstance(item[name], str) for name in strings)
        assert all(
            isinstance(item[name], int) for name in ("BackupSize", "IsAvail", "ConsistentTime")
        )
        assert item["BackupId"].isdigit()
        assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", item["BackupEndTime"])
        assert isinstance(item["BackupDownloadLinkByDB"]["BackupDownloadLinkByDB"], list)
        assert item["IsAvail"] == truth[item["BackupId"]].is_avail
    assert body["TotalEcsSnapshotSize"] == 0


async def test_filters_by_status_type_mode_and_id(api: Api, sim: SimulatedRds) -> None:
    fleet = sim.fleet
    instance_id = primary(fleet)
    failed = fleet.add_backup(instance_id, start=NOW - 7200, end=NOW - 7000, status="Failed")
    manual = fleet.add_backup(instance_id, start=NOW - 5000, end=NOW - 4000, mode="Manual")
    span = window(NOW - 3 * DAY, NOW)

    async def ids(**filters: str) -> set[str]:
        body = (await api.backups(instance_id, **span, **filters)).body
        return {item["BackupId"] for item in body["Items"]["Backup"]}

    assert failed.backup_id in await ids(BackupStatus="Failed")
    assert failed.backup_id not in await ids(BackupStatus="Success")
    assert manual.backup_id in await ids(BackupMode="Manual")
    assert manual.backup_id not in await ids(BackupMode="Automated")
    assert await ids(BackupId=failed.backup_id) == {failed.backup_id}
    assert await ids(BackupType="IncrementalBackup") == {
        b.backup_id
        for b in fleet.backups_between(instance_id, NOW - 3 * DAY, NOW, NOW)
        if b.backup_type == "IncrementalBackup"
    }


async def test_shuffled_pages_hold_the_same_items_in_a_stable_order(
    fleet: Fleet, clock: FakeClock
) -> None:
    instance_id = primary(fleet)
    span = window(NOW - 8 * DAY, NOW)
    bodies = []
    for shuffle in (False, True, True):
        sim = make_sim(fleet, clock, shuffle_items=shuffle)
        async with sim.serve() as url, aiohttp.ClientSession() as session:
            bodies.append((await Api(session, url, clock).backups(instance_id, **span)).body)
    plain, shuffled, again = ([i["BackupId"] for i in b["Items"]["Backup"]] for b in bodies)
    assert sorted(plain) == sorted(shuffled) and plain != shuffled
    assert shuffled == again


async def test_same_seed_gives_same_fleet_and_answers(clock: FakeClock) -> None:
    answers = []
    for seed in (3, 3, 4):
        fleet = Fleet.generate(seed=seed, instances=20, now=NOW)
        sim = make_sim(fleet, clock)
        async with sim.serve() as url, aiohttp.ClientSession() as session:
            api = Api(session, url, clock)
            listing = await api.call("DescribeDBInstances", {"RegionId": "cn-hangzhou"})
            backups = [
                (await api.backups(instance_id, **window(NOW - 8 * DAY, NOW))).text
                for instance_id in list(fleet.instances)[:5]
            ]
        answers.append((list(fleet.instances), listing.text, backups))
    assert answers[0] == answers[1]
    assert answers[0][0] != answers[2][0]


# ----- fault injection ---------------------------------------------------------------------


async def test_throttling_is_400_with_optional_retry_after(api: Api, sim: SimulatedRds) -> None:
    instance_id = primary(sim.fleet)
    sim.faults.throttle_rate = 1.0
    sim.quirks.retry_after_on_throttle = False  # tested in test_simulator_quirks.py
    plain = await api.backups(instance_id)
    assert (plain.status, plain.code) == (400, "Throttling.User")
    assert "x-acs-retry-after" not in plain.headers
    sim.faults.retry_after_ms = 1500
    hinted = await api.backups(instance_id)
    assert hinted.headers["x-acs-retry-after"] == "1500"
    sim.faults.throttle_rate = 0.0
    assert (await api.backups(instance_id)).status == 200


async def test_fault_rates_are_random_but_reproducible(fleet: Fleet, clock: FakeClock) -> None:
    instance_id = primary(fleet)
    runs = []
    for _ in range(2):
        faults = Faults(throttle_rate=0.3, error_5xx_rate=0.3)
        sim = make_sim(fleet, clock, faults=faults, rng_seed=11)
        async with sim.serve() as url, aiohttp.ClientSession() as session:
            api = Api(session, url, clock)
            runs.append([(await api.backups(instance_id)).code for _ in range(30)])
    assert runs[0] == runs[1]
    assert {"OK", "Throttling.User"} <= set(runs[0])
    assert set(runs[0]) & {"ServiceUnavailable", "InternalError"}


async def test_5xx_faults(api: Api, sim: SimulatedRds) -> None:
    sim.faults.error_5xx_rate = 1.0
    replies = [await api.backups(primary(sim.fleet)) for _ in range(12)]
    assert {(r.status, r.code) for r in replies} == {
        (503, "ServiceUnavailable"),
        (500, "InternalError"),
    }


async def test_outage_answers_503_to_everything_until_lifted(api: Api, sim: SimulatedRds) -> None:
    instance_id = primary(sim.fleet)
    sim.faults.outage = True
    down = await api.call(
        "DescribeBackups", {"DBInstanceId": instance_id}, secret="even-a-wrong-secret"
    )
    assert (down.status, down.code) == (503, "ServiceUnavailable")
    sim.faults.outage = False
    assert (await api.backups(instance_id)).status == 200


async def test_latency_delays_answers(api: Api, sim: SimulatedRds) -> None:
    instance_id = primary(sim.fleet)
    sim.faults.for_instance(instance_id).latency = 0.05
    started = time.monotonic()
    await api.backups(instance_id)
    assert time.monotonic() - started >= 0.05
    record = sim.requests[-1]
    assert record.answered - record.received >= 0.05


async def test_forced_error_hits_only_its_instance(api: Api, sim: SimulatedRds) -> None:
    sick, healthy = [i for i in sim.fleet.instances if sim.fleet.instances[i].has_backups][:2]
    sim.faults.per_instance[sick] = InstanceFaults(forced_error=INCORRECT_STATE)
    reply = await api.backups(sick)
    assert (reply.status, reply.code) == (403, "IncorrectDBInstanceState")
    assert (await api.backups(healthy)).status == 200
    assert sim.requests[-2].code == "IncorrectDBInstanceState"


async def test_html_error_page(api: Api, sim: SimulatedRds) -> None:
    sim.faults.html_error_rate = 1.0
    reply = await api.backups(primary(sim.fleet))
    assert reply.status == 502
    assert reply.headers["Content-Type"].startswith("text/html")
    with pytest.raises(ValueError):
        json.loads(reply.text)
    assert sim.requests[-1].code == HTML_CODE


async def test_wide_windows_answer_slowly(fleet: Fleet, clock: FakeClock) -> None:
    sim = SimulatedRds(
        fleet, {KEY_ID: SECRET}, clock=clock, wide_window_seconds=2 * DAY, wide_window_delay=0.1
    )
    instance_id = primary(fleet)
    async with sim.serve() as url, aiohttp.ClientSession() as session:
        api = Api(session, url, clock)
        for params in (window(NOW - 2 * DAY, NOW), window(NOW - 3 * DAY, NOW), {}):
            await api.backups(instance_id, **params)
    narrow, wide, open_ended = (r.answered - r.received for r in sim.requests)
    assert narrow < 0.1 <= wide and open_ended >= 0.1


async def test_requests_per_second_limit(fleet: Fleet, clock: FakeClock) -> None:
    ticks = FakeClock(1000.0)  # the simulator's monotonic clock
    faults = Faults(max_requests_per_second=3)
    sim = make_sim(fleet, clock, faults=faults, monotonic=ticks)
    async with sim.serve() as url, aiohttp.ClientSession() as session:
        api = Api(session, url, clock)
        burst = [(await api.backups(primary(fleet))).code for _ in range(4)]
        ticks.advance(1.0)
        after = (await api.backups(primary(fleet))).code
    assert burst == ["OK", "OK", "OK", "Throttling.User"]
    assert after == "OK"


# ----- access per key ----------------------------------------------------------------------


async def test_restricted_instance_is_invisible_to_other_keys(api: Api, sim: SimulatedRds) -> None:
    sim.add_credentials(OTHER_KEY_ID, OTHER_SECRET)
    instance_id = primary(sim.fleet)
    region = sim.fleet.instances[instance_id].region_id
    sim.restrict_instance(instance_id, [OTHER_KEY_ID])
    assert sim.credentials_for(instance_id) == {OTHER_KEY_ID}

    async def listed(key: str, secret: str) -> bool:
        reply = await api.call(
            "DescribeDBInstances",
            {"RegionId": region, "PageSize": "100"},
            key_id=key,
            secret=secret,
        )
        return instance_id in {i["DBInstanceId"] for i in reply.body["Items"]["DBInstance"]}

    assert (await api.backups(instance_id)).code == "InvalidDBInstanceId.NotFound"
    assert not await listed(KEY_ID, SECRET)
    owner = await api.call(
        "DescribeBackups", {"DBInstanceId": instance_id}, key_id=OTHER_KEY_ID, secret=OTHER_SECRET
    )
    assert owner.status == 200
    assert await listed(OTHER_KEY_ID, OTHER_SECRET)


# ----- DescribeBackupPolicy ----------------------------------------------------------------


async def test_backup_policy_matches_the_generated_schedule(api: Api, sim: SimulatedRds) -> None:
    fleet = sim.fleet
    instance_id = primary(fleet, weekdays=frozenset({0, 2, 4, 6}))
    reply = await api.call("DescribeBackupPolicy", {"DBInstanceId": instance_id})
    policy = reply.body
    assert policy["PreferredBackupPeriod"] == "Monday,Wednesday,Friday,Sunday"
    assert isinstance(policy["BackupRetentionPeriod"], int)
    assert policy["EnableBackupLog"] in ("0", "1")
    assert isinstance(policy["EnableIncrementDataBackup"], bool)
    window_start = int(policy["PreferredBackupTime"][:2])
    body = (
        await api.backups(
            instance_id,
            BackupType="FullBackup",
            BackupMode="Automated",
            **window(NOW - 8 * DAY, NOW),
        )
    ).body
    days = []
    for item in body["Items"]["Backup"]:
        started = datetime.strptime(item["BackupStartTime"][:16], "%Y-%m-%dT%H:%M")
        days.append(started.strftime("%A"))
        assert started.hour == window_start
    assert set(days) <= set(policy["PreferredBackupPeriod"].split(","))
    assert len(days) == 4 or len(days) == 5  # 8 days of a 4-days-a-week schedule
    next_start = fleet.next_full_backup(instance_id, NOW)
    assert next_start is not None and next_start > NOW
    assert policy["PreferredNextBackupTime"] == format_minute(next_start)


async def test_backup_policy_needs_an_instance_id_and_a_primary(
    api: Api, sim: SimulatedRds
) -> None:
    missing = await api.call("DescribeBackupPolicy", {})
    assert (missing.status, missing.code) == (400, "MissingDBInstanceId")
    replica = next(i for i in sim.fleet.instances.values() if i.instance_type == "Readonly")
    reply = await api.call("DescribeBackupPolicy", {"DBInstanceId": replica.instance_id})
    assert (reply.status, reply.code) == (403, "IncorrectDBInstanceType")


# ----- DescribeDBInstances -----------------------------------------------------------------


async def test_db_instances_needs_region(api: Api) -> None:
    reply = await api.call("DescribeDBInstances", {})
    assert (reply.status, reply.code) == (400, "MissingRegionId")


async def test_db_instances_filters_and_integer_counters(api: Api, sim: SimulatedRds) -> None:
    fleet = sim.fleet
    expected = [
        i.instance_id
        for i in fleet.instances.values()
        if i.region_id == "cn-hangzhou" and i.tags.get("env") == "prod" and i.engine == "MySQL"
    ]
    assert expected
    reply = await api.call(
        "DescribeDBInstances",
        {"RegionId": "cn-hangzhou", "Engine": "MySQL", "Tags": '{"env":"prod"}', "PageSize": "100"},
    )
    body = reply.body
    assert [i["DBInstanceId"] for i in body["Items"]["DBInstance"]] == expected
    assert body["TotalRecordCount"] == len(expected) and body["PageRecordCount"] == len(expected)
    assert body["PageNumber"] == 1
    item = body["Items"]["DBInstance"][0]
    assert "Tags" not in item
    assert item["RegionId"] == "cn-hangzhou" and item["DBInstanceStatus"] == "Running"


async def test_db_instances_type_and_id_filters(api: Api, sim: SimulatedRds) -> None:
    replicas = [i for i in sim.fleet.instances.values() if i.instance_type == "Readonly"]
    region = replicas[0].region_id
    body = (
        await api.call("DescribeDBInstances", {"RegionId": region, "DBInstanceType": "Readonly"})
    ).body
    found = body["Items"]["DBInstance"]
    assert [i["DBInstanceId"] for i in found] == [
        r.instance_id for r in replicas if r.region_id == region
    ]
    assert all(i["MasterInstanceId"] for i in found)
    two = list(sim.fleet.instances.values())[:2]
    ids = ",".join(i.instance_id for i in two)
    body = (
        await api.call("DescribeDBInstances", {"RegionId": two[0].region_id, "DBInstanceId": ids})
    ).body
    assert {i["DBInstanceId"] for i in body["Items"]["DBInstance"]} == {
        i.instance_id for i in two if i.region_id == two[0].region_id
    }


async def test_db_instances_paging(api: Api, sim: SimulatedRds) -> None:
    region = "cn-hangzhou"
    expected = [i for i, v in sim.fleet.instances.items() if v.region_id == region]
    seen: list[str] = []
    for page in range(1, 5):
        body = (
            await api.call(
                "DescribeDBInstances",
                {"RegionId": region, "PageSize": "4", "PageNumber": str(page)},
            )
        ).body
        assert body["TotalRecordCount"] == len(expected)
        seen += [i["DBInstanceId"] for i in body["Items"]["DBInstance"]]
    assert seen == expected[:16]
    token_walk: list[str] = []
    params = {"RegionId": region, "MaxResults": "5"}
    while True:
        body = (await api.call("DescribeDBInstances", params)).body
        token_walk += [i["DBInstanceId"] for i in body["Items"]["DBInstance"]]
        if not body["NextToken"]:
            break
        params = {**params, "NextToken": body["NextToken"]}
    assert token_walk == expected


@pytest.mark.parametrize(
    ("params", "code"),
    [
        ({"PageSize": "0"}, "InvalidMaxRecordsPerPage.Malformed"),
        ({"PageSize": "101"}, "InvalidMaxRecordsPerPage.Malformed"),
        ({"PageNumber": "0"}, "InvalidPageNumbers.Malformed"),
        ({"Tags": "env=prod"}, "InvalidTags.Malformed"),
        ({"Tags": '["env"]'}, "InvalidTags.Malformed"),
        ({"Tags": json.dumps({f"k{i}": "v" for i in range(6)})}, "InvalidTags.Malformed"),
        ({"NextToken": "not-a-token"}, "InvalidNextToken.Malformed"),
    ],
)
async def test_db_instances_parameter_rules(api: Api, params: dict[str, str], code: str) -> None:
    reply = await api.call("DescribeDBInstances", {"RegionId": "cn-hangzhou", **params})
    assert (reply.status, reply.code) == (400, code)


# ----- the fleet ---------------------------------------------------------------------------


def test_fleet_is_realistic() -> None:
    fleet = Fleet.generate(seed=1, instances=300, now=NOW)
    instances = list(fleet.instances.values())
    assert {i.engine for i in instances} == {"MySQL", "PostgreSQL", "SQLServer", "MariaDB"}
    for instance in instances:
        prefix = "pgm-" if instance.engine == "PostgreSQL" else "rm-"
        assert re.fullmatch(re.escape(prefix) + r"[a-z0-9]{15}", instance.instance_id)
    replicas = [i for i in instances if i.instance_type == "Readonly"]
    assert replicas
    assert all(not fleet.backups_between(r.instance_id, 0, NOW, NOW) for r in replicas)
    sizes = {}
    for instance in instances:
        backups = fleet.backups_between(instance.instance_id, NOW - 8 * DAY, NOW, NOW)
        if instance.has_backups:
            assert backups, instance
        for backup in backups:
            assert backup.start >= NOW - 8 * DAY and backup.end <= NOW
            assert 30 <= backup.end - backup.start <= 5 * 3600
            if backup.status == "Failed":
                assert (backup.size, backup.is_avail) == (0, 0)
        fulls = [b for b in backups if b.backup_type == "FullBackup" and b.mode == "Automated"]
        ok = [b.size for b in reversed(fulls) if b.status == "Success"]
        if len(ok) >= 2:
            sizes[instance.instance_id] = ok
    # Data grows slowly: most instances end the week a little bigger, none jumps.
    assert sum(s[-1] > s[0] for s in sizes.values()) > 0.9 * len(sizes)
    assert all(0.99 < s[-1] / s[0] < 1.1 for s in sizes.values())
    every = [b for i in instances for b in fleet.backups_between(i.instance_id, 0, NOW, NOW)]
    assert {b.backup_type for b in every} == {"FullBackup", "IncrementalBackup"}
    assert {b.mode for b in every} == {"Automated", "Manual"}
    assert {b.method for b in every} == {"Physical", "Logical", "Snapshot"}
    assert 0 < sum(b.status == "Failed" for b in every) < 0.1 * len(every)
    assert len({b.backup_id for b in every}) == len(every)
    mysql56 = [b for b in every if b.engine_version == "5.6" and b.status == "Success"]
    assert mysql56 and all(b.consistent_time > 0 for b in mysql56)
    assert all(b.consistent_time == 0 for b in every if b.engine_version != "5.6")
    sql_snapshots = [b for b in every if b.engine == "SQLServer" and b.method == "Snapshot"]
    assert sql_snapshots and all(b.download_url == "" for b in sql_snapshots)


async def test_snapshot_instances_report_a_chain_size(api: Api, sim: SimulatedRds) -> None:
    snapshot = primary(sim.fleet, method="Snapshot")
    physical = primary(sim.fleet, method="Physical")
    span = window(NOW - DAY, NOW)
    chain = (await api.backups(snapshot, **span)).body["TotalEcsSnapshotSize"]
    assert chain == sim.fleet.snapshot_chain_bytes(snapshot, NOW) > 0
    assert (await api.backups(physical, **span)).body["TotalEcsSnapshotSize"] == 0


async def test_sqlserver_snapshot_items_have_empty_download_urls(
    api: Api, sim: SimulatedRds
) -> None:
    policy = SimPolicy(weekdays=frozenset(range(7)), window_start_hour=2, method="Snapshot")
    instance = sim.fleet.add_instance(engine="SQLServer", policy=policy)
    items = (await api.backups(instance.instance_id, **window(NOW - 3 * DAY, NOW))).body["Items"][
        "Backup"
    ]
    assert items
    assert all(i["BackupDownloadURL"] == i["BackupIntranetDownloadURL"] == "" for i in items)


def test_stopped_backups_make_an_instance_stale() -> None:
    fleet = Fleet.generate(seed=2, instances=10, now=NOW)
    instance_id = primary(fleet, weekdays=frozenset(range(7)))
    fleet.stop_backups(instance_id, after=NOW - 3 * DAY)
    newest = fleet.newest_success(instance_id, now=NOW + 2 * DAY, lookback=8 * DAY)
    assert newest is not None and newest.start <= NOW - 3 * DAY
    fleet.stop_backups(instance_id, after=None)
    resumed = fleet.newest_success(instance_id, now=NOW + 2 * DAY, lookback=8 * DAY)
    assert resumed is not None and resumed.start > NOW


def test_failure_rate_applies_from_a_time_on() -> None:
    fleet = Fleet.generate(seed=2, instances=10, now=NOW)
    instance_id = primary(fleet)
    before = fleet.backups_between(instance_id, 0, NOW, NOW + 5 * DAY)
    fleet.set_failure_rate(instance_id, 1.0, since=NOW)
    after = fleet.backups_between(instance_id, 0, NOW + 5 * DAY, NOW + 5 * DAY)
    assert [b for b in after if b.start < NOW] == before
    later = [b for b in after if b.start >= NOW]
    assert later and all(b.status == "Failed" and b.is_avail == 0 for b in later)
    assert fleet.count(instance_id, status="Failed", since=NOW, now=NOW + 5 * DAY) == len(later)


async def test_added_and_removed_instances(api: Api, sim: SimulatedRds) -> None:
    fleet = sim.fleet
    added = fleet.add_instance(engine="PostgreSQL", region_id="cn-shanghai", tags={"env": "prod"})
    assert added.instance_id.startswith("pgm-")
    assert (await api.backups(added.instance_id, **window(NOW - DAY, NOW))).status == 200
    listing = await api.call("DescribeDBInstances", {"RegionId": "cn-shanghai", "PageSize": "100"})
    assert added.instance_id in {i["DBInstanceId"] for i in listing.body["Items"]["DBInstance"]}
    fleet.remove_instance(added.instance_id)
    gone = await api.backups(added.instance_id)
    assert gone.code == "InvalidDBInstanceId.NotFound"


def test_retention_hides_old_backups_when_enabled() -> None:
    kept = Fleet.generate(seed=5, instances=10, now=NOW, history_days=20)
    expiring = Fleet.generate(
        seed=5, instances=10, now=NOW, history_days=20, expire_after_retention=True
    )
    instance_id = primary(kept, retention_days=7)
    assert [b.backup_id for b in expiring.backups_between(instance_id, 0, NOW, NOW)] == [
        b.backup_id for b in kept.backups_between(instance_id, NOW - 7 * DAY, NOW, NOW)
    ]
    assert kept.backups_between(instance_id, 0, NOW - 8 * DAY, NOW)


async def test_status_and_policy_changes_show_in_the_api(api: Api, sim: SimulatedRds) -> None:
    fleet = sim.fleet
    instance_id = primary(fleet)
    region = fleet.instances[instance_id].region_id
    fleet.set_status(instance_id, "Restarting")
    body = (
        await api.call(
            "DescribeDBInstances", {"RegionId": region, "DBInstanceStatus": "Restarting"}
        )
    ).body
    assert [i["DBInstanceId"] for i in body["Items"]["DBInstance"]] == [instance_id]
    fleet.set_policy(instance_id, SimPolicy(weekdays=frozenset({5}), window_start_hour=23))
    policy = (await api.call("DescribeBackupPolicy", {"DBInstanceId": instance_id})).body
    assert (policy["PreferredBackupPeriod"], policy["PreferredBackupTime"]) == (
        "Saturday",
        "23:00Z-00:00Z",
    )
    fulls = fleet.backups_between(instance_id, NOW - 8 * DAY, NOW, NOW)
    assert {time.gmtime(b.start).tm_wday for b in fulls if b.mode == "Automated"} == {5}


async def test_request_log_can_be_bounded(fleet: Fleet, clock: FakeClock) -> None:
    sim = make_sim(fleet, clock, max_records=3)
    async with sim.serve() as url, aiohttp.ClientSession() as session:
        api = Api(session, url, clock)
        for page in range(1, 9):
            await api.backups(primary(fleet), PageNumber=str(page))
    assert 3 <= len(sim.requests) <= 6
    assert sim.requests[-1].params["PageNumber"] == "8"


# ----- command line ------------------------------------------------------------------------


@pytest.mark.slow
@pytest.mark.parametrize(
    ("flags", "error_type"), [((), "text/xml"), (("--no-quirks",), "application/json")]
)
async def test_command_line_serves_until_sigterm(
    clock: FakeClock, flags: tuple[str, ...], error_type: str
) -> None:
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "exporter.simulator",
        "--instances",
        "3",
        "--port",
        "0",
        "--access-key-id",
        KEY_ID,
        "--access-key-secret",
        SECRET,
        *flags,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env={**os.environ, "PYTHONPATH": REPO_ROOT},
    )
    assert process.stdout is not None
    line = (await asyncio.wait_for(process.stdout.readline(), 10)).decode()
    url = re.search(r"http://127\.0\.0\.1:\d+", line)
    assert url and KEY_ID in line and SECRET not in line
    live = FakeClock(time.time())
    async with aiohttp.ClientSession() as session:
        api = Api(session, url.group(0), live)
        reply = await api.call("DescribeDBInstances", {"RegionId": "cn-hangzhou"})
        error = await api.call("DescribeBackups", {})  # with aiohttp's "Accept: */*"
    assert reply.status == 200
    assert error.headers["Content-Type"].startswith(error_type)
    assert error.code == "MissingDBInstanceId"
    process.send_signal(signal.SIGTERM)
    _, stderr = await asyncio.wait_for(process.communicate(), 10)
    assert process.returncode == 0, stderr.decode()
