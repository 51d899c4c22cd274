"""Where the access key comes from: explicit keys from the config, or the standard chain.

The standard Alibaba Cloud chain (environment, OIDC/RRSA, CLI profile, credentials file, ECS RAM
role, credentials URI) is the official ``alibabacloud-credentials`` package. Its providers cache
temporary (STS) credentials and refresh them before they expire through their async API, so a
refresh never blocks the event loop.
"""

from __future__ import annotations

import logging
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
    """The official default credential chain, through its async API."""

    def __init__(self) -> None:
        # Imported and built lazily: the package reads the environment and installs a log
        # handler when imported, which a config with static keys should not pay for.
        self._provider: Any = None

    def _chain(self) -> Any:
        if self._provider is None:
            from alibabacloud_credentials.provider.default import DefaultCredentialsProvider

            # The package adds its own stream handler to this logger; route its records
            # through ours instead so log format and level stay consistent.
            chain_logger = logging.getLogger("credentials")
            chain_logger.handlers.clear()
            chain_logger.propagate = True
            self._provider = DefaultCredentialsProvider()
        return self._provider

    async def get(self) -> Credentials:
        try:
            found = await self._chain().get_credentials_async()
        except Exception as err:  # the package raises several types; all mean "no credentials"
            raise CredentialsError(
                f"no credentials from the default chain: {_first_line(str(err))}"
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


def _first_line(text: str) -> str:
    line = text.strip().splitlines()[0] if text.strip() else "unknown error"
    return line[:300]
