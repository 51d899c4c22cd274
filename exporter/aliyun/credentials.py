"""Where the access key comes from: explicit keys from the config, or the standard chain.

The standard Alibaba Cloud chain (environment, OIDC/RRSA, CLI profile, credentials file, ECS RAM
role, credentials URI) is the official ``alibabacloud-credentials`` package, used through its
async API. Its providers cache temporary (STS) credentials and refresh them before they expire;
``DefaultChainCredentialsProvider`` makes sure that never stalls the event loop (see there).
"""

from __future__ import annotations

import asyncio
import logging
import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol


class CredentialsError(Exception):
    """No usable credentials. The message never carries a secret."""


@dataclass(frozen=True)
class Credentials:
    access_key_id: str
    access_key_secret: str = field(repr=False)
    security_token: str | None = field(default=None, repr=False)


class CredentialsProvider(Protocol):
    async def get(self) -> Credentials:
        """Current credentials; may refresh them first (without blocking the loop)."""
        ...

    @property
    def description(self) -> str:
        """Where credentials come from, for logs (never the secret)."""
        ...


class StaticCredentialsProvider:
    """Keys written in the config file (possibly through ``${VAR}``)."""

    def __init__(self, credentials: Credentials) -> None:
        self._credentials = credentials

    async def get(self) -> Credentials:
        return self._credentials

    @property
    def description(self) -> str:
        kind = "STS token" if self._credentials.security_token else "access key"
        return f"static {kind} {mask_key_id(self._credentials.access_key_id)}"

    def __repr__(self) -> str:
        return f"StaticCredentialsProvider({self.description})"


class DefaultChainCredentialsProvider:
    """The official default credential chain, through its async API.

    The package's refreshable providers (RRSA/OIDC, ECS RAM role, credentials URI) hold a
    *thread* lock across an ``await`` while they refresh: a second coroutine arriving meanwhile
    blocks the whole event loop for up to five seconds. So only one coroutine at a time ever
    enters the package (an asyncio lock), and what it returns is reused for ``reuse_seconds``;
    the package itself refreshes temporary credentials well before they expire (it treats them
    as stale 15 minutes early), so a short reuse never hands out expired keys. A failure is
    reused for ``retry_seconds`` so a fleet of polls does not queue up behind a slow chain.
    """

    def __init__(
        self,
        *,
        reuse_seconds: float = 60.0,
        retry_seconds: float = 10.0,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self._provider: Any = None
        self._lock = asyncio.Lock()
        self._reuse = reuse_seconds
        self._retry = retry_seconds
        self._monotonic = monotonic
        self._cached: Credentials | None = None
        self._error: CredentialsError | None = None
        self._fetched = float("-inf")

    def load(self) -> None:
        """Imports and builds the chain (blocking, a fraction of a second): call it at start-up,
        not from a poll."""
        if self._provider is not None:
            return
        # Imported here: the package reads the environment and installs log handlers when
        # imported, which a config with static keys should not pay for.
        from alibabacloud_credentials.provider.default import DefaultCredentialsProvider

        # The package logs through its own handler, at its own level, and may log a whole
        # credentials response on errors. Silence it: our own CredentialsError says what failed
        # (once per change, through the poller), and never with a secret.
        chain_logger = logging.getLogger("credentials")
        chain_logger.handlers.clear()
        chain_logger.propagate = False
        chain_logger.setLevel(logging.CRITICAL + 1)
        self._provider = DefaultCredentialsProvider()

    def _fresh(self) -> Credentials | None:
        age = self._monotonic() - self._fetched
        if self._cached is not None and age < self._reuse:
            return self._cached
        if self._error is not None and age < self._retry:
            raise self._error
        return None

    async def get(self) -> Credentials:
        fresh = self._fresh()
        if fresh is not None:
            return fresh
        async with self._lock:
            fresh = self._fresh()  # another coroutine may have fetched while we waited
            if fresh is not None:
                return fresh
            self.load()
            try:
                self._cached = await self._fetch()
                self._error = None
            except CredentialsError as err:
                self._cached, self._error = None, err
                raise
            finally:
                self._fetched = self._monotonic()
            return self._cached

    async def _fetch(self) -> Credentials:
        try:
            found = await self._provider.get_credentials_async()
        except Exception as err:  # the package raises several types; all mean "no credentials"
            raise CredentialsError(
                f"no credentials from the default chain: {_first_line(redact(str(err)))}"
            ) from None
        key_id = found.get_access_key_id()
        secret = found.get_access_key_secret()
        if not key_id or not secret:
            raise CredentialsError("no credentials from the default chain: empty access key")
        return Credentials(
            access_key_id=key_id,
            access_key_secret=secret,
            security_token=found.get_security_token() or None,
        )

    @property
    def description(self) -> str:
        return "default credential chain"

    def __repr__(self) -> str:
        return "DefaultChainCredentialsProvider()"


def mask_key_id(access_key_id: str) -> str:
    """Enough of the key id to tell keys apart in logs, not enough to use it."""
    if len(access_key_id) <= 8:
        return "****"
    return access_key_id[:4] + "****" + access_key_id[-4:]


# The package quotes whole credentials responses in some of its errors: blank out anything that
# looks like a secret field's value before a message goes anywhere.
_SECRET_FIELD = re.compile(
    r"(?i)((?:access_?key_?secret|security_?token|secret|token|password)[\"']?\s*[:=]\s*[\"']?)"
    r"([^\"',\s}]+)"
)


def redact(text: str) -> str:
    return _SECRET_FIELD.sub(lambda match: match.group(1) + "****", text)


def _first_line(text: str) -> str:
    line = text.strip().splitlines()[0] if text.strip() else "unknown error"
    return line[:300]
