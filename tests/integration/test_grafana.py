"""The Grafana dashboard's structure and its provisioning files (its queries run against real
Prometheus in test_prometheus.py)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
import yaml

from .conftest import REPO

DASHBOARD = REPO / "grafana" / "dashboards" / "aliyun-rds-backups.json"
DATASOURCE = {"type": "prometheus", "uid": "${datasource}"}
FILTERS = ("account", "region", "engine", "instance")


def dashboard() -> dict[str, Any]:
    return json.loads(DASHBOARD.read_text())


def panels(items: list[dict[str, Any]]) -> Iterator[dict[str, Any]]:
    for panel in items:
        yield panel
        yield from panels(panel.get("panels", []))


def variables() -> dict[str, dict[str, Any]]:
    return {v["name"]: v for v in dashboard()["templating"]["list"]}


def test_dashboard_identity() -> None:
    board = dashboard()
    assert board["uid"] == "aliyun-rds-backups"
    assert board["id"] is None, "a provisioned dashboard must not carry a database id"
    assert board["schemaVersion"] >= 39
    assert board["title"]


def test_datasource_is_a_variable() -> None:
    datasource = variables()["datasource"]
    assert datasource["type"] == "datasource"
    assert datasource["query"] == "prometheus"
    for panel in panels(dashboard()["panels"]):
        if panel["type"] == "row":
            continue
        assert panel["datasource"] == DATASOURCE, panel["title"]
        for target in panel["targets"]:
            assert target["datasource"] == DATASOURCE, panel["title"]
    for name in FILTERS:
        assert variables()[name]["datasource"] == DATASOURCE
    assert '"uid": "prometheus"' not in DASHBOARD.read_text(), "hard-coded data source"


@pytest.mark.parametrize("name", FILTERS)
def test_filter_variable(name: str) -> None:
    variable = variables()[name]
    assert variable["type"] == "query"
    assert variable["multi"] is True and variable["includeAll"] is True
    assert variable["allValue"] == ".*"
    query = variable["query"]["query"]
    assert query.startswith("label_values(aliyun_rds_instance_info")
    # Each filter narrows the ones after it.
    earlier = FILTERS[: FILTERS.index(name)]
    for other in earlier:
        assert f'=~"${other}"' in query, f"{name} ignores ${other}"


def test_instance_panels_apply_every_filter() -> None:
    for panel in panels(dashboard()["panels"]):
        for target in panel.get("targets", []):
            expr = target["expr"]
            if "instance_id" in expr:
                for name in FILTERS:
                    assert f"${name}" in expr, f"{panel['title']}/{target['refId']} ignores ${name}"


def test_panel_layout() -> None:
    seen_ids = set()
    titles = []
    for panel in panels(dashboard()["panels"]):
        assert panel["id"] not in seen_ids
        seen_ids.add(panel["id"])
        grid = panel["gridPos"]
        assert grid["x"] >= 0 and grid["x"] + grid["w"] <= 24, panel["title"]
        titles.append(panel["title"])
        if panel["type"] != "row":
            assert panel["targets"], panel["title"]
            assert panel.get("description"), f"{panel['title']}: describe what it shows"
            refs = [t["refId"] for t in panel["targets"]]
            assert len(refs) == len(set(refs))
    # What the issue asks the dashboard to show.
    for wanted in (
        "Instances",
        "Stale full backups",
        "Collection failing",
        "Full backup size",
        "Backup failures",
        "Poll success",
        "API throttling",
    ):
        assert wanted in titles, wanted


def test_instance_table_has_links_and_every_column() -> None:
    table = next(p for p in panels(dashboard()["panels"]) if p["type"] == "table")
    assert all(t.get("format") == "table" and t["instant"] for t in table["targets"])
    organize = next(t for t in table["transformations"] if t["id"] == "organize")
    columns = set(organize["options"]["renameByName"].values())
    assert {
        "Instance",
        "Last full backup age",
        "Last full backup size",
        "Last full backup",
    } <= columns
    instance = next(
        o for o in table["fieldConfig"]["overrides"] if o["matcher"]["options"] == "Instance"
    )
    links = next(p["value"] for p in instance["properties"] if p["id"] == "links")
    urls = [link["url"] for link in links]
    assert any(url.startswith("https://rdsnext.console.aliyun.com/") for url in urls)
    assert any("var-instance=${__data.fields.instance_id}" in url for url in urls)


def test_provisioning_files() -> None:
    provisioning = REPO / "grafana" / "provisioning"
    datasources = yaml.safe_load((provisioning / "datasources" / "prometheus.yml").read_text())
    assert datasources["apiVersion"] == 1
    assert [d["type"] for d in datasources["datasources"]] == ["prometheus"]
    providers = yaml.safe_load((provisioning / "dashboards" / "aliyun-rds-backups.yml").read_text())
    assert providers["apiVersion"] == 1
    (provider,) = providers["providers"]
    assert provider["type"] == "file"
    assert provider["options"]["path"].startswith("/")
