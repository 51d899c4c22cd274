"""The simulated RDS endpoint: an aiohttp app that authenticates, injects faults, runs the
action and records every request.

Order of checks for each request: latency, outage, HTML error page, signature, action and
version, throttling, 5xx, forced error, then the action's own parameter rules. Faults that a
gateway or load balancer would produce come before authentication; the others after it. A
hostile mode (``Faults.hostile``) replaces only an answer that would have succeeded.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable, Iterable, Mapping
from contextlib import asynccontextmanager

from aiohttp import web

from exporter.simulator.actions import ACTIONS, TAGS_MATCH, Action, Answer, Call
from exporter.simulator.auth import Authenticator
from exporter.simulator.errors import ApiError, accepts_json
from exporter.simulator.faults import Faults
from exporter.simulator.fleet import Fleet
from exporter.simulator.hostile import ErrorAnswer, HostileAnswers, fallback_item
from exporter.simulator.inferred import Inferred
from exporter.simulator.injection import FaultInjector, Layers, unavailable
from exporter.simulator.quirks import Quirks
from exporter.simulator.records import (
    HTML_CODE,
    RESET_CODE,
    TRUNCATED_CODE,
    Arrival,
    Reply,
    RequestRecord,
    keep_recent,
    record_of,
)
from exporter.simulator.replies import (
    answer_payload,
    error_reply,
    html_reply,
    raw_reply,
    request_id_for,
    success_reply,
)

API_VERSION = "2014-08-15"
DEMO_ACCESS_KEY_ID = "LTAI5tSimulatorDemoKey00"
DEMO_ACCESS_KEY_SECRET = "SimulatorDemoSecretNotReal0000"
# Windows wider than this answer slowly, like the real API that may time out on long ranges.
DEFAULT_WIDE_WINDOW_SECONDS = 7 * 86400.0
DEFAULT_WIDE_WINDOW_DELAY = 3.0

__all__ = [  # the record codes and type are part of this module's interface too
    "API_VERSION",
    "DEFAULT_WIDE_WINDOW_DELAY",
    "DEFAULT_WIDE_WINDOW_SECONDS",
    "DEMO_ACCESS_KEY_ID",
    "DEMO_ACCESS_KEY_SECRET",
    "HTML_CODE",
    "RESET_CODE",
    "TRUNCATED_CODE",
    "RequestRecord",
    "SimulatedRds",
]


class SimulatedRds:
    """A fleet served over HTTP the way RDS serves it.

    ``clock`` gives wall time (epoch seconds) for signatures and for what is visible;
    ``faults`` may be changed at any time; ``rng_seed`` fixes every random fault decision.
    ``max_records`` bounds ``requests`` to about the most recent ones (for long demo runs);
    None keeps them all. ``quirks`` (default: all on) are the ways the real API departs from
    what a client would expect; ``inferred`` (default: the reference's best guesses) how it
    answers where the reference only infers; both may be changed at any time too.
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
        inferred: Inferred | None = None,
    ) -> None:
        # The real API's quirks, all on unless told otherwise; tests may change them live.
        self.quirks = quirks if quirks is not None else Quirks()
        self.inferred = inferred if inferred is not None else Inferred()
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
        self._auth = Authenticator(
            credentials if credentials is not None else {DEMO_ACCESS_KEY_ID: DEMO_ACCESS_KEY_SECRET}
        )
        self._restricted: dict[str, frozenset[str]] = {}
        self._served = 0
        self._max_records = max_records
        # Faults, quirks and hostile answers draw from streams of their own: switching one on
        # or off leaves every other seeded decision as it was.
        self._injector = FaultInjector(rng_seed)
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
        layers = Layers.of(self.faults, instance_id, request.headers)
        if layers.latency > 0:
            await asyncio.sleep(layers.latency)
        arrival = Arrival(request, params, instance_id, received, self.clock())
        if self._injector.reset(layers):
            # Drop the connection with no answer at all, as a broken proxy would.
            if request.transport is not None:
                request.transport.abort()
            self._record(arrival, Reply(0, RESET_CODE, b""))
            return web.Response()  # never sent: the connection is gone
        reply = await self._answer(arrival, body, layers)
        if reply.delay > 0:
            await asyncio.sleep(reply.delay)
        self._record(arrival, reply)
        return web.Response(
            status=reply.status,
            body=reply.body,
            content_type=reply.content_type,
            charset="utf-8",
            headers=reply.headers,
        )

    def _record(self, arrival: Arrival, reply: Reply) -> None:
        self.requests.append(record_of(arrival, reply, answered=self._monotonic()))
        keep_recent(self.requests, self._max_records)

    async def _answer(self, arrival: Arrival, body: bytes, layers: Layers) -> Reply:
        request = arrival.request
        self._served += 1
        request_id = request_id_for(self._rng_seed, self._served)
        key_id = ""
        as_json = not self.quirks.xml_errors_unless_json or accepts_json(
            ",".join(request.headers.getall("Accept", []))
        )
        try:
            if layers.outage:
                raise unavailable()
            if self._injector.html_error(layers):
                return html_reply()
            key_id = _claimed_key(request.headers.get("Authorization", ""))
            key_id = self._auth.verify(
                method=request.method,
                headers=request.headers,
                params=arrival.params,
                body=body,
                now=arrival.now,
            )
            action = _action(request.headers)
            limit = self.faults.max_requests_per_second
            self._injector.check_throttle(key_id, layers, arrival.received, limit)
            self._injector.inject_errors(layers)
            answer = action(self._call(arrival, key_id))
        except ApiError as error:
            return self._error(request_id, error, key_id, as_json)
        if layers.hostile is not None:
            return await self._hostile_reply(
                layers.hostile, arrival, request_id, answer, key_id, as_json
            )
        reply = self._success(request_id, answer, key_id, arrival)
        if reply.status == 200 and self._injector.truncate(layers):
            reply.body = reply.body[: len(reply.body) // 2]
            reply.code = TRUNCATED_CODE
        return reply

    def _call(self, arrival: Arrival, key_id: str) -> Call:
        return Call(
            fleet=self.fleet,
            params=arrival.params,
            now=arrival.now,
            can_see=lambda instance_id: self.can_see(key_id, instance_id),
            shuffle_seed=self._rng_seed if self.shuffle_items else None,
            tags_match=self.tags_match,
            quirks=self.quirks,
            inferred=self.inferred,
        )

    def _success(self, request_id: str, answer: Answer, key_id: str, arrival: Arrival) -> Reply:
        payload = answer_payload(request_id, answer)
        if self.faults.transform is not None:
            action = arrival.request.headers.get("x-acs-action", "")
            payload = self.faults.transform(action, arrival.params, payload)
        wide = answer.window_seconds > self.wide_window_seconds
        return success_reply(
            request_id, payload, key_id, delay=self.wide_window_delay if wide else 0.0
        )

    def _error(
        self,
        request_id: str,
        error: ApiError,
        key_id: str,
        as_json: bool,
        *,
        shown_id: str | None = None,
    ) -> Reply:
        throttled = error.code.startswith("Throttling")
        retry_after = self._injector.retry_after_ms(self.faults, self.quirks) if throttled else None
        return error_reply(
            request_id,
            error,
            key_id,
            as_json=as_json,
            retry_after_ms=retry_after,
            shown_id=shown_id,
        )

    async def _hostile_reply(
        self,
        mode: str,
        arrival: Arrival,
        request_id: str,
        answer: Answer,
        key_id: str,
        as_json: bool,
    ) -> Reply:
        headers = arrival.request.headers
        action = headers.get("x-acs-action", "")
        instance = self.fleet.instances.get(arrival.instance_id)
        fallback = fallback_item(action, instance, self.clock()) if instance else None
        result = await self._hostile.answer(
            mode,
            action=action,
            payload=answer_payload(request_id, answer),
            faults=self.faults,
            secret=self._auth.secret_of(key_id),
            token=headers.get("x-acs-security-token", ""),
            fallback_item=fallback,
        )
        if isinstance(result, ErrorAnswer):
            reply = self._error(
                request_id, result.error, key_id, as_json, shown_id=result.request_id
            )
            reply.code = result.record_code
            return reply
        return raw_reply(mode, result, request_id, key_id)


def _action(headers: Mapping[str, str]) -> Action:
    """The action a request names, in the API version we serve."""
    action = ACTIONS.get(headers.get("x-acs-action", ""))
    if action is None:
        raise ApiError(
            404,
            "InvalidAction.NotFound",
            "Specified api is not found, please check your url and method.",
        )
    if headers.get("x-acs-version") != API_VERSION:
        raise ApiError(400, "InvalidVersion", "Specified parameter Version is not valid.")
    return action


def _claimed_key(authorization: str) -> str:
    """The access key id a request claims, for the record even when verification fails."""
    _, _, rest = authorization.partition("Credential=")
    return rest.split(",", 1)[0].strip()
