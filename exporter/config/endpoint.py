"""``api.endpoint`` and ``accounts[].endpoint``: ``scheme://host[:port]``, normalised.

The host may hold ``{region}`` (``https://rds-vpc.{region}.aliyuncs.com``), filled in with each
instance's region at call time; a template is checked so that every region makes a valid URL.
"""

from __future__ import annotations

import re
from urllib.parse import urlsplit

from exporter.aliyun.endpoints import REGION_PLACEHOLDER
from exporter.config.errors import Report, quote
from exporter.config.values import string

_PLACEHOLDER_RE = re.compile(r"\{[^{}]*\}")
_HOST_LABEL = r"[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?"
_HOSTNAME_RE = re.compile(rf"(?:{_HOST_LABEL}\.)*{_HOST_LABEL}")
_SAMPLE_REGION = "cn-hangzhou"  # what a template is checked with


def endpoint(report: Report, path: str, value: object) -> str | None:
    """The normalised URL; None for an empty string (the region's own endpoint) or a problem."""
    text = string(report, path, value)
    if text is None:
        return None
    text = text.strip()
    if not text:
        return None  # e.g. ${RDS_ENDPOINT} set to "": use the region's endpoint
    if "@" in text:  # not quoted: it may hold a password
        report.error(path, "must not contain a user name or password")
        return None
    problem = _template_problem(text) or _url_problem(text)
    if problem is not None:
        report.error(path, problem)
        return None
    parts = urlsplit(text)
    hostname, port = parts.hostname or "", parts.port
    host = f"[{hostname}]" if ":" in hostname else hostname
    return f"{parts.scheme}://{host}" + (f":{port}" if port else "")


def _url_problem(text: str) -> str | None:
    message = f"must be an http(s) URL like https://rds.aliyuncs.com, got {quote(text)}"
    try:
        parts = urlsplit(text)
        hostname = parts.hostname
    except ValueError:  # e.g. an unclosed IPv6 bracket
        return message
    if parts.scheme not in ("http", "https") or not hostname or any(c.isspace() for c in text):
        return message
    try:
        port = parts.port
    except ValueError:
        port = 0
    if port is not None and not 0 < port < 65536:
        return f"invalid port in {quote(text)}"
    if parts.path not in ("", "/") or "?" in text or "#" in text:
        return f"must be scheme://host[:port] with no path or query, got {quote(text)}"
    return None


def _template_problem(endpoint: str) -> str | None:
    """What is wrong with the placeholders of an endpoint, if anything; the URL itself is
    checked afterwards (``{region}`` passes those checks as part of the host)."""
    rest = endpoint.replace(REGION_PLACEHOLDER, "")
    if "{" in rest or "}" in rest:
        unknown = _PLACEHOLDER_RE.search(rest)
        what = f"unknown placeholder {unknown.group()}" if unknown else "unmatched brace"
        return f"{what} in {quote(endpoint)}: the only placeholder is {REGION_PLACEHOLDER}"
    if rest == endpoint:
        return None
    try:
        host = urlsplit(endpoint).hostname or ""
    except ValueError:
        return None  # not a URL: the URL checks say so
    if host.count(REGION_PLACEHOLDER) != endpoint.count(REGION_PLACEHOLDER):
        return f"{REGION_PLACEHOLDER} may only be in the host name, got {quote(endpoint)}"
    # Filled in with a region it must still be a host name (every region id is one label's
    # worth of [a-z0-9-]), so a template that loads gives a valid URL for every instance.
    if not _HOSTNAME_RE.fullmatch(host.replace(REGION_PLACEHOLDER, _SAMPLE_REGION)):
        return (
            f"{REGION_PLACEHOLDER} must make a host name like "
            f"rds-vpc.{REGION_PLACEHOLDER}.aliyuncs.com, got {quote(endpoint)}"
        )
    return None
