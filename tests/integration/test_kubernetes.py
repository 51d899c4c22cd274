"""The Kubernetes manifests: consistent with each other, with the image and with rules.yml."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from .conftest import REPO

K8S = REPO / "deploy" / "kubernetes"
NAME = "aliyun-rds-backup-exporter"


def manifests() -> dict[str, dict[str, Any]]:
    """Every manifest by kind (one of each)."""
    found: dict[str, dict[str, Any]] = {}
    for path in sorted(K8S.glob("*.yaml")):
        for document in yaml.safe_load_all(path.read_text()):
            if document and path.name != "kustomization.yaml":
                assert document["kind"] not in found, f"two {document['kind']} manifests"
                found[document["kind"]] = document
    return found


def test_prometheusrule_groups_equal_rules_yml() -> None:
    rule = manifests()["PrometheusRule"]
    assert rule["apiVersion"] == "monitoring.coreos.com/v1"
    rules = yaml.safe_load((REPO / "prometheus" / "rules.yml").read_text())
    assert rule["spec"]["groups"] == rules["groups"]


def test_prometheusrule_is_what_generate_py_writes() -> None:
    result = subprocess.run(
        [sys.executable, str(K8S / "generate.py"), "--check"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr


def test_kustomization_lists_every_manifest_but_the_secret_example() -> None:
    kustomization = yaml.safe_load((K8S / "kustomization.yaml").read_text())
    listed = set(kustomization["resources"])
    present = {p.name for p in K8S.glob("*.yaml")} - {"kustomization.yaml", "secret.example.yaml"}
    assert listed == present


def test_service_selects_the_pods_and_servicemonitor_the_service() -> None:
    found = manifests()
    deployment, service, monitor = found["Deployment"], found["Service"], found["ServiceMonitor"]
    pod_labels = deployment["spec"]["template"]["metadata"]["labels"]
    assert deployment["spec"]["selector"]["matchLabels"].items() <= pod_labels.items()
    assert service["spec"]["selector"].items() <= pod_labels.items()
    assert (
        monitor["spec"]["selector"]["matchLabels"].items() <= service["metadata"]["labels"].items()
    )
    port_names = {port["name"] for port in service["spec"]["ports"]}
    assert {endpoint["port"] for endpoint in monitor["spec"]["endpoints"]} <= port_names
    container = deployment["spec"]["template"]["spec"]["containers"][0]
    container_ports = {port["name"]: port["containerPort"] for port in container["ports"]}
    for port in service["spec"]["ports"]:
        assert port["targetPort"] in container_ports
    # The Service name becomes the job label, which the ExporterDown/Absent rules select on.
    assert service["metadata"]["name"] == NAME
    assert f'job="{NAME}"' in (REPO / "prometheus" / "rules.yml").read_text()


def test_deployment_runs_the_image_as_built() -> None:
    found = manifests()
    deployment = found["Deployment"]
    pod = deployment["spec"]["template"]["spec"]
    container = pod["containers"][0]
    dockerfile = (REPO / "Dockerfile").read_text()
    assert [p["containerPort"] for p in container["ports"]] == [9877]
    assert "EXPOSE 9877" in dockerfile
    assert container["livenessProbe"]["httpGet"]["path"] == "/-/healthy"
    assert container["readinessProbe"]["httpGet"]["path"] == "/-/ready"
    # Non-root, like the image's USER, and locked down.
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["runAsUser"] == 10001
    assert "USER 10001:10001" in dockerfile
    assert container["securityContext"]["readOnlyRootFilesystem"] is True
    assert container["securityContext"]["allowPrivilegeEscalation"] is False
    # The config file sits in the mounted ConfigMap, at the image's volume path.
    mounts = {m["name"]: m["mountPath"] for m in container["volumeMounts"]}
    volumes = {v["name"]: v for v in pod["volumes"]}
    config_dir = mounts["config"]
    assert f'VOLUME ["{config_dir}"]' in dockerfile
    assert f"--config.file={config_dir}/config.yaml" in container["args"]
    assert volumes["config"]["configMap"]["name"] == found["ConfigMap"]["metadata"]["name"]
    assert "config.yaml" in found["ConfigMap"]["data"]
    # Identity: the ServiceAccount (RRSA) and, optionally, an AccessKey Secret.
    assert pod["serviceAccountName"] == found["ServiceAccount"]["metadata"]["name"]
    secret_refs = [e["secretRef"] for e in container.get("envFrom", [])]
    assert secret_refs == [{"name": found["Secret"]["metadata"]["name"], "optional": True}]


def test_serviceaccount_documents_rrsa() -> None:
    text = (K8S / "serviceaccount.yaml").read_text()
    assert "pod-identity.alibabacloud.com/role-name" in text
    assert "pod-identity.alibabacloud.com/injection" in text


def test_configmap_config_is_valid(tmp_path: Path) -> None:
    config = tmp_path / "config.yaml"
    config.write_text(manifests()["ConfigMap"]["data"]["config.yaml"])
    result = subprocess.run(
        [sys.executable, "-m", "exporter", "--check-config", "--config.file", str(config)],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=REPO,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "configuration is valid" in result.stdout


@pytest.mark.parametrize("kind", ["Deployment", "Service", "ServiceMonitor", "ConfigMap"])
def test_manifest_names_and_labels(kind: str) -> None:
    manifest = manifests()[kind]
    assert manifest["metadata"]["name"] == NAME
    assert manifest["metadata"]["labels"]["app.kubernetes.io/name"] == NAME
