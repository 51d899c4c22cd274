"""The status page in a real browser: Debian's headless Chromium loads a --demo exporter's `/`.

A missing chromium fails these tests (CI installs it). The exporter runs behind basic auth, as
`--web.config.file` sets it, so the page and its data are checked to need it too.
"""

from __future__ import annotations

import asyncio
import base64
import json
import os
import signal
import time
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import bcrypt
import jsonschema
import pytest
from aiohttp import web

from exporter import status, statuspage
from exporter.demo import MARKUP_DESCRIPTION, DemoRoles, build_demo_fleet
from exporter.state import FleetState, InstanceState, Target
from tests.browser import Browser
from tests.helpers import serving
from tests.test_cli import free_port, start_exporter, stop

pytestmark = [pytest.mark.integration, pytest.mark.slow]

REPO = Path(__file__).resolve().parents[1]
SCHEMA = json.loads((REPO / "docs" / "status.schema.json").read_text())
# The README shows this screenshot; `UPDATE_SCREENSHOT=1 pytest tests/test_status_page.py`
# takes it anew.
SCREENSHOT = REPO / "docs" / "images" / "status-page.png"
USER, PASSWORD = "ops", "night-shift-pass"
AUTH = {"Authorization": "Basic " + base64.b64encode(f"{USER}:{PASSWORD}".encode()).decode()}
# The demo polls every 30 s; the throttled instance is throttled three calls in ten.
SETTLE = 100.0

ROWS = "[...document.querySelectorAll('#rows tr')]"


@pytest.fixture
async def demo(tmp_path: Path) -> AsyncIterator[tuple[str, DemoRoles]]:
    hashed = bcrypt.hashpw(PASSWORD.encode(), bcrypt.gensalt(rounds=4)).decode()
    web = tmp_path / "web.yml"
    web.write_text(f"basic_auth_users:\n  {USER}: '{hashed}'\n")
    port = free_port()
    process = await start_exporter(
        "--demo", "--web.listen-address", f"127.0.0.1:{port}", "--web.config.file", str(web)
    )
    _, _, roles = build_demo_fleet(time.time())  # the same seeded fleet as the process's
    try:
        yield f"http://127.0.0.1:{port}", roles
    finally:
        code, stderr, _ = await stop(process, signal.SIGTERM)
        assert code == 0, stderr
        assert "status page: http://127.0.0.1:" in stderr  # what `make demo` prints


async def settled(base: str, roles: DemoRoles) -> dict[str, dict[str, object]]:
    """/status.json once every demo case shows (first polls done, a throttled answer seen)."""
    deadline = time.monotonic() + SETTLE
    async with aiohttp.ClientSession(headers=AUTH) as session:
        while True:
            try:
                async with session.get(f"{base}/status.json") as response:
                    doc = await response.json() if response.status == 200 else None
            except aiohttp.ClientConnectorError:
                doc = None
            if doc is not None:
                rows = {row["instance_id"]: row for row in doc["instances"]}
                codes = {iid: {p["code"] for p in row["problems"]} for iid, row in rows.items()}
                if (
                    doc["ready"]
                    and "throttled" in codes.get(roles.throttled, set())
                    and "recovery_broken" in codes.get(roles.log_backup_off, set())
                ):
                    jsonschema.validate(doc, SCHEMA)
                    return rows
            assert time.monotonic() < deadline, "the demo's cases did not all show"
            await asyncio.sleep(0.5)


async def test_page_and_data_need_the_configured_basic_auth(
    demo: tuple[str, DemoRoles],
) -> None:
    base, roles = demo
    await settled(base, roles)
    async with aiohttp.ClientSession() as session:
        for path in ("/", "/status.json"):
            async with session.get(base + path) as response:
                assert response.status == 401, path
            async with session.get(base + path, headers=AUTH) as response:
                assert response.status == 200, path
                assert response.headers["X-Content-Type-Options"] == "nosniff"


async def test_the_browser_shows_every_case_filters_and_keeps_markup_as_text(
    demo: tuple[str, DemoRoles], tmp_path: Path
) -> None:
    base, roles = demo
    rows = await settled(base, roles)
    # Every polled instance says when its next poll is due, before the fleet's first poll ends too.
    assert [
        iid for iid, r in rows.items() if r["next_poll"] is None and r["health"] != "pending"
    ] == []
    async with Browser.start(width=1600, height=1000) as browser:
        await browser.set_basic_auth(USER, PASSWORD)
        await browser.goto(base + "/")
        await browser.wait_for("document.body.dataset.loaded === 'true'")
        shown = await browser.evaluate(
            f"""{ROWS}.map((tr) => ({{
                id: tr.dataset.instance,
                health: tr.dataset.health,
                badge: tr.querySelector('.badge').textContent,
                codes: [...tr.querySelectorAll('.problems li')].map((li) => li.dataset.code),
                description: tr.querySelector('.description')?.textContent ?? '',
            }}))"""
        )
        assert isinstance(shown, list)
        by_id = {row["id"]: row for row in shown}
        # Every instance, one row each, trouble first.
        assert sorted(by_id) == sorted(rows) and len(shown) == len(rows)
        order = ["trouble", "warning", "pending", "ok"]
        assert [order.index(r["health"]) for r in shown] == sorted(
            order.index(r["health"]) for r in shown
        )
        # Each case marked by colour (the row's class) and by text (badge and problem).
        expected = {
            **{iid: "last_failed" for iid in roles.failing},
            roles.stale: "stale",
            roles.missing: "missing",
            roles.throttled: "throttled",
            roles.log_backup_off: "recovery_broken",
        }
        for iid, code in expected.items():
            assert code in by_id[iid]["codes"], (iid, by_id[iid])
            assert by_id[iid]["badge"] == by_id[iid]["health"].upper()
            assert by_id[iid]["health"] == ("warning" if code == "throttled" else "trouble")
        for iid in roles.healthy:
            if not rows[iid]["problems"]:
                assert by_id[iid]["badge"] == "OK"
        # The markup in a description is text: shown as sent, no element made from it.
        assert by_id[roles.markup]["description"] == MARKUP_DESCRIPTION
        assert (
            await browser.evaluate("document.querySelectorAll('#rows script, #rows b').length") == 0
        )
        # A filter narrows the table, and so does the search.
        region = rows[roles.stale]["region"]
        await browser.evaluate(
            f"""(() => {{ const s = document.getElementById('filter-region');
                s.value = [...s.options].find((o) => o.textContent === {json.dumps(region)}).value;
                s.dispatchEvent(new Event('change')); }})()"""
        )
        regions = await browser.evaluate(f"{ROWS}.map((tr) => tr.children[3].textContent)")
        assert isinstance(regions, list)
        assert set(regions) == {region}
        assert len(regions) == sum(1 for row in rows.values() if row["region"] == region)
        await browser.evaluate(
            f"""(() => {{ const s = document.getElementById('search');
                s.value = {json.dumps(roles.stale)}; s.dispatchEvent(new Event('input')); }})()"""
        )
        assert await browser.evaluate(f"{ROWS}.map((tr) => tr.dataset.instance)") == [roles.stale]
        # Clearing both, then sorting by a column.
        await browser.evaluate(
            """(() => { for (const id of ['search', 'filter-region']) {
                const e = document.getElementById(id); e.value = '';
                e.dispatchEvent(new Event(id === 'search' ? 'input' : 'change')); }
              document.querySelector("th[data-sort='instance_id']").click(); })()"""
        )
        ids = await browser.evaluate(f"{ROWS}.map((tr) => tr.dataset.instance)")
        assert ids == sorted(rows)
        assert browser.console_errors == []  # no CSP violation, no exception
        await browser.evaluate("document.querySelector(\"th[data-sort='health']\").click()")
        target = SCREENSHOT if os.environ.get("UPDATE_SCREENSHOT") else tmp_path / "status.png"
        target.parent.mkdir(parents=True, exist_ok=True)
        await browser.screenshot(target)
        assert target.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


async def test_pages_of_a_large_fleet_and_the_empty_value_filter() -> None:
    """250 instances: 100 rows a page, next and previous; the "(none)" engine option selects
    the instances whose engine is not known yet, and a filter brings a later page back in range."""
    fleet = FleetState()
    for i in range(250):
        engine = "" if i % 10 == 0 else "MySQL"
        iid = f"rm-{i:03d}"
        fleet.instances[iid] = InstanceState(Target(iid, "cn-hangzhou", engine=engine))
    now = time.time()

    def document() -> dict[str, object]:
        rows = status.fleet_rows(fleet, now, 0.0, 60.0)
        return status.document(rows, now=now, version="test", ready=True)

    app = web.Application()
    statuspage.add_routes(app, document, telemetry_path="/metrics", version="test")
    ids = f"{ROWS}.map((tr) => tr.dataset.instance)"
    async with serving(app) as base, Browser.start() as browser:
        await browser.goto(base + "/")
        await browser.wait_for("document.body.dataset.loaded === 'true'")
        assert await browser.evaluate(ids) == [f"rm-{i:03d}" for i in range(100)]
        assert await browser.evaluate("document.getElementById('prev').disabled") is True
        for _ in range(2):
            await browser.evaluate("document.getElementById('next').click()")
        assert await browser.evaluate(ids) == [f"rm-{i:03d}" for i in range(200, 250)]
        assert await browser.evaluate("document.getElementById('next').disabled") is True
        assert "rows 201-250 of 250" in str(
            await browser.evaluate("document.getElementById('page-info').textContent")
        )
        await browser.evaluate(
            """(() => { const s = document.getElementById('filter-engine');
                s.value = [...s.options].find((o) => o.textContent === '(none)').value;
                s.dispatchEvent(new Event('change')); })()"""
        )
        assert await browser.evaluate(ids) == [f"rm-{i:03d}" for i in range(0, 250, 10)]
        await browser.evaluate("document.getElementById('prev').click()")
        assert await browser.evaluate(ids) == [f"rm-{i:03d}" for i in range(0, 250, 10)]
        assert browser.console_errors == []
