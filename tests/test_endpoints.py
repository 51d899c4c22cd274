"""Endpoints: the region's host exactly as the official RDS SDK picks it, and configured
endpoint templates with ``{region}``, checked at load and filled in per call."""

from __future__ import annotations

import socket
from typing import Any

import aiohttp
import pytest
from aiohttp.abc import AbstractResolver, ResolveResult
from alibabacloud_rds20140815.client import Client as SdkClient
from alibabacloud_tea_openapi.utils_models import Config as SdkConfig

from exporter.aliyun.client import RdsClient
from exporter.aliyun.credentials import Credentials, StaticCredentialsProvider
from exporter.aliyun.endpoints import endpoint_for_region
from exporter.aliyun.limiter import RequestLimiter
from exporter.config import ConfigError, parse_config
from exporter.simulator import Fleet, SimulatedRds
from tests.helpers import KEY_ID, NOW, SECRET, InstantClock

# Regions the SDK leaves to its regional rule (rds.<region>.aliyuncs.com).
REGIONAL = (
    "ap-northeast-1",
    "ap-northeast-2",
    "ap-south-1",
    "ap-southeast-2",
    "ap-southeast-3",
    "ap-southeast-5",
    "ap-southeast-6",
    "ap-southeast-7",
    "cn-chengdu",
    "cn-guangzhou",
    "cn-huhehaote",
    "cn-nanjing",
    "cn-wulanchabu",
    "cn-zhangjiakou",
    "eu-central-1",
    "eu-west-1",
    "me-central-1",
    "me-east-1",
    "na-south-1",
)


@pytest.fixture
def no_network(monkeypatch: pytest.MonkeyPatch) -> None:
    """Any attempt to resolve or connect fails the test: the SDK is only an oracle here."""

    def refuse(*args: object, **kwargs: object) -> Any:
        raise AssertionError("the SDK tried to use the network")

    monkeypatch.setattr(socket, "getaddrinfo", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)
    monkeypatch.setattr(socket.socket, "connect", refuse)


def sdk_endpoints(regions: tuple[str, ...] = ()) -> dict[str, str]:
    """Region -> the host the official SDK's client computes for it: every region of its own
    table, then ``regions``. Building a client does no I/O (the fixture above makes sure)."""

    def client(region: str) -> Any:
        return SdkClient(
            SdkConfig(access_key_id="id", access_key_secret="secret", region_id=region)
        )

    table: dict[str, str] = client("cn-hangzhou")._endpoint_map
    return {region: client(region)._endpoint for region in [*table, *regions]}


@pytest.mark.usefixtures("no_network")
def test_every_region_gets_the_official_sdks_endpoint() -> None:
    expected = sdk_endpoints(REGIONAL)
    assert len(expected) >= 40 + len(REGIONAL)  # the SDK's own table was read (45 regions)
    # The cases that differ from a plain "central for China" rule, spelt out.
    assert expected["ap-southeast-1"] == "rds.aliyuncs.com"
    assert expected["cn-hangzhou-finance"] == "rds-vpc.cn-hangzhou-finance.aliyuncs.com"
    assert expected["eu-central-1"] == "rds.eu-central-1.aliyuncs.com"
    ours = {region: endpoint_for_region(region) for region in expected}
    assert ours == {region: f"https://{host}" for region, host in expected.items()}


@pytest.mark.parametrize("region", ["", "cn-hangzhou/x", "evil.com#", "a@b", "CN-HANGZHOU"])
def test_a_region_that_is_not_a_host_label_is_refused(region: str) -> None:
    with pytest.raises(ValueError, match="not a region id"):
        endpoint_for_region(region)
    with pytest.raises(ValueError, match="not a region id"):
        endpoint_for_region(region, "https://rds-vpc.{region}.aliyuncs.com")
    # A fixed endpoint does not depend on the region at all.
    assert endpoint_for_region(region, "https://proxy.example") == "https://proxy.example"


# ----- Templates in the configuration -----------------------------------------------------------

MINIMAL = {"instances": [{"id": "rm-1", "region": "cn-hangzhou"}]}


def api_endpoint(endpoint: str) -> str | None:
    return parse_config({**MINIMAL, "api": {"endpoint": endpoint}}, {}).api.endpoint


def problems(endpoint: str) -> list[str]:
    with pytest.raises(ConfigError) as caught:
        api_endpoint(endpoint)
    return caught.value.problems


@pytest.mark.parametrize(
    ("written", "loaded"),
    [
        ("https://rds-vpc.{region}.aliyuncs.com", "https://rds-vpc.{region}.aliyuncs.com"),
        (
            " HTTPS://RDS-VPC.{region}.ALIYUNCS.COM:8443/ ",
            "https://rds-vpc.{region}.aliyuncs.com:8443",
        ),
        ("http://{region}.rds.internal", "http://{region}.rds.internal"),
    ],
)
def test_an_endpoint_template_loads_normalised(written: str, loaded: str) -> None:
    assert api_endpoint(written) == loaded


@pytest.mark.parametrize(
    ("written", "problem"),
    [
        (
            "https://rds.{Region}.aliyuncs.com",
            'unknown placeholder {Region} in "https://rds.{Region}.aliyuncs.com": '
            "the only placeholder is {region}",
        ),
        (
            "https://rds.{zone}.aliyuncs.com",
            'unknown placeholder {zone} in "https://rds.{zone}.aliyuncs.com": '
            "the only placeholder is {region}",
        ),
        (
            "https://rds.{region.aliyuncs.com",
            'unmatched brace in "https://rds.{region.aliyuncs.com": '
            "the only placeholder is {region}",
        ),
        (
            "https://proxy.example/{region}",
            '{region} may only be in the host name, got "https://proxy.example/{region}"',
        ),
        (
            "https://proxy.example:{region}",
            '{region} may only be in the host name, got "https://proxy.example:{region}"',
        ),
        (
            "https://rds_{region}.aliyuncs.com",
            "{region} must make a host name like rds-vpc.{region}.aliyuncs.com, "
            'got "https://rds_{region}.aliyuncs.com"',
        ),
        (
            "https://rds..{region}.aliyuncs.com",
            "{region} must make a host name like rds-vpc.{region}.aliyuncs.com, "
            'got "https://rds..{region}.aliyuncs.com"',
        ),
    ],
)
def test_a_bad_template_is_one_clear_line(written: str, problem: str) -> None:
    assert problems(written) == [f"api.endpoint: {problem}"]


def test_an_account_endpoint_may_be_a_template_too() -> None:
    def account(name: str, endpoint: str) -> dict[str, Any]:
        return {"name": name, "endpoint": endpoint, "instances": [{"id": name, "region": "cn-x1"}]}

    good = account("a", "https://rds-vpc.{region}.aliyuncs.com")
    config = parse_config({"accounts": [good]}, {})
    assert config.accounts[0].endpoint == "https://rds-vpc.{region}.aliyuncs.com"
    bad = account("b", "https://rds.{regionid}.aliyuncs.com")
    with pytest.raises(ConfigError) as caught:
        parse_config({"accounts": [good, bad]}, {})
    assert caught.value.problems == [
        'accounts[1].endpoint: unknown placeholder {regionid} in "https://rds.{regionid}'
        '.aliyuncs.com": the only placeholder is {region}'
    ]


# ----- Templates at call time, over loopback -----------------------------------------------------


class LoopbackResolver(AbstractResolver):
    """Resolves every name to 127.0.0.1 and remembers which names were asked for."""

    def __init__(self) -> None:
        self.asked: list[str] = []

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        self.asked.append(host)
        return [
            ResolveResult(
                hostname=host, host="127.0.0.1", port=port, family=socket.AF_INET, proto=0, flags=0
            )
        ]

    async def close(self) -> None:
        pass


async def test_each_call_goes_to_the_template_filled_with_the_instances_region() -> None:
    fleet = Fleet(seed=3, now=NOW, readonly_fraction=0.0)
    fleet.add_instance(region_id="cn-shanghai")
    fleet.add_instance(region_id="eu-central-1")
    sim = SimulatedRds(fleet, {KEY_ID: SECRET}, clock=lambda: NOW)
    resolver = LoopbackResolver()
    clock = InstantClock()
    async with (
        sim.serve("127.0.0.1", 0) as url,
        aiohttp.ClientSession(connector=aiohttp.TCPConnector(resolver=resolver)) as session,
    ):
        port = url.rsplit(":", 1)[1]
        client = RdsClient(
            session,
            StaticCredentialsProvider(Credentials(KEY_ID, SECRET)),
            RequestLimiter(100, 4, clock),
            clock,
            endpoint=f"http://rds-vpc.{{region}}.test:{port}",
        )
        for region in ("cn-shanghai", "eu-central-1"):
            page = await client.describe_db_instances(region)
            assert [i.region_id for i in page.items] == [region]  # signed for that host, too
    assert resolver.asked == ["rds-vpc.cn-shanghai.test", "rds-vpc.eu-central-1.test"]
