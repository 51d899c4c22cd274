"""Calling the simulator as a bare client would: V3-signed requests by hand, with the test key,
on a clock the test sets. For the tests that check the simulator's answers field by field."""

from __future__ import annotations

import itertools
import json
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

import aiohttp
import yarl

from exporter.aliyun.signing import sign_rpc_v3
from exporter.simulator import API_VERSION
from tests.helpers import KEY_ID, NOW, SECRET


@dataclass
class SetClock:
    """The simulator's clock: ``now`` until a test moves it."""

    now: float = NOW

    def __call__(self) -> float:
        return self.now


@dataclass
class Reply:
    status: int
    body: Any

    @property
    def code(self) -> str:
        return str(self.body.get("Code", "OK")) if self.status != 200 else "OK"

    @property
    def sc(self) -> tuple[int, str]:
        return self.status, self.code


class SignedApi:
    def __init__(self, session: aiohttp.ClientSession, base_url: str, clock: SetClock) -> None:
        self.session, self.base_url, self.clock = session, base_url, clock
        self.host = yarl.URL(base_url).host_port_subcomponent or ""
        self._nonces = itertools.count()

    async def call(self, action: str, **params: str) -> Reply:
        signed = sign_rpc_v3(
            method="POST",
            host=self.host,
            action=action,
            version=API_VERSION,
            params=params,
            access_key_id=KEY_ID,
            access_key_secret=SECRET,
            security_token=None,
            date=datetime.fromtimestamp(self.clock.now, tz=timezone.utc),
            nonce=f"nonce-{next(self._nonces)}",
        )
        headers = {**signed.headers, "Accept": "application/json"}
        url = yarl.URL(f"{self.base_url}/?{signed.query_string}", encoded=True)
        async with self.session.post(url, headers=headers) as response:
            return Reply(response.status, json.loads(await response.read()))
