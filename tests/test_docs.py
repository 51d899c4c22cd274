"""The README says what the code does: its metrics table, flags and RAM policy."""

from __future__ import annotations

import json
import re
from pathlib import Path

from prometheus_client import CollectorRegistry

from exporter import metrics
from exporter.cli import build_parser
from exporter.collector import BackupCollector
from exporter.state import FleetState
from exporter.telemetry import Telemetry
from tests.clock import ManualClock

REPO = Path(__file__).resolve().parents[1]
README = (REPO / "README.md").read_text(encoding="utf-8")


def exported_names() -> set[str]:
    registry = CollectorRegistry()
    Telemetry(registry)
    collector = BackupCollector(FleetState(), ManualClock(), interval_text="5m", version="x")
    names: set[str] = set()
    for family in [*collector.describe(), *registry.collect()]:
        suffix = {"counter": "_total", "info": "_info"}.get(family.type, "")
        names.add(family.name + suffix)
    return names


def test_metrics_table_lists_exactly_what_is_exported() -> None:
    """The README's table, the table in exporter/metrics.py, and what the collector and the
    exporter's own registry really serve: the same names."""
    documented = set(re.findall(r"^\| `(aliyun_rds_[a-z_]+)` \|", README, flags=re.MULTILINE))
    assert documented == metrics.exposed_names()
    assert exported_names() == metrics.exposed_names()


def test_every_flag_is_documented() -> None:
    flags = {
        option
        for action in build_parser()._actions
        for option in action.option_strings
        if option.startswith("--") and option != "--help"
    }
    for flag in flags:
        assert f"`{flag}" in README, flag


def test_ram_policy_in_readme_matches_the_file() -> None:
    policy = json.loads((REPO / "deploy" / "ram-policy.json").read_text())
    block = re.search(r"```json\n(.*?)```", README, flags=re.DOTALL)
    assert block is not None
    assert json.loads(block.group(1)) == policy
    actions = policy["Statement"][0]["Action"]
    assert all(action.startswith("rds:Describe") for action in actions)


def test_quick_start_commands_exist_in_the_makefile() -> None:
    makefile = (REPO / "Makefile").read_text()
    for target in ("demo", "test", "test-fast"):
        assert f"make {target}" in README
        assert re.search(rf"^{target}:", makefile, flags=re.MULTILINE)


def test_alert_list_matches_the_rules_file() -> None:
    import yaml

    rules = yaml.safe_load((REPO / "prometheus" / "rules.yml").read_text())
    alerts = {r["alert"] for group in rules["groups"] for r in group["rules"] if "alert" in r}
    listed = set(re.findall(r"^\| \[(AliyunRds\w+)\]\(docs/alerts\.md#", README, flags=re.M))
    assert listed == alerts
    runbooks = (REPO / "docs" / "alerts.md").read_text()
    for alert in alerts:
        assert f"## {alert}" in runbooks
