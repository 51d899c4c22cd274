"""``--web.config.file``: TLS and basic auth for the HTTP endpoint.

The file has the shape of the Prometheus exporter-toolkit web configuration, so the same file
works for every exporter an operator runs::

    tls_server_config:
      cert_file: server.crt
      key_file: server.key
      client_ca_file: ca.crt                 # optional: verify client certificates
      client_auth_type: RequireAndVerifyClientCert
      min_version: TLS12
    basic_auth_users:
      prometheus: $2y$10$...                 # bcrypt hash (htpasswd -nBC 10 "" | tr -d ':')
    http_server_config:
      headers: {X-Frame-Options: deny}

Nothing here logs or echoes a password or hash.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import hashlib
import hmac
import os
import ssl
from collections import OrderedDict
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import bcrypt
from aiohttp import web
from aiohttp.typedefs import Handler, Middleware

from exporter.config import ConfigError, FrozenMap, load_yaml_file

_TLS_VERSIONS = {
    "TLS10": ssl.TLSVersion.TLSv1,
    "TLS11": ssl.TLSVersion.TLSv1_1,
    "TLS12": ssl.TLSVersion.TLSv1_2,
    "TLS13": ssl.TLSVersion.TLSv1_3,
}
_CLIENT_AUTH = {
    "NoClientCert": ssl.CERT_NONE,
    "RequestClientCert": ssl.CERT_NONE,
    "VerifyClientCertIfGiven": ssl.CERT_OPTIONAL,
    "RequireAndVerifyClientCert": ssl.CERT_REQUIRED,
}
_TLS_KEYS = frozenset(
    {"cert_file", "key_file", "client_ca_file", "client_auth_type", "min_version", "max_version"}
)
_CACHE_SIZE = 64
# bcrypt checks at once: requests beyond these wait their turn instead of piling work onto the
# loop's shared thread pool (which credential loading and reloads use too).
_CONCURRENT_CHECKS = 2
# Paths that health checks (Docker HEALTHCHECK, Kubernetes probes) use: they reveal nothing and
# must keep working when basic auth protects the rest.
UNPROTECTED_PATHS = frozenset({"/-/healthy", "/-/ready"})


@dataclass(frozen=True)
class TlsConfig:
    cert_file: Path
    key_file: Path
    client_ca_file: Path | None = None
    client_auth_type: str = "NoClientCert"
    min_version: str = "TLS12"
    max_version: str | None = None

    def context(self) -> ssl.SSLContext:
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(self.cert_file, self.key_file)
        context.minimum_version = _TLS_VERSIONS[self.min_version]
        if self.max_version is not None:
            context.maximum_version = _TLS_VERSIONS[self.max_version]
        if self.client_ca_file is not None:
            context.load_verify_locations(self.client_ca_file)
        context.verify_mode = _CLIENT_AUTH[self.client_auth_type]
        return context


@dataclass(frozen=True)
class WebConfig:
    tls: TlsConfig | None = None
    users: Mapping[str, str] = field(default_factory=FrozenMap)
    headers: Mapping[str, str] = field(default_factory=FrozenMap)

    def __repr__(self) -> str:
        # User names are fine to show; hashes are not.
        return (
            f"WebConfig(tls={self.tls!r}, users={sorted(self.users)}, headers={dict(self.headers)})"
        )


def load_web_config(path: str | os.PathLike[str]) -> WebConfig:
    """Reads and checks the file; every problem is one ``path: problem`` line in a ConfigError."""
    name = os.fspath(path)
    # Read as the main configuration is: bounded in size and time, a regular file only.
    data = load_yaml_file(name)
    base = Path(path).resolve().parent
    return _parse(data if data is not None else {}, base, name)


def _parse(data: object, base: Path, name: str) -> WebConfig:
    problems: list[str] = []
    if not isinstance(data, dict):
        raise ConfigError(f"{name}: must be a mapping")
    known = {"tls_server_config", "basic_auth_users", "http_server_config"}
    problems += [f"{key}: unknown key" for key in data if key not in known]
    tls = _tls(data.get("tls_server_config"), base, problems)
    users = _users(data.get("basic_auth_users"), problems)
    headers = _headers(data.get("http_server_config"), problems)
    if problems:
        raise ConfigError(problems)
    return WebConfig(tls=tls, users=users, headers=headers)


def _mapping(value: object, path: str, problems: list[str]) -> dict[str, Any] | None:
    if value is None:
        return None
    if not isinstance(value, dict):
        problems.append(f"{path}: must be a mapping")
        return None
    return value


def _tls(value: object, base: Path, problems: list[str]) -> TlsConfig | None:
    section = _mapping(value, "tls_server_config", problems)
    if section is None:
        return None
    start = len(problems)
    problems += [f"tls_server_config.{key}: unknown key" for key in section if key not in _TLS_KEYS]
    files = _tls_files(section, base, problems)
    auth = _client_auth(section, files.get("client_ca_file") is not None, problems)
    versions = _tls_versions(section, problems)
    if len(problems) > start:
        return None
    cert, key_file = files["cert_file"], files["key_file"]
    assert cert is not None and key_file is not None
    tls = TlsConfig(
        cert_file=cert,
        key_file=key_file,
        client_ca_file=files["client_ca_file"],
        client_auth_type=auth,
        min_version=str(versions["min_version"]),
        max_version=versions["max_version"],
    )
    try:
        tls.context()
    except (ssl.SSLError, OSError) as err:
        problems.append(f"tls_server_config: cannot load certificate or key: {err.strerror or err}")
        return None
    return tls


def _tls_files(section: dict[str, Any], base: Path, problems: list[str]) -> dict[str, Path | None]:
    """The certificate, key and CA files, relative to the web config file's directory."""
    files: dict[str, Path | None] = {}
    for key in ("cert_file", "key_file", "client_ca_file"):
        raw = section.get(key)
        if raw is None or raw == "":
            if key != "client_ca_file":
                problems.append(f"tls_server_config.{key}: required")
            files[key] = None
            continue
        file = base / str(raw)
        if not file.is_file():
            problems.append(f"tls_server_config.{key}: no such file: {raw}")
        files[key] = file
    return files


def _client_auth(section: dict[str, Any], has_ca: bool, problems: list[str]) -> str:
    auth = str(section.get("client_auth_type", "NoClientCert"))
    if auth not in _CLIENT_AUTH:
        problems.append(
            f"tls_server_config.client_auth_type: must be one of {', '.join(_CLIENT_AUTH)}"
        )
    elif has_ca and _CLIENT_AUTH[auth] == ssl.CERT_NONE:
        # Otherwise the CA would be loaded and silently never asked (the exporter-toolkit
        # refuses this too).
        problems.append(
            "tls_server_config.client_auth_type: must require or verify client certificates "
            "when client_ca_file is set (VerifyClientCertIfGiven or RequireAndVerifyClientCert)"
        )
    elif _CLIENT_AUTH[auth] != ssl.CERT_NONE and not has_ca:
        problems.append(f"tls_server_config.client_ca_file: required with client_auth_type {auth}")
    return auth


def _tls_versions(section: dict[str, Any], problems: list[str]) -> dict[str, Any]:
    versions = {}
    for key, default in (("min_version", "TLS12"), ("max_version", None)):
        raw_version = section.get(key, default)
        if raw_version is not None and raw_version not in _TLS_VERSIONS:
            problems.append(f"tls_server_config.{key}: must be one of {', '.join(_TLS_VERSIONS)}")
        versions[key] = raw_version
    return versions


def _users(value: object, problems: list[str]) -> FrozenMap:
    section = _mapping(value, "basic_auth_users", problems)
    if not section:
        return FrozenMap()
    users: dict[str, str] = {}
    for user, hashed in section.items():
        path = f"basic_auth_users.{user}"
        if not isinstance(user, str) or not user or ":" in user:
            problems.append(f"{path}: user names must be non-empty and contain no ':'")
        elif not isinstance(hashed, str) or not hashed.startswith(("$2a$", "$2b$", "$2y$")):
            problems.append(f"{path}: must be a bcrypt hash ($2a$, $2b$ or $2y$)")
        else:
            users[user] = hashed
    return FrozenMap(users)


def _headers(value: object, problems: list[str]) -> FrozenMap:
    section = _mapping(value, "http_server_config", problems)
    if section is None:
        return FrozenMap()
    for key in section:
        if key != "headers":
            problems.append(f"http_server_config.{key}: not supported by this exporter")
    headers = _mapping(section.get("headers"), "http_server_config.headers", problems) or {}
    return FrozenMap({str(k): str(v) for k, v in headers.items()})


class BasicAuth:
    """Checks ``Authorization: Basic`` against bcrypt hashes, off the event loop.

    bcrypt is slow on purpose (tens to hundreds of milliseconds), so it runs in a worker thread,
    and a small cache remembers recent successful checks by a keyed digest of the credentials,
    so a scrape every few seconds does not pay for it each time.
    """

    def __init__(self, users: Mapping[str, str]) -> None:
        self._users = dict(users)
        self._cache: OrderedDict[bytes, None] = OrderedDict()
        self._cache_key = os.urandom(32)
        self._checks = asyncio.Semaphore(_CONCURRENT_CHECKS)
        # A real hash of a password nobody knows, at the highest cost configured: an unknown
        # user costs the same bcrypt work as a known one, so timing does not reveal user names.
        cost = max((_cost(h) for h in self._users.values()), default=10)
        self._dummy = bcrypt.hashpw(os.urandom(16), bcrypt.gensalt(rounds=cost))

    async def check(self, header: str | None) -> bool:
        credentials = _decode_basic(header)
        if credentials is None:
            return False
        user, password = credentials
        digest = hmac.new(self._cache_key, f"{user}\0{password}".encode(), hashlib.sha256).digest()
        if digest in self._cache:
            self._cache.move_to_end(digest)
            return True
        hashed = self._users.get(user)
        target = hashed.encode() if hashed is not None else self._dummy
        async with self._checks:
            matches = await asyncio.to_thread(_checkpw, password.encode(), target)
        if not matches or hashed is None:
            return False
        self._cache[digest] = None
        if len(self._cache) > _CACHE_SIZE:
            self._cache.popitem(last=False)
        return True


def _cost(hashed: str) -> int:
    """The cost factor of ``$2y$10$...`` (4 to 31); 10 when it cannot be read."""
    try:
        return min(31, max(4, int(hashed.split("$")[2])))
    except (IndexError, ValueError):
        return 10


def _checkpw(password: bytes, hashed: bytes) -> bool:
    try:
        return bcrypt.checkpw(password, hashed)
    except ValueError:  # a malformed hash never matches
        return False


def _decode_basic(header: str | None) -> tuple[str, str] | None:
    """The user and password of a Basic header; None for anything else, however malformed
    (a client's bad header is a 401, never an error of ours)."""
    if not header:
        return None
    scheme, _, encoded = header.partition(" ")
    if scheme.lower() != "basic":
        return None
    encoded = encoded.strip()
    # b64decode raises a plain ValueError on non-ASCII text (raw bytes after "Basic").
    if not encoded.isascii():
        return None
    try:
        decoded = base64.b64decode(encoded, validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError):
        return None
    user, sep, password = decoded.partition(":")
    return (user, password) if sep else None


def middleware(config: WebConfig) -> Middleware:
    """Basic auth (when users are configured) on every path but the health checks', and the
    configured headers."""
    auth = BasicAuth(config.users) if config.users else None

    @web.middleware
    async def protect(request: web.Request, handler: Handler) -> web.StreamResponse:
        if (
            auth is not None
            and request.path not in UNPROTECTED_PATHS
            and not await auth.check(request.headers.get("Authorization"))
        ):
            response: web.StreamResponse = web.Response(
                status=401,
                text="Unauthorized\n",
                headers={"WWW-Authenticate": 'Basic realm="aliyun-rds-backup-exporter"'},
            )
        else:
            response = await handler(request)
        for name, value in config.headers.items():
            # The status page's policy allows its inline code by hash: another would break it.
            if name.lower() == "content-security-policy" and name in response.headers:
                continue
            response.headers[name] = value
        return response

    return protect
