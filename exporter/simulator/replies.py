"""Replies as the gateway sends them: a success's JSON, an API error in JSON or XML, the HTML
502 page, and a hostile answer in the same shape. Pure functions: every decision is an argument.
"""

from __future__ import annotations

import hashlib
import json

from exporter.simulator.actions import Answer
from exporter.simulator.errors import ApiError, error_body
from exporter.simulator.hostile import RawAnswer
from exporter.simulator.records import HTML_CODE, Reply

HOST_ID = "rds.aliyuncs.com"
_HTML_PAGE = (
    "<html>\r\n<head><title>502 Bad Gateway</title></head>\r\n<body>\r\n"
    "<center><h1>502 Bad Gateway</h1></center>\r\n<hr><center>Tengine</center>\r\n"
    "</body>\r\n</html>\r\n"
)


def request_id_for(seed: int, serial: int) -> str:
    """The RequestId of the ``serial``-th answer: UUID-shaped, fixed by the seed."""
    digest = hashlib.blake2b(f"{seed}|{serial}".encode(), digest_size=16)
    text = digest.hexdigest().upper()
    return f"{text[:8]}-{text[8:12]}-{text[12:16]}-{text[16:20]}-{text[20:]}"


def html_reply() -> Reply:
    return Reply(502, HTML_CODE, _HTML_PAGE.encode(), content_type="text/html")


def success_reply(
    request_id: str, payload: dict[str, object], key_id: str, *, delay: float
) -> Reply:
    """A successful answer whose body is ``payload`` (RequestId included)."""
    return Reply(
        200,
        "OK",
        json.dumps(payload, separators=(",", ":")).encode(),
        headers={"x-acs-request-id": request_id},
        delay=delay,
        access_key_id=key_id,
    )


def answer_payload(request_id: str, answer: Answer) -> dict[str, object]:
    """An action's answer as sent: its body, then the RequestId."""
    return {**answer.body, "RequestId": request_id}


def error_reply(
    request_id: str,
    error: ApiError,
    key_id: str,
    *,
    as_json: bool,
    retry_after_ms: int | None = None,
    shown_id: str | None = None,
) -> Reply:
    """The error answer; ``shown_id`` replaces the RequestId in the body only, and
    ``retry_after_ms`` adds the x-acs-retry-after hint."""
    shown = request_id if shown_id is None else shown_id
    fields = {
        "RequestId": shown,
        "HostId": HOST_ID,
        "Code": error.code,
        "Message": error.message,
        "Recommend": f"https://api.aliyun.com/troubleshoot?q={error.code}&product=Rds&requestId={shown}",
    }
    body, content_type = error_body(fields, as_json=as_json)
    headers = {"x-acs-request-id": request_id}
    if retry_after_ms is not None:
        headers["x-acs-retry-after"] = str(retry_after_ms)
    return Reply(
        error.status,
        error.code,
        body,
        content_type=content_type,
        headers=headers,
        access_key_id=key_id,
    )


def raw_reply(mode: str, result: RawAnswer, request_id: str, key_id: str) -> Reply:
    """A hostile answer sent as is (see :mod:`hostile`); its record shows the mode."""
    return Reply(
        result.status,
        mode.upper(),
        result.body,
        content_type=result.content_type,
        headers={"x-acs-request-id": request_id, **result.headers},
        access_key_id=key_id,
    )
