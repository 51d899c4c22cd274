"""Async RDS API client: signing, rate and concurrency limits, retries and typed results.

Every answer is treated as coming from a peer that may be broken or hostile: redirects are
errors (they would carry the signed headers elsewhere), the body is read and inflated only up to
``max_response_bytes``, large bodies are parsed off the event loop, a page may not hold more
records than asked for, and a listing may not go on for more than ``MAX_RECORDS_PER_LISTING``
records.
"""

from __future__ import annotations

import asyncio
import copy
import functools
import random
import secrets
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any, Protocol, TypeVar
from urllib.parse import urlsplit

import aiohttp
from yarl import URL

from exporter.aliyun.answers import Answer, interpret, too_large
from exporter.aliyun.clock import Clock
from exporter.aliyun.credentials import Credentials, CredentialsProvider
from exporter.aliyun.endpoints import endpoint_for_region
from exporter.aliyun.errors import (
    CONNECTION_ERROR,
    INVALID_RESPONSE,
    PAGE_PAST_END,
    TIMEOUT,
    TOO_MANY_PAGES,
    ApiError,
    InvalidResponseError,
    RetryableError,
    ThrottledError,
    TransportError,
)
from exporter.aliyun.limiter import RequestLimiter
from exporter.aliyun.models import (
    BackupPolicy,
    BackupsPage,
    DBInstancesPage,
    format_api_minute,
    format_api_second,
    parse_backup_policy,
    parse_backups_page,
    parse_db_instances_page,
)
from exporter.aliyun.recovery import (
    DESCRIBE_BACKUP_TASKS,
    DESCRIBE_BINLOG_FILES,
    DESCRIBE_LOCAL_RECOVERY_TIME,
    DESCRIBE_LOG_BACKUP_FILES,
    BackupJob,
    LogFilesPage,
    RecoveryWindow,
    parse_backup_jobs,
    parse_log_files_page,
    parse_recovery_window,
)
from exporter.aliyun.signing import sign_rpc_v3

T = TypeVar("T")

API_VERSION = "2014-08-15"
DESCRIBE_BACKUPS = "DescribeBackups"
DESCRIBE_BACKUP_POLICY = "DescribeBackupPolicy"
DESCRIBE_DB_INSTANCES = "DescribeDBInstances"
# An answer, compressed or inflated, may not be larger than this (a page of 100 backups is
# about 150 KB): a bigger one fails the call instead of filling the memory.
DEFAULT_MAX_RESPONSE_BYTES = 8 * 1024 * 1024
# Bodies larger than this are inflated and parsed in a worker thread, not on the event loop.
OFF_LOOP_BYTES = 256 * 1024
# A listing (one window of backups, one region's instances) stops with TooManyPages past this
# many records: a server that keeps answering full pages must not keep us paging forever. A
# snapshot every five minutes is 288 backups a day, far below it.
MAX_RECORDS_PER_LISTING = 10_000
# The longest wait a server may ask for with x-acs-retry-after (the official SDK's cap).
MAX_RETRY_AFTER = 120.0


class RequestObserver(Protocol):
    def observe(self, action: str, code: str, seconds: float) -> None:
        """Called once per HTTP attempt with its outcome (``OK`` or the error code)."""
        ...


@dataclass(frozen=True)
class RetryPolicy:
    retries: int = 4
    base_delay: float = 0.5
    max_delay: float = 20.0
    max_retry_after: float = MAX_RETRY_AFTER
    max_wait: float = MAX_RETRY_AFTER  # all the waits of one call together

    def backoff(self, attempt: int, rng: random.Random, retry_after: float | None) -> float:
        """Exponential backoff with full jitter; a wait the server asked for (up to
        ``max_retry_after``) is a floor."""
        ceiling = min(self.max_delay, self.base_delay * (2**attempt))
        delay = rng.uniform(0.0, ceiling)
        if retry_after is not None and retry_after > 0:
            delay = max(delay, min(retry_after, self.max_retry_after))
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
        max_response_bytes: int = DEFAULT_MAX_RESPONSE_BYTES,
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
        self._max_bytes = max_response_bytes
        self._background = False
        self._on_throttled: Callable[[], None] | None = None

    def background(self) -> RdsClient:
        """The same client, its calls in the limiter's background lane: they go only when no
        other call wants the rate (the backfill of older backups)."""
        twin = copy.copy(self)
        twin._background = True
        return twin

    def noting_throttles(self, note: Callable[[], None]) -> RdsClient:
        """The same client, calling ``note`` at each throttled answer, retried or not (the
        status page marks the instance the calls were about)."""
        twin = copy.copy(self)
        twin._on_throttled = note
        return twin

    def endpoint_for(self, region: str) -> str:
        """The configured endpoint (``{region}`` filled in), or the SDK's one for ``region``."""
        return endpoint_for_region(region, self._endpoint)

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
        parse = functools.partial(parse_backups_page, page_size=page_size)
        return await self.call(DESCRIBE_BACKUPS, params, region=region, parse=parse)

    def iter_backup_pages(
        self, instance_id: str, region: str, start: float, end: float, *, page_size: int = 100
    ) -> AsyncIterator[BackupsPage]:
        """Every page of one window, in order, until the API has no more."""
        return paged(
            DESCRIBE_BACKUPS,
            lambda number: self.describe_backups(
                instance_id, region, start, end, page_number=number, page_size=page_size
            ),
            page_size,
        )

    async def describe_backup_policy(self, instance_id: str, region: str) -> BackupPolicy:
        # Without BackupPolicyMode the answer holds the data and the log backup fields
        # together (the documented example; DataBackupPolicy would leave the log ones out).
        return await self.call(
            DESCRIBE_BACKUP_POLICY,
            {"DBInstanceId": instance_id},
            region=region,
            parse=parse_backup_policy,
        )

    def iter_log_file_pages(
        self,
        instance_id: str,
        region: str,
        start: float,
        end: float,
        *,
        sql_server: bool,
        page_size: int = 100,
    ) -> AsyncIterator[LogFilesPage]:
        """Every page of the log backup files overlapping [start, end]: DescribeLogBackupFiles
        (minute precision) for SQL Server, DescribeBinlogFiles (seconds) for the others."""
        action = DESCRIBE_LOG_BACKUP_FILES if sql_server else DESCRIBE_BINLOG_FILES
        fmt = format_api_minute if sql_server else format_api_second
        parse = functools.partial(parse_log_files_page, page_size=page_size)

        def fetch(number: int) -> Awaitable[LogFilesPage]:
            params = {
                "DBInstanceId": instance_id,
                "StartTime": fmt(start),
                "EndTime": fmt(end),
                "PageSize": str(page_size),
                "PageNumber": str(number),
            }
            return self.call(action, params, region=region, parse=parse)

        return paged(action, fetch, page_size)

    async def describe_recovery_window(self, instance_id: str, region: str) -> RecoveryWindow:
        """DescribeLocalAvailableRecoveryTime. Its region parameter is ``Region``."""
        return await self.call(
            DESCRIBE_LOCAL_RECOVERY_TIME,
            {"DBInstanceId": instance_id, "Region": region},
            region=region,
            parse=parse_recovery_window,
        )

    async def describe_backup_tasks(self, instance_id: str, region: str) -> tuple[BackupJob, ...]:
        """DescribeBackupTasks: the running and queued backups (no paging, no times)."""
        return await self.call(
            DESCRIBE_BACKUP_TASKS,
            {"DBInstanceId": instance_id},
            region=region,
            parse=parse_backup_jobs,
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
        parse = functools.partial(parse_db_instances_page, page_size=page_size)
        return await self.call(DESCRIBE_DB_INSTANCES, params, region=region, parse=parse)

    def iter_db_instance_pages(
        self, region: str, filters: Mapping[str, str] | None = None, *, page_size: int = 100
    ) -> AsyncIterator[DBInstancesPage]:
        """Every page of a region's instance listing, in order, until the API has no more."""
        return paged(
            DESCRIBE_DB_INSTANCES,
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
        """One action, retried on throttling, server and transport errors and on bodies that are
        not JSON (usually cut off on the way). Answers that ``parse`` rejects
        (``ResponseShapeError``) are not retried: the same request gets the same answer."""
        attempt = 0
        waited = 0.0
        while True:
            try:
                return await self._call_once(action, params, region, parse)
            except RetryableError as err:
                if self._on_throttled is not None and isinstance(err, ThrottledError):
                    self._on_throttled()
                delay = self._retry.backoff(attempt, self._rng, err.retry_after)
                # Retries end with the count, or when the waits would pass the budget: a
                # poll that waits on and on would report nothing (success or failure) for that
                # long.
                if attempt >= self._retry.retries or waited + delay > self._retry.max_wait:
                    raise
                attempt += 1
                waited += delay
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
        async with self._limiter.slot(background=self._background):
            # Fetched once the call may go: temporary credentials taken before waiting for the
            # rate limiter could expire in the queue.
            credentials = await self._credentials.get()
            started = self._clock.monotonic()
            url, headers = self._sign(base, host, action, params, credentials)
            code: str | None = None  # stays None when cancelled: not an outcome of the API
            try:
                result = await self._exchange(action, url, headers, parse)
                code = "OK"
                return result
            except ApiError as err:
                code = err.code
                # Never trust an error body not to quote what we sent.
                err.redact(credentials.access_key_secret, credentials.security_token)
                raise
            except asyncio.TimeoutError:
                code = TIMEOUT
                raise TransportError(
                    action, code, f"no answer from {host} within {self._timeout.total}s"
                ) from None
            except aiohttp.ClientError as err:
                code = CONNECTION_ERROR
                raise TransportError(action, code, f"{host}: {_describe(err)}") from None
            finally:
                if self._observer is not None and code is not None:
                    self._observer.observe(action, code, self._clock.monotonic() - started)

    def _sign(
        self,
        base: str,
        host: str,
        action: str,
        params: Mapping[str, str],
        credentials: Credentials,
    ) -> tuple[URL, dict[str, str]]:
        """The URL and headers of one signed request."""
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
        # JSON, as the official SDK asks for (the API may answer XML otherwise); only the
        # encodings this client inflates itself, under its size cap.
        headers = {
            **signed.headers,
            "Accept": "application/json",
            "Accept-Encoding": "gzip, deflate",
        }
        return url, headers

    async def _exchange(
        self,
        action: str,
        url: URL,
        headers: Mapping[str, str],
        parse: Callable[[Mapping[str, Any]], T],
    ) -> T:
        """Sends one request and reads its answer: never follows a redirect, reads and
        inflates under the size cap, parses large or compressed bodies off the loop."""
        async with self._session.post(
            url,
            headers=headers,
            timeout=self._timeout,
            allow_redirects=False,
            auto_decompress=False,
        ) as response:
            raw = await self._read(action, response)
            encoding = response.headers.get("Content-Encoding", "")
            answer = Answer(
                response.status,
                encoding,
                response.headers.get("Content-Type", ""),
                response.headers.get("x-acs-retry-after"),
                response.headers.get("Location", ""),
            )
        # A compressed body may inflate to anything up to the cap: off the loop too.
        compressed = encoding.strip().lower() not in ("", "identity")
        if len(raw) > OFF_LOOP_BYTES or (compressed and len(raw) > 256):
            return await asyncio.to_thread(interpret, action, answer, raw, parse, self._max_bytes)
        return interpret(action, answer, raw, parse, self._max_bytes)

    async def _read(self, action: str, response: aiohttp.ClientResponse) -> bytes:
        """The raw (still compressed) body, refusing one larger than the cap without reading
        it all."""
        declared = response.content_length
        if declared is not None and declared > self._max_bytes:
            raise too_large(action, response.status, f"{declared} bytes announced")
        chunks: list[bytes] = []
        size = 0
        while True:
            chunk = await response.content.read(64 * 1024)
            if not chunk:
                return b"".join(chunks)
            size += len(chunk)
            if size > self._max_bytes:
                raise too_large(action, response.status, f"more than {self._max_bytes} bytes")
            chunks.append(chunk)


class _Page(Protocol):
    @property
    def raw_count(self) -> int: ...

    @property
    def total_record_count(self) -> int | None: ...


PageT = TypeVar("PageT", bound=_Page)


async def paged(
    action: str,
    fetch: Callable[[int], Awaitable[PageT]],
    page_size: int,
    past_end: str = PAGE_PAST_END,
) -> AsyncIterator[PageT]:
    """Pages 1, 2, ... to the end of the list.

    The end is a short page, or a full one when ``PageNumber x PageSize`` reaches
    ``TotalRecordCount`` (the total is trusted only when it is no less than what was already
    read: a total that cannot be right is ignored, and paging goes on). Asking for a page past
    the end anyway (a total that changed, or none at all) is answered with ``past_end``
    (DescribeBackups: ``InvalidPageNumbers.Malformed``), which on a page after the first means
    the same: the end.
    A first page that holds nothing although the total says there is something is an answer
    that cannot be trusted.
    """
    read = 0
    limit = max(1, -(-MAX_RECORDS_PER_LISTING // page_size))
    for number in range(1, limit + 1):
        try:
            page = await fetch(number)
        except ApiError as err:
            if number > 1 and err.code == past_end:
                return
            raise
        total = page.total_record_count
        if number == 1 and page.raw_count == 0 and total is not None and total > 0:
            raise InvalidResponseError(
                action, INVALID_RESPONSE, f"page 1 is empty but TotalRecordCount is {total}"
            )
        yield page
        read += page.raw_count
        if page.raw_count < page_size:
            return
        if total is not None and total >= read and number * page_size >= total:
            return
    raise InvalidResponseError(
        action,
        TOO_MANY_PAGES,
        f"still full pages after {MAX_RECORDS_PER_LISTING} records; the listing is cut off",
    )


def _describe(err: aiohttp.ClientError) -> str:
    text = str(err) or type(err).__name__
    return " ".join(text.split())[:200]
