"""Reading one answer of the RDS API: its status, its encoding (inflated under a cap), its body
(JSON, or the XML error body the API sends when JSON was not asked for), and what error it
describes. Pure functions of the bytes received: they may run in a worker thread.
"""

from __future__ import annotations

import json
import re
import zlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, TypeVar

from exporter.aliyun.errors import (
    INVALID_RESPONSE,
    MALFORMED,
    REDIRECT,
    TOO_LARGE,
    ApiError,
    InvalidResponseError,
    MalformedResponseError,
    classify,
)
from exporter.aliyun.models import ResponseShapeError

T = TypeVar("T")


@dataclass(frozen=True)
class Answer:
    """What of an HTTP answer, besides its body, decides how it is read."""

    status: int
    encoding: str
    content_type: str
    retry_after: str | None
    location: str


def interpret(
    action: str,
    answer: Answer,
    raw: bytes,
    parse: Callable[[Mapping[str, Any]], T],
    max_bytes: int,
) -> T:
    """Inflates, decodes and parses one answer (pure: may run in a worker thread)."""
    if 300 <= answer.status < 400:
        # Followed, a redirect would send the signed headers (and an STS token) to whatever
        # host it names: never follow one, and never trust what it says.
        raise InvalidResponseError(
            action,
            REDIRECT,
            f"the endpoint answered with a redirect (HTTP {answer.status}); not followed",
            http_status=answer.status,
        )
    text = _inflate(action, answer, raw, max_bytes)
    body = _json(text)
    if answer.status >= 400:
        raise _error(action, answer, text, body)
    if not isinstance(body, dict):
        raise MalformedResponseError(
            action,
            MALFORMED,
            f"expected a JSON object, got {_snippet(text) or 'an empty body'}",
            http_status=answer.status,
        )
    if "Code" in body and "Message" in body and "Items" not in body and "RequestId" in body:
        # An error body with a 2xx status: treat it as the error it describes.
        raise _error(action, answer, text, body)
    try:
        return parse(body)
    except ResponseShapeError as err:
        raise InvalidResponseError(
            action, INVALID_RESPONSE, str(err), http_status=answer.status
        ) from None


def _inflate(action: str, answer: Answer, raw: bytes, max_bytes: int) -> bytes:
    encoding = answer.encoding.strip().lower()
    if encoding in ("", "identity"):
        return raw
    if encoding not in ("gzip", "x-gzip", "deflate"):
        raise MalformedResponseError(
            action, MALFORMED, f"unsupported Content-Encoding {encoding[:40]!r}"
        )
    # 47: a gzip or zlib header, detected; deflate without a header is tried after.
    for wbits in (47, -15):
        inflater = zlib.decompressobj(wbits)
        try:
            text = inflater.decompress(raw, max_bytes + 1)
        except zlib.error:
            continue
        if len(text) > max_bytes or inflater.unconsumed_tail:
            raise too_large(action, answer.status, f"inflates to more than {max_bytes} bytes")
        return text
    raise MalformedResponseError(action, MALFORMED, f"the body is not valid {encoding}")


def _json(text: bytes) -> Any:
    """The parsed body, or None when it is not JSON (including JSON nested too deeply to
    parse, which is no answer the API gives)."""
    if not text:
        return None
    try:
        return json.loads(text)
    except (ValueError, RecursionError):
        return None


_XML_FIELD = re.compile(rb"<(Code|Message|RequestId)>([^<]{0,4096})</\1>")


def _error(action: str, answer: Answer, text: bytes, body: Any) -> ApiError:
    """The error an answer describes, from a JSON or an XML error body (the API answers XML
    when JSON was not asked for) or, failing both, from its status."""
    fields: dict[str, str] = {}
    if isinstance(body, dict):
        fields = {key: value for key, value in body.items() if isinstance(value, str)}
    elif b"<Error" in text[:4096]:
        for name, value in _XML_FIELD.findall(text):
            fields.setdefault(name.decode(), _xml_text(value))
    retry_after = retry_after_seconds(answer.retry_after) if answer.status >= 400 else None
    return classify(
        action,
        answer.status,
        fields.get("Code") or None,
        fields.get("Message") or _snippet(text),
        request_id=fields.get("RequestId") or None,
        retry_after=retry_after,
    )


def _xml_text(value: bytes) -> str:
    text = value.decode("utf-8", errors="replace")
    for entity, character in (("&lt;", "<"), ("&gt;", ">"), ("&quot;", '"'), ("&apos;", "'")):
        text = text.replace(entity, character)
    return text.replace("&amp;", "&")


def too_large(action: str, status: int, detail: str) -> ApiError:
    return InvalidResponseError(
        action,
        TOO_LARGE,
        f"answer too large ({detail}); see api.max_response_bytes",
        http_status=status,
    )


def _snippet(raw: bytes) -> str:
    text = raw[:120].decode("utf-8", errors="replace")
    return " ".join(text.split())


def retry_after_seconds(value: str | None) -> float | None:
    """``x-acs-retry-after`` is in milliseconds; only a positive wait counts."""
    if value is None:
        return None
    try:
        millis = float(value.strip()[:20])
    except ValueError:
        return None
    if not millis > 0 or millis == float("inf"):
        return None
    return millis / 1000.0
