"""Signature V3 verification, as the gateway does it: the server rebuilds the canonical request
from what it received (decoded query parameters, the headers named in ``SignedHeaders``, the
hash of the body it read) and compares signatures.
"""

from __future__ import annotations

import collections
import hashlib
import hmac
from collections.abc import Mapping
from dataclasses import dataclass

from exporter.aliyun.signing import (
    canonical_query_string,
    canonical_request_v3,
    parse_authorization,
    signature_v3,
    string_to_sign_v3,
)
from exporter.simulator.errors import ApiError
from exporter.simulator.timefmt import parse_second

MAX_SKEW_SECONDS = 15 * 60  # x-acs-date tolerance and nonce memory, as documented


@dataclass(frozen=True)
class StsToken:
    token: str
    expires_at: float | None  # simulator clock; None: never


def _same(expected: str, given: str) -> bool:
    return hmac.compare_digest(expected.encode(), given.encode())


def _incomplete(detail: str) -> ApiError:
    return ApiError(
        400,
        "IncompleteSignature",
        f"The request signature does not conform to Aliyun standards. {detail}",
    )


class Authenticator:
    """Access keys, STS tokens and recently used nonces; :meth:`verify` checks one request."""

    def __init__(self, credentials: Mapping[str, str]) -> None:
        self._secrets: dict[str, str] = dict(credentials)
        self._tokens: dict[str, list[StsToken]] = {}
        self._nonces: dict[tuple[str, str], float] = {}
        self._nonce_order: collections.deque[tuple[float, tuple[str, str]]] = collections.deque()

    def add_key(self, access_key_id: str, secret: str) -> None:
        self._secrets[access_key_id] = secret

    def remove_key(self, access_key_id: str) -> None:
        self._secrets.pop(access_key_id, None)
        self._tokens.pop(access_key_id, None)

    def add_sts(
        self, access_key_id: str, secret: str, token: str, expires_at: float | None = None
    ) -> None:
        """STS credentials: requests with this key must carry one of its unexpired tokens."""
        self._secrets[access_key_id] = secret
        self._tokens.setdefault(access_key_id, []).append(StsToken(token, expires_at))

    @property
    def access_key_ids(self) -> list[str]:
        return list(self._secrets)

    def secret_of(self, access_key_id: str) -> str:
        """The secret of a known key ("" for an unknown one): the echo_secret hostile mode
        sends it back."""
        return self._secrets.get(access_key_id, "")

    def verify(
        self,
        *,
        method: str,
        headers: Mapping[str, str],
        params: Mapping[str, str],
        body: bytes,
        now: float,
    ) -> str:
        """Returns the caller's access key id, or raises the gateway's error."""
        auth = parse_authorization(headers.get("Authorization", ""))
        if auth is None:
            raise _incomplete("Authorization header is missing or not ACS3-HMAC-SHA256.")
        signed = {name.lower() for name in auth.signed_headers}
        must_sign = {"host"} | {n.lower() for n in headers if n.lower().startswith("x-acs-")}
        if not must_sign <= signed:
            missing = ";".join(sorted(must_sign - signed))
            raise _incomplete(f"Headers not signed: {missing}.")
        absent = sorted(name for name in signed if name not in headers)
        if absent:
            raise _incomplete(f"Signed headers not sent: {';'.join(absent)}.")
        secret = self._secrets.get(auth.access_key_id)
        if secret is None:
            raise ApiError(404, "InvalidAccessKeyId.NotFound", "Specified access key is not found.")
        self._check_date(headers.get("x-acs-date"), now)
        nonce = headers.get("x-acs-signature-nonce", "")
        if not nonce:
            raise ApiError(
                400, "MissingSignatureNonce", "SignatureNonce is mandatory for this action."
            )
        canonical, _ = canonical_request_v3(
            method,
            "/",
            canonical_query_string(params),
            {name: headers[name] for name in signed},
            hashlib.sha256(body).hexdigest(),
        )
        to_sign = string_to_sign_v3(canonical)
        if not _same(signature_v3(secret, to_sign), auth.signature):
            raise ApiError(
                400,
                "SignatureDoesNotMatch",
                "Specified signature does not match our calculation. "
                f"server string to sign is:{to_sign}",
            )
        self._use_nonce(auth.access_key_id, nonce, now)
        self._check_token(auth.access_key_id, headers.get("x-acs-security-token"), now)
        return auth.access_key_id

    @staticmethod
    def _check_date(value: str | None, now: float) -> None:
        moment = parse_second(value) if value else None
        if moment is None:
            raise ApiError(
                400,
                "InvalidTimeStamp.Format",
                "Specified time stamp or date value is not well formatted.",
            )
        if abs(moment - now) > MAX_SKEW_SECONDS:
            raise ApiError(
                400, "InvalidTimeStamp.Expired", "Specified time stamp or date value is expired."
            )

    def _use_nonce(self, access_key_id: str, nonce: str, now: float) -> None:
        # Forget nonces older than the date tolerance: a replay that old fails the date check.
        while self._nonce_order and self._nonce_order[0][0] < now:
            expired_at, old = self._nonce_order.popleft()
            if self._nonces.get(old) == expired_at:
                del self._nonces[old]
        key = (access_key_id, nonce)
        remembered_until = self._nonces.get(key)
        if remembered_until is not None and remembered_until >= now:
            raise ApiError(400, "SignatureNonceUsed", "Specified signature nonce was used already.")
        self._nonces[key] = now + MAX_SKEW_SECONDS
        self._nonce_order.append((now + MAX_SKEW_SECONDS, key))

    def _check_token(self, access_key_id: str, token: str | None, now: float) -> None:
        tokens = self._tokens.get(access_key_id)
        if not tokens:
            if token:
                raise ApiError(
                    400,
                    "InvalidSecurityToken.MismatchWithAccessKey",
                    "Specified SecurityToken mismatch with the AccessKey.",
                )
            return
        if not token:
            raise ApiError(400, "MissingSecurityToken", "SecurityToken is mandatory for this key.")
        for known in tokens:
            if _same(known.token, token):
                if known.expires_at is not None and now >= known.expires_at:
                    raise ApiError(
                        400, "InvalidSecurityToken.Expired", "Specified SecurityToken is expired."
                    )
                return
        raise ApiError(
            400,
            "InvalidSecurityToken.MismatchWithAccessKey",
            "Specified SecurityToken mismatch with the AccessKey.",
        )
