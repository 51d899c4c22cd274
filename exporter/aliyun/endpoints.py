"""Which host serves RDS for a region, and endpoint templates with ``{region}``.

Without a configured endpoint the choice is the one the official RDS SDK makes: its table of
regions with a fixed host (most of them the central ``rds.aliyuncs.com``), and the regional
rule ``rds.<region>.aliyuncs.com`` for every other region. tests/test_endpoints.py checks this
table against the SDK's own.
"""

from __future__ import annotations

import re
from types import MappingProxyType

CENTRAL_HOST = "rds.aliyuncs.com"
CENTRAL_ENDPOINT = f"https://{CENTRAL_HOST}"
REGION_PLACEHOLDER = "{region}"  # in a configured endpoint's host: filled in per call

# Regions served by the central host.
_CENTRAL_REGIONS = frozenset(
    {
        "ap-northeast-2-pop",
        "ap-southeast-1",
        "cn-beijing",
        "cn-beijing-finance-1",
        "cn-beijing-finance-pop",
        "cn-beijing-gov-1",
        "cn-beijing-nu16-b01",
        "cn-edge-1",
        "cn-fujian",
        "cn-haidian-cm12-c01",
        "cn-hangzhou",
        "cn-hangzhou-bj-b01",
        "cn-hangzhou-internal-prod-1",
        "cn-hangzhou-internal-test-1",
        "cn-hangzhou-internal-test-2",
        "cn-hangzhou-internal-test-3",
        "cn-hangzhou-test-306",
        "cn-heyuan",
        "cn-hongkong",
        "cn-hongkong-finance-pop",
        "cn-north-2-gov-1",
        "cn-qingdao",
        "cn-qingdao-nebula",
        "cn-shanghai",
        "cn-shanghai-et15-b01",
        "cn-shanghai-et2-b01",
        "cn-shanghai-finance-1",
        "cn-shanghai-inner",
        "cn-shanghai-internal-test-1",
        "cn-shenzhen",
        "cn-shenzhen-finance-1",
        "cn-shenzhen-inner",
        "cn-shenzhen-st4-d01",
        "cn-shenzhen-su18-b01",
        "cn-wuhan",
        "cn-yushanfang",
        "cn-zhangbei",
        "cn-zhangbei-na61-b01",
        "cn-zhangjiakou-na62-a01",
        "cn-zhengzhou-nebula-1",
        "eu-west-1-oxs",
        "rus-west-1-pop",
        "us-east-1",
        "us-west-1",
    }
)
# Regions with a host of their own that the regional rule would not give.
_SPECIAL_HOSTS = MappingProxyType(
    {"cn-hangzhou-finance": "rds-vpc.cn-hangzhou-finance.aliyuncs.com"}
)

# What may be put into a host name: region ids are lower-case words joined by '-'.
_REGION_RE = re.compile(r"[a-z0-9]+(?:-[a-z0-9]+)*")


def endpoint_for_region(region: str, template: str | None = None) -> str:
    """Base URL (scheme and host) for RDS calls about instances in ``region``: ``template``
    (a configured endpoint, ``{region}`` filled in) or else the SDK's choice.

    Raises ValueError for a region that cannot be part of a host name (it may come from an
    API answer, and must never steer the request elsewhere).
    """
    if template is not None and REGION_PLACEHOLDER not in template:
        return template
    if not _REGION_RE.fullmatch(region):
        raise ValueError(f"not a region id: {region[:60]!r}")
    if template is not None:
        return template.replace(REGION_PLACEHOLDER, region)
    if region in _CENTRAL_REGIONS:
        return CENTRAL_ENDPOINT
    return f"https://{_SPECIAL_HOSTS.get(region, f'rds.{region}.aliyuncs.com')}"
