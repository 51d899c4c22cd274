"""Request signing for Alibaba Cloud RPC APIs: pure functions, no I/O.

Signature V3 (ACS3-HMAC-SHA256) is what the client sends. (tests/test_signing.py checks the
percent-encoding against the official Signature V1 vector too.)
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timezone
from urllib.parse import quote

ALGORITHM_V3 = "ACS3-HMAC-SHA256"
EMPTY_BODY_SHA256 = hashlib.sha256(b"").hexdigest()


def percent_encode(value: str) -> str:
    """RFC 3986 encoding: only ``A-Za-z0-9-_.~`` stay as they are (space is %20, ``*`` is %2A)."""
    return quote(value, safe="~", encoding="utf-8")


def canonical_query_string(params: Mapping[str, str]) -> str:
    """Sorted ``name=value`` pairs, both percent-encoded, joined with ``&``.

    The client sends exactly this string, so what is signed is what goes on the wire.
    """
    return "&".join(
        f"{percent_encode(name)}={percent_encode(params[name])}" for name in sorted(params)
    )


def format_acs_date(moment: datetime) -> str:
    """``x-acs-date`` / V1 ``Timestamp`` form: UTC ``yyyy-MM-ddTHH:mm:ssZ``."""
    return moment.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def canonical_headers(headers: Mapping[str, str]) -> tuple[str, str]:
    """Returns (canonical header block, signed header names) for the headers that are signed:
    ``host``, ``content-type`` and every ``x-acs-*``; names lower-cased and sorted, values trimmed.
    """
    chosen: dict[str, str] = {}
    for name, value in headers.items():
        lower = name.lower()
        if lower in ("host", "content-type") or lower.startswith("x-acs-"):
            chosen[lower] = value.strip()
    names = sorted(chosen)
    block = "".join(f"{name}:{chosen[name]}\n" for name in names)
    return block, ";".join(names)


def canonical_request_v3(
    method: str,
    canonical_uri: str,
    query: str,
    headers: Mapping[str, str],
    payload_sha256: str,
) -> tuple[str, str]:
    """Returns (canonical request, signed header names)."""
    header_block, signed = canonical_headers(headers)
    canonical = "\n".join(
        [method.upper(), canonical_uri, query, header_block, signed, payload_sha256]
    )
    return canonical, signed


def string_to_sign_v3(canonical_request: str) -> str:
    digest = hashlib.sha256(canonical_request.encode("utf-8")).hexdigest()
    return f"{ALGORITHM_V3}\n{digest}"


def signature_v3(access_key_secret: str, string_to_sign: str) -> str:
    return hmac.new(
        access_key_secret.encode("utf-8"), string_to_sign.encode("utf-8"), hashlib.sha256
    ).hexdigest()


@dataclass(frozen=True)
class SignedRequest:
    """What to send: the query string (already encoded, send it verbatim) and all headers."""

    query_string: str
    headers: dict[str, str]


def sign_rpc_v3(
    *,
    method: str,
    host: str,
    action: str,
    version: str,
    params: Mapping[str, str],
    access_key_id: str,
    access_key_secret: str,
    security_token: str | None,
    date: datetime,
    nonce: str,
    body: bytes = b"",
) -> SignedRequest:
    """Signs one RPC-style call with signature V3. Parameters travel in the query string."""
    query = canonical_query_string(params)
    headers = {
        "host": host,
        "x-acs-action": action,
        "x-acs-version": version,
        "x-acs-date": format_acs_date(date),
        "x-acs-signature-nonce": nonce,
        "x-acs-content-sha256": hashlib.sha256(body).hexdigest(),
    }
    if security_token:
        headers["x-acs-security-token"] = security_token
    canonical, signed = canonical_request_v3(
        method, "/", query, headers, headers["x-acs-content-sha256"]
    )
    signature = signature_v3(access_key_secret, string_to_sign_v3(canonical))
    headers["Authorization"] = (
        f"{ALGORITHM_V3} Credential={access_key_id},SignedHeaders={signed},Signature={signature}"
    )
    return SignedRequest(query_string=query, headers=headers)


@dataclass(frozen=True)
class Authorization:
    access_key_id: str
    signed_headers: tuple[str, ...]
    signature: str


def parse_authorization(value: str) -> Authorization | None:
    """Parses a V3 ``Authorization`` header; None when it is not one (used by the simulator)."""
    prefix = ALGORITHM_V3 + " "
    if not value.startswith(prefix):
        return None
    fields: dict[str, str] = {}
    for part in value[len(prefix) :].split(","):
        name, sep, field_value = part.strip().partition("=")
        if not sep:
            return None
        fields[name] = field_value
    try:
        return Authorization(
            access_key_id=fields["Credential"],
            signed_headers=tuple(fields["SignedHeaders"].split(";")),
            signature=fields["Signature"],
        )
    except KeyError:
        return None
