"""Hostile answers (``Faults.hostile``): what a broken gateway or a malicious endpoint could send
instead of a successful answer. A client must survive each without running out of memory,
following the answer elsewhere, or leaking what it sends.

The big bodies are built once per size, in a worker thread (never on the event loop), and kept.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import random
import re
import struct
import zlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

from exporter.simulator.drcopies import CrossCopy, drawn_policy
from exporter.simulator.errors import ApiError
from exporter.simulator.faults import Faults
from exporter.simulator.models import SimBackup, SimInstance, SimJob, SimLogFile
from exporter.simulator.render import (
    backup_item,
    binlog_item,
    cross_copy_item,
    cross_policy_fields,
    job_item,
    log_backup_item,
)

GIANT_LENGTH = 1 << 20  # giant_code: length of Code and of RequestId
DEEP_NESTING = 100_000
FUTURE_YEAR = "2999"
_CHUNK = 1 << 20
_CACHE_ENTRIES = 4  # bodies kept per kind; more distinct sizes than this start afresh
# A minimal gzip member header: no name, no time, maximum compression, unknown OS.
_GZIP_HEADER = b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x02\xff"
_TIME_RE = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d(:\d\d)?Z")
_ID_MARK = "@@HOSTILE-ID@@"
# Per action: the list under Items, its id field, and how the n-th copy's id looks.
_LISTS: Mapping[str, tuple[str, str, Callable[[int], str]]] = {
    "DescribeBackups": ("Backup", "BackupId", lambda n: str(900_000_000_000 + n)),
    "DescribeDBInstances": ("DBInstance", "DBInstanceId", lambda n: f"rm-hostile{n:09d}"),
    "DescribeBinlogFiles": ("BinLogFile", "LogFileName", lambda n: f"mysql-bin.{n:07d}"),
    # SQL Server's files have no id: the copies differ by their download link.
    "DescribeLogBackupFiles": ("BinLogFile", "DownloadLink", lambda n: f"http://hostile/{n}"),
    "DescribeBackupTasks": ("BackupJob", "BackupJobId", lambda n: str(900_000_000 + n)),
    "DescribeCrossRegionBackups": ("Item", "CrossBackupId", lambda n: str(900_000_000 + n)),
    "DescribeCrossRegionBackupDBInstance": ("Item", "DBInstanceId", lambda n: f"rm-hostile{n:09d}"),
}
_COUNTS = ("PageRecordCount", "TotalRecordCount", "TotalRecords", "ItemsNumbers")
_SIZE_FIELDS = ("BackupSize", "FileSize")  # what negative_size makes -1


@dataclass(frozen=True)
class RawAnswer:
    """Sent as is."""

    status: int
    body: bytes
    content_type: str = "application/json"
    headers: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class ErrorAnswer:
    """Sent like any API error (JSON or XML); ``request_id`` is the body's RequestId."""

    error: ApiError
    request_id: str
    record_code: str  # what RequestRecord.code shows


def build_gzip_bomb(size: int) -> bytes:
    """A gzip body that inflates to ``size`` bytes of a JSON object padded with spaces.

    Only one chunk is ever compressed: after a full flush a deflate block depends on nothing
    before it, so the same block repeated is a valid stream of the chunk repeated.
    """
    head, tail = b'{"Items":{"Backup":[', b']},"RequestId":"gzip-bomb"}'
    padding = max(0, size - len(head) - len(tail))
    chunks, rest = divmod(padding, _CHUNK)
    deflate = zlib.compressobj(9, zlib.DEFLATED, -15)  # raw deflate: header and trailer are ours
    parts = [_GZIP_HEADER, deflate.compress(head), deflate.flush(zlib.Z_FULL_FLUSH)]
    crc = zlib.crc32(head)
    if chunks:
        chunk = b" " * _CHUNK
        parts.append((deflate.compress(chunk) + deflate.flush(zlib.Z_FULL_FLUSH)) * chunks)
        for _ in range(chunks):
            crc = zlib.crc32(chunk, crc)
    last = b" " * rest + tail
    parts += [deflate.compress(last), deflate.flush()]
    crc = zlib.crc32(last, crc)
    total = len(head) + padding + len(tail)
    parts.append(struct.pack("<II", crc, total & 0xFFFFFFFF))
    return b"".join(parts)


def fallback_item(action: str, instance: SimInstance, now: float) -> dict[str, object] | None:
    """A plausible item of a list action, for huge_page when the normal answer lists nothing;
    None for an action without a list."""
    backup = _fallback_backup(instance, now)
    log = SimLogFile(
        name="mysql-bin.000001",
        host=instance.host_ids[0],
        begin=backup.start,
        end=backup.end,
        size=1 << 20,
        checksum="0",
        uploaded_at=backup.end,
        primary=True,
    )
    if action == "DescribeBackups":
        return backup_item(backup)
    if action == "DescribeBinlogFiles":
        return binlog_item(instance, log, now)
    if action == "DescribeLogBackupFiles":
        return log_backup_item(instance, log, now)
    if action == "DescribeBackupTasks":
        return job_item(
            SimJob("0", dataclasses.replace(backup, end=now + 600), 50), asked_by_id=False
        )
    policy = drawn_policy(0, instance)
    if action == "DescribeCrossRegionBackups":
        copy = CrossCopy(0, backup, policy.region, backup.end, False, backup.end)
        return cross_copy_item(instance, copy)
    if action == "DescribeCrossRegionBackupDBInstance":
        return cross_policy_fields(instance, policy)
    return None


def _fallback_backup(instance: SimInstance, now: float) -> SimBackup:
    start = now // 3600 * 3600 - 3600
    return SimBackup(
        backup_id="0",
        instance_id=instance.instance_id,
        start=start,
        end=start + 600,
        status="Success",
        backup_type="FullBackup",
        mode="Automated",
        method=instance.policy.method,
        initiator="System",
        size=instance.base_size_bytes,
        engine=instance.engine,
        engine_version=instance.engine_version,
        region_id=instance.region_id,
        host_instance_id=instance.host_ids[0],
    )


def _huge_body(
    payload: Mapping[str, object], list_key: str, template: str, ident: Callable[[int], str], n: int
) -> bytes:
    """``payload`` with ``Items[list_key]`` holding ``n`` copies of ``template`` (JSON text with
    ``_ID_MARK`` where each copy's id goes)."""
    before, after = (part.encode() for part in template.split(_ID_MARK, 1))
    shell = json.dumps({**payload, "Items": {list_key: _ID_MARK}}, separators=(",", ":"))
    opening, closing = (part.encode() for part in shell.split(f'"{_ID_MARK}"', 1))
    body = bytearray(opening)
    body += b"["
    for number in range(n):
        if number:
            body += b","
        body += before
        body += ident(number).encode()
        body += after
    body += b"]"
    body += closing
    return bytes(body)


def _items(payload: Mapping[str, object]) -> list[dict[str, object]]:
    items = payload.get("Items")
    if not isinstance(items, dict):
        return []
    return [i for value in items.values() if isinstance(value, list) for i in value]


def _in_2999(text: str) -> str:
    moved = FUTURE_YEAR + text[4:]
    return moved[:8] + "28" + moved[10:] if moved[5:10] == "02-29" else moved  # not a leap year


class HostileAnswers:
    """Builds hostile answers; owns their caches and their seeded random codes."""

    def __init__(self, seed: int) -> None:
        self._rng = random.Random(f"{seed}|hostile")
        self._bombs: dict[int, bytes] = {}
        self._pages: dict[tuple[str, str, int, bool], bytes] = {}

    async def answer(
        self,
        mode: str,
        *,
        action: str,
        payload: dict[str, object],
        faults: Faults,
        secret: str,
        token: str,
        fallback_item: Mapping[str, object] | None = None,
    ) -> RawAnswer | ErrorAnswer:
        """The hostile answer for ``mode`` to a request whose normal answer is ``payload``
        (RequestId included); ``secret`` and ``token`` are the caller's. ``fallback_item``:
        what huge_page copies when the normal answer lists nothing."""
        request_id = str(payload.get("RequestId", ""))
        if mode == "gzip_bomb":
            bomb = await self._bomb(faults.bomb_bytes)
            return RawAnswer(200, bomb, headers={"Content-Encoding": "gzip"})
        if mode == "huge_page":
            page = await self._huge_page(action, payload, faults.huge_items, fallback_item)
            return RawAnswer(200, page)
        if mode == "redirect":
            return RawAnswer(302, b"", "text/plain", {"Location": faults.redirect_to})
        if mode == "deep_json":
            return RawAnswer(200, b"[" * DEEP_NESTING + b"]" * DEEP_NESTING)
        if mode == "empty_object":
            return RawAnswer(200, json.dumps({"RequestId": request_id}).encode())
        if mode in ("giant_code", "random_code", "echo_secret"):
            return self._error(mode, request_id, secret, token)
        if mode == "items_null":
            payload["Items"] = None
        for item in _items(payload):
            if mode == "future_dates":
                times = [k for k, v in item.items() if isinstance(v, str) and _TIME_RE.fullmatch(v)]
                item.update({name: _in_2999(str(item[name])) for name in times})
            elif mode == "negative_size":
                item.update({name: -1 for name in _SIZE_FIELDS if name in item})
        return RawAnswer(200, json.dumps(payload, separators=(",", ":")).encode())

    def _error(self, mode: str, request_id: str, secret: str, token: str) -> ErrorAnswer:
        if mode == "giant_code":
            code = "Err." + "X" * (GIANT_LENGTH - 4)
            error = ApiError(400, code, "The request was rejected.")
            return ErrorAnswer(error, "R" * GIANT_LENGTH, "GIANT_CODE")
        if mode == "random_code":
            code = f"Err.{self._rng.getrandbits(64):016x}"
            return ErrorAnswer(ApiError(400, code, "The request was rejected."), request_id, code)
        # echo_secret: a gateway that copies what it was sent into its error.
        echoed = f"{secret}.{token}"
        error = ApiError(400, f"Echo.{echoed}", f"Rejected the request signed with {echoed}.")
        return ErrorAnswer(error, f"{request_id}-{echoed}", "ECHO_SECRET")

    async def _bomb(self, size: int) -> bytes:
        bomb = self._bombs.get(size)
        if bomb is None:
            bomb = await asyncio.to_thread(build_gzip_bomb, size)
            if len(self._bombs) >= _CACHE_ENTRIES:
                self._bombs.clear()
            self._bombs[size] = bomb
        return bomb

    async def _huge_page(
        self,
        action: str,
        payload: dict[str, object],
        n: int,
        fallback_item: Mapping[str, object] | None,
    ) -> bytes:
        """The normal answer with its list holding ``n`` copies of its first item (or of
        ``fallback_item``) with distinct ids; an action without such a list keeps its normal
        answer. The body is cached whole, RequestId included."""
        listing = _LISTS.get(action)
        first = next(iter(_items(payload)), fallback_item)
        if listing is None or first is None:
            return json.dumps(payload, separators=(",", ":")).encode()
        list_key, id_field, ident = listing
        template = json.dumps({**first, id_field: _ID_MARK}, separators=(",", ":"))
        if isinstance(first.get(id_field), int):  # a number stays a number
            template = template.replace(f'"{_ID_MARK}"', _ID_MARK)
        shaped = dict(payload)
        for name in _COUNTS:
            if name in payload:  # the count, typed as the normal answer types it
                shaped[name] = str(n) if isinstance(payload[name], str) else n
        key = (action, template, n, isinstance(payload.get("PageRecordCount"), str))
        body = self._pages.get(key)
        if body is None:
            body = await asyncio.to_thread(_huge_body, shaped, list_key, template, ident, n)
            if len(self._pages) >= _CACHE_ENTRIES:
                self._pages.clear()
            self._pages[key] = body
        return body
