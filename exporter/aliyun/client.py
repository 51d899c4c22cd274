"""Async RDS API client: signing, rate and concurrency limits, retries and typed results."""

from __future__ import annotations

import asyncio
import json
import random
import secrets
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any, Protocol, TypeVar
from urllib.parse import urlsplit

import aiohttp
from yarl import URL

from exporter.aliyun.credentials import CredentialsProvider
from exporter.aliyun.endpoints import endpoint_for_region
from exporter.aliyun.errors import (
    ApiError,
    MalformedResponseError,
    RetryableError,
    TransportError,
    classify,
)
from exporter.aliyun.limiter import RequestLimiter
from exporter.aliyun.models import (
    BackupPolicy,
    BackupsPage,
    DBInstancesPage,
    ResponseShapeError,
    format_api_minute,
    parse_backup_policy,
    parse_backups_page,
    parse_db_instances_page,
)
from exporter.aliyun.signing import sign_rpc_v3
from exporter.clock import Clock

T = TypeVar("T")

API_VERSION = "2014-08-15"
DESCRIBE_BACKUPS = "DescribeBackups"
DESCRIBE_BACKUP_POLICY = "DescribeBackupPolicy"
DESCRIBE_DB_INSTANCES = "DescribeDBInstances"
# A server that keeps answering full pages must not keep us paging forever.
MAX_PAGES = 10_000


class RequestObserver(Protocol):
    def observe(self, action: str, code: str, seconds: float) -> None:
        """Called once per HTTP attempt with its outcome (``OK`` or the error code)."""
        ...


@dataclass(frozen=True)
class RetryPolicy:
    retries: int = 4
    base_delay: float = 0.5
    max_delay: float = 20.0

    def backoff(self, attempt: int, rng: random.Random, retry_after: float | None) -> float:
        """Exponential backoff with full jitter; the server's retry-after is a floor."""
        ceiling = min(self.max_delay, self.base_delay * (2**attempt))
        delay = rng.uniform(0.0, ceiling)
        if retry_after is not None:
            delay = max(delay, min(retry_after, self.max_delay))
        return delay


class RdsClient:
    """Calls RDS actions for one set of credentials. Share one ``aiohttp.ClientSession`` and one
    ``RequestLimiter`` between all clients of the process."""

    def __init__(
        self,
        session: aiohttp.ClientSession,
        credentials: CredentialsProvider,
        limiter: RequestLimiter,
        clock: Clock,
        *,
        endpoint: str | None = None,
        timeout: float = 10.0,
        retry: RetryPolicy | None = None,
        observer: RequestObserver | None = None,
        rng: random.Random | None = None,
    ) -> None:
        self._session = session
        self._credentials = credentials
        self._limiter = limiter
        self._clock = clock
        self._endpoint = endpoint.rstrip("/") if endpoint else None
        self._timeout = aiohttp.ClientTimeout(total=timeout)
        self._retry = retry or RetryPolicy()
        self._observer = observer
        self._rng = rng or random.Random()

    def endpoint_for(self, region: str) -> str:
        return self._endpoint or endpoint_for_region(region)

    async def describe_backups(
        self,
        instance_id: str,
        region: str,
        start: float,
        end: float,
        *,
        page_number: int = 1,
        page_size: int = 100,
    ) -> BackupsPage:
        """One page of backups whose start lies in [start, end] (minute precision, UTC)."""
        params = {
            "DBInstanceId": instance_id,
            "StartTime": format_api_minute(start),
            "EndTime": format_api_minute(end),
            "PageSize": str(page_size),
            "PageNumber": str(page_number),
        }
        return await self.call(DESCRIBE_BACKUPS, params, region=region, parse=parse_backups_page)

    def iter_backup_pages(
        self, instance_id: str, region: str, start: float, end: float, *, page_size: int = 100
    ) -> AsyncIterator[BackupsPage]:
        """Every page of one window, in order, until the API has no more."""
        return _pages(
            lambda number: self.describe_backups(
                instance_id, region, start, end, page_number=number, page_size=page_size
            ),
            page_size,
        )

    async def describe_backup_policy(self, instance_id: str, region: str) -> BackupPolicy:
        return await self.call(
            DESCRIBE_BACKUP_POLICY,
            {"DBInstanceId": instance_id, "BackupPolicyMode": "DataBackupPolicy"},
            region=region,
            parse=parse_backup_policy,
        )

    async def describe_db_instances(
        self,
        region: str,
        filters: Mapping[str, str] | None = None,
        *,
        page_number: int = 1,
        page_size: int = 100,
    ) -> DBInstancesPage:
        params = {
            **(filters or {}),
            "RegionId": region,
            "PageSize": str(page_size),
            "PageNumber": str(page_number),
        }
        return await self.call(
            DESCRIBE_DB_INSTANCES, params, region=region, parse=parse_db_instances_page
        )

    def iter_db_instance_pages(
        self, region: str, filters: Mapping[str, str] | None = None, *, page_size: int = 100
    ) -> AsyncIterator[DBInstancesPage]:
        """Every page of a region's instance listing, in order, until the API has no more."""
        return _pages(
            lambda number: self.describe_db_instances(
                region, filters, page_number=number, page_size=page_size
            ),
            page_size,
        )

    async def call(
        self,
        action: str,
        params: Mapping[str, str],
        *,
        region: str,
        parse: Callable[[Mapping[str, Any]], T],
    ) -> T:
        """One action, retried on throttling, server and transport errors and on answers that
        ``parse`` rejects (``ResponseShapeError``), which are usually a transient bad body."""
        attempt = 0
        while True:
            try:
                return await self._call_once(action, params, region, parse)
            except RetryableError as err:
                if attempt >= self._retry.retries:
                    raise
                delay = self._retry.backoff(attempt, self._rng, err.retry_after)
                attempt += 1
                await self._clock.sleep(delay)

    async def _call_once(
        self,
        action: str,
        params: Mapping[str, str],
        region: str,
        parse: Callable[[Mapping[str, Any]], T],
    ) -> T:
        base = self.endpoint_for(region)
        host = urlsplit(base).netloc
        async with self._limiter.slot():
            # Fetched once the call may go: temporary credentials taken before waiting for the
            # rate limiter could expire in the queue.
            credentials = await self._credentials.get()
            started = self._clock.monotonic()
            signed = sign_rpc_v3(
                method="POST",
                host=host,
                action=action,
                version=API_VERSION,
                params=params,
                access_key_id=credentials.access_key_id,
                access_key_secret=credentials.access_key_secret,
                security_token=credentials.security_token,
                date=datetime.fromtimestamp(self._clock.time(), tz=timezone.utc),
                nonce=secrets.token_hex(16),
            )
            # encoded=True: send the signed query string byte for byte, never re-encoded.
            url = URL(f"{base}/?{signed.query_string}", encoded=True)
            code: str | None = None  # stays None when cancelled: not an outcome of the API
            try:
                async with self._session.post(
                    url, headers=signed.headers, timeout=self._timeout
                ) as response:
                    raw = await response.read()
                    body = self._parse(action, response, raw)
                    try:
                        result = parse(body)
                        code = "OK"
                        return result
                    except ResponseShapeError as err:
                        raise MalformedResponseError(
                            action, "MalformedResponse", str(err), http_status=response.status
                        ) from None
            except ApiError as err:
                code = err.code
                # Never trust an error body not to quote what we sent.
                err.redact(credentials.access_key_secret, credentials.security_token)
                raise
            except asyncio.TimeoutError:
                code = "Timeout"
                raise TransportError(
                    action, code, f"no answer from {host} within {self._timeout.total}s"
                ) from None
            except aiohttp.ClientError as err:
                code = "ConnectionError"
                raise TransportError(action, code, f"{host}: {_describe(err)}") from None
            finally:
                if self._observer is not None and code is not None:
                    self._observer.observe(action, code, self._clock.monotonic() - started)

    @staticmethod
    def _parse(action: str, response: aiohttp.ClientResponse, raw: bytes) -> Mapping[str, Any]:
        body: Any
        try:
            body = json.loads(raw) if raw else None
        except ValueError:
            body = None
        retry_after = _retry_after(response.headers.get("x-acs-retry-after"))
        if response.status >= 400 or retry_after is not None:
            fields = body if isinstance(body, dict) else {}
            raise classify(
                action,
                response.status,
                _text(fields.get("Code")) or None,
                _text(fields.get("Message")) or _snippet(raw),
                request_id=_text(fields.get("RequestId")) or None,
                retry_after=retry_after,
            )
        if not isinstance(body, dict):
            raise MalformedResponseError(
                action,
                "MalformedResponse",
                f"expected a JSON object, got {_snippet(raw) or 'an empty body'}",
                http_status=response.status,
            )
        if "Code" in body and "RequestId" in body and "Items" not in body and "Message" in body:
            # An error body with a 2xx status: treat it as the error it describes.
            raise classify(
                action,
                response.status,
                _text(body.get("Code")),
                _text(body.get("Message")),
                request_id=_text(body.get("RequestId")) or None,
                retry_after=None,
            )
        return body


class _Page(Protocol):
    @property
    def raw_count(self) -> int: ...


PageT = TypeVar("PageT", bound=_Page)


async def _pages(fetch: Callable[[int], Awaitable[PageT]], page_size: int) -> AsyncIterator[PageT]:
    """Pages 1, 2, ... until a page comes back short.

    TotalRecordCount is not used to stop: it can change while the list is read, or be wrong,
    and trusting it would silently drop records. The price is one call for an empty page when
    a window holds an exact multiple of the page size, which is rare.
    """
    for number in range(1, MAX_PAGES + 1):
        page = await fetch(number)
        yield page
        if page.raw_count < page_size:
            return


def _text(value: object) -> str:
    return value if isinstance(value, str) else ""


def _snippet(raw: bytes) -> str:
    text = raw[:120].decode("utf-8", errors="replace")
    return " ".join(text.split())


def _retry_after(value: str | None) -> float | None:
    """``x-acs-retry-after`` is in milliseconds."""
    if value is None:
        return None
    try:
        millis = float(value)
    except ValueError:
        return None
    return max(0.0, millis / 1000.0)


def _describe(err: aiohttp.ClientError) -> str:
    text = str(err) or type(err).__name__
    return " ".join(text.split())[:200]
