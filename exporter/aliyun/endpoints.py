"""Which host serves RDS for a region."""

from __future__ import annotations

# Regions served by the central endpoint (from the RDS endpoint list; the finance regions too).
_CENTRAL_REGIONS = frozenset(
    {
        "cn-qingdao",
        "cn-beijing",
        "cn-hangzhou",
        "cn-shanghai",
        "cn-shenzhen",
        "cn-heyuan",
        "cn-hongkong",
        "cn-hangzhou-finance",
        "cn-shanghai-finance-1",
        "cn-shenzhen-finance-1",
        "cn-beijing-finance-1",
    }
)
CENTRAL_ENDPOINT = "https://rds.aliyuncs.com"


def endpoint_for_region(region: str) -> str:
    """Base URL (scheme and host) for RDS calls about instances in ``region``."""
    if region in _CENTRAL_REGIONS:
        return CENTRAL_ENDPOINT
    return f"https://rds.{region}.aliyuncs.com"
