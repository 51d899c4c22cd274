"""The simulated RDS endpoint: an aiohttp app that authenticates, injects faults, runs the
action and records every request.

Order of checks for each request: latency, outage, HTML error page, signature, action and
version, throttling, 5xx, forced error, then the action's own parameter rules. Faults that a
gateway or load balancer would produce come before authentication; the others after it. A
hostile mode (``Faults.hostile``) replaces only an answer that would have succeeded.
"""

from __future__ import annotations

import asyncio
import collections
import hashlib
import json
import random
import time
from collections.abc import AsyncIterator, Callable, Iterable, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass, field

from aiohttp import web

from exporter.simulator.actions import ACTIONS, TAGS_MATCH, Answer, Call
from exporter.simulator.auth import Authenticator
from exporter.simulator.errors import ApiError, accepts_json, error_body
from exporter.simulator.faults import Faults, InstanceFaults
from exporter.simulator.fleet import Fleet
from exporter.simulator.hostile import ErrorAnswer, HostileAnswers
from exporter.simulator.models import SimBackup, SimInstance
from exporter.simulator.quirks import Quirks
from exporter.simulator.render import backup_item

API_VERSION = "2014-08-15"
HOST_ID = "rds.aliyuncs.com"
DEMO_ACCESS_KEY_ID = "LTAI5tSimulatorDemoKey00"
DEMO_ACCESS_KEY_SECRET = "SimulatorDemoSecretNotReal0000"
# Windows wider than this answer slowly, like the real API that may time out on long ranges.
DEFAULT_WIDE_WINDOW_SECONDS = 7 * 86400.0
DEFAULT_WIDE_WINDOW_DELAY = 3.0
# RequestRecord.code values for answers that carry no API Code:
HTML_CODE = "HTML"  # the non-JSON 502 page
RESET_CODE = "RESET"  # a connection dropped without an answer
TRUNCATED_CODE = "TRUNCATED"  # a successful answer cut off halfway
_HTML_PAGE = (
    "<html>\r\n<head><title>502 Bad Gateway</title></head>\r\n<body>\r\n"
    "<center><h1>502 Bad Gateway</h1></center>\r\n<hr><center>Tengine</center>\r\n"
    "</body>\r\n</html>\r\n"
)


@dataclass(frozen=True)
class RequestRecord:
    """One request as the simulator saw it and answered it."""

    received: float  # monotonic clock when it arrived
    clock: float  # the simulator's (possibly fake) wall clock at that moment
    method: str
    action: str
    version: str
    params: dict[str, str]  # decoded query parameters
    query_string: str  # raw, exactly as received
    access_key_id: str  # from the Authorization header, even when unknown or wrong
    status: int
    code: str  # "OK", the error Code, or HTML_CODE
    instance_id: str  # DBInstanceId parameter, "" when absent
    answered: float = 0.0  # monotonic clock when the answer was ready
    accept: str = ""  # the Accept header, as sent


@dataclass
class _Reply:
    status: int
    code: str
    body: bytes
    content_type: str = "application/json"
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0
    access_key_id: str = ""


class SimulatedRds:
    """A fleet served over HTTP the way RDS serves it.

    ``clock`` gives wall time (epoch seconds) for signatures and for what is visible;
    ``faults`` may be changed at any time; ``rng_seed`` fixes every random fault decision.
    ``max_records`` bounds ``requests`` to about the most recent ones (for long demo runs);
    None keeps them all. ``quirks`` (default: all on) are the ways the real API departs from
    what a client would expect; ``sim.quirks`` may be changed at any time too.
    """

    def __init__(
        self,
        fleet: Fleet,
        credentials: Mapping[str, str] | None = None,
        *,
        clock: Callable[[], float] = time.time,
        faults: Faults | None = None,
        rng_seed: int = 0,
        shuffle_items: bool = False,
        wide_window_seconds: float = DEFAULT_WIDE_WINDOW_SECONDS,
        wide_window_delay: float = DEFAULT_WIDE_WINDOW_DELAY,
        monotonic: Callable[[], float] = time.monotonic,
        max_records: int | None = None,
        tags_match: str = "any",
        quirks: Quirks | None = None,
    ) -> None:
        # The real API's quirks, all on unless told otherwise; tests may change them live.
        self.quirks = quirks if quirks is not None else Quirks()
        # DescribeDBInstances Tags: "any" pair, as the API documents it; "all" for a stricter API.
        if tags_match not in TAGS_MATCH:
            raise ValueError(f"tags_match must be one of {TAGS_MATCH}, got {tags_match!r}")
        self.tags_match = tags_match
        self.fleet = fleet
        self.clock = clock
        self.faults = faults if faults is not None else Faults()
        self.shuffle_items = shuffle_items
        self.wide_window_seconds = wide_window_seconds
        self.wide_window_delay = wide_window_delay
        self.requests: list[RequestRecord] = []
        self._monotonic = monotonic
        self._rng_seed = rng_seed
        self._rng = random.Random(rng_seed)
        self._auth = Authenticator(
            credentials if credentials is not None else {DEMO_ACCESS_KEY_ID: DEMO_ACCESS_KEY_SECRET}
        )
        self._restricted: dict[str, frozenset[str]] = {}
        self._recent: dict[str, collections.deque[float]] = {}
        self._served = 0
        self._max_records = max_records
        # Quirks and hostile answers draw from their own streams: switching them on or off
        # leaves every other seeded fault decision as it was.
        self._quirk_rng = random.Random(f"{rng_seed}|quirks")
        self._hostile = HostileAnswers(rng_seed)

    # ----- who may see what ------------------------------------------------------------------

    def add_credentials(self, access_key_id: str, secret: str) -> None:
        self._auth.add_key(access_key_id, secret)

    def remove_credentials(self, access_key_id: str) -> None:
        """The key stops working (InvalidAccessKeyId.NotFound), as if deleted."""
        self._auth.remove_key(access_key_id)

    def add_sts_credentials(
        self, access_key_id: str, secret: str, security_token: str, expires_at: float | None = None
    ) -> None:
        """Temporary credentials; the token stops working at ``expires_at`` (simulator clock)."""
        self._auth.add_sts(access_key_id, secret, security_token, expires_at)

    def restrict_instance(self, instance_id: str, access_key_ids: Iterable[str] | None) -> None:
        """Only these keys see the instance (another account's instance is NotFound for the
        rest, and missing from their DescribeDBInstances). None lifts the restriction."""
        if access_key_ids is None:
            self._restricted.pop(instance_id, None)
        else:
            self._restricted[instance_id] = frozenset(access_key_ids)

    def credentials_for(self, instance_id: str) -> frozenset[str]:
        """Access key ids that may see an instance (every key unless restricted)."""
        allowed = self._restricted.get(instance_id)
        return allowed if allowed is not None else frozenset(self._auth.access_key_ids)

    def can_see(self, access_key_id: str, instance_id: str) -> bool:
        allowed = self._restricted.get(instance_id)
        return allowed is None or access_key_id in allowed

    # ----- serving ---------------------------------------------------------------------------

    def make_app(self) -> web.Application:
        app = web.Application()
        app.router.add_route("GET", "/", self._handle)
        app.router.add_route("POST", "/", self._handle)
        return app

    @asynccontextmanager
    async def serve(self, host: str = "127.0.0.1", port: int = 0) -> AsyncIterator[str]:
        """Serves on a real socket; yields the base URL (``http://127.0.0.1:PORT``)."""
        runner = web.AppRunner(self.make_app(), access_log=None, shutdown_timeout=0.5)
        await runner.setup()
        try:
            site = web.TCPSite(runner, host, port)
            await site.start()
            bound_host, bound_port = runner.addresses[0][:2]
            if ":" in bound_host:
                bound_host = f"[{bound_host}]"
            yield f"http://{bound_host}:{bound_port}"
        finally:
            await runner.cleanup()

    def clear_requests(self) -> None:
        self.requests.clear()

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        received = self._monotonic()
        body = await request.read()
        params = dict(request.rel_url.query)  # decoded; the signature is checked over these
        instance_id = params.get("DBInstanceId", "")
        layers: list[InstanceFaults] = [self.faults]
        scoped = self.faults.per_instance.get(instance_id) if instance_id else None
        if scoped is not None:
            layers.append(scoped)
        by_action = self.faults.per_action.get(request.headers.get("x-acs-action", ""))
        if by_action is not None:
            layers.append(by_action)
        hostile = _hostile_mode(self.faults, scoped, by_action, request.headers)
        latency = sum(layer.latency for layer in layers)
        if latency > 0:
            await asyncio.sleep(latency)
        now = self.clock()
        if any(self._roll(layer.reset_rate) for layer in layers):
            # Drop the connection with no answer at all, as a broken proxy would.
            if request.transport is not None:
                request.transport.abort()
            self._record(request, params, instance_id, received, now, _Reply(0, RESET_CODE, b""))
            return web.Response()  # never sent: the connection is gone
        reply = await self._answer(request, params, body, layers, now, received, hostile)
        if reply.delay > 0:
            await asyncio.sleep(reply.delay)
        self._record(request, params, instance_id, received, now, reply)
        return web.Response(
            status=reply.status,
            body=reply.body,
            content_type=reply.content_type,
            charset="utf-8",
            headers=reply.headers,
        )

    def _record(
        self,
        request: web.Request,
        params: dict[str, str],
        instance_id: str,
        received: float,
        now: float,
        reply: _Reply,
    ) -> None:
        self.requests.append(
            RequestRecord(
                received=received,
                clock=now,
                method=request.method,
                action=request.headers.get("x-acs-action", ""),
                version=request.headers.get("x-acs-version", ""),
                params=params,
                query_string=request.rel_url.raw_query_string,
                access_key_id=reply.access_key_id,
                status=reply.status,
                code=reply.code,
                instance_id=instance_id,
                answered=self._monotonic(),
                accept=request.headers.get("Accept", ""),
            )
        )
        if self._max_records is not None and len(self.requests) > 2 * self._max_records:
            # Trimmed in batches so that the cost per request stays constant.
            del self.requests[: len(self.requests) - self._max_records]

    def _request_id(self) -> str:
        self._served += 1
        digest = hashlib.blake2b(f"{self._rng_seed}|{self._served}".encode(), digest_size=16)
        text = digest.hexdigest().upper()
        return f"{text[:8]}-{text[8:12]}-{text[12:16]}-{text[16:20]}-{text[20:]}"

    def _roll(self, rate: float) -> bool:
        # Draw only for active faults: with none, no randomness is consumed at all.
        return rate > 0 and self._rng.random() < rate

    async def _answer(
        self,
        request: web.Request,
        params: dict[str, str],
        body: bytes,
        layers: list[InstanceFaults],
        now: float,
        received: float,
        hostile: str | None,
    ) -> _Reply:
        request_id = self._request_id()
        key_id = ""
        as_json = not self.quirks.xml_errors_unless_json or accepts_json(
            ",".join(request.headers.getall("Accept", []))
        )
        try:
            if any(layer.outage for layer in layers):
                raise _unavailable()
            if any(self._roll(layer.html_error_rate) for layer in layers):
                return _Reply(502, HTML_CODE, _HTML_PAGE.encode(), content_type="text/html")
            key_id = _claimed_key(request.headers.get("Authorization", ""))
            key_id = self._auth.verify(
                method=request.method, headers=request.headers, params=params, body=body, now=now
            )
            action = ACTIONS.get(request.headers.get("x-acs-action", ""))
            if action is None:
                raise ApiError(
                    404,
                    "InvalidAction.NotFound",
                    "Specified api is not found, please check your url and method.",
                )
            if request.headers.get("x-acs-version") != API_VERSION:
                raise ApiError(400, "InvalidVersion", "Specified parameter Version is not valid.")
            self._check_throttle(key_id, layers, received)
            self._inject_errors(layers)
            answer = action(
                Call(
                    fleet=self.fleet,
                    params=params,
                    now=now,
                    can_see=lambda instance_id: self.can_see(key_id, instance_id),
                    shuffle_seed=self._rng_seed if self.shuffle_items else None,
                    tags_match=self.tags_match,
                    quirks=self.quirks,
                )
            )
        except ApiError as error:
            return self._error(request_id, error, key_id, as_json)
        if hostile is not None:
            return await self._hostile_reply(hostile, request, request_id, answer, key_id, as_json)
        reply = self._success(
            request_id, answer, key_id, request.headers.get("x-acs-action", ""), params
        )
        if reply.status == 200 and any(self._roll(layer.truncate_rate) for layer in layers):
            reply.body = reply.body[: len(reply.body) // 2]
            reply.code = TRUNCATED_CODE
        return reply

    def _inject_errors(self, layers: list[InstanceFaults]) -> None:
        for layer in layers:
            if self._roll(layer.error_5xx_rate):
                if self._rng.random() < 0.5:
                    raise _unavailable()
                raise ApiError(
                    500,
                    "InternalError",
                    "The request processing has failed due to some unknown error.",
                )
        for layer in layers:
            if layer.forced_error is not None:
                forced = layer.forced_error
                raise ApiError(forced.status, forced.code, forced.message)

    def _check_throttle(self, key_id: str, layers: list[InstanceFaults], received: float) -> None:
        limit = self.faults.max_requests_per_second
        over_limit = False
        if limit is not None:
            recent = self._recent.setdefault(key_id, collections.deque())
            while recent and recent[0] <= received - 1.0:
                recent.popleft()
            over_limit = len(recent) >= limit
            if not over_limit:
                recent.append(received)
        if over_limit or any(self._roll(layer.throttle_rate) for layer in layers):
            raise ApiError(400, "Throttling.User", "Request was denied due to user flow control.")

    def _success(
        self, request_id: str, answer: Answer, key_id: str, action: str, params: dict[str, str]
    ) -> _Reply:
        payload = dict(answer.body)
        payload["RequestId"] = request_id
        if self.faults.transform is not None:
            payload = self.faults.transform(action, params, payload)
        delay = self.wide_window_delay if answer.window_seconds > self.wide_window_seconds else 0.0
        return _Reply(
            200,
            "OK",
            json.dumps(payload, separators=(",", ":")).encode(),
            headers={"x-acs-request-id": request_id},
            delay=delay,
            access_key_id=key_id,
        )

    def _error(
        self,
        request_id: str,
        error: ApiError,
        key_id: str,
        as_json: bool,
        *,
        shown_id: str | None = None,
    ) -> _Reply:
        """The error answer; ``shown_id`` replaces the RequestId in the body only."""
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
        retry_after = self._retry_after_ms() if error.code.startswith("Throttling") else None
        if retry_after is not None:
            headers["x-acs-retry-after"] = str(retry_after)
        return _Reply(
            error.status,
            error.code,
            body,
            content_type=content_type,
            headers=headers,
            access_key_id=key_id,
        )

    def _retry_after_ms(self) -> int | None:
        # A fixed value set by a test wins; the quirk hints on about half, as gateways vary.
        if self.faults.retry_after_ms is not None:
            return self.faults.retry_after_ms
        if self.quirks.retry_after_on_throttle and self._quirk_rng.random() < 0.5:
            return self._quirk_rng.randint(1000, 5000)
        return None

    async def _hostile_reply(
        self,
        mode: str,
        request: web.Request,
        request_id: str,
        answer: Answer,
        key_id: str,
        as_json: bool,
    ) -> _Reply:
        action = request.headers.get("x-acs-action", "")
        payload = {**answer.body, "RequestId": request_id}
        fallback = None
        instance = self.fleet.instances.get(request.rel_url.query.get("DBInstanceId", ""))
        if action == "DescribeBackups" and instance is not None:
            fallback = backup_item(_sample_backup(instance, self.clock()))
        result = await self._hostile.answer(
            mode,
            action=action,
            payload=payload,
            faults=self.faults,
            secret=self._auth.secret_of(key_id),
            token=request.headers.get("x-acs-security-token", ""),
            fallback_item=fallback,
        )
        if isinstance(result, ErrorAnswer):
            shown = result.request_id
            reply = self._error(request_id, result.error, key_id, as_json, shown_id=shown)
            reply.code = result.record_code
            return reply
        headers = {"x-acs-request-id": request_id, **result.headers}
        return _Reply(
            result.status,
            mode.upper(),
            result.body,
            content_type=result.content_type,
            headers=headers,
            access_key_id=key_id,
        )


def _unavailable() -> ApiError:
    return ApiError(
        503,
        "ServiceUnavailable",
        "The request has failed due to a temporary failure of the server.",
    )


def _hostile_mode(
    faults: Faults,
    scoped: InstanceFaults | None,
    by_action: InstanceFaults | None,
    headers: Mapping[str, str],
) -> str | None:
    """The hostile mode for a request: per action, else per instance (DescribeBackups
    only), else global."""
    if by_action is not None and by_action.hostile is not None:
        return by_action.hostile
    backups = headers.get("x-acs-action") == "DescribeBackups"
    if backups and scoped is not None and scoped.hostile is not None:
        return scoped.hostile
    return faults.hostile


def _sample_backup(instance: SimInstance, now: float) -> SimBackup:
    """A plausible successful backup, for huge_page when the asked window lists nothing."""
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


def _claimed_key(authorization: str) -> str:
    """The access key id a request claims, for the record even when verification fails."""
    _, _, rest = authorization.partition("Credential=")
    return rest.split(",", 1)[0].strip()
