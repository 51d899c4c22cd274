"""The exporter against a hostile or broken API, end to end: the simulator sends each hostile
answer for one instance; that instance's collection fails with a clear code (or its odd records
are skipped), and nothing else is affected: the other instances, /metrics, the log, the labels."""

from __future__ import annotations

import logging
from dataclasses import dataclass

import pytest

from exporter.aliyun.errors import KNOWN_CODES, OTHER_CODE
from exporter.simulator import Faults, Fleet
from tests.harness import INTERVAL, key, running, success_key
from tests.helpers import SECRET


@dataclass(frozen=True)
class Case:
    mode: str
    code: str | None  # the code the calls end with; None: the poll succeeds
    huge_items: int = 1_000_000


CASES = [
    Case("gzip_bomb", "ResponseTooLarge"),
    # About 12 MB: refused by its size before it is parsed.
    Case("huge_page", "ResponseTooLarge", huge_items=20_000),
    # Small enough to read, but more records than the 100 asked for.
    Case("huge_page", "InvalidResponse", huge_items=150),
    Case("redirect", "Redirect"),
    Case("deep_json", "MalformedResponse"),
    Case("empty_object", "InvalidResponse"),
    Case("items_null", "InvalidResponse"),
    Case("giant_code", OTHER_CODE),
    Case("random_code", OTHER_CODE),
    Case("echo_secret", OTHER_CODE),
    Case("future_dates", None),
    Case("negative_size", None),
]


@pytest.mark.parametrize("case", CASES, ids=[f"{c.mode}-{c.code}" for c in CASES])
async def test_a_hostile_answer_fails_one_instance_and_nothing_else(
    case: Case, caplog: pytest.LogCaptureFixture
) -> None:
    holder: dict[str, str] = {}

    def prepare(fleet: Fleet, faults: Faults) -> None:
        iid = next(iter(fleet.instances))
        holder["iid"] = iid
        faults.huge_items = case.huge_items
        faults.for_instance(iid).hostile = case.mode

    caplog.set_level(logging.DEBUG)
    async with running(instances=3, prepare=prepare) as h:
        await h.advance(INTERVAL)
        iid = holder["iid"]
        samples = await h.scrape()
        others = [i for i in h.fleet.instances if i != iid]
        collect = samples["aliyun_rds_backup_collect_success"]
        assert all(collect[key(instance_id=i)] == 1.0 for i in others)
        assert collect[key(instance_id=iid)] == (0.0 if case.code else 1.0)
        requests = samples["aliyun_rds_api_requests_total"]
        codes = {dict(labels)["code"] for labels in requests}
        assert codes <= KNOWN_CODES | {OTHER_CODE}
        if case.code is not None:
            assert requests[key(action="DescribeBackups", code=case.code)] >= 1
        else:
            assert value_of(samples, "aliyun_rds_backup_skipped_records", iid) is not None
        if case.mode == "future_dates":
            assert samples["aliyun_rds_backup_skipped_records"][key(instance_id=iid)] > 0
            last = samples.get("aliyun_rds_backup_last_success_timestamp_seconds", {})
            assert success_key(iid) not in last
        if case.mode == "negative_size":
            sizes = samples.get("aliyun_rds_backup_last_success_size_bytes", {})
            assert success_key(iid) not in sizes
            assert success_key(iid) in samples["aliyun_rds_backup_last_success_timestamp_seconds"]
            assert all(success_key(i) in sizes for i in others)
        async with h.session.get(h.url + "/metrics") as response:
            text = await response.text()
    logged = [record.getMessage() for record in caplog.records]
    assert all(len(line) < 2000 for line in logged), max(logged, key=len)[:200]
    assert not any(SECRET in line for line in logged)
    assert SECRET not in text
    assert all(len(label) <= 64 for labels in requests for _, label in labels)


def value_of(
    samples: dict[str, dict[frozenset[tuple[str, str]], float]], name: str, iid: str
) -> float | None:
    return samples.get(name, {}).get(key(instance_id=iid))


async def test_random_codes_cannot_grow_the_request_counter() -> None:
    def prepare(fleet: Fleet, faults: Faults) -> None:
        for iid in fleet.instances:
            faults.for_instance(iid).hostile = "random_code"

    async with running(instances=4, prepare=prepare) as h:
        for _ in range(5):
            await h.advance(INTERVAL)
        samples = await h.scrape()
    series = [dict(labels) for labels in samples["aliyun_rds_api_requests_total"]]
    backups = {s["code"] for s in series if s["action"] == "DescribeBackups"}
    assert backups == {"OK", OTHER_CODE}
    # Every poll of every instance and its retries: many distinct codes, one series.
    assert (
        samples["aliyun_rds_api_requests_total"][key(action="DescribeBackups", code=OTHER_CODE)]
        >= 4 * 6
    )
