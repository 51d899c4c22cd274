"""/metrics from cached lines: byte for byte what the library's encoders give for the same
state, in every format Prometheus asks for, while the state changes under it."""

from __future__ import annotations

from dataclasses import replace

import pytest
from prometheus_client import CollectorRegistry
from prometheus_client.exposition import choose_encoder

from exporter import exposition
from exporter.aliyun.models import Backup
from exporter.collector import BackupCollector
from exporter.exposition import FleetExposition
from exporter.policy import PolicySummary, Schedule
from exporter.state import DiscoveryStatus, FleetState, InstanceState, Target
from exporter.telemetry import Telemetry
from tests.clock import ManualClock

T0 = 1_764_000_000.0
BASE = Backup(
    backup_id="1",
    instance_id="rm-a",
    status="Success",
    backup_type="FullBackup",
    start=T0 - 3600,
    end=T0 - 600,
    size_bytes=2048,
    method="Physical",
    mode="Automated",
    initiator="System",
    storage_class="regular",
    encrypted=False,
    available=1,
    consistent_time=T0 - 900,
    engine="MySQL",
    engine_version="8.0",
)
POLICY = PolicySummary(
    schedule=Schedule(frozenset({0, 3}), window_start=3600, window_width=3600),
    retention_days=7,
    log_backup_enabled=True,
    next_backup_time=T0 + 5000,
)
ACCEPT = [
    "",
    "text/plain",
    "text/plain;version=0.0.4",
    "text/plain;version=1.0.0;escaping=underscores",
    "text/plain;version=1.0.0;escaping=allow-utf-8",
    "application/openmetrics-text",
    "application/openmetrics-text;version=1.0.0",
    # Prometheus 2 and 3 as they ask:
    "application/openmetrics-text;version=1.0.0,application/openmetrics-text;version=0.0.1;"
    "q=0.75,text/plain;version=0.0.4;q=0.5,*/*;q=0.1",
    "application/openmetrics-text;version=1.0.0;escaping=allow-utf-8;q=0.6,application/"
    "openmetrics-text;version=0.0.1;q=0.5,text/plain;version=1.0.0;escaping=allow-utf-8;q=0.4,"
    "text/plain;version=0.0.4;q=0.3,*/*;q=0.2",
    # Left to the library (other escapings, versions):
    "text/plain;version=1.0.0;escaping=dots",
    "application/openmetrics-text;version=1.0.0;escaping=values",
    "application/openmetrics-text;version=2.0.0",
]


class Setup:
    def __init__(self) -> None:
        self.clock = ManualClock(start=T0)
        self.state = FleetState()
        self.registry = CollectorRegistry(auto_describe=True)
        own = CollectorRegistry(auto_describe=True)
        self.registry.register(own)
        self.telemetry = Telemetry(own)
        self.collector = BackupCollector(self.state, self.clock, interval_text="5m", version="9")
        self.registry.register(self.collector)
        self.exposition = FleetExposition(
            self.registry, [own], self.collector, self.state, self.clock
        )

    def check(self, accept: str = "") -> bytes:
        """The fast rendering equals the library's, for this Accept header."""
        pieces, content_type = self.exposition.render(accept)
        body = b"".join(pieces)
        encoder, expected_type = choose_encoder(accept)
        assert content_type == expected_type
        assert body.decode() == encoder(self.registry).decode()
        return body


def polled(instance: InstanceState, *backups: Backup, policy: bool = True) -> None:
    instance.merge(backups, cutoff=0)
    instance.baseline_done = True
    instance.polled = True
    instance.collect_success = True
    instance.last_collect_success = T0 - 30
    instance.snapshot_chain_bytes = 4096
    instance.policy = POLICY if policy else None
    instance.refresh_summaries()


def fleet(setup: Setup) -> None:
    state = setup.state
    state.sync_targets(
        [
            Target("rm-a", "cn-hangzhou", account="prod", labels={"team": "pay"}),
            Target(
                "rm-b",
                "cn-shanghai",
                source="discovery",
                description='odd "quoted" \\ back\nslash, ünïcode',
            ),
            Target("rm-never", "cn-hangzhou"),
            Target("rm-failing", "cn-hangzhou"),
        ]
    )
    polled(
        state.instances["rm-a"],
        BASE,
        replace(BASE, backup_id="2", backup_type="IncrementalBackup", consistent_time=None),
        replace(BASE, backup_id="3", status="Failed", start=T0 - 300, end=T0 - 200),
    )
    polled(state.instances["rm-b"], replace(BASE, instance_id="rm-b", size_bytes=None))
    failing = state.instances["rm-failing"]
    failing.polled = True
    failing.collect_success = False
    state.discovery.append(DiscoveryStatus("prod", "cn-shanghai", True, True, T0, 1))
    setup.telemetry.observe("DescribeBackups", "OK", 0.2)


@pytest.mark.parametrize("accept", ACCEPT)
def test_same_bytes_as_the_library_in_every_format(accept: str) -> None:
    setup = Setup()
    setup.check(accept)  # empty fleet
    fleet(setup)
    body = setup.check(accept)
    assert b'description="odd \\"quoted\\" \\\\ back\\nslash, \xc3\xbcn\xc3\xafcode"' in body
    if "openmetrics" in accept and "2.0.0" not in accept:
        assert body.endswith(b"# EOF\n") and body.count(b"# EOF") == 1


def test_changes_show_at_the_next_scrape() -> None:
    setup = Setup()
    fleet(setup)
    setup.check()
    a = setup.state.instances["rm-a"]
    setup.clock._now += 125.5  # ages and the next backup move with the clock
    setup.check()
    # A poll: a new backup, summaries replaced, the failure counter changed in place.
    a.merge([replace(BASE, backup_id="9", status="Failed", start=T0 + 10, end=T0 + 20)], 0)
    a.refresh_summaries()
    assert a.failures_total["FullBackup"] == 1
    setup.check()
    a.failures_total["FullBackup"] += 1  # in place, nothing else changes
    setup.check()
    a.collect_success = False
    setup.check()
    setup.state.sync_targets([replace(a.target, description="renamed"), Target("rm-c", "x")])
    body = setup.check()
    assert b"rm-b" not in body and b"renamed" in body
    setup.state.instances["rm-c"].policy = replace(POLICY, next_backup_time=None)
    setup.clock._now += 86400 * 3  # the API's next time has passed: the schedule says
    setup.check("application/openmetrics-text")
    setup.collector.set_intervals("1m", "1h")  # a reload changes the HELP texts
    setup.check()


def count_formatting(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The ids of the instances formatted from now on, in order."""
    formatted: list[str] = []
    original = exposition.render_instance

    def counting(families: object, instance: InstanceState) -> None:
        formatted.append(instance.target.instance_id)
        original(families, instance)  # type: ignore[arg-type]

    monkeypatch.setattr(exposition, "render_instance", counting)
    return formatted


def test_instances_are_formatted_again_only_when_they_change(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    setup = Setup()
    fleet(setup)
    formatted = count_formatting(monkeypatch)
    setup.check()
    assert sorted(formatted) == ["rm-a", "rm-b", "rm-failing", "rm-never"]
    formatted.clear()
    setup.clock._now += 60
    setup.check()
    assert formatted == []
    # A poll that finds nothing new: equal summaries, a new last success time (read at scrape).
    b = setup.state.instances["rm-b"]
    b.refresh_summaries()
    b.last_collect_success = T0 + 50
    setup.check()
    assert formatted == []
    b.collect_success = False
    setup.check()
    assert formatted == ["rm-b"]


def test_name_filters_go_to_the_library() -> None:
    setup = Setup()
    fleet(setup)
    pieces, _ = setup.exposition.render("", ["aliyun_rds_backup_sets"])
    text = b"".join(pieces).decode()
    assert "aliyun_rds_backup_sets{" in text
    assert "aliyun_rds_backup_failed_sets" not in text


def test_a_broken_instance_costs_only_its_own_series(caplog: pytest.LogCaptureFixture) -> None:
    setup = Setup()
    fleet(setup)
    setup.state.instances["rm-b"].summaries = {"FullBackup": None}  # type: ignore[dict-item]
    body = b"".join(setup.exposition.render("")[0])
    assert b'aliyun_rds_backup_sets{backup_type="FullBackup",instance_id="rm-a"}' in body
    assert b'instance_id="rm-b"' not in body
    assert "cannot render instance rm-b" in caplog.text


def test_every_instance_field_is_either_cached_on_volatile_or_not_exported() -> None:
    """The cache of an instance's lines is keyed by cache_key(): a field that the
    rendering reads but the key leaves out would be served stale. A new field must be placed."""
    from dataclasses import fields

    from exporter.collector import cache_key

    keyed = {"target", "summaries", "policy", "baseline_done", "snapshot_chain_bytes"}
    keyed |= {"lookback_complete"}
    keyed |= {"engine", "engine_version", "collect_success", "failures_total", "skipped"}
    keyed |= {"recovery", "log_chain", "jobs_summary"}  # the log chain by its summary
    keyed |= {"cross_region", "copies", "storage"}  # the copies by their summary
    volatile = {"last_collect_success"}  # read at every scrape, as the ages are
    not_exported = {"backups", "watermark", "polled", "last_error", "duties", "reread"}
    not_exported |= {"reread_after", "jobs", "jobs_listed", "read_back_from"}
    not_exported |= {"sql_server_by_answer"}  # which duties apply, not a figure
    not_exported |= {"covered_from"}  # how far reads reach: the fleet's backfill windows
    not_exported |= {"last_error_message", "next_poll", "throttled_at"}  # the status page's
    assert {f.name for f in fields(InstanceState)} == keyed | volatile | not_exported
    instance = InstanceState(Target("rm-a", "x"))
    instance.failures_total["FullBackup"] = 3
    assert len(cache_key(instance)) == len(keyed)


def test_warming_formats_changed_instances_ahead_of_the_scrape(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    setup = Setup()
    fleet(setup)
    formatted = count_formatting(monkeypatch)
    assert setup.exposition.warm(limit=3) == 3
    assert setup.exposition.warm(limit=3) == 1
    assert setup.exposition.warm(limit=3) == 0
    formatted.clear()
    setup.check()
    assert formatted == []  # the scrape found every instance formatted
    setup.state.instances["rm-a"].policy = None
    setup.state.sync_targets(list(i.target for i in setup.state.instances.values())[:2])
    assert setup.exposition.warm(limit=10) == 1
    setup.check()
    assert formatted == ["rm-a"]


async def test_served_in_chunks_compressed_with_the_configured_headers(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import gzip

    import aiohttp
    from aiohttp import web

    from exporter.web import make_app
    from exporter.webconfig import WebConfig, middleware

    monkeypatch.setattr("exporter.web.CHUNK_BYTES", 16 * 1024)  # many chunks from a small fleet
    setup = Setup()
    fleet(setup)
    more = [Target(f"rm-x{n}", "cn-hangzhou") for n in range(300)]  # text for many chunks
    setup.state.sync_targets([*(i.target for i in setup.state.instances.values()), *more])
    for target in more:
        polled(setup.state.instances[target.instance_id], replace(BASE, backup_id="7"))
    headers = WebConfig(headers={"X-Content-Type-Options": "nosniff"})
    app = make_app(
        setup.registry,
        ready=lambda: True,
        render=setup.exposition.render,
        middlewares=[middleware(headers)],
    )
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    url = f"http://127.0.0.1:{runner.addresses[0][1]}/metrics"
    accept = "application/openmetrics-text;version=1.0.0"
    try:
        async with aiohttp.ClientSession(auto_decompress=False) as session:
            ask = {"Accept": accept, "Accept-Encoding": "gzip"}
            async with session.get(url, headers=ask) as response:
                assert response.headers["Content-Encoding"] == "gzip"
                assert response.headers["X-Content-Type-Options"] == "nosniff"
                assert response.headers["Content-Type"] == choose_encoder(accept)[1]
                body = gzip.decompress(await response.read())
            async with session.get(url, headers={"Accept-Encoding": "identity"}) as response:
                assert response.headers["Transfer-Encoding"] == "chunked"  # streamed
                parts, chunks = [], 0
                async for data, end_of_chunk in response.content.iter_chunks():
                    parts.append(data)
                    chunks += end_of_chunk
                plain = b"".join(parts)
    finally:
        await runner.cleanup()
    assert len(body) > 200_000
    assert chunks >= 10  # about one per 16 KiB (a piece may be larger): not sent in one go
    assert body == choose_encoder(accept)[0](setup.registry)
    assert plain == choose_encoder("")[0](setup.registry)


def test_a_scrape_sends_the_state_it_was_rendered_from() -> None:
    """The body is cut from the cached lines as it is sent: a poll that lands meanwhile shows
    at the next scrape, never half in this one."""
    setup = Setup()
    fleet(setup)
    expected = setup.check()
    pieces, _ = setup.exposition.render("")
    a = setup.state.instances["rm-a"]
    a.merge([replace(BASE, backup_id="9", status="Failed", start=T0 + 10, end=T0 + 20)], 0)
    a.refresh_summaries()
    setup.state.sync_targets([a.target])  # and the others leave
    setup.clock._now += 600
    setup.exposition.render("")  # a scrape in between formats rm-a again
    assert b"".join(pieces) == expected
    assert b"".join(setup.exposition.render("")[0]) != expected
