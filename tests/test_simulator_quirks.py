"""The simulated API's quirks (on by default, as the real API has them) and its hostile answers,
over real loopback HTTP with requests signed by our signer."""

from __future__ import annotations

import calendar
import dataclasses
import hashlib
import itertools
import json
import re
import zlib
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any
from xml.etree import ElementTree

import aiohttp
import pytest
import yarl
from multidict import CIMultiDictProxy

from exporter.aliyun.signing import sign_rpc_v3
from exporter.simulator import (
    API_VERSION,
    HOSTILE_MODES,
    Faults,
    Fleet,
    InstanceFaults,
    Quirks,
    SimulatedRds,
)
from exporter.simulator.timefmt import format_minute, parse_minute, parse_second

DAY = 86400.0
NOW = float(calendar.timegm((2025, 3, 12, 6, 30, 0)))  # a Wednesday
KEY_ID = "LTAI5tQuirkKey0000000000"
SECRET = "quirk-secret-0123456789"
MINUTE_RE = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\dZ")
SECOND_RE = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ")


@dataclass
class Reply:
    status: int
    headers: CIMultiDictProxy[str]
    raw: bytes

    @property
    def text(self) -> str:
        return self.raw.decode()

    @property
    def body(self) -> Any:
        return json.loads(self.raw)

    @property
    def error(self) -> dict[str, str]:
        """The error's fields, from JSON or XML."""
        if self.headers["Content-Type"].startswith("text/xml"):
            return {field.tag: field.text or "" for field in ElementTree.fromstring(self.raw)}
        return {name: str(value) for name, value in self.body.items()}


class Api:
    """A minimal signed client; redirects are not followed and bodies are read raw."""

    def __init__(self, session: aiohttp.ClientSession, base_url: str) -> None:
        self.session = session
        self.base_url = base_url
        self.host = yarl.URL(base_url).host_port_subcomponent or ""
        self._nonces = itertools.count()

    async def call(
        self,
        action: str,
        params: Mapping[str, str] | None = None,
        *,
        accept: str | None = "application/json",
        secret: str = SECRET,
        key_id: str = KEY_ID,
        token: str | None = None,
    ) -> Reply:
        """``accept=None`` sends no Accept header at all."""
        signed = sign_rpc_v3(
            method="POST",
            host=self.host,
            action=action,
            version=API_VERSION,
            params=dict(params or {}),
            access_key_id=key_id,
            access_key_secret=secret,
            security_token=token,
            date=datetime.fromtimestamp(NOW, tz=timezone.utc),
            nonce=f"nonce-{next(self._nonces)}",
        )
        headers = dict(signed.headers)
        if accept is not None:
            headers["Accept"] = accept
        url = yarl.URL(f"{self.base_url}/?{signed.query_string}", encoded=True)
        async with self.session.post(
            url,
            headers=headers,
            allow_redirects=False,
            skip_auto_headers=("Accept",) if accept is None else (),
        ) as response:
            return Reply(response.status, response.headers, await response.read())

    async def backups(self, instance_id: str, **params: str) -> Reply:
        return await self.call("DescribeBackups", {"DBInstanceId": instance_id, **params})


def window(start: float, end: float) -> dict[str, str]:
    return {"StartTime": format_minute(start), "EndTime": format_minute(end)}


def make_sim(fleet: Fleet, **options: Any) -> SimulatedRds:
    options.setdefault("wide_window_delay", 0.0)
    return SimulatedRds(fleet, {KEY_ID: SECRET}, clock=lambda: NOW, **options)


@pytest.fixture
def fleet() -> Fleet:
    return Fleet.generate(seed=7, instances=40, now=NOW)


@pytest.fixture
def sim(fleet: Fleet) -> SimulatedRds:
    return make_sim(fleet)


@pytest.fixture
async def api(sim: SimulatedRds) -> AsyncIterator[Api]:
    async with sim.serve() as base_url, aiohttp.ClientSession() as session:
        yield Api(session, base_url)


def primary(fleet: Fleet, **wanted: object) -> str:
    for instance in fleet.instances.values():
        if instance.has_backups and all(getattr(instance, k) == v for k, v in wanted.items()):
            return instance.instance_id
    raise LookupError(wanted)


def other_primary(fleet: Fleet, instance_id: str) -> str:
    return next(i for i, v in fleet.instances.items() if v.has_backups and i != instance_id)


def quiet(fleet: Fleet, **wanted: object) -> str:
    """A primary with no scheduled backups from ten days back: only what a test adds."""
    instance_id = primary(fleet, **wanted)
    fleet.stop_backups(instance_id, after=NOW - 10 * DAY)
    return instance_id


# ----- switches ----------------------------------------------------------------------------


def test_quirks_are_all_on_by_default_and_none_turns_them_all_off(fleet: Fleet) -> None:
    names = [field.name for field in dataclasses.fields(Quirks)]
    assert len(names) == 6
    assert all(getattr(make_sim(fleet).quirks, name) for name in names)
    assert not any(getattr(Quirks.none(), name) for name in names)
    chosen = Quirks.none()
    assert make_sim(fleet, quirks=chosen).quirks is chosen


# ----- paging past the end -----------------------------------------------------------------


async def test_a_page_after_a_full_last_page_is_invalid_page_numbers(
    api: Api, sim: SimulatedRds
) -> None:
    instance_id = quiet(sim.fleet)
    for i in range(30):  # exactly one page of the default size
        sim.fleet.add_backup(instance_id, start=NOW - DAY + i * 600, end=NOW - DAY + i * 600 + 60)
    span = window(NOW - 2 * DAY, NOW)
    first = await api.backups(instance_id, **span)
    assert (first.body["PageRecordCount"], first.body["TotalRecordCount"]) == ("30", "30")
    second = await api.backups(instance_id, PageNumber="2", **span)
    assert second.status == 400
    assert second.error["Code"] == "InvalidPageNumbers.Malformed"
    assert second.error["Message"] == "Specified page number is not valid."
    assert sim.requests[-1].code == "InvalidPageNumbers.Malformed"
    sim.quirks.page_past_end_error = False
    empty = await api.backups(instance_id, PageNumber="2", **span)
    assert empty.status == 200
    assert (empty.body["Items"]["Backup"], empty.body["PageRecordCount"]) == ([], "0")


async def test_the_first_page_of_an_empty_window_is_an_empty_page(
    api: Api, sim: SimulatedRds
) -> None:
    instance_id = quiet(sim.fleet)
    reply = await api.backups(instance_id, PageNumber="1", **window(NOW - DAY, NOW))
    assert reply.status == 200
    assert (reply.body["Items"]["Backup"], reply.body["TotalRecordCount"]) == ([], "0")
    past = await api.backups(instance_id, PageNumber="2", **window(NOW - DAY, NOW))
    assert past.error["Code"] == "InvalidPageNumbers.Malformed"


# ----- counters ----------------------------------------------------------------------------


async def test_backup_counters_are_strings_unless_switched_off(api: Api, sim: SimulatedRds) -> None:
    instance_id = primary(sim.fleet)
    names = ("PageNumber", "PageRecordCount", "TotalRecordCount")
    strings = (await api.backups(instance_id, **window(NOW - DAY, NOW))).body
    assert all(isinstance(strings[name], str) for name in names)
    sim.quirks.string_counters = False
    numbers = (await api.backups(instance_id, **window(NOW - DAY, NOW))).body
    assert [numbers[name] for name in names] == [int(strings[name]) for name in names]


# ----- minute precision --------------------------------------------------------------------


async def test_minute_precision_instances_list_the_same_instants_without_seconds(
    api: Api, sim: SimulatedRds
) -> None:
    instance_id = primary(sim.fleet, minute_precision=True)
    span = window(NOW - 8 * DAY, NOW)
    short = (await api.backups(instance_id, **span)).body["Items"]["Backup"]
    sim.quirks.minute_times = False
    long = (await api.backups(instance_id, **span)).body["Items"]["Backup"]
    truth = {b.backup_id: b for b in sim.fleet.backups_between(instance_id, 0, NOW, NOW)}
    assert short and [i["BackupId"] for i in short] == [i["BackupId"] for i in long]
    for minute, second in zip(short, long, strict=True):
        backup = truth[minute["BackupId"]]
        for name, epoch in (("BackupStartTime", backup.start), ("BackupEndTime", backup.end)):
            assert MINUTE_RE.fullmatch(minute[name]) and SECOND_RE.fullmatch(second[name])
            assert second[name].endswith(":00Z")
            assert parse_minute(minute[name]) == parse_second(second[name]) == epoch


async def test_other_instances_keep_their_seconds(api: Api, sim: SimulatedRds) -> None:
    instance_id = primary(sim.fleet, minute_precision=False)
    items = (await api.backups(instance_id, **window(NOW - 8 * DAY, NOW))).body["Items"]["Backup"]
    assert items and all(SECOND_RE.fullmatch(i["BackupEndTime"]) for i in items)
    assert any(not i["BackupEndTime"].endswith(":00Z") for i in items)


def test_minute_precision_is_drawn_for_about_a_quarter_of_instances() -> None:
    fleet = Fleet.generate(seed=1, instances=400, now=NOW)
    share = sum(i.minute_precision for i in fleet.instances.values()) / 400
    assert 0.15 < share < 0.35


def test_the_new_draws_leave_the_existing_fleet_unchanged(fleet: Fleet) -> None:
    # Digests of Fleet.generate(seed=7, instances=40) as the code before quirks made it: the
    # ids, and each backup's id, status, size and (except on minute-precision instances, whose
    # times are now whole minutes) its times.
    ids = hashlib.sha256(",".join(fleet.instances).encode()).hexdigest()[:16]
    assert ids == "617e2aca0b58c64d"
    rows = []
    for instance in fleet.instances.values():
        for b in fleet.backups_between(instance.instance_id, 0, NOW + 3600, NOW + 3600):
            times = "" if instance.minute_precision else f"{b.start}:{b.end}"
            rows.append(f"{b.backup_id}:{b.status}:{b.size}:{times}")
    assert hashlib.sha256("\n".join(rows).encode()).hexdigest()[:16] == "af530f13a4e0f01e"


def test_minute_precision_backups_start_and_end_on_whole_minutes(fleet: Fleet) -> None:
    added = fleet.add_instance(minute_precision=True)
    assert added.minute_precision
    assert not fleet.add_instance(minute_precision=False).minute_precision
    generated = fleet.backups_between(added.instance_id, 0, NOW, NOW)
    by_hand = fleet.add_backup(added.instance_id, start=NOW - 3599.5, end=NOW - 1234.5)
    assert (by_hand.start, by_hand.end) == (NOW - 3600, NOW - 1260)
    assert generated
    assert all(b.start % 60 == 0 and b.end % 60 == 0 and b.end > b.start for b in generated)


# ----- unusable successes ------------------------------------------------------------------


def test_about_three_percent_of_successes_cannot_be_restored() -> None:
    fleet = Fleet.generate(seed=1, instances=200, now=NOW)
    ids = list(fleet.instances)
    unusable = sum(fleet.count(i, status="Success", since=0, now=NOW, unusable=True) for i in ids)
    successes = sum(fleet.count(i, status="Success", since=0, now=NOW) for i in ids)
    assert 0.01 < unusable / successes < 0.06
    usable = sum(fleet.count(i, status="Success", since=0, now=NOW, unusable=False) for i in ids)
    assert usable + unusable == successes


async def test_unusable_successes_are_listed_with_is_avail_0(api: Api, sim: SimulatedRds) -> None:
    fleet = sim.fleet
    instance_id = primary(fleet)
    bad = fleet.add_backup(instance_id, start=NOW - 3600, end=NOW - 600, available=False)
    assert bad.is_avail == 0

    async def listed() -> dict[str, Any]:
        items = (await api.backups(instance_id, **window(NOW - DAY, NOW))).body["Items"]["Backup"]
        return {item["BackupId"]: item for item in items}

    item = (await listed())[bad.backup_id]
    assert (item["BackupStatus"], item["IsAvail"]) == ("Success", 0)
    sim.quirks.unusable_successes = False
    assert (await listed())[bad.backup_id]["IsAvail"] == 1


async def test_generated_unusable_successes_show_in_the_api(fleet: Fleet) -> None:
    sim = make_sim(fleet)
    found = [
        (iid, b)
        for iid in fleet.instances
        for b in fleet.backups_between(iid, NOW - 8 * DAY, NOW, NOW)
        if b.status == "Success" and not b.available
    ]
    assert found  # 40 instances over 8 days: a handful
    instance_id, backup = found[0]
    async with sim.serve() as url, aiohttp.ClientSession() as session:
        items = (await Api(session, url).backups(instance_id, **window(NOW - 8 * DAY, NOW))).body
    [item] = [i for i in items["Items"]["Backup"] if i["BackupId"] == backup.backup_id]
    assert (item["BackupStatus"], item["IsAvail"]) == ("Success", 0)


def test_ground_truth_skips_unusable_successes(fleet: Fleet) -> None:
    instance_id = primary(fleet)
    before = fleet.newest_success(instance_id, now=NOW)
    assert before is not None and before.available
    bad = fleet.add_backup(instance_id, start=NOW - 1800, end=NOW - 60, available=False)
    assert fleet.newest_success(instance_id, now=NOW) == before
    assert fleet.newest(instance_id, now=NOW, status="Success") == before
    assert fleet.newest(instance_id, now=NOW) == bad  # any status: it is the newest backup
    # With the quirk off the API shows it as usable; ground truth is told so.
    assert fleet.newest_success(instance_id, now=NOW, restorable_only=False) == bad
    assert fleet.newest_unusable(instance_id, now=NOW) == bad
    assert fleet.count(instance_id, since=NOW - 3600, now=NOW, unusable=True) == 1


# ----- XML errors --------------------------------------------------------------------------


@pytest.mark.parametrize(
    "accept", [None, "*/*", "application/xml", "text/xml", "application/json;q=0, text/html"]
)
async def test_errors_are_xml_unless_json_is_accepted(api: Api, accept: str | None) -> None:
    reply = await api.call("DescribeBackups", {}, accept=accept)
    assert reply.status == 400
    assert reply.headers["Content-Type"].startswith("text/xml")
    assert reply.text.startswith("<?xml version='1.0' encoding='UTF-8'?><Error><RequestId>")
    root = ElementTree.fromstring(reply.raw)
    assert root.tag == "Error"
    assert [child.tag for child in root] == ["RequestId", "HostId", "Code", "Message", "Recommend"]
    assert reply.error["Code"] == "MissingDBInstanceId"
    assert "&amp;product=Rds" in reply.text  # escaped, and it parses back
    assert reply.error["RequestId"] in reply.error["Recommend"]


@pytest.mark.parametrize(
    "accept", ["application/json", "application/json, */*", "text/xml;q=0.5, Application/JSON"]
)
async def test_errors_are_json_when_json_is_accepted(api: Api, accept: str) -> None:
    reply = await api.call("DescribeBackups", {}, accept=accept)
    assert reply.headers["Content-Type"].startswith("application/json")
    assert reply.body["Code"] == "MissingDBInstanceId"


async def test_xml_errors_switch_off_and_successes_stay_json(api: Api, sim: SimulatedRds) -> None:
    ok = await api.backups(primary(sim.fleet), **window(NOW - DAY, NOW))
    assert ok.headers["Content-Type"].startswith("application/json")
    no_accept = await api.call("DescribeBackups", {"DBInstanceId": primary(sim.fleet)}, accept=None)
    assert no_accept.status == 200 and "Items" in no_accept.body
    sim.quirks.xml_errors_unless_json = False
    plain = await api.call("DescribeBackups", {}, accept=None)
    assert plain.body["Code"] == "MissingDBInstanceId"


# ----- retry-after on throttling -----------------------------------------------------------


async def throttled_hints(sim: SimulatedRds, count: int) -> list[str | None]:
    sim.faults.throttle_rate = 1.0
    async with sim.serve() as url, aiohttp.ClientSession() as session:
        api = Api(session, url)
        replies = [await api.backups(primary(sim.fleet)) for _ in range(count)]
    assert all(r.error["Code"] == "Throttling.User" for r in replies)
    return [r.headers.get("x-acs-retry-after") for r in replies]


async def test_about_half_of_throttled_answers_carry_a_retry_after(fleet: Fleet) -> None:
    hints = await throttled_hints(make_sim(fleet, rng_seed=3), 200)
    given = [int(hint) for hint in hints if hint is not None]
    assert 60 <= len(given) <= 140
    assert all(1000 <= ms <= 5000 for ms in given) and len(set(given)) > 10
    assert hints == await throttled_hints(make_sim(fleet, rng_seed=3), 200)  # seeded


async def test_a_fixed_retry_after_wins_and_the_quirk_switches_off(fleet: Fleet) -> None:
    fixed = make_sim(fleet, faults=Faults(retry_after_ms=1500))
    assert set(await throttled_hints(fixed, 20)) == {"1500"}
    assert set(await throttled_hints(make_sim(fleet, quirks=Quirks.none()), 20)) == {None}


async def test_quirks_draw_from_their_own_random_stream(fleet: Fleet) -> None:
    # The same seeded fault decisions, whatever the quirks: no test that pinned them moves.
    runs = []
    for quirks in (Quirks(), Quirks.none()):
        sim = make_sim(fleet, quirks=quirks, faults=Faults(throttle_rate=0.3), rng_seed=11)
        async with sim.serve() as url, aiohttp.ClientSession() as session:
            api = Api(session, url)
            runs.append([(await api.backups(primary(fleet))).status for _ in range(40)])
    assert runs[0] == runs[1] and {200, 400} <= set(runs[0])


# ----- hostile answers ---------------------------------------------------------------------


def test_hostile_modes_are_checked_when_set() -> None:
    assert len(HOSTILE_MODES) == 11
    faults = Faults()
    with pytest.raises(ValueError, match="hostile: unknown mode 'gzip'"):
        faults.for_instance("rm-x").hostile = "gzip"
    with pytest.raises(ValueError, match="unknown mode"):
        InstanceFaults(hostile="nope")
    faults.hostile = "redirect"
    faults.hostile = None


async def test_gzip_bomb_is_small_on_the_wire_and_huge_inflated(sim: SimulatedRds) -> None:
    instance_id = primary(sim.fleet)
    sim.faults.for_instance(instance_id).hostile = "gzip_bomb"
    sim.faults.bomb_bytes = 64 << 20
    async with sim.serve() as url, aiohttp.ClientSession(auto_decompress=False) as session:
        api = Api(session, url)
        bomb = await api.backups(instance_id)
        again = await api.backups(instance_id)
        other = await api.backups(other_primary(sim.fleet, instance_id))
    assert (bomb.status, bomb.headers["Content-Encoding"]) == (200, "gzip")
    assert len(bomb.raw) < 128 << 10  # 64 MiB inflated
    assert again.raw == bomb.raw
    assert "Content-Encoding" not in other.headers and "Items" in other.body
    inflate = zlib.decompressobj(31)
    first = inflate.decompress(bomb.raw, 64)
    total, rest = len(first), inflate.unconsumed_tail
    while rest:  # inflated a bounded piece at a time, as a careful client would
        total += len(inflate.decompress(rest, 1 << 20))
        rest = inflate.unconsumed_tail
    assert first.startswith(b'{"Items":{"Backup":[') and inflate.eof
    assert total == 64 << 20
    assert [r.code for r in sim.requests] == ["GZIP_BOMB", "GZIP_BOMB", "OK"]


async def test_huge_page_holds_distinct_copies_of_a_valid_item(api: Api, sim: SimulatedRds) -> None:
    instance_id = primary(sim.fleet)
    sim.faults.for_instance(instance_id).hostile = "huge_page"
    sim.faults.huge_items = 2000
    reply = await api.backups(instance_id, **window(NOW - 8 * DAY, NOW))
    body = reply.body
    items = body["Items"]["Backup"]
    assert len(items) == 2000 and len({i["BackupId"] for i in items}) == 2000
    normal = {b.backup_id for b in sim.fleet.backups_between(instance_id, 0, NOW, NOW)}
    assert items[0]["BackupId"] not in normal
    assert all({**i, "BackupId": ""} == {**items[0], "BackupId": ""} for i in items)
    assert items[0]["DBInstanceId"] == instance_id and items[0]["BackupStatus"] == "Success"
    assert (body["PageRecordCount"], body["TotalRecordCount"]) == ("2000", "2000")
    # A window with nothing in it gets the copies all the same.
    empty = await api.backups(instance_id, **window(NOW - 30 * DAY, NOW - 29 * DAY))
    assert len(empty.body["Items"]["Backup"]) == 2000
    assert sim.requests[-1].code == "HUGE_PAGE"


async def test_redirect_points_elsewhere_with_an_empty_body(api: Api, sim: SimulatedRds) -> None:
    instance_id = primary(sim.fleet)
    sim.faults.for_instance(instance_id).hostile = "redirect"
    reply = await api.backups(instance_id)
    assert (reply.status, reply.headers["Location"], reply.raw) == (
        302,
        "http://127.0.0.1:9/steal",
        b"",
    )
    sim.faults.redirect_to = "http://127.0.0.1:9/elsewhere"
    assert (await api.backups(instance_id)).headers["Location"] == "http://127.0.0.1:9/elsewhere"
    assert sim.requests[-1].code == "REDIRECT"


@pytest.mark.parametrize("mode", ["future_dates", "negative_size"])
async def test_normal_answers_with_impossible_values(
    api: Api, sim: SimulatedRds, mode: str
) -> None:
    instance_id = primary(sim.fleet)
    span = window(NOW - 8 * DAY, NOW)
    normal = (await api.backups(instance_id, **span)).body["Items"]["Backup"]
    sim.faults.for_instance(instance_id).hostile = mode
    items = (await api.backups(instance_id, **span)).body["Items"]["Backup"]
    assert [i["BackupId"] for i in items] == [i["BackupId"] for i in normal] != []
    for item, before in zip(items, normal, strict=True):
        if mode == "future_dates":
            assert item["BackupStartTime"].startswith("2999-")
            assert item["BackupEndTime"].startswith("2999-")
            assert item["BackupEndTime"][4:] == before["BackupEndTime"][4:]
        else:
            assert item["BackupSize"] == -1
    assert sim.requests[-1].code == mode.upper()


@pytest.mark.parametrize("accept", ["application/json", None])
async def test_giant_code_and_request_id(api: Api, sim: SimulatedRds, accept: str | None) -> None:
    instance_id = primary(sim.fleet)
    sim.faults.for_instance(instance_id).hostile = "giant_code"
    reply = await api.call("DescribeBackups", {"DBInstanceId": instance_id}, accept=accept)
    assert reply.status == 400
    assert len(reply.error["Code"]) == len(reply.error["RequestId"]) == 1 << 20
    assert len(reply.headers["x-acs-request-id"]) < 100
    assert sim.requests[-1].code == "GIANT_CODE"


async def test_random_code_is_new_each_time_and_seeded(fleet: Fleet) -> None:
    runs = []
    for _ in range(2):
        sim = make_sim(fleet, faults=Faults(hostile="random_code"), rng_seed=5)
        async with sim.serve() as url, aiohttp.ClientSession() as session:
            api = Api(session, url)
            codes = [(await api.backups(primary(fleet))).error["Code"] for _ in range(5)]
        assert all(re.fullmatch(r"Err\.[0-9a-f]{16}", code) for code in codes)
        assert len(set(codes)) == 5
        assert [r.code for r in sim.requests] == codes
        runs.append(codes)
    assert runs[0] == runs[1]


async def test_echo_secret_sends_back_the_secret_and_token(api: Api, sim: SimulatedRds) -> None:
    sim.add_sts_credentials("STS.quirk", "sts-secret-abc", "token-xyz")
    instance_id = primary(sim.fleet)
    sim.faults.for_instance(instance_id).hostile = "echo_secret"
    reply = await api.call(
        "DescribeBackups",
        {"DBInstanceId": instance_id},
        key_id="STS.quirk",
        secret="sts-secret-abc",
        token="token-xyz",
    )
    assert reply.status == 400
    for name in ("Code", "Message", "RequestId"):
        assert "sts-secret-abc" in reply.error[name] and "token-xyz" in reply.error[name]
    assert sim.requests[-1].code == "ECHO_SECRET"


async def test_deep_json_empty_object_and_null_items(api: Api, sim: SimulatedRds) -> None:
    instance_id = primary(sim.fleet)
    scoped = sim.faults.for_instance(instance_id)
    scoped.hostile = "deep_json"
    deep = await api.backups(instance_id)
    assert deep.status == 200
    assert deep.raw == b"[" * 100_000 + b"]" * 100_000
    scoped.hostile = "empty_object"
    assert set((await api.backups(instance_id)).body) == {"RequestId"}
    scoped.hostile = "items_null"
    nulled = (await api.backups(instance_id, **window(NOW - DAY, NOW))).body
    assert nulled["Items"] is None and nulled["TotalRecordCount"].isdigit()
    assert [r.code for r in sim.requests] == ["DEEP_JSON", "EMPTY_OBJECT", "ITEMS_NULL"]


async def test_per_instance_hostility_is_for_describe_backups_only(
    api: Api, sim: SimulatedRds
) -> None:
    instance_id = primary(sim.fleet)
    sim.faults.for_instance(instance_id).hostile = "empty_object"
    policy = await api.call("DescribeBackupPolicy", {"DBInstanceId": instance_id})
    assert "PreferredBackupPeriod" in policy.body
    assert set((await api.backups(instance_id)).body) == {"RequestId"}


async def test_global_and_per_action_hostility(api: Api, sim: SimulatedRds) -> None:
    region = sim.fleet.instance(primary(sim.fleet)).region_id
    listing = {"RegionId": region, "PageSize": "100"}
    sim.faults.hostile = "items_null"
    assert (await api.call("DescribeDBInstances", listing)).body["Items"] is None
    policy = await api.call("DescribeBackupPolicy", {"DBInstanceId": primary(sim.fleet)})
    assert policy.status == 200 and policy.body["Items"] is None
    sim.faults.hostile = None
    sim.faults.for_action("DescribeDBInstances").hostile = "huge_page"
    sim.faults.huge_items = 500
    found = (await api.call("DescribeDBInstances", listing)).body
    assert len({i["DBInstanceId"] for i in found["Items"]["DBInstance"]}) == 500
    assert found["TotalRecordCount"] == 500  # this action's counters are integers
    assert (await api.backups(primary(sim.fleet))).status == 200


async def test_hostility_replaces_only_successful_answers(api: Api, sim: SimulatedRds) -> None:
    sim.faults.hostile = "gzip_bomb"
    wrong = await api.call("DescribeBackups", {"DBInstanceId": "rm-x"}, secret="wrong")
    assert wrong.error["Code"] == "SignatureDoesNotMatch"
    missing = await api.backups("rm-doesnotexist0000")
    assert missing.error["Code"] == "InvalidDBInstanceId.NotFound"
    assert "Content-Encoding" not in missing.headers
