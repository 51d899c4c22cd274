"""The alert and recording rules: promtool's checks and unit tests, and what every alert carries."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from .conftest import REPO, require_tool

RULES = REPO / "prometheus" / "rules.yml"
RULES_TEST = REPO / "prometheus" / "rules_test.yml"
ALERTS_DOC = REPO / "docs" / "alerts.md"
SEVERITIES = {"critical", "warning", "info"}  # info: a cost to know of, nothing at risk


def promtool() -> str:
    return require_tool("promtool", "Debian package prometheus; .ci/run installs it")


def load(path: Path) -> Any:
    return yaml.safe_load(path.read_text())


def rules() -> list[dict[str, Any]]:
    return [rule for group in load(RULES)["groups"] for rule in group["rules"]]


def alert_names() -> list[str]:
    return [rule["alert"] for rule in rules() if "alert" in rule]


def test_promtool_check_rules_is_clean() -> None:
    result = subprocess.run(
        [promtool(), "check", "rules", str(RULES)], capture_output=True, text=True, timeout=60
    )
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    assert f"SUCCESS: {len(rules())} rules found" in output
    assert "WARNING" not in output.upper(), output


def test_promtool_unit_tests_pass() -> None:
    result = subprocess.run(
        [promtool(), "test", "rules", RULES_TEST.name],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=RULES_TEST.parent,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout


def test_every_alert_has_a_firing_and_a_silent_unit_test() -> None:
    firing: set[str] = set()
    silent: set[str] = set()
    for case in load(RULES_TEST)["tests"]:
        for check in case.get("alert_rule_test", []):
            (firing if check.get("exp_alerts") else silent).add(check["alertname"])
    names = set(alert_names())
    assert names - firing == set(), "alerts never shown firing"
    assert names - silent == set(), "alerts never shown silent"
    assert (firing | silent) - names == set(), "tests of alerts that do not exist"


def test_stale_alert_is_tested_with_and_without_a_policy() -> None:
    descriptions = [
        alert["exp_annotations"]["description"]
        for case in load(RULES_TEST)["tests"]
        for check in case.get("alert_rule_test", [])
        if check["alertname"] == "AliyunRdsBackupStale"
        for alert in check.get("exp_alerts") or []
    ]
    assert any("1.5 x the backup policy interval" in d for d in descriptions)
    assert any("fallback: the exporter reports no backup policy" in d for d in descriptions)


def test_every_recording_rule_is_exercised() -> None:
    tested = RULES_TEST.read_text()
    used_by_alerts = " ".join(rule["expr"] for rule in rules() if "alert" in rule)
    for rule in rules():
        if "record" in rule:
            name = rule["record"]
            assert name in tested or name in used_by_alerts, f"{name} is neither used nor tested"


@pytest.mark.parametrize("name", alert_names())
def test_alert_carries_severity_summary_description_and_runbook(name: str) -> None:
    rule = next(r for r in rules() if r.get("alert") == name)
    assert rule["labels"]["severity"] in SEVERITIES
    annotations = rule["annotations"]
    assert set(annotations) == {"summary", "description", "runbook"}
    anchor = name.lower()
    assert annotations["runbook"] == f"docs/alerts.md#{anchor}"
    # The runbook section exists: a heading whose GitHub anchor is the alert's name.
    assert re.search(rf"^#+ {name}\s*$", ALERTS_DOC.read_text(), re.MULTILINE), (
        f"no '{name}' heading in {ALERTS_DOC.name}"
    )
    # Per-instance alerts name the instance and what it is (joined from aliyun_rds_instance_info).
    if "instance_id" in rule["expr"]:
        assert "$labels.instance_id" in annotations["summary"]
        assert "group_left (account, region_id, engine, description)" in rule["expr"]
        assert "$labels.description" in annotations["summary"]


def test_alerts_doc_lists_only_real_alerts() -> None:
    documented = set(re.findall(r"^### (AliyunRds\w+)\s*$", ALERTS_DOC.read_text(), re.MULTILINE))
    assert documented == set(alert_names())
