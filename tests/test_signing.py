"""Request signing: the official test vectors, and the official SDK as an independent oracle."""

from __future__ import annotations

import base64
import hashlib
import hmac
from collections.abc import Mapping
from datetime import datetime, timezone
from types import SimpleNamespace

import pytest
from alibabacloud_tea_openapi.utils import Utils

from exporter.aliyun.signing import (
    EMPTY_BODY_SHA256,
    canonical_query_string,
    canonical_request_v3,
    parse_authorization,
    percent_encode,
    sign_rpc_v3,
    signature_v3,
    string_to_sign_v3,
)


def test_v3_official_vector() -> None:
    headers = {
        "host": "ecs.cn-shanghai.aliyuncs.com",
        "x-acs-action": "RunInstances",
        "x-acs-version": "2014-05-26",
        "x-acs-date": "2023-10-26T10:22:32Z",
        "x-acs-signature-nonce": "3156853299f313e23d1673dc12e1703d",
        "x-acs-content-sha256": EMPTY_BODY_SHA256,
    }
    query = canonical_query_string(
        {
            "ImageId": "win2019_1809_x64_dtc_zh-cn_40G_alibase_20230811.vhd",
            "RegionId": "cn-shanghai",
        }
    )
    canonical, signed = canonical_request_v3("POST", "/", query, headers, EMPTY_BODY_SHA256)
    assert signed == (
        "host;x-acs-action;x-acs-content-sha256;x-acs-date;x-acs-signature-nonce;x-acs-version"
    )
    assert (
        hashlib.sha256(canonical.encode()).hexdigest()
        == "7ea06492da5221eba5297e897ce16e55f964061054b7695beedaac1145b1e259"
    )
    assert (
        signature_v3("YourAccessKeySecret", string_to_sign_v3(canonical))
        == "06563a9e1b43f5dfe96b81484da74bceab24a1d853912eee15083a6f0f3283c0"
    )


def test_sign_rpc_v3_reproduces_official_vector_end_to_end() -> None:
    signed = sign_rpc_v3(
        method="POST",
        host="ecs.cn-shanghai.aliyuncs.com",
        action="RunInstances",
        version="2014-05-26",
        params={
            "ImageId": "win2019_1809_x64_dtc_zh-cn_40G_alibase_20230811.vhd",
            "RegionId": "cn-shanghai",
        },
        access_key_id="YourAccessKeyId",
        access_key_secret="YourAccessKeySecret",
        security_token=None,
        date=datetime(2023, 10, 26, 10, 22, 32, tzinfo=timezone.utc),
        nonce="3156853299f313e23d1673dc12e1703d",
    )
    assert signed.headers["Authorization"] == (
        "ACS3-HMAC-SHA256 Credential=YourAccessKeyId,SignedHeaders=host;x-acs-action;"
        "x-acs-content-sha256;x-acs-date;x-acs-signature-nonce;x-acs-version,"
        "Signature=06563a9e1b43f5dfe96b81484da74bceab24a1d853912eee15083a6f0f3283c0"
    )


# The documented example, in the documented (unsorted) order.
V1_QUERY = (
    "Timestamp=2016-02-23T12:46:24Z&Format=XML&AccessKeyId=testid&Action=DescribeRegions"
    "&SignatureMethod=HMAC-SHA1&SignatureNonce=3ee8c1b8-83d3-44af-a94f-4e0ad82fd6cf"
    "&Version=2014-05-26&SignatureVersion=1.0"
)
V1_PARAMS = dict(pair.split("=", 1) for pair in V1_QUERY.split("&"))


def signature_v1(method: str, params: Mapping[str, str], access_key_secret: str) -> str:
    """The older RPC signature (HMAC-SHA1 over the encoded, sorted parameters). Nothing sends
    it; its official vector checks the percent-encoding V3 shares."""
    canonical = canonical_query_string(params)
    to_sign = f"{method.upper()}&{percent_encode('/')}&{percent_encode(canonical)}"
    digest = hmac.new(
        (access_key_secret + "&").encode("utf-8"), to_sign.encode("utf-8"), hashlib.sha1
    ).digest()
    return base64.b64encode(digest).decode("ascii")


@pytest.mark.parametrize(
    ("method", "expected"),
    [("GET", "OLeaidS1JvxuMvnyHOwuJ+uX5qY="), ("POST", "MxbnVAM4w6sft9xjVpe/GCKueuk=")],
)
def test_v1_official_vector(method: str, expected: str) -> None:
    assert signature_v1(method, V1_PARAMS, "testsecret") == expected


@pytest.mark.parametrize(
    ("raw", "encoded"),
    [
        ("a b", "a%20b"),
        ("a*b", "a%2Ab"),
        ("a~b", "a~b"),
        ("a/b:c", "a%2Fb%3Ac"),
        ("-_.", "-_."),
        ("日本", "%E6%97%A5%E6%9C%AC"),
        ("a+b=c&d", "a%2Bb%3Dc%26d"),
    ],
)
def test_percent_encoding_is_rfc3986(raw: str, encoded: str) -> None:
    assert percent_encode(raw) == encoded


ORACLE_CASES = [
    {"DBInstanceId": "rm-uf6wjk5xxxxxxxx", "StartTime": "2024-01-01T00:00Z"},
    {"Filter": "a b*c~d/e:f", "Name": "数据库 备份"},
    {"Tags": '{"env":"prod","team":"pay ments"}', "RegionId": "cn-hangzhou"},
    {"Empty": "", "Plus": "1+1=2", "Percent": "100%"},
]


@pytest.mark.parametrize("params", ORACLE_CASES)
@pytest.mark.parametrize("token", [None, "CAIS+token/with=chars"])
def test_signature_matches_official_sdk(params: dict[str, str], token: str | None) -> None:
    """The official SDK's own signing function must produce the same Authorization."""
    signed = sign_rpc_v3(
        method="POST",
        host="rds.aliyuncs.com",
        action="DescribeBackups",
        version="2014-08-15",
        params=params,
        access_key_id="LTAI5tExampleKeyId",
        access_key_secret="ExampleSecret/With+Symbols=",
        security_token=token,
        date=datetime(2026, 11, 28, 12, 0, 5, tzinfo=timezone.utc),
        nonce="f3a1c0de",
    )
    headers = {k: v for k, v in signed.headers.items() if k != "Authorization"}
    request = SimpleNamespace(pathname="/", method="POST", query=dict(params), headers=headers)
    expected = Utils.get_authorization(
        request,
        "ACS3-HMAC-SHA256",
        EMPTY_BODY_SHA256,
        "LTAI5tExampleKeyId",
        "ExampleSecret/With+Symbols=",
    )
    assert signed.headers["Authorization"] == expected
    if token:
        assert "x-acs-security-token" in expected


def test_query_string_sent_is_the_one_signed() -> None:
    signed = sign_rpc_v3(
        method="POST",
        host="rds.aliyuncs.com",
        action="DescribeBackups",
        version="2014-08-15",
        params={"B": "x y", "A": "1*2"},
        access_key_id="id",
        access_key_secret="secret",
        security_token=None,
        date=datetime(2026, 1, 1, tzinfo=timezone.utc),
        nonce="n",
    )
    assert signed.query_string == "A=1%2A2&B=x%20y"


def test_parse_authorization_round_trip_and_garbage() -> None:
    parsed = parse_authorization(
        "ACS3-HMAC-SHA256 Credential=AK,SignedHeaders=host;x-acs-date,Signature=abc"
    )
    assert parsed is not None
    assert parsed.access_key_id == "AK"
    assert parsed.signed_headers == ("host", "x-acs-date")
    assert parsed.signature == "abc"
    assert parse_authorization("Bearer xyz") is None
    assert parse_authorization("ACS3-HMAC-SHA256 Credential=AK") is None
